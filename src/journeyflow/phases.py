"""Phase models and the phase of every event.

A :class:`PhaseModel` is a name, ordered phases, and a mapping from touchpoints
and/or event names to the phases they can belong to. Four models are built in:

- ``"aacra"``: awareness, consideration, purchase, retention, advocacy;
- ``"see-think-do-care"``: see, think, do, care;
- ``"see-think-do-experience-care"``: see, think, do, experience, care;
- ``"ten-phase"``: latent need, concrete need, orientation, consideration, decision,
  purchase, delivery, usage, loyalty, ambassador.

**The multi-phase rule.** A touchpoint may belong to several phases (social media:
awareness, consideration and advocacy). Per person, in time order, an event takes
the earliest of its phases that is not before the phase the person has already
reached (the highest phase of their earlier events); when all of its phases lie
before that, it takes its latest phase. An event's own mapping (``events=``) wins
over its touchpoint's. Events mapped to no phase get a missing phase and do not
move the person on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._encode import (
    PARALLEL_ROWS,
    both,
    boundaries,
    factorize_rows,
    factorize_sorted,
    narrow_codes,
    sort_groups,
    time_ns,
)
from ._validation import check_frame, closest, describe, lookup
from .exceptions import InputTypeError, OptionError
from .rules import load_toml
from .schema import resolve_columns

__all__ = ["BUILTIN_MODELS", "PhaseModel", "assign_phases", "get_model"]

MAX_PHASES = 16


@dataclass(frozen=True)
class PhaseModel:
    """Ordered phases and what touchpoints/events belong to them.

    Parameters
    ----------
    name : str
        The model's name.
    phases : sequence of str
        The phases, in journey order (at most 16).
    touchpoints : dict of str to tuple of str, optional
        Touchpoint -> the phases it can belong to.
    events : dict of str to tuple of str, optional
        Event name -> its phases; wins over the event's touchpoint mapping.

    Examples
    --------
    >>> import journeyflow as jf
    >>> m = jf.PhaseModel("b2b", ("aware", "evaluate", "buy"),
    ...                   touchpoints={"webinar": ("aware", "evaluate"), "webshop": ("buy",)})
    >>> m
    PhaseModel('b2b': aware > evaluate > buy; 2 touchpoints, 0 events)
    """

    name: str
    phases: Sequence[str]
    touchpoints: Mapping[str, Sequence[str]] = field(default_factory=dict)
    events: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputTypeError(f"PhaseModel name must be a non-empty string; got {describe(self.name)}.")
        phases = tuple(self.phases) if not isinstance(self.phases, str) else None
        if not phases or not all(isinstance(p, str) and p for p in phases):
            raise InputTypeError(f"PhaseModel {self.name!r}: phases must be a list of names; got {self.phases!r}.")
        if len(set(phases)) != len(phases):
            raise OptionError(f"PhaseModel {self.name!r}: phase names must be unique; got {list(phases)}.")
        if len(phases) > MAX_PHASES:
            raise OptionError(f"PhaseModel {self.name!r}: at most {MAX_PHASES} phases; got {len(phases)}.")
        object.__setattr__(self, "phases", phases)
        for attr in ("touchpoints", "events"):
            mapping = getattr(self, attr)
            if not isinstance(mapping, Mapping):
                raise InputTypeError(f"PhaseModel {self.name!r}: {attr} must be a dict; got {describe(mapping)}.")
            clean: dict[str, tuple[str, ...]] = {}
            for key, value in mapping.items():
                vals = (value,) if isinstance(value, str) else tuple(value)
                for v in vals:
                    if v not in phases:
                        near = closest(v, phases)
                        hint = f" Did you mean {near!r}?" if near else ""
                        raise OptionError(
                            f"PhaseModel {self.name!r}: {attr}[{key!r}] names phase {v!r}, which is not "
                            f"one of {list(phases)}.{hint}"
                        )
                if not vals:
                    raise OptionError(f"PhaseModel {self.name!r}: {attr}[{key!r}] lists no phase.")
                clean[str(key)] = vals
            object.__setattr__(self, attr, clean)

    def __repr__(self) -> str:
        return (
            f"PhaseModel({self.name!r}: {' > '.join(self.phases)}; "
            f"{len(self.touchpoints)} touchpoints, {len(self.events)} events)"
        )

    def mask(self, phases: Sequence[str]) -> int:
        """Bit mask of ``phases`` (bit i = phase i)."""
        return int(sum(1 << self.phases.index(p) for p in set(phases)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseModel:
        """A model from ``{"name", "phases", "touchpoints", "events"}``."""
        allowed = {"name", "phases", "touchpoints", "events"}
        extra = set(data) - allowed
        if extra:
            raise OptionError(f"Unknown key {sorted(extra)[0]!r} in a phase model; allowed: {sorted(allowed)}.")
        missing = [k for k in ("name", "phases") if k not in data]
        if missing:
            raise OptionError(f"A phase model needs {missing[0]!r}.")
        return cls(data["name"], data["phases"], data.get("touchpoints", {}), data.get("events", {}))

    @classmethod
    def from_toml(cls, path: str | Path) -> PhaseModel:
        """Read a model from TOML: ``name``, ``phases``, ``[touchpoints]``, ``[events]``.

        Examples
        --------
        >>> import tempfile, pathlib, journeyflow as jf
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.toml"
        >>> _ = p.write_text(jf.get_model("aacra").to_toml())
        >>> jf.PhaseModel.from_toml(p) == jf.get_model("aacra")
        True
        """
        return cls.from_dict(load_toml(path))

    def to_toml(self) -> str:
        """The model as TOML text."""
        def q(s: str) -> str:
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = [f"name = {q(self.name)}", "phases = [" + ", ".join(q(p) for p in self.phases) + "]", ""]
        for attr in ("touchpoints", "events"):
            lines.append(f"[{attr}]")
            for k, v in getattr(self, attr).items():
                lines.append(f"{q(k)} = [" + ", ".join(q(p) for p in v) + "]")
            lines.append("")
        return "\n".join(lines)


def _m(name: str, phases: Sequence[str], touchpoints: dict[str, Any], events: dict[str, Any]) -> PhaseModel:
    return PhaseModel(name, tuple(phases), touchpoints, events)


_STDC_TOUCHPOINTS: dict[str, tuple[str, ...]] = {
    "social media": ("see", "think", "care"),
    "online ad": ("see",),
    "word of mouth": ("see", "care"),
    "search": ("think",),
    "landing page": ("think",),
    "lead form": ("think",),
    "blog": ("think",),
    "reviews": ("think", "care"),
    "webinar": ("think", "care"),
    "website": ("think",),
    "webshop": ("do",),
    "store visit": ("do", "care"),
    "delivery": ("care",),
    "product use": ("care",),
    "chat": ("care",),
    "e-mail": ("care",),
    "forum": ("care",),
    "customer service": ("care",),
    "newsletter": ("care",),
    "community": ("care",),
    "app": ("care",),
    "login portal": ("care",),
}
_STDC_EVENTS: dict[str, tuple[str, ...]] = {
    "review_write": ("care",), "referral_share": ("care",), "return_request": ("care",),
}
#: See-think-do-experience-care: STDC with the experience after the purchase
#: (anticipation and use) split out of care.
_STDEC_TOUCHPOINTS = {
    **_STDC_TOUCHPOINTS,
    "e-mail": ("experience", "care"),
    "delivery": ("experience",),
    "product use": ("experience",),
    "chat": ("experience", "care"),
    "customer service": ("experience", "care"),
    "app": ("experience", "care"),
}
_STDEC_EVENTS = {**_STDC_EVENTS, "return_request": ("experience",), "order_confirmation_email": ("experience",)}

BUILTIN_MODELS: dict[str, PhaseModel] = {
    "aacra": _m(
        "aacra",
        ("awareness", "consideration", "purchase", "retention", "advocacy"),
        {
            "social media": ("awareness", "consideration", "advocacy"),
            "online ad": ("awareness",),
            "word of mouth": ("awareness", "advocacy"),
            "search": ("consideration",),
            "landing page": ("consideration",),
            "lead form": ("consideration",),
            "blog": ("consideration",),
            "reviews": ("consideration", "advocacy"),
            "webinar": ("consideration", "advocacy"),
            "website": ("consideration",),
            "webshop": ("purchase",),
            "store visit": ("purchase", "retention"),
            "delivery": ("retention",),
            "product use": ("retention",),
            "chat": ("retention",),
            "e-mail": ("retention",),
            "forum": ("retention",),
            "customer service": ("retention",),
            "newsletter": ("advocacy",),
            "community": ("advocacy",),
            "app": ("advocacy",),
            "login portal": ("advocacy",),
        },
        {"review_write": ("advocacy",), "referral_share": ("advocacy",), "return_request": ("retention",)},
    ),
    "see-think-do-care": _m("see-think-do-care", ("see", "think", "do", "care"), _STDC_TOUCHPOINTS, _STDC_EVENTS),
    "see-think-do-experience-care": _m(
        "see-think-do-experience-care",
        ("see", "think", "do", "experience", "care"),
        _STDEC_TOUCHPOINTS,
        _STDEC_EVENTS,
    ),
    "ten-phase": _m(
        "ten-phase",
        ("latent need", "concrete need", "orientation", "consideration", "decision",
         "purchase", "delivery", "usage", "loyalty", "ambassador"),
        {
            "social media": ("latent need", "orientation", "ambassador"),
            "online ad": ("latent need",),
            "word of mouth": ("concrete need", "ambassador"),
            "search": ("concrete need",),
            "landing page": ("orientation",),
            "blog": ("orientation",),
            "website": ("orientation",),
            "reviews": ("consideration", "ambassador"),
            "webinar": ("consideration", "loyalty"),
            "lead form": ("consideration",),
            "webshop": ("decision",),
            "store visit": ("decision", "loyalty"),
            "e-mail": ("delivery", "loyalty"),
            "delivery": ("delivery",),
            "product use": ("usage",),
            "chat": ("usage",),
            "customer service": ("usage",),
            "app": ("usage", "loyalty"),
            "login portal": ("loyalty",),
            "newsletter": ("loyalty",),
            "forum": ("loyalty",),
            "community": ("ambassador",),
        },
        {"checkout_start": ("purchase",), "purchase": ("purchase",), "review_write": ("ambassador",),
         "referral_share": ("ambassador",), "return_request": ("usage",)},
    ),
}


def get_model(model: str | PhaseModel) -> PhaseModel:
    """A built-in model by name, or the model itself.

    Examples
    --------
    >>> import journeyflow as jf
    >>> jf.get_model("see-think-do-care").phases
    ('see', 'think', 'do', 'care')
    """
    if isinstance(model, PhaseModel):
        return model
    if isinstance(model, str):
        return lookup("phase model", model.strip().lower(), BUILTIN_MODELS, instead="pass a jf.PhaseModel")
    raise InputTypeError(f"model must be a name or a jf.PhaseModel; got {describe(model)}.")


def _bit_tables(n_phases: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest set bit of every mask in [0, 2**n_phases); -1 for 0."""
    masks = np.arange(1 << n_phases, dtype=np.int64)
    low = np.full(len(masks), -1, dtype=np.int64)
    high = np.full(len(masks), -1, dtype=np.int64)
    for bit in range(n_phases - 1, -1, -1):  # a loop over phases
        low[(masks >> bit) & 1 == 1] = bit
    for bit in range(n_phases):
        high[(masks >> bit) & 1 == 1] = bit
    return low, high


#: From this many events on, assign_phases works on two threads (the phase masks
#: beside the sort, then each half of the users).
_PARALLEL_ROWS = PARALLEL_ROWS  # (a module copy: tests set it per module)


def phase_codes(masks: np.ndarray, starts: np.ndarray, order: np.ndarray, n_phases: int) -> np.ndarray:
    """Phase index per row under the multi-phase rule (-1: no phase).

    ``masks`` are per-row phase bit masks, ``order`` sorts rows by (user, time) and
    ``starts`` marks each user's first row in that order.
    Rows with one phase keep it; rows with none get -1. Only rows with several
    phases need work: each takes its earliest phase not before ``prev``, the running
    maximum of the user's earlier rows, which is the larger of (a) the running
    maximum of the user's earlier one-phase rows, computed once, and (b) that of the
    user's earlier several-phase rows. (b) is a monotone fixed point over the
    several-phase rows only: start each at its lowest phase, then repeatedly move
    it to its earliest phase not before ``prev``. Values only grow and a user's
    running maximum takes at most ``n_phases`` values, so this converges in at most
    ``n_phases + 1`` rounds; the fixed point is the sequential answer.

    Users are independent: from ``_PARALLEL_ROWS`` rows on, the first and the second
    half of the users (split at a user's first row) are done on two threads.
    """
    out = np.empty(len(order), dtype=np.int8 if n_phases < 127 else np.int64)
    mid = len(order) // 2
    if len(order) >= _PARALLEL_ROWS and starts[mid:].any():
        mid += int(np.argmax(starts[mid:]))  # the first user start from the middle on
        both(lambda: _phase_codes_into(out, masks, starts[:mid], order[:mid], n_phases),
             lambda: _phase_codes_into(out, masks, starts[mid:], order[mid:], n_phases), True)
    else:
        _phase_codes_into(out, masks, starts, order, n_phases)
    return out


def _phase_codes_into(
    out: np.ndarray, masks: np.ndarray, starts: np.ndarray, order: np.ndarray, n_phases: int
) -> None:
    """:func:`phase_codes` for the rows ``order`` (whole users), written into ``out``."""
    low, high = _bit_tables(n_phases)
    n_bits = np.zeros(1 << n_phases, dtype=np.int64)
    for bit in range(n_phases):  # a loop over phases
        n_bits += (np.arange(1 << n_phases) >> bit) & 1
    m = masks[order]
    n_users = int(np.count_nonzero(starts))
    # group number per sorted row, from the user starts (no gather of the codes);
    # int32 when it fits: these passes are memory-bound
    wide = np.int32 if n_users * (n_phases + 1) < np.iinfo(np.int32).max else np.int64
    g = np.cumsum(starts, dtype=wide)
    g -= 1
    assigned = np.where(n_bits == 1, low, -1).astype(wide)[m]
    multi = np.flatnonzero((n_bits > 1)[m])
    if len(multi):
        # (a): running maximum of the one-phase rows before each several-phase row
        before = _running_max_at(assigned, g, n_phases, multi, starts[multi])
        gm, mm = g[multi], m[multi]
        every, gm_first = np.arange(len(multi)), boundaries(gm)
        cur = low.astype(wide)[mm]
        for _ in range(n_phases + 2):  # bounded by the number of phases, not the data
            prev = np.maximum(before, _running_max_at(cur, gm, n_phases, every, gm_first))
            allowed = np.where(prev > 0, mm & ~((np.int64(1) << np.maximum(prev, 0)) - 1), mm)
            new = np.where(allowed > 0, low[allowed], high[mm]).astype(wide)
            if np.array_equal(new, cur):
                break
            cur = new
        assigned[multi] = cur
    out[order] = assigned


def _running_max_at(
    values: np.ndarray, groups: np.ndarray, n_phases: int, at: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """For the rows ``at`` (increasing positions), the maximum of ``values`` (in [-1,
    n_phases)) over the earlier rows of their group, -1 where ``first`` (the group's
    first row); rows sorted by group. One running maximum of group * (n_phases + 1) +
    value over all rows (a group's keys exceed every earlier group's), read just
    before each row of ``at``."""
    running = groups * (n_phases + 1)
    running += values
    np.maximum.accumulate(running, out=running)
    out = running[np.maximum(at - 1, 0)] - groups[at] * (n_phases + 1)
    out[first] = -1
    return np.asarray(out)


def _phase_masks(m: PhaseModel, keys: pd.DataFrame) -> np.ndarray:
    """Per row, the bit mask of the phases its event (else its touchpoint) maps to,
    looked up once per distinct (event, touchpoint)."""
    ev_masks = {k: m.mask(v) for k, v in m.events.items()}
    tp_masks = {k: m.mask(v) for k, v in m.touchpoints.items()}
    direct = _categorical_masks(m, keys, ev_masks, tp_masks)
    if direct is not None:
        return direct
    codes, uniques = factorize_rows(keys)
    ev_u = uniques.iloc[:, 0].astype(object).map(ev_masks)
    if uniques.shape[1] > 1:
        tp_u = uniques.iloc[:, 1].astype(object).map(tp_masks)
        ev_u = ev_u.fillna(tp_u)
    mask_u = ev_u.fillna(0).to_numpy(dtype=np.int64).astype(_mask_type(len(m.phases)))  # per row: 1-2 bytes, not 8
    return np.asarray(mask_u[codes])


def _mask_type(n_phases: int) -> type[np.integer[Any]]:
    """The narrowest integer type of a bit mask of ``n_phases`` phases (1-2 bytes a row)."""
    return np.uint8 if n_phases <= 8 else np.uint16 if n_phases <= 16 else np.uint32 if n_phases <= 32 else np.int64


def _categorical_masks(
    m: PhaseModel, keys: pd.DataFrame, ev_masks: Mapping[Any, int], tp_masks: Mapping[Any, int]
) -> np.ndarray | None:
    """:func:`_phase_masks` when the key columns are categoricals with few combinations:
    a mask per combination of their categories (the event's, else the touchpoint's,
    else none), then one lookup per row of the packed codes, a block of rows at a time
    (no hashing of the rows: at 10M events ~0.04 s instead of ~0.15 s). None otherwise."""
    if not all(isinstance(keys[c].dtype, pd.CategoricalDtype) for c in keys.columns):
        return None
    cols = [narrow_codes(keys[c]) for c in keys.columns]  # (a missing value's code -1 indexes the last entry)
    sizes = [len(u) for _, u in cols]
    if int(np.prod(sizes)) > 1 << 16:
        return None
    ev = [ev_masks.get(u) if u is not None else None for u in cols[0][1]]
    tp = [tp_masks.get(u) if u is not None else None for u in cols[1][1]] if len(cols) > 1 else [None]
    table = np.array([[e if e is not None else t if t is not None else 0 for t in tp] for e in ev], dtype=np.int64)
    flat = table.astype(_mask_type(len(m.phases))).ravel()
    n = len(keys)
    out = np.empty(n, dtype=flat.dtype)
    for start in range(0, n, _ROW_BLOCK):  # a loop over blocks of rows
        key = cols[0][0][start : start + _ROW_BLOCK].astype(np.int32)
        key[key < 0] += sizes[0]
        if len(cols) > 1:
            key *= sizes[1]
            second = cols[1][0][start : start + _ROW_BLOCK].astype(np.int32)
            second[second < 0] += sizes[1]
            key += second
        out[start : start + _ROW_BLOCK] = flat[key]
    return out


#: Rows per block where phase masks are looked up.
_ROW_BLOCK = 1 << 20


def assign_phases(
    events: pd.DataFrame,
    model: str | PhaseModel = "aacra",
    *,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Add ``phase`` (ordered categorical) to every event.

    Parameters
    ----------
    events : DataFrame
        Canonical events; with ``touchpoint`` (from :func:`journeyflow.assign_touchpoints`)
        when the model maps touchpoints. Touchpoints are assigned first when the
        column is absent.
    model : str or PhaseModel, default "aacra"
        A built-in model name or your own :class:`PhaseModel`.
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    DataFrame
        A new frame with every input row and column plus ``phase``: an ordered
        categorical with the model's phases as categories; missing where the
        event and its touchpoint map to no phase.

    Notes
    -----
    See the module docstring for the multi-phase rule. Vectorised: one sort by
    (user, time), then at most ``len(phases) + 1`` passes of running maxima.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({"user_id": ["a"] * 4,
    ...     "timestamp": pd.date_range("2026-01-01", periods=4, freq="D", tz="UTC"),
    ...     "event": ["social_post_view", "product_view", "purchase", "social_post_view"]})
    >>> jf.assign_phases(jf.assign_touchpoints(ev))["phase"].tolist()
    ['awareness', 'purchase', 'purchase', 'advocacy']
    """
    return _assign_phases(events, model, columns=columns)


def _assign_phases(
    events: pd.DataFrame,
    model: str | PhaseModel = "aacra",
    *,
    columns: Mapping[str, str] | None = None,
    sort: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """:func:`assign_phases`; ``sort``: the events' rows in (user, time) order and the
    users' first positions in it (:func:`journeyflow._encode.sort_groups` of the sorted
    user codes and the times), when known (e.g. from :func:`journeyflow.sessions._sessionize`)."""
    check_frame("events", events)
    m = get_model(model)
    names = resolve_columns(events, columns, required=("user_id", "timestamp", "event"), optional=("touchpoint",))
    out = events
    if m.touchpoints and "touchpoint" not in names:
        from .touchpoints import assign_touchpoints

        out = assign_touchpoints(events, columns=columns)
        names["touchpoint"] = "touchpoint"
    keys = out[[names["event"]] + ([names["touchpoint"]] if "touchpoint" in names else [])]

    def sort_rows() -> tuple[np.ndarray, np.ndarray]:
        users, _ = factorize_sorted(out[names["user_id"]])
        order, starts = sort_groups(users, time_ns(out[names["timestamp"]]))
        if len(order) < np.iinfo(np.int32).max:
            order = order.astype(np.int32)  # held to the end: half the memory
        return order, starts

    if sort is not None:
        masks, (order, starts) = _phase_masks(m, keys), sort
    else:  # the (user, time) sort beside the phase masks, on a second thread for large logs
        masks, (order, starts) = both(lambda: _phase_masks(m, keys), sort_rows, len(out) >= _PARALLEL_ROWS)
    idx = phase_codes(masks, starts, order, len(m.phases))
    phase = pd.Categorical.from_codes(idx, categories=list(m.phases), ordered=True)
    return out.assign(phase=pd.Series(phase, index=out.index))
