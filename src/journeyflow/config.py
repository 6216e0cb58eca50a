"""Report configuration: :class:`ReportConfig` and its TOML form.

A report configuration is a frozen dataclass made of one small frozen dataclass per
TOML section (``[input]``, ``[sessions]``, ``[touchpoints]``, ``[phases]``,
``[conversion]``, ``[funnel]``, ``[segments]``, ``[attribution]``, ``[output]``).
Every option has a default, so an empty file (or no file) is a valid configuration.
``examples/report.toml`` in the repository is a commented example of every key.

Configurations are parsed with :mod:`tomllib` (``tomli`` before Python 3.11) and
nothing else: no ``eval``, no pickle, no code. Unknown sections or keys and values
of the wrong type are errors that name the key, the allowed keys or type, and what
was received. Output paths in the configuration are relative to the report folder
and may not leave it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, ClassVar

import pandas as pd

from ._validation import check_duration, closest, describe
from .exceptions import InputTypeError, OptionError, ReadError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "AttributionOptions",
    "ConversionOptions",
    "FunnelOptions",
    "InputOptions",
    "OutputOptions",
    "PhaseOptions",
    "ReportConfig",
    "SegmentOptions",
    "SessionOptions",
    "TouchpointOptions",
]

#: Attribution model names the report accepts (the registry names of jf.attribute).
ATTRIBUTION_MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "position_based",
    "markov",
    "shapley",
)
#: Built-in phase models (DESIGN.md).
PHASE_MODELS: tuple[str, ...] = ("aacra", "see-think-do-care", "see-think-do-experience-care", "ten-phase")
FUNNEL_MODES: tuple[str, ...] = ("ordered", "strict", "unordered")
TIMESTAMP_UNITS: tuple[str, ...] = ("s", "ms", "us", "ns")


# ---------------------------------------------------------------------------
# Checks shared by the sections. ``key`` is the dotted TOML key ("sessions.timeout").


def _type_error(key: str, expected: str, value: Any) -> InputTypeError:
    return InputTypeError(f"Config key {key!r} must be {expected}; got {describe(value)}.")


def _check_str(key: str, value: Any, *, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise _type_error(key, "a non-empty string", value)
    return value


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _type_error(key, "true or false", value)
    return value


def _check_int(key: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(key, f"an integer >= {minimum}", value)
    if value < minimum:
        raise OptionError(f"Config key {key!r} must be an integer >= {minimum}; got {value!r}.")
    return value


def _check_str_list(key: str, value: Any, *, allow_single: bool = True) -> tuple[str, ...]:
    """A list of non-empty strings (a single string is accepted as a one-item list)."""
    if isinstance(value, str) and allow_single:
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _type_error(key, 'a list of strings such as ["a", "b"]', value)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise _type_error(f"{key}[{i}]", "a non-empty string", item)
        out.append(item)
    return tuple(out)


def _check_choice(key: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise _type_error(key, "one of " + ", ".join(repr(a) for a in allowed), value)
    if value not in allowed:
        near = closest(value, allowed)
        hint = f" Did you mean {near!r}?" if near else ""
        raise OptionError(
            f"Config key {key!r} must be one of {', '.join(repr(a) for a in allowed)}; "
            f"got {value!r}.{hint}"
        )
    return value


def _check_duration(key: str, value: Any, *, allow_none: bool = False) -> str | pd.Timedelta | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, pd.Timedelta)):
        raise _type_error(key, 'a duration string with a unit such as "30min" or "7D"', value)
    try:
        check_duration(key, value)
    except OptionError as exc:
        raise OptionError(f"Config key {key!r}: {exc}") from None
    return value


def _check_str_map(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _type_error(key, 'a table of names such as {user_id = "visitor"}', value)
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str) or not v:
            raise _type_error(f"{key}.{k}", "a non-empty string", v)
        out[k] = v
    return out


def _check_phase_map(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise _type_error(key, 'a table such as {webinar = ["aware", "evaluate"]}', value)
    return {str(k): _check_str_list(f"{key}.{k}", v) for k, v in value.items()}


def check_relative_path(key: str, value: Any) -> str:
    """Return ``value`` if it is a relative path that stays inside the output folder.

    Absolute paths, drive letters, ``..`` components and empty names are refused, so a
    configuration cannot make the report write outside ``--out``.
    """
    text = _check_str(key, value)
    assert text is not None
    parts_posix = PurePosixPath(text.replace("\\", "/"))
    if (
        parts_posix.is_absolute()
        or PureWindowsPath(text).is_absolute()
        or PureWindowsPath(text).drive
        or ".." in parts_posix.parts
        or "\x00" in text
    ):
        raise OptionError(
            f"Config key {key!r} must be a relative path inside the output folder (--out), "
            f"such as \"charts\"; got {text!r}, which would write outside it. Remove the "
            "leading '/', drive letter or '..'."
        )
    return text


# ---------------------------------------------------------------------------
# Sections


class _Section:
    """Shared ``from_dict``/``to_dict`` for the section dataclasses."""

    section: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        if not isinstance(data, Mapping):
            raise _type_error(cls.section, f"a table ([{cls.section}])", data)
        allowed = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        for key in data:
            if key not in allowed:
                near = closest(str(key), allowed)
                hint = f" Did you mean {near!r}?" if near else ""
                raise OptionError(
                    f"Unknown config key {cls.section + '.' + str(key)!r}. Allowed keys in "
                    f"[{cls.section}]: {', '.join(allowed)}.{hint}"
                )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                continue  # TOML has no null: absent means default
            if isinstance(value, pd.Timedelta):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            out[f.name] = value
        return out


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class InputOptions(_Section):
    """``[input]``: how to read the events.

    Parameters
    ----------
    columns : dict of str to str
        Canonical column name -> your column name, e.g. ``{"user_id": "visitor"}``.
    timestamp_unit : {"s", "ms", "us", "ns"}, optional
        Unit of numeric (epoch) timestamps. Default: let journeyflow infer it.
    timezone : str, default "UTC"
        Time zone of naive timestamps (a tz database name such as "Europe/Amsterdam").
    """

    section: ClassVar[str] = "input"
    columns: Mapping[str, str] = field(default_factory=dict)
    timestamp_unit: str | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        _set(self, "columns", _check_str_map("input.columns", self.columns))
        if self.timestamp_unit is not None:
            _check_choice("input.timestamp_unit", self.timestamp_unit, TIMESTAMP_UNITS)
        _check_str("input.timezone", self.timezone)


@dataclass(frozen=True)
class SessionOptions(_Section):
    """``[sessions]``: options of :func:`journeyflow.sessionize`.

    Parameters
    ----------
    timeout : str, default "30min"
        A new session starts where the gap is strictly greater than this.
    max_duration : str, optional
        Longest session.
    split_on_campaign : bool, default False
        Start a new session where the utm campaign changes.
    """

    section: ClassVar[str] = "sessions"
    timeout: str | pd.Timedelta = "30min"
    max_duration: str | pd.Timedelta | None = None
    split_on_campaign: bool = False

    def __post_init__(self) -> None:
        _check_duration("sessions.timeout", self.timeout)
        _check_duration("sessions.max_duration", self.max_duration, allow_none=True)
        _check_bool("sessions.split_on_campaign", self.split_on_campaign)


@dataclass(frozen=True)
class TouchpointOptions(_Section):
    """``[touchpoints]``: channel and touchpoint rules.

    Parameters
    ----------
    channel_rules : str, optional
        A TOML file of channel rules (relative to the configuration file), replacing
        the built-in default channel grouping.
    touchpoint_rules : str, optional
        A TOML file of touchpoint rules (relative to the configuration file).
    """

    section: ClassVar[str] = "touchpoints"
    channel_rules: str | None = None
    touchpoint_rules: str | None = None

    def __post_init__(self) -> None:
        _check_str("touchpoints.channel_rules", self.channel_rules, allow_none=True)
        _check_str("touchpoints.touchpoint_rules", self.touchpoint_rules, allow_none=True)


@dataclass(frozen=True)
class PhaseOptions(_Section):
    """``[phases]``: the phase model.

    Parameters
    ----------
    model : str, default "aacra"
        A built-in model ("aacra", "see-think-do-care", "see-think-do-experience-care",
        "ten-phase") or the ``name`` of the custom model below.
    phases : list of str, optional
        Ordered phases of a custom model (with ``touchpoints`` and/or ``events``).
    touchpoints : dict of str to list of str, optional
        Custom model: touchpoint -> the phases it belongs to.
    events : dict of str to list of str, optional
        Custom model: event name -> the phases it belongs to.
    file : str, optional
        A TOML file defining a custom phase model (relative to the configuration file).
    """

    section: ClassVar[str] = "phases"
    model: str = "aacra"
    phases: tuple[str, ...] | None = None
    touchpoints: Mapping[str, tuple[str, ...]] | None = None
    events: Mapping[str, tuple[str, ...]] | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        _check_str("phases.model", self.model)
        custom = self.phases is not None or self.touchpoints is not None or self.events is not None
        if self.phases is not None:
            _set(self, "phases", _check_str_list("phases.phases", self.phases, allow_single=False))
        if self.touchpoints is not None:
            _set(self, "touchpoints", _check_phase_map("phases.touchpoints", self.touchpoints))
        if self.events is not None:
            _set(self, "events", _check_phase_map("phases.events", self.events))
        _check_str("phases.file", self.file, allow_none=True)
        if custom and self.phases is None:
            raise OptionError(
                "Config keys 'phases.touchpoints'/'phases.events' define a custom phase model "
                "and need 'phases.phases' (the ordered phase names) too; got none."
            )
        if custom and self.model in PHASE_MODELS:
            raise OptionError(
                f"Config key 'phases.model' is {self.model!r}, a built-in model, but a custom "
                "model is defined with 'phases.phases'. Give the custom model its own name, "
                'e.g. model = "my-model".'
            )
        if not custom and self.file is None and self.model not in PHASE_MODELS:
            _check_choice("phases.model", self.model, PHASE_MODELS)

    @property
    def is_custom(self) -> bool:
        """Whether a custom model is defined inline."""
        return self.phases is not None


@dataclass(frozen=True)
class ConversionOptions(_Section):
    """``[conversion]``: what counts as a conversion, and the journey lookback.

    Parameters
    ----------
    events : list of str, default ["purchase"]
        Event names that count as a conversion.
    value : str, default "revenue"
        Column with the conversion value (used when present).
    lookback : str, default "30D"
        Touches older than this before a conversion are left out of its journey.
    touchpoint : str, default "channel"
        What a journey's touches are: "channel", "touchpoint", "phase" or a column.
    """

    section: ClassVar[str] = "conversion"
    events: tuple[str, ...] = ("purchase",)
    value: str = "revenue"
    lookback: str | pd.Timedelta = "30D"
    touchpoint: str = "channel"

    def __post_init__(self) -> None:
        _set(self, "events", _check_str_list("conversion.events", self.events))
        if not self.events:
            raise OptionError("Config key 'conversion.events' must name at least one event; got [].")
        _check_str("conversion.value", self.value)
        _check_duration("conversion.lookback", self.lookback)
        _check_str("conversion.touchpoint", self.touchpoint)


@dataclass(frozen=True)
class FunnelOptions(_Section):
    """``[funnel]``: the step funnel.

    Parameters
    ----------
    steps : list of str, optional
        Event names of the funnel steps, in order. Default: the webshop steps of the
        bundled sample that occur in the data, ending at the conversion event.
    window : str, default "7D"
        Every step must follow step 1 within this time.
    mode : {"ordered", "strict", "unordered"}, default "ordered"
        See :func:`journeyflow.funnel`.
    """

    section: ClassVar[str] = "funnel"
    steps: tuple[str, ...] | None = None
    window: str | pd.Timedelta = "7D"
    mode: str = "ordered"

    def __post_init__(self) -> None:
        if self.steps is not None:
            _set(self, "steps", _check_str_list("funnel.steps", self.steps, allow_single=False))
            if len(self.steps) < 2:
                raise OptionError(
                    f"Config key 'funnel.steps' needs at least 2 steps; got {list(self.steps or [])}."
                )
        _check_duration("funnel.window", self.window)
        _check_choice("funnel.mode", self.mode, FUNNEL_MODES)


@dataclass(frozen=True)
class SegmentOptions(_Section):
    """``[segments]``: segment columns (device, persona, ...) for by-segment tables.

    Parameters
    ----------
    by : list of str, default []
        Segment columns; the funnels are also written per segment.
    """

    section: ClassVar[str] = "segments"
    by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "by", _check_str_list("segments.by", self.by))


@dataclass(frozen=True)
class AttributionOptions(_Section):
    """``[attribution]``: models compared and their bootstrap intervals.

    Parameters
    ----------
    models : list of str, default all seven
        Any of "first_touch", "last_touch", "linear", "time_decay", "position_based",
        "markov", "shapley".
    markov_order : int, default 1
        Order of the Markov chain.
    half_life : str, default "7D"
        Half-life of the time-decay model.
    n_resamples : int, default 200
        Bootstrap resamples for the intervals; 0 turns the intervals off.
    level : float, default 0.9
        Confidence level of the intervals.
    seed : int, default 0
        Seed of the bootstrap.
    """

    section: ClassVar[str] = "attribution"
    models: tuple[str, ...] = ATTRIBUTION_MODELS
    markov_order: int = 1
    half_life: str | pd.Timedelta = "7D"
    n_resamples: int = 200
    level: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        models = _check_str_list("attribution.models", self.models)
        if not models:
            raise OptionError(
                "Config key 'attribution.models' must name at least one model; got []. "
                f"Choose from {', '.join(ATTRIBUTION_MODELS)}."
            )
        for i, m in enumerate(models):
            _check_choice(f"attribution.models[{i}]", m, ATTRIBUTION_MODELS)
        _set(self, "models", models)
        _check_int("attribution.markov_order", self.markov_order, minimum=1)
        _check_duration("attribution.half_life", self.half_life)
        _check_int("attribution.n_resamples", self.n_resamples, minimum=0)
        _check_int("attribution.seed", self.seed, minimum=0)
        if isinstance(self.level, bool) or not isinstance(self.level, (int, float)):
            raise _type_error("attribution.level", "a number between 0 and 1 such as 0.9", self.level)
        if not 0.0 < float(self.level) < 1.0:
            raise OptionError(f"Config key 'attribution.level' must lie in (0, 1); got {self.level!r}.")


@dataclass(frozen=True)
class OutputOptions(_Section):
    """``[output]``: what the report writes.

    Parameters
    ----------
    title : str, default "Customer journey report"
        Title of report.html.
    charts : bool, default True
        Draw PNG charts (and embed them in report.html).
    html : bool, default True
        Write report.html.
    charts_dir : str, default "charts"
        Folder for the PNG charts, relative to the report folder (may not leave it).
    neutralize_formulas : bool, default True
        Prefix CSV text cells that start with ``=``, ``+``, ``-``, ``@``, tab or
        carriage return with a single quote, so spreadsheets do not run them as
        formulas. Turn off when the CSVs only feed other programs.
    max_table_rows : int, default 50
        Rows of each table shown in report.html (the CSVs hold every row).
    """

    section: ClassVar[str] = "output"
    title: str = "Customer journey report"
    charts: bool = True
    html: bool = True
    charts_dir: str = "charts"
    neutralize_formulas: bool = True
    max_table_rows: int = 50

    def __post_init__(self) -> None:
        _check_str("output.title", self.title)
        _check_bool("output.charts", self.charts)
        _check_bool("output.html", self.html)
        check_relative_path("output.charts_dir", self.charts_dir)
        _check_bool("output.neutralize_formulas", self.neutralize_formulas)
        _check_int("output.max_table_rows", self.max_table_rows, minimum=1)


_SECTIONS: dict[str, type[_Section]] = {
    "input": InputOptions,
    "sessions": SessionOptions,
    "touchpoints": TouchpointOptions,
    "phases": PhaseOptions,
    "conversion": ConversionOptions,
    "funnel": FunnelOptions,
    "segments": SegmentOptions,
    "attribution": AttributionOptions,
    "output": OutputOptions,
}


@dataclass(frozen=True)
class ReportConfig:
    """Every option of :func:`journeyflow.run_report`, with defaults.

    Build it in Python (``ReportConfig(sessions=SessionOptions(timeout="1h"))``), from
    a mapping shaped like the TOML file (:meth:`from_dict`) or from a TOML file
    (:meth:`from_toml`). ``ReportConfig()`` is the default report.

    Parameters
    ----------
    input : InputOptions
        ``[input]``: column mapping, timestamp unit and time zone.
    sessions : SessionOptions
        ``[sessions]``: timeout, max_duration, split_on_campaign.
    touchpoints : TouchpointOptions
        ``[touchpoints]``: channel and touchpoint rule files.
    phases : PhaseOptions
        ``[phases]``: a built-in phase model or a custom one.
    conversion : ConversionOptions
        ``[conversion]``: conversion events, value column, lookback, touch unit.
    funnel : FunnelOptions
        ``[funnel]``: steps, window and mode.
    segments : SegmentOptions
        ``[segments]``: segment columns.
    attribution : AttributionOptions
        ``[attribution]``: models and bootstrap settings.
    output : OutputOptions
        ``[output]``: charts, HTML, CSV formula neutralisation, chart folder.
    base_dir : Path, optional
        Folder that relative rule/model file paths are read from (the configuration
        file's folder when read with :meth:`from_toml`; else the working directory).

    Raises
    ------
    OptionError
        An unknown key or a value outside the allowed set (the message names the key
        and the allowed values).
    InputTypeError
        A value of the wrong type (the message names the key and the expected type).

    Examples
    --------
    >>> import journeyflow as jf
    >>> cfg = jf.ReportConfig.from_dict({"sessions": {"timeout": "1h"},
    ...                                  "attribution": {"models": ["linear", "markov"]}})
    >>> cfg.sessions.timeout, cfg.attribution.models
    ('1h', ('linear', 'markov'))
    >>> jf.ReportConfig.from_dict({"sessions": {"timout": "1h"}})
    Traceback (most recent call last):
    ...
    journeyflow.exceptions.OptionError: Unknown config key 'sessions.timout'. Allowed keys in [sessions]: timeout, max_duration, split_on_campaign. Did you mean 'timeout'?
    """

    input: InputOptions = field(default_factory=InputOptions)
    sessions: SessionOptions = field(default_factory=SessionOptions)
    touchpoints: TouchpointOptions = field(default_factory=TouchpointOptions)
    phases: PhaseOptions = field(default_factory=PhaseOptions)
    conversion: ConversionOptions = field(default_factory=ConversionOptions)
    funnel: FunnelOptions = field(default_factory=FunnelOptions)
    segments: SegmentOptions = field(default_factory=SegmentOptions)
    attribution: AttributionOptions = field(default_factory=AttributionOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    base_dir: Path | None = None

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise InputTypeError(
                    f"ReportConfig.{name} must be a {cls.__name__}; got {describe(value)}. "
                    f"Use ReportConfig.from_dict({{{name!r}: {{...}}}}) to build it from a dict."
                )
        if self.base_dir is not None and not isinstance(self.base_dir, Path):
            _set(self, "base_dir", Path(self.base_dir))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: str | Path | None = None) -> ReportConfig:
        """Build a configuration from a mapping shaped like the TOML file.

        Parameters
        ----------
        data : mapping
            ``{"sessions": {"timeout": "1h"}, ...}``; sections and keys as in the TOML file.
        base_dir : str or Path, optional
            Folder relative rule/model file paths are read from.

        Returns
        -------
        ReportConfig

        Raises
        ------
        OptionError, InputTypeError
            Unknown section/key or wrong value; the message names the key.
        """
        if not isinstance(data, Mapping):
            raise InputTypeError(f"A report configuration must be a table of sections; got {describe(data)}.")
        sections: dict[str, Any] = {}
        for key, value in data.items():
            if key not in _SECTIONS:
                near = closest(str(key), list(_SECTIONS))
                hint = f" Did you mean [{near}]?" if near else ""
                kind = "section" if isinstance(value, Mapping) else "key"
                raise OptionError(
                    f"Unknown config {kind} {key!r}. Allowed sections: "
                    f"{', '.join('[' + s + ']' for s in _SECTIONS)}.{hint}"
                )
            if not isinstance(value, Mapping):
                raise _type_error(key, f"a table ([{key}] with keys below it)", value)
            sections[key] = _SECTIONS[key].from_dict(value)
        return cls(**sections, base_dir=None if base_dir is None else Path(base_dir))

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> ReportConfig:
        """Read a configuration from a TOML file (parsed with :mod:`tomllib` only).

        Parameters
        ----------
        path : str or Path
            The TOML file. Relative rule/model file paths in it are read relative to
            the file's folder.

        Returns
        -------
        ReportConfig

        Raises
        ------
        ReadError
            The file does not exist, cannot be read, or is not valid TOML (the message
            gives the file and the parser's line and column).
        OptionError, InputTypeError
            Unknown section/key or wrong value (the message names the file and the key).
        """
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise ReadError(
                f"Cannot read the config file {str(p)!r}: {exc.strerror or exc}. Check the path "
                "given to --config."
            ) from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ReadError(f"Config file {str(p)!r} is not UTF-8 text ({exc.reason}).") from None
        except tomllib.TOMLDecodeError as exc:
            raise ReadError(f"Config file {str(p)!r} is not valid TOML: {exc}.") from None
        try:
            return cls.from_dict(data, base_dir=p.resolve().parent)
        except (OptionError, InputTypeError) as exc:
            raise type(exc)(f"{p}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a mapping shaped like the TOML file (defaults included)."""
        return {name: getattr(self, name).to_dict() for name in _SECTIONS}

    def resolve_input_path(self, path: str) -> Path:
        """A rule/model file path from the configuration, relative to ``base_dir``."""
        p = Path(path)
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return p
