"""The batch report: run the whole pipeline and write tables, charts and report.html.

:func:`run_report` reads and validates events, sessionises them, assigns channels,
touchpoints and phases, counts funnels and drop-off, builds journeys, compares
attribution models with bootstrap intervals, draws charts and writes everything to
one folder. A stage whose module is not part of this installation is skipped and
recorded as ``"skipped: <why>"`` in ``summary.json``; nothing is faked.

The folder appears only when the report is complete: everything is written into a
hidden temporary folder next to ``out_dir``, which is renamed into place at the end
and removed if anything fails or the run is interrupted.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import inspect
import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from . import _html
from ._encode import factorize_sorted, ordered_codes, present_values
from ._progress import NullProgress, Progress, StageRecord, StageTimer
from ._version import __version__
from .config import ReportConfig, check_relative_path
from .exceptions import DataError, InputTypeError, JourneyflowError, OptionError, ReadError
from .schema import resolve_columns

__all__ = ["ReportResult", "neutralize_formulas", "run_report"]

log = logging.getLogger("journeyflow.report")

#: What :func:`run_report` accepts as events: a frame, one or more paths, or None (sample).
EventsSource = Union[pd.DataFrame, str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], None]

#: Text cells starting with one of these are neutralised in CSV output (OWASP's list).
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")

#: Webshop steps tried, in this order, when the configuration names no funnel steps.
DEFAULT_FUNNEL_STEPS: tuple[str, ...] = (
    "page_view",
    "view",
    "product_view",
    "view_product",
    "add_to_cart",
    "cart",
    "checkout",
    "purchase",
)


@dataclass(frozen=True)
class ReportResult:
    """What :func:`run_report` wrote.

    Attributes
    ----------
    out_dir : Path
        The report folder.
    summary : dict
        The content of ``summary.json``.
    files : tuple of str
        Every file written, relative to ``out_dir``.
    stages : tuple of StageRecord
        Per stage: name, status ("ok" or "skipped: <why>"), seconds, start and peak
        resident memory in bytes (memory is 0 unless ``profile=True``).
    """

    out_dir: Path
    summary: dict[str, Any]
    files: tuple[str, ...]
    stages: tuple[StageRecord, ...]

    @property
    def statuses(self) -> dict[str, str]:
        """Stage name -> status."""
        return {s.stage: s.status for s in self.stages}

    def __repr__(self) -> str:
        skipped = sum(s.status != "ok" for s in self.stages)
        return (
            f"ReportResult({str(self.out_dir)!r}: {len(self.files)} files, "
            f"{len(self.stages) - skipped} stages ran, {skipped} skipped)"
        )


# ---------------------------------------------------------------------------
# Public helpers


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` whose text cells cannot run as spreadsheet formulas.

    Parameters
    ----------
    frame : DataFrame
        Any table.

    Returns
    -------
    DataFrame
        Same shape and column order. In text columns (str, object, categorical) and
        column names, every value that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
        carriage return gets a leading single quote (``'=1+1``), which spreadsheets
        show as text. Numeric columns are unchanged, so negative numbers stay numbers.

    Notes
    -----
    This is the OWASP "CSV injection" mitigation. The report applies it to every CSV
    it writes unless ``[output] neutralize_formulas = false``; Parquet and JSON
    outputs are never changed.

    Examples
    --------
    >>> import pandas as pd
    >>> from journeyflow.report import neutralize_formulas
    >>> neutralize_formulas(pd.DataFrame({"c": ["=HYPERLINK(1)", "ok"], "n": [-1, 2]}))
                    c  n
    0  '=HYPERLINK(1)  -1
    1              ok  2
    """
    out = frame.copy(deep=False)
    for i in range(frame.shape[1]):
        s = frame.iloc[:, i]
        dtype = s.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            if cats.dtype.kind in "OSU" or pd.api.types.is_string_dtype(cats.dtype):
                fixed = _neutralize_values(pd.Series(cats, dtype=object))
                if not fixed.equals(pd.Series(cats, dtype=object)):
                    if fixed.is_unique:
                        out.isetitem(i, s.cat.rename_categories(list(fixed)))
                    else:
                        out.isetitem(i, _neutralize_values(s.astype(object)))
        elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            out.isetitem(i, _neutralize_values(s))
    names = _neutralize_values(pd.Series([str(c) for c in frame.columns], dtype=object))
    out.columns = pd.Index(list(names))
    return out


def _neutralize_values(s: pd.Series) -> pd.Series:
    """Prefix a quote to text values starting with a formula character (vectorised)."""
    text = s.astype(object)
    is_text = text.map(type).eq(str) if text.dtype == object else pd.Series(True, index=s.index)
    starts = text.where(is_text, "").astype(str).str.startswith(FORMULA_PREFIXES)
    mask = starts.fillna(False).to_numpy(dtype=bool) & is_text.to_numpy(dtype=bool)
    if not mask.any():
        return s
    fixed = text.copy()
    fixed[mask] = "'" + text[mask].astype(str)
    return fixed


# ---------------------------------------------------------------------------
# The run


@dataclass
class _Run:
    """Mutable state handed from stage to stage."""

    config: ReportConfig
    source: EventsSource
    tmp: Path
    events: pd.DataFrame | None = None
    rejects: pd.DataFrame | None = None
    n_in: int = 0
    source_label: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    durations: Any = None
    journeys: Any = None
    paths: Any = None  # the journeys' distinct paths (attribution.merged_paths), found while the writer ends
    attribution: pd.DataFrame | None = None
    funnel_people: tuple[list[str], pd.DataFrame, list[str]] | None = None  # steps, per-person rows, labels
    event_names: set[str] | None = None  # the event names that occur (for the funnel steps)
    session_index: Any = None  # sessions.SessionIndex of the events, from the sessionize stage
    user_sort: tuple[np.ndarray, np.ndarray] | None = None  # its rows in (user, time) order, for phases and funnel
    user_last: np.ndarray | None = None  # each user's last row, by the codes of factorize_sorted
    charts: dict[str, Path] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)  # event counts when the events are not in memory
    writes: list[Future[None]] = field(default_factory=list)  # files being written in the background
    _writer: ThreadPoolExecutor | None = None

    def write_later(self, write: Callable[[], None], name: str) -> None:
        """Write a large file on a background thread while the next stages run (its
        encoders release the GIL); :meth:`finish_writes` waits for it."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="journeyflow-write")
        self.writes.append(self._writer.submit(write))
        self.files.append(name)

    def finish_writes(self) -> None:
        """Wait for the background writes; the first error is raised."""
        try:
            for future in self.writes:
                future.result()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True, cancel_futures=True)
                self._writer = None
            self.writes.clear()


def run_report(
    events: EventsSource = None,
    config: ReportConfig | str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] = "journeyflow-report",
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    profile: bool = False,
    engine: str = "pandas",
    scheduler: str | None = None,
    workers: int | None = None,
) -> ReportResult:
    """Run the whole journey pipeline and write a report folder.

    Parameters
    ----------
    events : DataFrame, path, list of paths, or None
        Raw events (any of what :func:`journeyflow.validate_events` reads: Parquet,
        CSV, CSV.gz, JSON lines, a glob or a folder), or None for the sample webshop
        log bundled with the package. ``[input]`` options apply to these events.
    config : ReportConfig, path to a TOML file, or None
        Report options; None means ``ReportConfig()`` (all defaults).
    out_dir : str or Path, default "journeyflow-report"
        Folder to create. It appears only when the report is complete.
    overwrite : bool, default False
        Replace an existing ``out_dir`` (only once the new report is complete).
    progress : Progress, optional
        Receives stage start/finish calls (the command line shows them on a terminal).
    profile : bool, default False
        Also sample peak resident memory per stage (in :attr:`ReportResult.stages`).
    engine : {"pandas", "dask"}, default "pandas"
        "dask" runs the data stages on a Dask cluster (``pip install
        "journeyflow[dask]"``) for logs larger than memory: the same tables,
        summary and charts; ``sessions.parquet`` is then a folder of Parquet parts.
        See ``journeyflow._report_dask``.
    scheduler : str, optional
        With ``engine="dask"``: the address of a running Dask scheduler. Default: a
        local cluster of ``workers`` processes started for the run.
    workers : int, optional
        With ``engine="dask"`` and no scheduler: worker processes (default: CPU count).

    Returns
    -------
    ReportResult
        ``out_dir``, the ``summary`` dict, the ``files`` written and per-stage records.

        Files in ``out_dir`` (each written only when its stage ran):

        - ``summary.json``: ``events_in``, ``events_used``, ``events_rejected``
          (``events_in == events_used + events_rejected``), ``rejects_by_reason``,
          ``users``, ``sessions``, ``journeys``, ``conversions``, ``conversion_value``,
          ``attribution`` (per model label: ``conversions`` and ``value``, equal to the
          totals), ``stages`` (name -> "ok" or "skipped: <why>"), ``files``, ``config``.
        - ``rejects.csv``: row, column, value, reason of every rejected row.
        - ``sessions.parquet``: one row per session (see :func:`journeyflow.sessions`).
        - ``funnel.csv``, ``phase_funnel.csv``, ``drop_off.csv``,
          ``touchpoint_priority.csv``, ``attribution.csv``: the tables of
          :func:`journeyflow.funnel`, :func:`journeyflow.phase_funnel`,
          :func:`journeyflow.drop_off`, :func:`journeyflow.touchpoint_priority` and
          :func:`journeyflow.attribute`; ``*_by_segment.csv`` when segments are set.
        - ``charts/*.png`` and ``report.html`` (one self-contained file).

    Raises
    ------
    OptionError
        ``out_dir`` exists and ``overwrite`` is False, or a configuration value is
        not usable with this data (e.g. funnel steps that never occur).
    SchemaError, ReadError, DataError
        From reading and validating the events (message names the file and column).

    Notes
    -----
    CSV text cells starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return are
    prefixed with ``'`` (see :func:`neutralize_formulas`) unless
    ``[output] neutralize_formulas = false``. Every string in report.html is escaped.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"],
    ...                    "timestamp": ["2026-01-01 10:00", "2026-01-01 10:05", "2026-01-02 09:00"],
    ...                    "event": ["view", "purchase", "view"]})
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report"
    >>> res = jf.run_report(ev, out_dir=out)
    >>> res.summary["events_in"], res.summary["sessions"]
    (3, 2)
    """
    cfg = _as_config(config)
    if not isinstance(overwrite, bool):
        raise InputTypeError(f"overwrite must be True or False; got {overwrite!r}.")
    if engine not in ("pandas", "dask"):
        raise OptionError(f"engine must be 'pandas' or 'dask'; got {engine!r}.")
    if engine != "dask" and (scheduler is not None or workers is not None):
        raise OptionError("scheduler and workers apply to engine='dask' only (--engine dask).")
    if scheduler is not None and workers is not None:
        raise OptionError("Pass a scheduler address or a number of workers, not both.")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise OptionError(f"workers must be a positive integer; got {workers!r}.")
    stages = _STAGES
    cluster: Any = contextlib.nullcontext()
    if engine == "dask":
        try:
            from . import _report_dask
        except ImportError as exc:
            raise OptionError(f'--engine dask needs Dask: pip install "journeyflow[dask]" ({exc}).') from None
        stages = _report_dask.STAGES
        cluster = _report_dask.client(scheduler, workers)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise OptionError(
            f"Output folder {str(out)!r} already exists. Pass --overwrite (overwrite=True) to "
            "replace it, or choose another --out."
        )
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {str(out)!r} exists and is not a folder. Choose another --out.")
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    # a hidden sibling, so the final rename stays on one file system (atomic)
    tmp = parent / f".{out.name}.partial-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    shown: Progress = progress if progress is not None else NullProgress()
    run = _Run(config=cfg, source=events, tmp=tmp)
    try:
        with cluster:
            records = _run_stages(run, stages, shown, profile)
        run.finish_writes()  # (the writing stage waited for them)
        _write_summary(run)
        _move_into_place(tmp, out, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(BaseException):
            run.finish_writes()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportResult(out, run.summary, tuple(run.files), tuple(records))


def _run_stages(
    run: _Run, stages: Sequence[tuple[str, Callable[[_Run], str | None]]], shown: Progress, profile: bool
) -> list[StageRecord]:
    records: list[StageRecord] = []
    for index, (name, stage) in enumerate(stages, start=1):
        shown.start(name, index, len(stages))
        with StageTimer(memory=profile) as timer:
            outcome = stage(run)
        status = "ok" if outcome is None else f"skipped: {outcome}"
        run.statuses[name] = status
        records.append(StageRecord(name, status, timer.seconds, timer.start_rss, timer.peak_rss))
        shown.finish(name, status, timer.seconds)
        log.info("stage %s: %s (%.2f s)", name, status, timer.seconds)
    return records


def _as_config(config: ReportConfig | str | os.PathLike[str] | None) -> ReportConfig:
    if config is None:
        return ReportConfig()
    if isinstance(config, ReportConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return ReportConfig.from_toml(config)
    raise InputTypeError(
        f"config must be a ReportConfig, a path to a TOML file or None; got {type(config).__name__}."
    )


def _move_into_place(tmp: Path, out: Path, *, overwrite: bool) -> None:
    """Rename the finished temporary folder to ``out`` (replacing it if allowed)."""
    if out.exists():
        if not overwrite:
            raise OptionError(
                f"Output folder {str(out)!r} appeared while the report ran. Pass --overwrite to "
                "replace it."
            )
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


# ---------------------------------------------------------------------------
# Finding the optional pieces


def _package() -> Any:
    import journeyflow

    return journeyflow


def _public(name: str) -> Any:
    """The public journeyflow object ``name``, or None when this build lacks it."""
    return getattr(_package(), name, None)


def _missing(*names: str) -> str | None:
    """Skip reason when any of ``jf.<name>`` is missing, else None."""
    gone = [n for n in names if _public(n) is None]
    if gone:
        return f"journeyflow.{gone[0]} is not available in this version"
    return None


def _plot_function(name: str) -> Any:
    try:
        plot = importlib.import_module("journeyflow.plot")
    except ImportError:
        return None
    return getattr(plot, name, None)


def _accepts(func: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``func`` with the keyword options it accepts (others are dropped, logged)."""
    use = {}
    for k, v in kwargs.items():
        if _accepts(func, k):
            use[k] = v
        else:
            log.debug("%s does not take %s=; not passed", getattr(func, "__name__", func), k)
    return func(*args, **use)


# ---------------------------------------------------------------------------
# Writing


def _write_csv(run: _Run, frame: pd.DataFrame, name: str) -> None:
    out = neutralize_formulas(frame) if run.config.output.neutralize_formulas else frame
    out.to_csv(run.tmp / name, index=False)
    run.files.append(name)


def _write_table(run: _Run, frame: pd.DataFrame, name: str) -> None:
    run.tables[name] = frame
    _write_csv(run, frame, name)


def _source_label(source: Any) -> str:
    if isinstance(source, pd.DataFrame):
        return f"a DataFrame with {len(source):,} rows"
    return str(source)


# ---------------------------------------------------------------------------
# Stages. Each returns None when it ran, or the reason it was skipped.


def _stage_read(run: _Run) -> str | None:
    events, rejected, n_in, label = load_events(run.source, run.config)
    run.events, run.rejects, run.n_in, run.source_label = events, rejected, n_in, label
    _write_csv(run, rejected, "rejects.csv")
    log.info("read %s events from %s (%s rejected)", f"{n_in:,}", label, f"{len(rejected):,}")
    return None


def load_events(source: EventsSource, cfg: ReportConfig) -> tuple[pd.DataFrame, pd.DataFrame, int, str]:
    """Validated events, rejects, rows read and a label, from one or more sources.

    ``source`` None means the bundled sample (``[input]`` options are not applied to
    it: it is already canonical). Several files are validated one by one and
    concatenated; their rejects get a ``file`` column. Raises DataError when no
    event is left.
    """
    sources: list[Any]
    mapped = True
    if source is None:
        sources, mapped = [_load_sample()], False
        label = "the sample webshop log bundled with journeyflow"
    elif isinstance(source, (pd.DataFrame, str, os.PathLike)) or not isinstance(source, Sequence):
        sources = [source]
        label = _source_label(source)
    else:
        sources = list(source)
        if not sources:
            raise OptionError("events is an empty list; pass at least one file, or None for the sample.")
        label = ", ".join(_source_label(s) for s in sources)

    frames, rejects, n_in = [], [], 0
    for src in sources:
        ev, rj, n = _validate(src, cfg, mapped=mapped)
        if len(sources) > 1 and not isinstance(src, pd.DataFrame):
            rj = rj.assign(file=str(src))
        frames.append(ev)
        rejects.append(rj)
        n_in += n
    events = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    rejected = rejects[0] if len(rejects) == 1 else pd.concat(rejects, ignore_index=True)
    if len(events) == 0:
        if n_in == 0:
            raise DataError(f"{label}: no events to report on (the input has 0 rows).")
        raise DataError(
            f"{label}: all {n_in:,} rows were rejected (reasons: {_reason_counts(rejected)}); "
            "nothing is left to report on. Every rejected row is listed by jf.validate_events(...).rejects."
        )
    return events, rejected, n_in, label


def _load_sample() -> pd.DataFrame:
    try:
        datasets = importlib.import_module("journeyflow.datasets")
    except ImportError:
        datasets = None
    loader = getattr(datasets, "load_sample", None)
    if loader is None:
        raise DataError(
            "No EVENTS given and this installation has no bundled sample "
            "(journeyflow.datasets.load_sample is missing). Pass event files: "
            "journeyflow report EVENTS ..."
        )
    frame = loader()
    if not isinstance(frame, pd.DataFrame):  # e.g. a result object
        frame = getattr(frame, "events", frame)
    return frame


def _validate(src: Any, cfg: ReportConfig, *, mapped: bool) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Validated events, rejects and rows read, for one source."""
    opts = cfg.input
    kwargs: dict[str, Any] = {}
    if mapped:
        kwargs["columns"] = dict(opts.columns) or None
        if opts.timestamp_unit is not None:
            kwargs["timestamp_unit"] = opts.timestamp_unit
        if opts.timezone != "UTC":
            kwargs["timezone"] = opts.timezone
    from .io import validate_events

    try:
        result = validate_events(src, **kwargs)
        events, rejects = result.events, result.rejects
        n_in = len(events) + len(rejects)
    except JourneyflowError as exc:
        if isinstance(src, (str, os.PathLike)) and str(src) not in str(exc):
            raise type(exc)(f"{src}: {exc}") from None
        raise
    return events, rejects, n_in


def _stage_sessionize(run: _Run) -> str | None:
    assert run.events is not None
    s = run.config.sessions
    from .sessions import _sessionize

    # the sessions' rows are passed on to the stages that need them (touchpoints, the
    # sessions table, journeys): found once, not three times; and the (user, time) sort
    # to the phases and the funnel: made once, not three times
    run.events, run.session_index, run.user_sort = _sessionize(
        run.events, timeout=s.timeout, max_duration=s.max_duration, split_on_campaign=s.split_on_campaign,
        keep_sort=True,
    )
    return None


def _stage_touchpoints(run: _Run) -> str | None:
    skip = _missing("assign_touchpoints")
    if skip:
        return skip
    assert run.events is not None
    opts = run.config.touchpoints
    kwargs: dict[str, Any] = {}
    if opts.channel_rules is not None:
        kwargs["rules"] = _load_rules(run.config, opts.channel_rules, "ChannelRules", "touchpoints.channel_rules")
    if opts.touchpoint_rules is not None:
        kwargs["touchpoint_rules"] = _load_rules(
            run.config, opts.touchpoint_rules, "TouchpointRules", "touchpoints.touchpoint_rules"
        )
    from .touchpoints import _assign_touchpoints

    run.events = _assign_touchpoints(run.events, index=run.session_index, **kwargs)
    return None


def _load_rules(cfg: ReportConfig, path: str, class_name: str, key: str) -> Any:
    file = cfg.resolve_input_path(path)
    if not file.is_file():
        raise ReadError(f"Config key {key!r}: rules file {str(file)!r} does not exist.")
    cls = _public(class_name)
    if cls is not None and hasattr(cls, "from_toml"):
        return cls.from_toml(file)
    return file


def _phase_model(cfg: ReportConfig) -> Any:
    opts = cfg.phases
    model_cls = _public("PhaseModel")
    if opts.file is not None:
        file = cfg.resolve_input_path(opts.file)
        if model_cls is None or not hasattr(model_cls, "from_toml"):
            raise OptionError("Config key 'phases.file' needs jf.PhaseModel.from_toml, which this version lacks.")
        if not file.is_file():
            raise ReadError(f"Config key 'phases.file': phase model file {str(file)!r} does not exist.")
        return model_cls.from_toml(file)
    if opts.is_custom:
        if model_cls is None:
            raise OptionError("A custom phase model needs jf.PhaseModel, which this version lacks.")
        return _call(
            model_cls,
            name=opts.model,
            phases=tuple(opts.phases or ()),
            touchpoints=dict(opts.touchpoints or {}),
            events=dict(opts.events or {}),
        )
    return opts.model


def _stage_phases(run: _Run) -> str | None:
    skip = _missing("assign_phases")
    if skip:
        return skip
    from .phases import _assign_phases

    run.events = _assign_phases(run.events, model=_phase_model(run.config), sort=run.user_sort)
    return None


def _stage_sessions(run: _Run) -> str | None:
    assert run.events is not None
    from .sessions import _session_parts

    # the table is built and written a slice at a time on the background thread: only
    # each session's rows are held meanwhile (80 MB at 10M events, against 255 MB for
    # the whole table); the sessions' sums are found there too (0.15 s at 10M events)
    events, index, conversion = run.events, run.session_index, list(run.config.conversion.events)
    run.write_later(lambda: _write_parquet_parts(
        _session_parts(events, conversion=conversion, rows=_PARQUET_ROWS, index=index), run.tmp / "sessions.parquet"
    ), "sessions.parquet")
    return None


#: Rows per row group (and per slice converted to Arrow) of sessions.parquet.
_PARQUET_ROWS = 1 << 19


def _stage_writing(run: _Run) -> str | None:
    """Wait for the files written in the background (sessions.parquet), then let the
    events go: the summary's counts of them are taken here, and the attribution that
    follows reuses their memory (10M events: about 600 MB). Meanwhile (a core is idle
    while the writer ends) the journeys' identical paths are merged for the attribution:
    0.1-0.2 s at 10M events, little memory."""
    if run.writes and run.journeys is not None and not _missing("attribute"):
        from .attribution.bootstrap import merged_paths

        run.paths = merged_paths(run.journeys)
    run.finish_writes()
    if run.events is not None and "events_used" not in run.counts:
        run.counts = _event_counts(run)
    run.events = None
    return None


def _write_parquet_parts(parts: Iterable[pd.DataFrame], path: Path) -> None:
    """Write the frames ``parts`` (at least one; same columns and dtypes) to one
    Parquet file, one row group each, converting one at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frames = iter(parts)
    first = pa.Table.from_pandas(next(frames), preserve_index=False)
    # dictionary pages for the categorical and text columns but the user ids, min/max
    # statistics for the numbers and times only: a dictionary tried and given up on
    # (user ids, session ids, times: mostly distinct) and the min/max of every user id
    # took more than half the time (10M events: 1.2-1.5 s instead of 0.6-0.9 s; 111 vs
    # 107 MB); those of the categorical columns' text 0.2-0.35 s of 1.06-1.20 s
    coded = [f.name for f in first.schema if f.name != "user_id" and (
        pa.types.is_dictionary(f.type) or pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
    numbers = [f.name for f in first.schema if f.name != "user_id" and f.name not in coded]
    with pq.ParquetWriter(path, first.schema, use_dictionary=coded, write_statistics=numbers) as writer:
        writer.write_table(first)
        del first
        for frame in frames:  # a loop over slices of rows
            writer.write_table(pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False))
            del frame  # before the next slice is built


def _funnel_steps(run: _Run, present: set[str] | None = None) -> list[str] | None:
    """The configured funnel steps (checked to occur), or the default webshop steps
    that occur; ``present``: the event names in the data, when already known."""
    cfg = run.config
    if present is None:
        if run.event_names is None:
            assert run.events is not None
            run.event_names = {str(v) for v in present_values(run.events["event"])}
        present = run.event_names
    if cfg.funnel.steps is not None:
        missing = [s for s in cfg.funnel.steps if s not in present]
        if missing:
            sample = sorted(present)[:15]
            raise OptionError(
                f"Config key 'funnel.steps' names {missing!r}, which never occur in the events' "
                f"'event' column. Events present include: {sample}."
            )
        return list(cfg.funnel.steps)
    steps = [s for s in DEFAULT_FUNNEL_STEPS if s in present and s not in cfg.conversion.events]
    conv = [c for c in cfg.conversion.events if c in present]
    steps += conv[:1]
    return steps if len(steps) >= 2 else None


def _by(run: _Run) -> list[str]:
    assert run.events is not None
    by = list(run.config.segments.by)
    if by:
        resolve_columns(run.events, None, required=by, what="events (config key 'segments.by')")
    return by


def _stage_funnel(run: _Run) -> str | None:
    sort, run.user_sort = run.user_sort, None  # (the last stage that needs it)
    if sort is not None and run.user_last is None:  # for the drop-off and priority stages
        from .sessions import user_last_rows

        run.user_last = user_last_rows(sort)
    skip = _missing("funnel")
    if skip:
        return skip
    steps = _funnel_steps(run)
    if steps is None:
        return (
            "no [funnel] steps configured and fewer than two of the default webshop steps "
            f"({', '.join(DEFAULT_FUNNEL_STEPS)}) occur in the data"
        )
    f = run.config.funnel
    funnel = _package().funnel
    run.notes["funnel_steps"] = " > ".join(steps)
    from . import funnels

    # per person, kept for the drop-off stage (the same funnel: counted once)
    people, labels, _ = funnels._funnel_per_user(run.events, steps, window=f.window, mode=f.mode, by=None,
                                                 columns=None, rows=True, sort=sort)
    del sort
    _write_table(run, funnels._table_from_users(people, labels, [], "step"), "funnel.csv")
    run.funnel_people = (steps, people[["reached", funnels._ANCHOR]], labels)  # (not the gaps)
    by = _by(run)
    if by:
        table = funnel(run.events, steps=steps, window=f.window, mode=f.mode, by=by)
        _write_table(run, table, "funnel_by_segment.csv")
    return None


def _stage_phase_funnel(run: _Run) -> str | None:
    skip = _missing("phase_funnel")
    if skip:
        return skip
    assert run.events is not None
    if "phase" not in run.events.columns:
        return "the events have no phase column (phases stage skipped)"
    model = _phase_model(run.config)
    pf = _package().phase_funnel
    _write_table(run, pf(run.events, model=model), "phase_funnel.csv")
    by = _by(run)
    if by:
        _write_table(run, pf(run.events, model=model, by=by), "phase_funnel_by_segment.csv")
    return None


def _stage_drop_off(run: _Run) -> str | None:
    skip = _missing("drop_off")
    if skip:
        return skip
    assert run.events is not None
    steps = _funnel_steps(run)
    func = _public("drop_off")
    f = run.config.funnel
    shared, run.funnel_people = run.funnel_people, None
    if steps is not None and shared is not None and shared[0] == steps and "touchpoint" in run.events.columns:
        from . import funnels

        names = resolve_columns(run.events, None, required=("user_id", "timestamp", "event"))
        counts = funnels._drop_off_from_people(run.events, names, shared[1], shared[2], "step", "touchpoint",
                                               last=_user_last(run))
        table = funnels._drop_off_table(counts)  # as jf.drop_off(events, steps, window=, mode=) gives
    elif steps is not None and _accepts(func, "steps"):
        table = _call(func, run.events, steps=steps, window=f.window, mode=f.mode)
    else:
        table = _call(func, run.events, model=_phase_model(run.config))
    _write_table(run, table, "drop_off.csv")
    return None


def _stage_touchpoint_priority(run: _Run) -> str | None:
    skip = _missing("touchpoint_priority")
    if skip:
        return skip
    assert run.events is not None
    if "touchpoint" not in run.events.columns:
        return "the events have no touchpoint column (touchpoints stage skipped)"
    from . import funnels

    names = resolve_columns(run.events, None, required=("user_id", "timestamp", "event"))
    last, run.user_last = _user_last(run), None  # (the last stage that needs it)
    counts = funnels._priority_counts(run.events, names, list(run.config.conversion.events), last=last)
    _write_table(run, funnels._priority_table(*counts), "touchpoint_priority.csv")  # as jf.touchpoint_priority
    return None


def _user_last(run: _Run) -> np.ndarray | None:
    """Each user's last row (by the codes of ``factorize_sorted``): the drop-off and
    priority stages' "where did they leave" without a pass over the events each. Read
    off the (user, time) sort by the funnel stage, else from the session index; None
    when there is neither."""
    if run.user_last is None and run.session_index is not None:
        assert run.events is not None
        users, labels = factorize_sorted(run.events["user_id"])
        run.user_last = run.session_index.user_last_rows(users, len(labels))
    return run.user_last


def _stage_journeys(run: _Run) -> str | None:
    skip = _missing("build_journeys")
    if skip:
        return skip
    assert run.events is not None
    c = run.config.conversion
    touch = c.touchpoint
    if touch not in run.events.columns:
        return f"the events have no {touch!r} column to build journeys from ([conversion] touchpoint)"
    kwargs: dict[str, Any] = {"conversion": list(c.events), "touchpoint": touch, "lookback": c.lookback}
    if c.value in run.events.columns:
        kwargs["value"] = c.value
    from .journeys import _build_journeys

    run.journeys = _build_journeys(run.events, index=run.session_index, **kwargs)
    run.session_index = None  # (the last stage that needs it)
    return None


def _models(cfg: ReportConfig) -> list[Any]:
    a = cfg.attribution
    out: list[Any] = []
    for name in a.models:
        if name == "markov" and a.markov_order != 1 and _public("MarkovAttribution") is not None:
            out.append(_public("MarkovAttribution")(order=a.markov_order))
        elif name == "time_decay" and _public("TimeDecay") is not None:
            out.append(_public("TimeDecay")(half_life=a.half_life))
        else:
            out.append(name)
    return out


def _stage_attribution(run: _Run) -> str | None:
    skip = _missing("attribute")
    if skip:
        return skip
    if run.journeys is None:
        return "no journeys (journeys stage skipped)"
    a = run.config.attribution
    ci = None
    if a.n_resamples > 0:
        boot = _public("Bootstrap")
        if boot is None:
            run.notes["attribution_ci"] = "no intervals: journeyflow.Bootstrap is not available"
        else:
            ci = _call(boot, n_resamples=a.n_resamples, seed=a.seed, level=a.level)
    if run.paths is not None:  # (merged already: jf.attribute from its parts)
        from .attribution import attribute_parts, resolve_models

        paths, run.paths = run.paths, None
        table = attribute_parts(paths, run.journeys, resolve_models(_models(run.config)), ci=ci)
    else:
        table = _public("attribute")(run.journeys, models=_models(run.config), ci=ci)
    run.attribution = table
    _write_table(run, table, "attribution.csv")
    return None


#: (chart file stem, jf.plot function, table file it draws, title in the HTML)
_CHARTS: tuple[tuple[str, str, str, str], ...] = (
    ("funnel", "funnel", "funnel.csv", "Step funnel"),
    ("phase_funnel", "funnel", "phase_funnel.csv", "Phase funnel"),
    ("drop_off", "drop_off", "drop_off.csv", "Where people drop off"),
    ("touchpoint_priority", "touchpoint_priority", "touchpoint_priority.csv", "Touchpoints to fix first"),
    ("attribution", "attribution", "attribution.csv", "Credit per channel and model"),
)


def _stage_charts(run: _Run) -> str | None:
    out = run.config.output
    if not out.charts:
        return "[output] charts = false"
    todo = [(stem, fn, tab, t) for stem, fn, tab, t in _CHARTS if tab in run.tables]
    if not todo:
        return "no tables to draw"
    drawable = [(stem, _plot_function(fn), tab, t) for stem, fn, tab, t in todo]
    drawable = [d for d in drawable if d[1] is not None]
    if not drawable:
        return "journeyflow.plot has none of " + ", ".join(sorted({fn for _, fn, _, _ in todo}))
    import matplotlib.pyplot as plt  # only here: `import journeyflow` stays matplotlib-free

    folder = run.tmp / check_relative_path("output.charts_dir", out.charts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, func, table_name, _ in drawable:
        ax = func(run.tables[table_name])
        fig = ax.figure
        try:
            path = folder / f"{stem}.png"
            fig.savefig(path, dpi=110, bbox_inches="tight")
        finally:
            plt.close(fig)
        run.charts[stem] = path
        run.files.append(path.relative_to(run.tmp).as_posix())
    left = [stem for stem, fn, _, _ in todo if _plot_function(fn) is None]
    if left:
        run.notes["charts"] = "not drawn (no plot function yet): " + ", ".join(left)
    return None


# ---------------------------------------------------------------------------
# Summary and HTML


def _reason_counts(rejects: pd.DataFrame | None) -> dict[str, int]:
    if rejects is None or len(rejects) == 0 or "reason" not in rejects.columns:
        return {}
    counts = rejects["reason"].astype(str).value_counts(sort=True)
    return {str(k): int(v) for k, v in counts.items()}


def _clean(value: Any) -> Any:
    """JSON-safe value: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _event_counts(run: _Run) -> dict[str, Any]:
    """Counts of the events in memory for the summary (the Dask engine fills
    ``run.counts`` with the same keys from its partitions)."""
    ev = run.events
    assert ev is not None
    cfg = run.config
    conv_mask = ev["event"].isin(list(cfg.conversion.events)).to_numpy(dtype=bool)
    value_col = cfg.conversion.value
    sessions = None
    if "session_id" in ev.columns:  # jf.sessionize's ids (the report's own): 0, 1, ..., every one used
        sid = ordered_codes(ev["session_id"])
        sessions = int(sid.max()) + 1 if len(sid) else 0
    return {
        "events_used": len(ev),
        "users": len(factorize_sorted(ev["user_id"])[1]),  # encoded once already by sessionize
        "sessions": sessions,
        "conversion_events": int(conv_mask.sum()),
        "conversion_value_events": (
            # the conversion rows' values only (a numeric copy of the whole column was 80 MB at 10M)
            float(pd.to_numeric(ev[value_col].iloc[np.flatnonzero(conv_mask)], errors="coerce").to_numpy().sum())
            if value_col in ev.columns
            else None
        ),
    }


def _compute_summary(run: _Run) -> dict[str, Any]:
    cfg = run.config
    n_rejected = 0 if run.rejects is None else len(run.rejects)
    counts = run.counts if "events_used" in run.counts else _event_counts(run)
    n_conv_events = counts["conversion_events"]
    conv_value_events = counts["conversion_value_events"]
    summary: dict[str, Any] = {
        "journeyflow_version": __version__,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": run.source_label,
        "events_in": int(run.n_in),
        "events_used": counts["events_used"],
        "events_rejected": n_rejected,
        "rejects_by_reason": _reason_counts(run.rejects),
        "users": counts["users"],
        "sessions": counts["sessions"],
        "conversion_events": n_conv_events,
    }
    jr = run.journeys
    if jr is not None:
        summary["journeys"] = len(jr)
        summary["conversions"] = _number(jr.total_conversions)
        summary["conversion_value"] = _number(jr.total_value)
    else:
        summary["journeys"] = None
        summary["conversions"] = n_conv_events
        summary["conversion_value"] = conv_value_events
    attribution: dict[str, Any] = {}
    if run.attribution is not None:
        at = run.attribution
        grouped = at.groupby("model", sort=False, observed=True)
        for model, part in grouped:
            entry = {"conversions": _number(part["conversions"].sum())}
            if "value" in part.columns:
                entry["value"] = _number(part["value"].sum())
            attribution[str(model)] = entry
    summary["attribution"] = attribution
    summary["funnel_steps"] = run.notes.get("funnel_steps")
    summary["notes"] = {k: v for k, v in run.notes.items() if k != "funnel_steps"}
    summary["stages"] = dict(run.statuses)
    summary["config"] = cfg.to_dict()
    return summary


def _number(x: Any) -> int | float:
    """An exact int when the float is integral, else the float rounded to 9 decimals."""
    v = float(x)
    if math.isfinite(v) and abs(v - round(v)) < 1e-9 and abs(v) < 2**53:
        return round(v)
    return round(v, 9)


def _stage_summary(run: _Run) -> str | None:
    run.summary = _compute_summary(run)
    return None


def _stage_html(run: _Run) -> str | None:
    out = run.config.output
    if not out.html:
        return "[output] html = false"
    run.statuses.setdefault("html", "ok")
    text = _render_html(run)
    (run.tmp / "report.html").write_text(text, encoding="utf-8")
    run.files.append("report.html")
    return None


def _write_summary(run: _Run) -> None:
    run.summary["stages"] = dict(run.statuses)
    run.files.append("summary.json")
    run.summary["files"] = list(run.files)
    text = json.dumps(_clean(run.summary), indent=2, allow_nan=False, ensure_ascii=False)
    (run.tmp / "summary.json").write_text(text + "\n", encoding="utf-8")


def _biggest_drop(table: pd.DataFrame, label: str) -> str | None:
    needed = {label, "users", "dropped"}
    if not needed <= set(table.columns) or len(table) < 2:
        return None
    dropped = pd.to_numeric(table["dropped"], errors="coerce").to_numpy(dtype=float)
    users = pd.to_numeric(table["users"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(dropped[1:]).any():
        return None
    k = int(np.nanargmax(dropped[1:])) + 1
    before = users[k - 1]
    share = dropped[k] / before if before > 0 else float("nan")
    names = table[label].astype(str).tolist()
    return (
        f"The biggest drop is between '{names[k - 1]}' and '{names[k]}': "
        f"{_html.fmt_number(int(dropped[k]))} people ({_html.fmt_number(share, share=True)} of those who "
        f"reached '{names[k - 1]}') did not continue."
    )


def _attribution_pivot(at: pd.DataFrame) -> pd.DataFrame | None:
    if not {"model", "channel", "share"} <= set(at.columns):
        return None
    pivot = at.pivot_table(index="channel", columns="model", values="share", aggfunc="sum", observed=True, sort=False)
    pivot = pivot.reindex(columns=list(pd.unique(at["model"].astype(str))))
    pivot = pivot.sort_values(pivot.columns[0], ascending=False)
    pivot.columns = [f"share ({c})" for c in pivot.columns]
    return pivot.reset_index()


def _render_html(run: _Run) -> str:
    s = run.summary
    cfg = run.config
    rows = cfg.output.max_table_rows
    body: list[str] = []
    conv = s.get("conversions")
    journeys = s.get("journeys")
    cards = [
        ("events used", _html.fmt_number(s["events_used"])),
        ("people (users)", _html.fmt_number(s["users"])),
        ("visits (sessions)", _html.fmt_number(s["sessions"])),
    ]
    if journeys is not None:
        cards.append(("journeys", _html.fmt_number(journeys)))
    cards.append(("conversions", _html.fmt_number(conv)))
    if s.get("conversion_value") is not None:
        cards.append(("conversion value", _html.fmt_number(float(s["conversion_value"]))))
    if journeys:
        cards.append(("journeys that convert", _html.fmt_number(float(conv or 0) / journeys, share=True)))
    conv_names = ", ".join(cfg.conversion.events)
    intro = (
        f"{s['events_used']:,} events from {s['users']:,} people in "
        f"{(s['sessions'] or 0):,} visits. A conversion is the event {conv_names}."
    )
    if s["events_rejected"]:
        intro += f" {s['events_rejected']:,} of {s['events_in']:,} input rows were rejected (see Data quality)."
    body.append(_html.section("At a glance", intro, [_html.cards(cards)]))

    funnel_parts: list[str] = []
    if "funnel.csv" in run.tables:
        t = run.tables["funnel.csv"]
        funnel_parts.append(_html.heading("Step funnel: " + run.notes.get("funnel_steps", "")))
        funnel_parts.append(
            _html.paragraph(
                f"How many people reached each step, in order, within {cfg.funnel.window} of the first step."
            )
        )
        drop = _biggest_drop(t, "step")
        if drop:
            funnel_parts.append(_html.paragraph(drop))
        funnel_parts += _chart(run, "funnel")
        funnel_parts.append(_html.table(t, max_rows=rows, note="Full table: funnel.csv."))
    if "phase_funnel.csv" in run.tables:
        t = run.tables["phase_funnel.csv"]
        model = cfg.phases.model
        funnel_parts.append(_html.heading(f"Phase funnel ({model})"))
        funnel_parts.append(_html.paragraph(f"How far people got through the phases of the {model} model."))
        drop = _biggest_drop(t, "phase")
        if drop:
            funnel_parts.append(_html.paragraph(drop))
        funnel_parts += _chart(run, "phase_funnel")
        funnel_parts.append(_html.table(t, max_rows=rows, note="Full table: phase_funnel.csv."))
    for name, title in (("funnel_by_segment.csv", "Step funnel per segment"),
                        ("phase_funnel_by_segment.csv", "Phase funnel per segment")):
        if name in run.tables:
            funnel_parts.append(_html.heading(title))
            funnel_parts.append(_html.table(run.tables[name], max_rows=rows, note=f"Full table: {name}."))
    if "drop_off.csv" in run.tables:
        funnel_parts.append(_html.heading("Last touchpoints before people left"))
        funnel_parts += _chart(run, "drop_off")
        funnel_parts.append(_html.table(run.tables["drop_off.csv"], max_rows=rows, note="Full table: drop_off.csv."))
    if "touchpoint_priority.csv" in run.tables:
        funnel_parts.append(_html.heading("Touchpoints to improve first"))
        funnel_parts.append(
            _html.paragraph(
                "Touchpoints ranked by priority: many people meet them, many leave after them, and "
                "meeting them does little for conversion."
            )
        )
        funnel_parts += _chart(run, "touchpoint_priority")
        funnel_parts.append(
            _html.table(run.tables["touchpoint_priority.csv"], max_rows=rows, note="Full table: touchpoint_priority.csv.")
        )
    if funnel_parts:
        body.append(_html.section("Where do people drop off?", None, funnel_parts))

    if run.attribution is not None:
        at = run.attribution
        parts = [
            _html.paragraph(
                "How much credit each channel gets for the conversions under each attribution "
                "model. Where the models agree the picture is robust; where they differ, the "
                "intervals (when shown) say how sure the data lets us be."
            )
        ]
        parts += _chart(run, "attribution")
        pivot = _attribution_pivot(at)
        if pivot is not None:
            parts.append(_html.heading("Share of conversions per channel"))
            parts.append(_html.table(pivot, max_rows=rows))
        parts.append(_html.heading("All models"))
        parts.append(_html.table(at, max_rows=max(rows, 200), note="Full table: attribution.csv."))
        if "attribution_ci" in run.notes:
            parts.append(_html.paragraph(run.notes["attribution_ci"], "note"))
        body.append(_html.section("Which channels deserve credit?", None, parts))

    quality = [
        _html.paragraph(
            f"{s['events_in']:,} rows read = {s['events_used']:,} used + {s['events_rejected']:,} rejected."
        )
    ]
    if s["rejects_by_reason"]:
        reasons = pd.DataFrame({"reason": list(s["rejects_by_reason"]), "rows": list(s["rejects_by_reason"].values())})
        quality.append(_html.table(reasons, note="Every rejected row with its reason: rejects.csv."))
    quality.append(_html.heading("Stages"))
    quality.append(_html.status_list(run.statuses))
    for key, note in run.notes.items():
        if key not in ("funnel_steps", "attribution_ci"):
            quality.append(_html.paragraph(f"{key}: {note}", "note"))
    body.append(_html.section("Data quality and what ran", None, quality))
    body.append(
        _html.section(
            "Settings",
            "The configuration this report ran with (report.toml keys).",
            [_html.preformatted(json.dumps(_clean(s["config"]), indent=2, ensure_ascii=False))],
        )
    )
    subtitle = f"Source: {s['source']} · generated {s['generated_at']} by journeyflow {__version__}"
    return _html.page(cfg.output.title, subtitle, body)


def _chart(run: _Run, stem: str) -> list[str]:
    path = run.charts.get(stem)
    if path is None:
        return []
    return [_html.image(path, alt=stem.replace("_", " ") + " chart")]


_STAGES: tuple[tuple[str, Callable[[_Run], str | None]], ...] = (
    ("read", _stage_read),
    ("sessionize", _stage_sessionize),
    ("touchpoints", _stage_touchpoints),
    ("phases", _stage_phases),
    ("sessions", _stage_sessions),  # sessions.parquet is written on a second thread meanwhile
    ("funnel", _stage_funnel),
    ("phase_funnel", _stage_phase_funnel),
    ("drop_off", _stage_drop_off),
    ("touchpoint_priority", _stage_touchpoint_priority),
    ("journeys", _stage_journeys),
    ("writing", _stage_writing),  # (sessions.parquet written, the events let go)
    ("attribution", _stage_attribution),
    ("charts", _stage_charts),
    ("summary", _stage_summary),
    ("html", _stage_html),
)

#: Names of the report's stages, in order.
STAGE_NAMES: tuple[str, ...] = tuple(name for name, _ in _STAGES)

