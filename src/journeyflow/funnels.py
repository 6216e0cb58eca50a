"""Step and phase funnels, time to convert, drop-off and touchpoint priority.

All counting runs on one sort of the events by (user, time, input order) and a
greedy chain of binary searches per step: for every attempt (a step-1 event) the
earliest event of step 2 at or after it, then of step 3 at or after that, and so
on. The earliest choice at each step is never worse for reaching later steps, so a
user's furthest step over all attempts is exact. Ordered funnels with no window and
no excluded events (phase funnels, for one) need no sort: a person's earliest step-1
event is then their best start, and each next step is a running minimum per person
over that step's events. No loop over users or events: the loops run over steps (and,
for millions of events, over parts of the people: split by a key read off their ids,
or by their codes once encoded, each part sorted and counted on its own, on two threads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._encode import (
    PARALLEL_ROWS,
    block_half,
    both,
    factorize_rows,
    factorize_sorted,
    is_cached,
    last_rows,
    narrow_codes,
    present_codes,
    row_codes,
    small_int,
    sort_order,
    split_by_value,
    time_ns,
)
from ._validation import check_duration, check_frame, check_option, describe
from .exceptions import DataError, InputTypeError, OptionError, SchemaError
from .phases import PhaseModel, get_model
from .schema import resolve_columns

__all__ = ["compare_segments", "drop_off", "funnel", "phase_funnel", "time_to_convert", "touchpoint_priority"]

MODES = ("ordered", "strict", "unordered")
_NONE = np.iinfo(np.int64).max

Step = Any  # str | Sequence[str] | boolean mask / column name


class _TimesAt:
    """The event times in sorted order, read through the order when indexed (``t[i]``
    is ``times[order[i]]``) instead of held: 80 MB less at 10M events."""

    def __init__(self, times: np.ndarray, order: np.ndarray) -> None:
        self.times, self.order = times, order

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self.times[self.order[index]])

    def __len__(self) -> int:
        return len(self.order)


@dataclass
class _Sorted:
    """Events sorted by (user, time, input order), with what the funnels need."""

    order: np.ndarray  # sorted position -> input row
    user: np.ndarray  # user code per sorted position
    time: _TimesAt  # int64 ns per sorted position (read through ``order``)
    tie_start: np.ndarray  # first sorted position with the same user and time
    user_labels: pd.Index | None  # None when the caller asked for codes only
    n_users: int  # codes are in [0, n_users)


def _sorted_events(
    events: pd.DataFrame,
    names: Mapping[str, str],
    rows: np.ndarray | None = None,
    *,
    labels: bool = True,
    times: np.ndarray | None = None,
) -> _Sorted:
    """Sort the events (only ``rows``, positions, when given) by (user, time, input order).

    User codes come from the whole column when it is already encoded (see
    :func:`journeyflow._encode.factorize_sorted`: once per column); ``labels=False``
    (the caller needs no user ids, only who is who) otherwise hashes just the ids at
    ``rows``, numbered in any order. ``order`` maps sorted positions to rows of
    ``events``; ``times``: the timestamps as from :func:`time_ns`, when known."""
    col = events[names["user_id"]]
    if times is None:
        times = time_ns(events[names["timestamp"]])
    user_labels: pd.Index | None = None
    if not labels and not is_cached(col):
        users, n_users = _user_codes(col, rows, names)
    else:
        users, user_labels = factorize_sorted(col)
        n_users = len(user_labels)
        if rows is not None:
            users = users[rows]
    return _sort(users, n_users, times, rows, user_labels)[0]


def _user_codes(col: pd.Series, rows: np.ndarray | None, names: Mapping[str, str]) -> tuple[np.ndarray, int]:
    """:func:`journeyflow._encode.row_codes` of the user ids (at ``rows``); missing ids
    are an error."""
    users, n_users = row_codes(col, rows)
    n_null = int(np.count_nonzero(users < 0))
    if n_null:
        raise DataError(
            f"Column {names['user_id']!r} (user_id) has {n_null:,} missing values. Run "
            "jf.validate_events(...) first: it rejects such rows with a reason."
        )
    return users, n_users


def _sort(
    users: np.ndarray,
    n_users: int,
    times: np.ndarray,
    rows: np.ndarray | None,
    user_labels: pd.Index | None = None,
    bits: np.ndarray | None = None,
    ties: bool = True,
    row_times: np.ndarray | None = None,
) -> tuple[_Sorted, np.ndarray | None]:
    """Positions sorted by (user, time, position), as :class:`_Sorted` with ``order``
    mapped through ``rows`` (the event row of each position; None: the positions are
    rows), and ``bits`` (per position, optional) in sorted order. ``times`` are the
    times of the event rows (indexed like the events); ``row_times``: those at
    ``rows``, when the caller has them. ``ties=False``: no ``tie_start`` (left empty;
    strict funnels step to the next event, ties or not).

    Positions, user codes and ``tie_start`` are held in int32 when they fit, and
    times are read through the order, not held (:class:`_TimesAt`): 120 instead of
    320 MB at 10M events, built without full-length int64 temporaries."""
    n = len(users)
    if row_times is None:
        row_times = times if rows is None else times[rows]
    order = sort_order(users, row_times)
    del row_times
    if n < _INT32_LIMIT:
        order = order.astype(np.int32)  # the int64 order is dropped before the gathers below
    u = _gather(users, order, n_users)
    packed = None if bits is None else bits[order]
    if rows is not None:
        order = _gather(rows, order, int(rows.max()) + 1 if len(rows) else 0)
    t = _TimesAt(times, order)
    return _Sorted(order, u, t, _tie_starts(u, t) if ties else _NO_TIES, user_labels, n_users), packed


#: ``tie_start`` of a :class:`_Sorted` that has none (strict funnels step to the next event).
_NO_TIES = np.zeros(0, dtype=np.int64)
_NO_TIES.flags.writeable = False  # (shared)


def _tie_starts(u: np.ndarray, t: _TimesAt) -> np.ndarray:
    """Per sorted position, the first position with the same user and time (users
    ``u`` and times ``t`` in sorted order), made a block of rows at a time."""
    n = len(u)
    new = np.ones(n, dtype=bool)
    for start in range(0, n, _BLOCK):  # a loop over blocks of rows: a new user or a new time
        before = max(start - 1, 0)
        tb = t[before : start + _BLOCK]
        ub = u[before : start + _BLOCK]
        np.not_equal(ub[1:], ub[:-1], out=new[before + 1 : before + len(ub)])  # (the block's first row
        new[before + 1 : before + len(ub)] |= tb[1:] != tb[:-1]  # compares with the one before it)
    tie_start = np.arange(n, dtype=np.int32 if n < _INT32_LIMIT else np.int64)
    tie_start *= new  # 0 where a tie goes on, then the running maximum carries each tie's start
    del new
    np.maximum.accumulate(tie_start, out=tie_start)
    return tie_start


_INT32_LIMIT = 2**31 - 1
_BLOCK = 1 << 20


def _gather(values: np.ndarray, index: np.ndarray, bound: int) -> np.ndarray:
    """``values[index]`` (integers in [0, bound)) as int32 when ``values`` are wider
    and ``bound`` fits, gathered a block of ``_BLOCK`` positions at a time so that no
    full-length array of the wider type is made."""
    if values.dtype.itemsize <= 4 or bound >= _INT32_LIMIT:
        return np.asarray(values[index])
    out = np.empty(len(index), dtype=np.int32)
    for start in range(0, len(index), _BLOCK):  # a loop over blocks of rows
        out[start : start + _BLOCK] = values[index[start : start + _BLOCK]]
    return out


#: Ordered funnels follow the attempts still going with binary searches once fewer
#: than 1/_SEARCH_BELOW of the step events are attempts, else with one table per step.
#: The attempts' positions ascend, so numpy's searches start from the previous hit:
#: at 10M events searching was faster from the first step on (0.117 s vs 0.146 s).
_SEARCH_BELOW = 2

#: Large funnels count people in sets of about this many rows (see _funnel_per_user).
_PART_ROWS = 1 << 19


class _Steps:
    """The steps' events as one bit field per event (input order; bit j: a step-j
    event), built with one lookup per distinct event name and one gather. Behaves like
    the list of per-step boolean masks where a list is needed (len, index, slice)."""

    def __init__(self, bits: np.ndarray, k: int) -> None:
        self.bits, self.k = bits, k

    def __len__(self) -> int:
        return self.k

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            start, stop, step = item.indices(self.k)
            if step != 1:
                raise IndexError("steps slice with a step")
            return _Steps((self.bits >> start) & ((1 << max(stop - start, 0)) - 1), max(stop - start, 0))
        if not -self.k <= item < self.k:
            raise IndexError(item)
        return (self.bits >> (item % self.k)) & 1 == 1

    def __iter__(self) -> Any:
        return (self[j] for j in range(self.k))


def _step_masks(
    events: pd.DataFrame, names: Mapping[str, str], steps: Sequence[Step], *, strict: bool = True
) -> tuple[_Steps, list[str]]:
    """The steps' events (see :class:`_Steps`) and one label per step; ``strict``: a step
    that never occurs is an error (off for a partition of a larger log)."""
    if isinstance(steps, str) or not isinstance(steps, Sequence) or len(steps) < 1:
        raise InputTypeError(f"steps must be a list of at least one step (event names); got {describe(steps)}.")
    width = _bit_width(len(steps))
    event = events[names["event"]]
    bits: np.ndarray | None = None  # the boolean steps' bits
    table: np.ndarray | None = None  # per distinct event name: the bits of the steps it is in
    labels = []
    named: list[tuple[int, list[str]]] = []  # steps given by event names
    event_codes: np.ndarray | None = None  # events factorised once, on first need
    event_names: pd.Index | None = None
    for i, step in enumerate(steps):
        mask = None
        if isinstance(step, str) and step in events.columns and pd.api.types.is_bool_dtype(events[step].dtype):
            mask = events[step].to_numpy(dtype=bool, na_value=False)
            labels.append(step)
        elif isinstance(step, (np.ndarray, pd.Series)) and np.asarray(step).dtype == bool:
            mask = np.asarray(step, dtype=bool)
            if len(mask) != len(events):
                raise InputTypeError(f"Step {i}: a boolean mask needs one value per event ({len(events)}); got {len(mask)}.")
            labels.append(f"step {i + 1}")
        if mask is not None:  # whole-array shifts, no masked writes
            shifted = np.left_shift(mask.view(np.uint8), i, dtype=width)
            if bits is None:
                bits = shifted
            else:
                bits |= shifted
            continue
        wanted = [step] if isinstance(step, str) else list(step) if isinstance(step, (list, tuple)) else None
        if not wanted or not all(isinstance(w, str) for w in wanted):
            raise InputTypeError(
                f"Step {i} must be an event name, a list of event names or a boolean column; got {describe(step)}."
            )
        if event_codes is None:
            event_codes, uniques = narrow_codes(event)
            event_names = pd.Index(uniques, dtype=object)
            table = np.zeros(len(uniques), dtype=width)
        assert event_names is not None and table is not None
        hit = np.asarray(event_names.isin(wanted), dtype=bool)
        table |= np.left_shift(hit.view(np.uint8), i, dtype=width)
        labels.append(" | ".join(wanted))
        named.append((i, wanted))
    if table is not None and event_codes is not None:
        looked_up = table[event_codes]  # one gather for every step named by events
        bits = looked_up if bits is None else bits | looked_up
    if bits is None:  # (no step at all is refused above)
        bits = np.zeros(len(events), dtype=width)
    if strict and named:
        seen = int(np.bitwise_or.reduce(bits)) if len(bits) else 0  # the steps that occur
        for i, wanted in named:  # a loop over steps
            if not (seen >> i) & 1:
                present = sorted(map(str, pd.unique(event.astype(str))))
                raise DataError(
                    f"Step {i + 1} ({' | '.join(wanted)}) never occurs in column {names['event']!r}. "
                    f"Events present include: {present[:15]}."
                )
    return _Steps(bits, len(steps)), labels


def _chains(
    s: _Sorted,
    masks: _Steps,
    window_ns: int | None,
    mode: str,
    exclude: np.ndarray | None = None,
    packed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per attempt: sorted position of its anchor, furthest step reached (1-based) and
    the sorted positions of the chain's events (-1 where not reached), shape (attempts, k).
    ``exclude`` (input order): events that end an attempt when they fall between two steps.
    ``packed``: ``masks.bits`` in sorted order, when the caller has it already.

    "The next step-j event at or after position p" is a binary search over the
    step's events (the attempts ascend, so each search starts from the previous hit),
    or a table lookup when most events are attempts: one reverse running minimum over
    the sorted events per step (:func:`_next_of`). Attempts are followed only while
    they go on."""
    k = len(masks)
    n = len(s.order)
    excl = None if exclude is None else np.flatnonzero(exclude[s.order])
    if packed is None:
        packed = np.asarray(masks.bits[s.order])  # bit j set: the sorted event is a step-j event
    win = _NONE if window_ns is None else window_ns
    if mode == "unordered":
        anchors = np.flatnonzero(packed)
        chain = np.full((len(anchors), k), -1, dtype=_position_type(n))
        alive = np.arange(len(anchors))
        reached = np.zeros(len(anchors), dtype=np.int64)
        for j in range(k):  # a loop over steps, each vectorised over the attempts still complete
            a = anchors[alive]
            cand = _next_of(packed, j)[s.tie_start[a]]
            safe = np.minimum(cand, max(n - 1, 0))
            good = (cand < n) & (s.user[safe] == s.user[a]) & (s.time[safe] - s.time[a] <= win)
            alive = alive[good]
            chain[alive, j] = cand[good]
            reached[alive] = j + 1
        return anchors, reached, chain
    anchors = np.flatnonzero(packed & 1)
    chain = np.full((len(anchors), k), -1, dtype=_position_type(n))
    chain[:, 0] = anchors
    reached = np.ones(len(anchors), dtype=np.int64)
    alive = np.arange(len(anchors))  # attempts still going, and their last step's position
    prev = anchors.copy()
    hi = anchors.copy()  # per attempt still going: the furthest sorted position in its chain
    t0 = s.time[anchors]
    for j in range(1, k):  # a loop over steps, each vectorised over the attempts still going
        if len(alive) == 0:
            break
        if mode == "strict":
            cand = prev + 1
            safe = np.minimum(cand, n - 1)
            valid = (cand < n) & ((packed[safe] >> j) & 1 == 1) & (s.user[safe] == s.user[prev])
        else:  # the next step-j event at or after the previous step's time
            # few attempts left: binary searches over the step's events beat a pass over all
            search = len(alive) * _SEARCH_BELOW < n
            table = None  # the previous step's table goes before the next one is built
            table = _step_positions(packed, j) if search else _next_of(packed, j)
            cand = _first_from(table, s.tie_start[prev], search)
            # an event already in the chain (tied in time) cannot serve again; only a
            # candidate at or before the chain's furthest position can be one of them
            clash = np.flatnonzero(cand <= hi)
            if len(clash):
                earlier = chain[alive[clash], :j]
                c = cand[clash]
                for _ in range(j):
                    used = (c[:, None] == earlier).any(axis=1)
                    if not used.any():
                        break
                    c = np.where(used, _first_from(table, np.minimum(c + 1, n), search), c)
                cand[clash] = c
            safe = np.minimum(cand, n - 1)
            # same user and at or after tie_start[prev]: so not before the previous step
            valid = (cand < n) & (s.user[safe] == s.user[prev])
        valid &= (s.time[safe] - t0[alive]) <= win
        if excl is not None and len(excl):
            # an excluded event strictly between the previous step and this one ends the attempt
            between = np.searchsorted(excl, safe, side="left") - np.searchsorted(excl, prev, side="right")
            valid &= between <= 0
        alive, prev = alive[valid], cand[valid]
        if mode != "strict":
            hi = np.maximum(hi[valid], prev)
        chain[alive, j] = prev
        reached[alive] = j + 1
    return anchors, reached, chain


def _bit_width(k: int) -> type[np.signedinteger[Any]]:
    """The integer type of a bit field with one bit per step."""
    if k > 62:
        raise OptionError(f"A funnel has at most 62 steps; got {k}.")
    return small_int(1 << k) if k < 31 else np.int64


def _value_masks(values: pd.Series, wanted: list[Any]) -> _Steps:
    """Steps that are values of a column (e.g. phases): a bit per wanted value, looked
    up once per distinct value, then one gather (of the narrow codes: a categorical's
    own)."""
    codes, uniques = narrow_codes(values)
    width = _bit_width(len(wanted))
    table = np.zeros(len(uniques), dtype=width)
    for j, w in enumerate(wanted):  # a loop over steps, on the distinct values only
        hit = np.array([u is not None and not pd.isna(u) and u == w for u in uniques], dtype=bool)
        table |= np.left_shift(hit.view(np.uint8), j, dtype=width)
    return _Steps(table[codes], len(wanted))


def _first_from(table: np.ndarray, pos: np.ndarray, search: bool) -> np.ndarray:
    """First step event at or after each position: ``table`` holds the step's event
    positions (and n) when ``search``, else the next-event table of :func:`_next_of`."""
    return np.asarray(table[np.searchsorted(table, pos)] if search else table[pos])


def _next_of(packed: np.ndarray, j: int) -> np.ndarray:
    """Per sorted position p (and p = n), the first position >= p holding a step-j
    event; n where there is none (int32 positions when they fit, built in place)."""
    n = len(packed)
    out = np.arange(n + 1, dtype=_position_type(n))
    out[:n][(packed >> j) & 1 == 0] = n
    backwards = out[::-1]
    np.minimum.accumulate(backwards, out=backwards)
    return out


def _step_positions(packed: np.ndarray, j: int) -> np.ndarray:
    """Sorted positions of the step-j events, then n (for the binary searches of
    :func:`_first_from`); int32 when they fit, found a block of rows at a time."""
    n = len(packed)
    hit = (packed >> j) & 1 == 1
    out = np.empty(int(np.count_nonzero(hit)) + 1, dtype=_position_type(n))
    at = 0
    for start in range(0, n, _BLOCK):  # a loop over blocks of rows
        found = np.flatnonzero(hit[start : start + _BLOCK])
        found += start
        out[at : at + len(found)] = found
        at += len(found)
    out[at] = n
    return out


def _position_type(n: int) -> type[np.signedinteger[Any]]:
    """int32 for positions in [0, n] when n fits, else int64."""
    return np.int32 if n < _INT32_LIMIT else np.int64


def _best_attempt(s: _Sorted, anchors: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """Index (into anchors) of each user's best attempt: furthest step, then earliest."""
    if len(anchors) == 0:
        return np.zeros(0, dtype=np.int64)
    user = s.user[anchors]
    if not bool((anchors[1:] > anchors[:-1]).all()):  # anchors not in sorted order: sort attempts
        order = np.lexsort((anchors, -reached, user))  # by (user, -reached, anchor position)
        u = user[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = u[1:] != u[:-1]
        return np.asarray(order[first], dtype=np.int64)
    # anchors ascending: each user's attempts are one run, earliest first; no sort needed
    new = np.ones(len(user), dtype=bool)
    new[1:] = user[1:] != user[:-1]
    run = np.cumsum(new) - 1
    best = np.maximum.reduceat(reached, np.flatnonzero(new))
    cand = np.flatnonzero(reached == best[run])
    keep = np.ones(len(cand), dtype=bool)
    keep[1:] = run[cand[1:]] != run[cand[:-1]]
    return np.asarray(cand[keep], dtype=np.int64)


def _per_user(
    s: _Sorted,
    events: pd.DataFrame,
    anchors: np.ndarray,
    reached: np.ndarray,
    chain: np.ndarray,
    k: int,
    by: list[str],
    rows: bool = False,
) -> pd.DataFrame:
    """One row per person who started: segment values, furthest step, gaps (ns) between
    consecutive steps of their best attempt (NaN where not reached) and, with ``rows``,
    ``_ANCHOR`` (the input row of the attempt's first step: whose row it is). Rows of
    different people are independent, so tables of disjoint people concatenate (Dask
    partitions)."""
    best = _best_attempt(s, anchors, reached)
    r = reached[best]
    ch = chain[best]
    times = np.where(ch >= 0, s.time[np.maximum(ch, 0)], 0)  # int64 ns: gaps are exact
    out: dict[str, Any] = {}
    if by:
        seg = events.iloc[s.order[anchors[best]]][by].reset_index(drop=True)
        keys = seg.astype(object).where(seg.notna(), "(missing)")
        out.update({c: keys[c].to_numpy(dtype=object) for c in by})
    out["reached"] = r
    for j in range(1, k):
        out[f"gap_{j}"] = np.where(r >= j + 1, (times[:, j] - times[:, j - 1]).astype(np.float64), np.nan)
    if rows:
        out[_ANCHOR] = np.asarray(s.order[anchors[best]], dtype=np.int64)
    return pd.DataFrame(out)


#: Column of :func:`_per_user` rows holding the row of the best attempt's first step.
_ANCHOR = "_jf_anchor_row"


def _table_from_users(per_user: pd.DataFrame, labels: list[str], by: list[str], step_name: str) -> pd.DataFrame:
    """The funnel table from :func:`_per_user` rows (in any order)."""
    k = len(labels)
    r = per_user["reached"].to_numpy(dtype=np.int64)
    if by:
        grouped = per_user[by].groupby(by, sort=True)
        inv = grouped.ngroup().to_numpy(dtype=np.int64)
        groups = grouped.size().reset_index()[by]
    else:
        groups = pd.DataFrame(index=[0])
        inv = np.zeros(len(per_user), dtype=np.int64)
    n_groups = len(groups)
    # people per (segment, furthest step), then summed over the steps from the last down
    furthest = np.bincount(inv * (k + 1) + r, minlength=n_groups * (k + 1)).reshape(n_groups, k + 1)
    counts = np.cumsum(furthest[:, :0:-1], axis=1)[:, ::-1]  # (n_groups, k): people at step >= j + 1
    medians = np.full((n_groups, k), np.nan)
    for j in range(1, k):  # a loop over steps; the median is per segment, vectorised
        at = r >= j + 1
        if not at.any():
            continue
        gap = per_user[f"gap_{j}"].to_numpy(dtype=np.float64)[at]
        if n_groups == 1:  # one segment: a selection, no grouping
            medians[0, j] = np.median(gap)
        else:
            med = pd.Series(gap).groupby(inv[at]).median()
            medians[med.index.to_numpy(), j] = med.to_numpy()
    prev = np.concatenate([counts[:, :1], counts[:, :-1]], axis=1)
    first = counts[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        from_start = np.where(first > 0, counts / np.maximum(first, 1), np.nan)
        from_prev = np.where(prev > 0, counts / np.maximum(prev, 1), np.nan)
    out = pd.DataFrame(
        {
            step_name: np.tile(np.asarray(labels, dtype=object), n_groups),
            f"{step_name}_index": np.tile(np.arange(1, k + 1, dtype=np.int64), n_groups),
            "users": counts.ravel().astype(np.int64),
            "conversion_from_start": from_start.ravel(),
            "conversion_from_previous": from_prev.ravel(),
            "dropped": (prev - counts).ravel().astype(np.int64),
            "median_time_from_previous": pd.to_timedelta(np.round(medians.ravel()), unit="ns"),
        }
    )
    for c in reversed(by):
        out.insert(0, c, np.repeat(groups[c].to_numpy(dtype=object), k))
    return out


def _prepare(events: pd.DataFrame, columns: Mapping[str, str] | None, by: Any) -> tuple[dict[str, str], list[str]]:
    check_frame("events", events)
    names = resolve_columns(events, columns, required=("user_id", "timestamp", "event"))
    by_list = [] if by is None else [by] if isinstance(by, str) else list(by)
    missing = [b for b in by_list if b not in events.columns]
    if missing:
        raise SchemaError(
            f"Segment column {missing[0]!r} (by=) is not in the events. Columns present: "
            f"{[str(c) for c in events.columns]}."
        )
    return names, by_list


def funnel(
    events: pd.DataFrame,
    steps: Sequence[Step],
    *,
    window: Any = "7D",
    mode: str = "ordered",
    by: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    unit: str = "user",
    entry: str = "closed",
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """How many people reach each step, where they drop and how long it takes.

    Parameters
    ----------
    events : DataFrame
        Canonical events (user_id, timestamp, event).
    steps : list
        Each step is an event name, a list of names (any of them), the name of a
        boolean column, or a boolean mask over the events.
    window : duration or None, default "7D"
        Every step must happen within this time of the attempt's first step.
    mode : {"ordered", "strict", "unordered"}, default "ordered"
        ``ordered``: steps 1..k in that order, each at or after the previous one.
        ``strict``: as ordered, and consecutive events of the person (nothing
        else in between). ``unordered``: steps 1..k all within ``window``, in
        any order.
    by : str or list of str, optional
        Segment column(s); a person's segment is its value at the first event of
        their best attempt (the one that got furthest, earliest on ties).
    exclude : str or list of str, optional
        Event names that disqualify an attempt when they occur between two of its
        steps (e.g. ``"return_request"``). Not with ``mode="unordered"``.
    unit : {"user", "session"}, default "user"
        Count people, or sessions (each session is its own attempt space; needs
        ``session_id``); the count column is then named ``sessions``.
    entry : {"closed", "open"}, default "closed"
        ``"open"``: people may enter at any step (the open funnel of web analytics).
        A person counts at step k when they have an ordered run of steps j..k
        (any j ≤ k) within ``window`` of the run's first event; the table gains
        ``entered`` (people whose first counted step is this one);
        ``conversion_from_previous`` is the share of the people at step k − 1 who
        went on to step k in the same run, ``dropped`` the rest of them, and
        ``conversion_from_start`` is relative to everyone counted at any step.
        Open funnels take ``mode="ordered"``, no ``by``/``exclude``, and report
        no median times.
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    DataFrame
        One row per (segment, step): the ``by`` columns, ``step`` (str),
        ``step_index`` (int64, from 1), ``users`` (int64; ``sessions`` with
        ``unit="session"``), ``conversion_from_start``
        and ``conversion_from_previous`` (float64), ``dropped`` (int64: users at
        the previous step minus users at this one), ``median_time_from_previous``
        (timedelta64[ns], over the people who reached the step, on their best
        attempt).

    Notes
    -----
    A person counts once, at the furthest step reached over all attempts (every
    step-1 event starts one; for ``unordered`` every step event). Users never
    increase along the steps, and ``dropped`` reconciles them exactly.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a", "b", "b"],
    ...     "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:05", "2026-01-01 10:09",
    ...                                  "2026-01-01 11:00", "2026-01-09 11:00"], utc=True),
    ...     "event": ["view", "cart", "buy", "view", "cart"]})
    >>> jf.funnel(ev, ["view", "cart", "buy"])[["step", "users", "dropped"]]
       step  users  dropped
    0  view      2        0
    1  cart      1        1
    2   buy      1        0
    """
    check_option("unit", unit, ("user", "session"))
    check_option("entry", entry, ("closed", "open"))
    if entry == "open":
        if mode != "ordered" or by is not None or exclude is not None or unit != "user":
            raise OptionError("entry='open' works with mode='ordered', unit='user' and no by= or exclude=.")
        return _open_funnel(events, steps, window=window, columns=columns)
    if unit == "session":
        names = resolve_columns(events, columns, required=("user_id", "timestamp", "event", "session_id"))
        # each session counts as its own "person": group by session id instead of user id
        cols = {**dict(columns or {}), "user_id": names["session_id"]}
        per_user, labels, by_list = _funnel_per_user(events, steps, window=window, mode=mode, by=by, columns=cols,
                                                     exclude=exclude)
        return _table_from_users(per_user, labels, by_list, "step").rename(columns={"users": "sessions"})
    per_user, labels, by_list = _funnel_per_user(events, steps, window=window, mode=mode, by=by, columns=columns,
                                                 exclude=exclude)
    return _table_from_users(per_user, labels, by_list, "step")


def _funnel_per_user(
    events: pd.DataFrame,
    steps: Sequence[Step],
    *,
    window: Any,
    mode: str,
    by: str | Sequence[str] | None,
    columns: Mapping[str, str] | None,
    strict: bool = True,
    exclude: str | Sequence[str] | None = None,
    rows: bool = False,
    sort: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Per-person funnel progress (see :func:`_per_user`; ``rows``: with each person's
    anchor row), step labels, segment columns; ``sort``: see :func:`_people_rows`."""
    names, by_list = _prepare(events, columns, by)
    check_option("mode", mode, MODES)
    span = check_duration("window", window, allow_none=True)
    window_ns = None if span is None else int(span.value)
    masks, labels = _step_masks(events, names, steps, strict=strict)
    excl = None
    if exclude is not None:
        if mode == "unordered":
            raise OptionError("exclude= needs an order between steps; use mode='ordered' or 'strict'.")
        wanted = [exclude] if isinstance(exclude, str) else list(exclude)
        excl = events[names["event"]].isin(wanted).to_numpy(dtype=bool)
    if mode == "unordered" and bool(((masks.bits & (masks.bits - 1)) != 0).any()):
        raise OptionError(
            "In an unordered funnel every event can stand for one step only, but some events match "
            "several steps (a repeated or overlapping step). Use distinct steps, or mode='ordered'."
        )
    return _people_rows(events, names, masks, window_ns, mode, by_list, excl, rows=rows, sort=sort), labels, by_list


def _people_rows(
    events: pd.DataFrame,
    names: Mapping[str, str],
    masks: _Steps,
    window_ns: int | None,
    mode: str,
    by_list: list[str],
    excl: np.ndarray | None = None,
    *,
    rows: bool = False,
    sort: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """:func:`_per_user` rows of the funnel whose steps' events are ``masks``.
    ``sort``: the events' rows in (user, time, row) order and each user's first
    position in it, when known (:func:`journeyflow.sessions._sessionize` makes them):
    the funnel then sorts nothing (see :func:`_people_rows_sorted`)."""
    events = events[list(dict.fromkeys([names["user_id"], names["timestamp"], *by_list]))]
    times = time_ns(events[names["timestamp"]])
    if _greedy_fits(masks, mode, window_ns, excl):
        users, n_users = _person_codes(events[names["user_id"]], names)
        return _greedy_per_user(users, n_users, times, masks, events, by_list, rows=rows)
    if sort is not None:
        return _people_rows_sorted(events, masks, window_ns, mode, by_list, excl, rows, sort, times)
    step_rows = _step_rows(masks, mode, excl)

    # People in parts of about _PART_ROWS rows, counted on two threads (hashing, sorts
    # and gathers release the GIL; a small part's arrays stay in the CPU caches): a
    # person's rows all fall in one part, and per-person rows concatenate. Not with
    # missing ids (so that the error counts all of them). Ids already encoded (e.g. by
    # jf.sessionize) are split by their codes, which each part then uses as they are.
    ids = events[names["user_id"]]
    n_rows = len(events) if step_rows is None else len(step_rows)
    split, n_codes = None, 0
    if not ids.hasnans:
        key = ids
        if is_cached(ids):
            codes, n_codes = _person_codes(ids, names)
            key = pd.Series(codes, copy=False)
        split = split_by_value(key, step_rows, min(max(n_rows // _PART_ROWS, 2), 256))
    k = len(masks)
    if split is None:
        s = _sorted_events(events, names, step_rows, labels=False, times=times)
        anchors, reached, chain = _chains(s, masks, window_ns, mode, excl)
        return _per_user(s, events, anchors, reached, chain, k, by_list, rows)
    # times and step bits at the rows split, gathered in row order (one pass each):
    # each part then gathers from these, on its thread
    rows_times = times if step_rows is None else times[step_rows]
    rows_bits = masks.bits if step_rows is None else masks.bits[step_rows]
    starts = np.r_[0, split.ends[:-1]]

    def people(p: int) -> pd.DataFrame:
        at = split.order[int(starts[p]) : int(split.ends[p])]  # positions into the rows split
        if n_codes:
            codes, n_users = split.values.to_numpy()[at], n_codes
        else:
            codes, n_users = _user_codes(split.values, at, names)
        event_rows = at if step_rows is None else step_rows[at]
        s, packed = _sort(codes, n_users, times, event_rows, bits=rows_bits[at], ties=mode != "strict",
                          row_times=rows_times[at])
        anchors, reached, chain = _chains(s, masks, window_ns, mode, excl, packed)
        return _per_user(s, events, anchors, reached, chain, k, by_list, rows)

    with ThreadPoolExecutor(2) as pool:
        return _concat_people(list(pool.map(people, np.flatnonzero(split.ends > starts))))


def _people_rows_sorted(
    events: pd.DataFrame,
    masks: _Steps,
    window_ns: int | None,
    mode: str,
    by_list: list[str],
    excl: np.ndarray | None,
    rows: bool,
    sort: tuple[np.ndarray, np.ndarray],
    times: np.ndarray,
) -> pd.DataFrame:
    """:func:`_people_rows` from the rows already in (user, time, row) order: ``sort``
    is that order and, per sorted position, whether a user starts there. Ordered and
    unordered funnels keep the step (and excluded) events of the order, which stay in
    that order; users are numbered by their starts. From ``PARALLEL_ROWS`` rows on, the
    first and the second half of the users (cut at a user's first position) are
    followed on two threads. At 10M events (2.9M step events) this replaces the split
    by person and the sort of each part (0.06 + 0.24 s)."""
    order, starts = sort
    packed = masks.bits[order]  # the step bits in sorted order
    n_users = int(np.count_nonzero(starts))
    if mode == "strict":  # strict funnels see every event
        user = np.cumsum(starts, dtype=_position_type(len(order)))
    else:
        keep = packed != 0
        if excl is not None:
            keep |= excl[order]
        pos = np.flatnonzero(keep)
        del keep
        order, packed = order[pos], packed[pos]
        user = _starts_up_to(starts, pos)
        del pos
    user -= 1  # users numbered from 0 in sorted order
    n, k = len(order), len(masks)
    cut = int(np.searchsorted(user, user[n // 2])) if n else 0  # the middle user's first position
    parts = [(0, cut), (cut, n)] if n >= PARALLEL_ROWS and 0 < cut < n else [(0, n)]

    def people(part: tuple[int, int]) -> pd.DataFrame:
        u, o = user[part[0] : part[1]], order[part[0] : part[1]]
        t = _TimesAt(times, o)
        s = _Sorted(o, u, t, _tie_starts(u, t) if mode != "strict" else _NO_TIES, None, n_users)
        anchors, reached, chain = _chains(s, masks, window_ns, mode, excl, packed[part[0] : part[1]])
        return _per_user(s, events, anchors, reached, chain, k, by_list, rows)

    if len(parts) == 1:
        return people(parts[0])
    with ThreadPoolExecutor(2) as pool:
        return _concat_people(list(pool.map(people, parts)))


def _starts_up_to(starts: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """For each of the ascending positions ``pos``, how many of ``starts`` are True up to
    and including it: a running count a block at a time (no full-length array of
    counts; a binary search per position took 0.07 s for 2.9M of 10M rows)."""
    out = np.empty(len(pos), dtype=_position_type(len(starts)))
    done, carry = 0, 0
    for start in range(0, len(starts), _BLOCK):  # a loop over blocks of rows
        counts = np.cumsum(starts[start : start + _BLOCK], dtype=out.dtype)
        until = int(np.searchsorted(pos, start + len(counts)))  # the positions in this block
        np.add(counts[pos[done:until] - start], carry, out=out[done:until])
        carry += int(counts[-1])
        done = until
    return out


def _concat_people(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """:func:`_per_user` tables of disjoint people as one (those with no rows left out:
    their text columns have no inferred type, which would make the whole column object)."""
    kept = [t for t in tables if len(t)] or tables[:1]
    return kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)


def _person_codes(ids: pd.Series, names: Mapping[str, str]) -> tuple[np.ndarray, int]:
    """Codes of every row's person and how many people: the cached sorted codes when the
    column has them (free), else :func:`_user_codes` (no labels, nothing cached)."""
    if is_cached(ids):
        codes, labels = factorize_sorted(ids)
        return codes, len(labels)
    return _user_codes(ids, None, names)


def _greedy_fits(masks: _Steps, mode: str, window_ns: int | None, excl: np.ndarray | None) -> bool:
    """Whether :func:`_greedy_steps` counts this funnel: ordered, with no window and no
    excluded events, and no event standing for more than one step."""
    if mode != "ordered" or window_ns is not None or excl is not None:
        return False
    bits = masks.bits
    return not bool(((bits & (bits - 1)) != 0).any())


def _greedy_steps(
    users: np.ndarray, n_users: int, times: np.ndarray, masks: _Steps, *, anchors: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per person (code): the time (int64 ns) of each step of the best attempt, shape
    (steps, people), ``_NONE`` past the furthest step reached; and, with ``anchors``,
    the row of the attempt's first step (``len(users)`` for people who never started).

    For the funnels :func:`_greedy_fits` accepts, without a sort. With no window and no
    excluded events an earlier start is never worse, so a person's best attempt (the
    furthest, then the earliest) starts at their earliest step-1 event (the first row
    among ties); as in :func:`_chains`, each next step is then the earliest step-j event
    at or after the previous step's time (no event is two steps, so none can serve
    twice). One running minimum per person and step over that step's events, a block
    of rows at a time; from ``PARALLEL_ROWS`` rows on, each half of the rows on its own
    thread (the second into a private row of minima, merged after each step)."""
    k, n = len(masks), len(users)
    at = np.full((k, n_users), _NONE, dtype=np.int64)
    first = np.full(n_users, n, dtype=np.int64) if anchors else None
    bits = masks.bits
    threads = n >= PARALLEL_ROWS
    half = block_half(n, _BLOCK)  # the rows in two halves of whole blocks, one per thread
    mine = np.empty(n_users, dtype=np.int64) if threads else None  # the second thread's minima, then merged

    def step(j: int, begin: int, end: int, out: np.ndarray) -> None:
        one = bits.dtype.type(1 << j)
        for start in range(begin, end, _BLOCK):  # a loop over blocks of rows
            rows = np.flatnonzero(bits[start : min(start + _BLOCK, end)] == one)
            rows += start
            u, t = users[rows], times[rows]
            if j:
                ok = t >= at[j - 1][u]  # never true for people who did not reach step j
                u, t = u[ok], t[ok]
            np.minimum.at(out, u, t)

    def earliest(begin: int, end: int, out: np.ndarray) -> None:
        for start in range(begin, end, _BLOCK):  # a loop over blocks of rows: the first row at the earliest time
            rows = np.flatnonzero(bits[start : min(start + _BLOCK, end)] == bits.dtype.type(1))
            rows += start
            u = users[rows]
            tied = times[rows] == at[0][u]
            np.minimum.at(out, u[tied], rows[tied])

    def halves(run: Any, out: np.ndarray, fill: int) -> None:
        """``run(begin, end, out)`` over all rows: each half on its own thread, the
        second into ``mine``, merged into ``out`` by a minimum."""
        if mine is None:
            run(0, n, out)
            return
        mine.fill(fill)
        both(lambda: run(0, half, out), lambda: run(half, n, mine), True)
        np.minimum(out, mine, out=out)

    for j in range(k):  # a loop over steps (each needs the previous one's times)
        halves(lambda begin, end, out, j=j: step(j, begin, end, out), at[j], _NONE)
    if first is not None:
        halves(earliest, first, n)
    return at, first


def _greedy_per_user(
    users: np.ndarray,
    n_users: int,
    times: np.ndarray,
    masks: _Steps,
    events: pd.DataFrame,
    by: list[str],
    *,
    rows: bool = False,
) -> pd.DataFrame:
    """:func:`_per_user` rows from :func:`_greedy_steps`."""
    at, first = _greedy_steps(users, n_users, times, masks, anchors=bool(by) or rows)
    started = np.flatnonzero(at[0] != _NONE)
    at = at[:, started]
    r = np.count_nonzero(at != _NONE, axis=0).astype(np.int64)
    out: dict[str, Any] = {}
    if by:
        assert first is not None
        seg = events.iloc[first[started]][by].reset_index(drop=True)
        keys = seg.astype(object).where(seg.notna(), "(missing)")
        out.update({c: keys[c].to_numpy(dtype=object) for c in by})
    out["reached"] = r
    for j in range(1, len(masks)):
        gap = np.full(len(started), np.nan)
        hit = r >= j + 1
        gap[hit] = at[j, hit] - at[j - 1, hit]
        out[f"gap_{j}"] = gap
    if rows:
        assert first is not None
        out[_ANCHOR] = first[started]
    return pd.DataFrame(out)


def _step_rows(steps: _Steps, mode: str, exclude: np.ndarray | None = None) -> np.ndarray | None:
    """Ordered and unordered funnels only look at step (and excluded) events: the
    positions of those, to sort only them; None for all rows (strict funnels need
    every event to see what lies between)."""
    if mode == "strict" or len(steps) == 0:
        return None
    keep = steps.bits != 0
    if exclude is not None:
        keep |= exclude
    return None if keep.all() else np.flatnonzero(keep)


def phase_funnel(
    events: pd.DataFrame,
    model: str | PhaseModel = "aacra",
    *,
    by: str | Sequence[str] | None = None,
    window: Any = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The ordered funnel over a phase model's phases.

    A person reaches phase k when they have events in phases 1..k in that order
    (each at or after the previous one), within ``window`` of the first when given.

    Parameters
    ----------
    events : DataFrame
        Events with ``phase`` (from :func:`journeyflow.assign_phases`); phases are
        assigned with ``model`` when the column is absent.
    model : str or PhaseModel, default "aacra"
        The model whose phases are the steps.
    by, window, columns
        As in :func:`funnel` (``window`` None: no limit).

    Returns
    -------
    DataFrame
        As :func:`funnel`, with ``phase`` and ``phase_index`` instead of ``step``
        and ``step_index``; ``median_time_from_previous`` is the median time
        between reaching consecutive phases (e.g. purchase to delivery).

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.assign_phases(jf.assign_touchpoints(jf.datasets.simulate_webshop(300, seed=1)))
    >>> pf = jf.phase_funnel(ev, "aacra")
    >>> pf["phase"].tolist()
    ['awareness', 'consideration', 'purchase', 'retention', 'advocacy']
    >>> bool((pf["users"].diff().dropna() <= 0).all())
    True
    """
    m = get_model(model)
    frame = events
    if "phase" not in events.columns:
        from .phases import assign_phases

        frame = assign_phases(events, model=m, columns=columns)
    names, by_list = _prepare(frame, columns, by)
    phase = frame["phase"]
    if isinstance(phase.dtype, pd.CategoricalDtype) and list(phase.cat.categories) != list(m.phases):
        raise DataError(
            f"The events' phase column has phases {list(phase.cat.categories)}, not those of model "
            f"{m.name!r}; run jf.assign_phases(events, model={m.name!r}) first."
        )
    masks = _value_masks(phase, list(m.phases))
    span = check_duration("window", window, allow_none=True)
    if not masks.bits.any():
        raise DataError(f"No event has a phase of model {m.name!r}; check the touchpoint and event mappings.")
    per_user = _people_rows(frame, names, masks, None if span is None else int(span.value), "ordered", by_list)
    return _table_from_users(per_user, list(m.phases), by_list, "phase")


def time_to_convert(
    events: pd.DataFrame,
    steps: Sequence[Step] = ("product_view", "purchase"),
    *,
    window: Any = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per person, the time from the first step to the last on their best attempt.

    Parameters
    ----------
    events : DataFrame
        Canonical events.
    steps : list, default ("product_view", "purchase")
        As in :func:`funnel` (usually two steps).
    window : duration or None, default None
        Limit on the time from the first step.
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    DataFrame
        One row per person who completed all steps: user_id, start, end
        (datetime64[ns, UTC]), duration (timedelta64[ns]). ``.attrs["quantiles"]``
        holds the 10/25/50/75/90 % quantiles of duration.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b", "b"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-01", "2026-01-02"], utc=True),
    ...     "event": ["view", "buy", "view", "buy"]})
    >>> jf.time_to_convert(ev, ["view", "buy"])["duration"].tolist()
    [Timedelta('2 days 00:00:00'), Timedelta('1 days 00:00:00')]
    """
    names, _ = _prepare(events, columns, None)
    span = check_duration("window", window, allow_none=True)
    masks, _labels = _step_masks(events, names, steps)
    s = _sorted_events(events, names)
    anchors, reached, chain = _chains(s, masks, None if span is None else int(span.value), "ordered")
    best = _best_attempt(s, anchors, reached)
    done = best[reached[best] == len(masks)]
    start = s.time[chain[done, 0]]
    end = s.time[chain[done, -1]]
    out = pd.DataFrame(
        {
            "user_id": np.asarray(s.user_labels)[s.user[anchors[done]]],
            "start": pd.to_datetime(start, utc=True),
            "end": pd.to_datetime(end, utc=True),
            "duration": pd.to_timedelta(end - start, unit="ns"),
        }
    )
    out.attrs["quantiles"] = out["duration"].quantile([0.1, 0.25, 0.5, 0.75, 0.9]) if len(out) else None
    return out


def drop_off(
    events: pd.DataFrame,
    steps: Sequence[Step] | None = None,
    *,
    model: str | PhaseModel | None = None,
    window: Any = "7D",
    mode: str = "ordered",
    by_column: str = "touchpoint",
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Where people leave: the touchpoints and events they met last, per step.

    Parameters
    ----------
    events : DataFrame
        Events with ``touchpoint`` (from :func:`journeyflow.assign_touchpoints`).
    steps : list, optional
        Funnel steps (as in :func:`funnel`). When None, the phases of ``model``
        (the events need ``phase``).
    model : str or PhaseModel, optional
        Phase model for a phase funnel (default "aacra" when ``steps`` is None).
    window, mode : as in :func:`funnel` (phase funnels use no window).
    by_column : str, default "touchpoint"
        Column describing the last thing met ("touchpoint", "channel", "event").
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    DataFrame
        One row per (step, last value) for the people whose furthest step it was
        and who did not finish the funnel: ``step`` (or ``phase``),
        ``step_index``, ``last_<by_column>``, ``last_event`` (once when
        ``by_column="event"``), ``users`` (int64),
        ``share`` (float64, of the people who dropped after that step; sums to 1
        per step). Sorted by step, then users descending.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = jf.assign_touchpoints(jf.datasets.simulate_webshop(300, seed=1))
    >>> d = jf.drop_off(ev, ["product_view", "add_to_cart", "purchase"])
    >>> bool(abs(d.groupby("step_index")["share"].sum() - 1).max() < 1e-9)
    True
    """
    names, _ = _prepare(events, columns, None)
    if by_column not in events.columns:
        raise SchemaError(
            f"Column {by_column!r} (by_column=) is not in the events; run jf.assign_touchpoints(events) "
            "first or pass by_column='event'."
        )
    if steps is None and "phase" not in events.columns:
        raise SchemaError("drop_off without steps uses phases: run jf.assign_phases(events, model=...) first.")
    span = None if steps is None else check_duration("window", window, allow_none=True)
    check_option("mode", mode, MODES)
    counts = _drop_off_counts(events, names, steps, model, None if span is None else int(span.value), mode, by_column)
    return _drop_off_table(counts)


def _drop_off_counts(
    events: pd.DataFrame,
    names: Mapping[str, str],
    steps: Sequence[Step] | None,
    model: str | PhaseModel | None,
    window_ns: int | None,
    mode: str,
    by_column: str,
    strict: bool = True,
) -> pd.DataFrame:
    """People per (step, last value, last event): tables of disjoint people add up."""
    if steps is not None:
        masks, labels = _step_masks(events, names, steps, strict=strict)
        name = "step"
    else:
        m = get_model(model or "aacra")
        masks, labels, name = _value_masks(events["phase"], list(m.phases)), list(m.phases), "phase"
    people = _people_rows(events, names, masks, window_ns, mode, [], rows=True)
    return _drop_off_from_people(events, names, people, labels, name, by_column)


def _drop_off_from_people(
    events: pd.DataFrame,
    names: Mapping[str, str],
    people: pd.DataFrame,
    labels: list[str],
    name: str,
    by_column: str,
    last: np.ndarray | None = None,
) -> pd.DataFrame:
    """:func:`_drop_off_counts` from the funnel's :func:`_per_user` rows with their anchor
    rows: the people who started and did not finish, and what they met last (each
    person's last event by time and row: no sort when the log is in time order).
    ``last``: each person's last row (by the codes of ``factorize_sorted``), when known."""
    reached = people["reached"].to_numpy(dtype=np.int64)
    left = np.flatnonzero((reached >= 1) & (reached < len(labels)))  # (unordered: 0 for a start elsewhere)
    if last is None:
        users, n_users = _person_codes(events[names["user_id"]], names)
        last = last_rows(users, time_ns(events[names["timestamp"]]), n_users)
    else:
        users = factorize_sorted(events[names["user_id"]])[0]  # (the codes ``last`` is by)
    rows = last[users[people[_ANCHOR].to_numpy(dtype=np.int64)[left]]]
    del users
    # people per (furthest step, last value, last event): the pair of values coded at
    # those rows only (a categorical's own codes), then one count over the packed keys
    k = max(len(labels), 1)
    pair, distinct = factorize_rows(events[[by_column, names["event"]]].set_axis(["by", "event"], axis=1), rows)
    per_key = np.bincount(pair.astype(np.int64) * k + reached[left], minlength=len(distinct) * k)
    hit = np.flatnonzero(per_key)
    which, furthest = np.divmod(hit, k)

    def values(col: str) -> np.ndarray:  # missing as NaN, as a gather of the column gives it
        out = distinct[col].to_numpy(dtype=object, copy=True)
        out[pd.isna(out)] = np.nan
        return np.asarray(out[which])

    return pd.DataFrame(
        {
            name: np.asarray(labels, dtype=object)[furthest - 1],
            f"{name}_index": furthest.astype(np.int64),
            f"last_{by_column}": values("by"),
            "last_event": values("event"),
            "users": per_key[hit].astype(np.int64),
        }
    )


def _drop_off_table(counts: pd.DataFrame) -> pd.DataFrame:
    """The drop-off table from :func:`_drop_off_counts` rows (summed per key): shares,
    sorted by step, users descending, then the labels (one order, however split)."""
    keys = [c for c in counts.columns if c != "users"]  # step, its index, last_<by_column> (, last_event)
    index = keys[1]
    out = counts.groupby(keys, sort=False, dropna=False)["users"].sum().reset_index()
    out["users"] = out["users"].astype(np.int64)
    out["share"] = out["users"] / out.groupby(index)["users"].transform("sum")
    # (a missing value sorts as the empty text: pandas' str keeps it missing, unorderable)
    labels = [out[c].astype(object).where(out[c].notna(), "").astype(str).to_numpy(dtype=object)
              for c in reversed(keys[2:])]
    order = np.lexsort((*labels, -out["users"].to_numpy(), out[index].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def touchpoint_priority(
    events: pd.DataFrame,
    *,
    conversion: str | Sequence[str] = "purchase",
    model: str | PhaseModel | None = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Which touchpoints to improve first: reach, exit rate and lift per touchpoint.

    Parameters
    ----------
    events : DataFrame
        Events with ``touchpoint``; ``phase`` is reported when present.
    conversion : str or list of str, default "purchase"
        Conversion event name(s).
    model : ignored unless the events lack ``phase``; kept for symmetry with
        :func:`drop_off`.
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    DataFrame
        One row per touchpoint: ``touchpoint``, ``phases`` (str, the phases its
        events fell in), ``users`` (int64, people who met it), ``events`` (int64),
        ``reach`` (users / all users), ``exit_rate`` (share of its users whose last
        event was at it and who never converted), ``conversion_rate`` (of its
        users), ``conversion_rate_without`` (of the other users), ``lift``
        (conversion_rate / conversion_rate_without), ``priority`` and ``rank``.

    Notes
    -----
    ``priority = reach × exit_rate / (1 + lift)``: many people, many of them
    leaving there, and little association with converting rank first. The
    conversion rates are associations, not causal effects.

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.assign_touchpoints(jf.datasets.simulate_webshop(300, seed=1))
    >>> tp = jf.touchpoint_priority(ev)
    >>> tp["rank"].tolist() == list(range(1, len(tp) + 1))
    True
    """
    names, _ = _prepare(events, columns, None)
    if "touchpoint" not in events.columns:
        raise SchemaError("touchpoint_priority needs a 'touchpoint' column: run jf.assign_touchpoints(events) first.")
    del model
    wanted = [conversion] if isinstance(conversion, str) else list(conversion)
    return _priority_table(*_priority_counts(events, names, wanted))


def _priority_counts(
    events: pd.DataFrame, names: Mapping[str, str], wanted: list[str], last: np.ndarray | None = None
) -> tuple[pd.DataFrame, int, int, list[str]]:
    """Per touchpoint: users who met it, of them converted, events, exits, phases seen
    (bit mask); and all users, converted users, phase names. Counts of disjoint
    people add up (Dask partitions). ``last``: each user's last row (by the codes of
    ``factorize_sorted``), when known."""
    users, labels = factorize_sorted(events[names["user_id"]])
    n_users = len(labels)
    converted_user = np.zeros(n_users, dtype=bool)
    converted_user[users[events[names["event"]].isin(wanted).to_numpy(dtype=bool)]] = True
    tp = events["touchpoint"]
    tp_codes, tps = present_codes(tp, missing="(none)")
    n_tp = len(tps)
    met = _pairs_seen(users, tp_codes, n_users, n_tp)  # who met which touchpoint: O(events), no sort
    if last is None:
        last = last_rows(users, time_ns(events[names["timestamp"]]), n_users)  # no sort when in time order
    exit_rows = last[~converted_user]
    exit_rows[exit_rows < 0] = 0  # (users without events: row 0)
    exits = np.bincount(tp_codes[exit_rows], minlength=n_tp)
    del last, exit_rows
    counts = pd.DataFrame(
        {
            "touchpoint": np.asarray(tps, dtype=object),
            "users": met.sum(axis=0).astype(np.int64),
            "conv_users": met[converted_user].sum(axis=0).astype(np.int64),
            "events": _counts(tp_codes, n_tp),
            "exits": exits.astype(np.int64),
        }
    )
    phase_names: list[str] = []
    if "phase" in events.columns:
        phase = events["phase"]
        ph_codes, ph_names = (phase.cat.codes.to_numpy(), list(phase.cat.categories)) \
            if isinstance(phase.dtype, pd.CategoricalDtype) else pd.factorize(phase, sort=True)
        phase_names = [str(p) for p in ph_names]
        # code -1 (no phase) marks the last column
        seen = _pairs_seen(tp_codes, np.remainder(ph_codes, len(ph_names) + 1), n_tp, len(ph_names) + 1)[:, :-1]
        counts["phases_seen"] = (seen * (1 << np.arange(len(ph_names), dtype=np.int64))).sum(axis=1)
    return counts, n_users, int(converted_user.sum()), phase_names


def _counts(codes: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(codes, minlength=n)`` (int64) of narrow codes, a block of rows at
    a time: bincount would first copy them all into a full-length int64 array."""
    out = np.zeros(n, dtype=np.int64)
    for start in range(0, len(codes), _BLOCK):  # a loop over blocks of rows
        out += np.bincount(codes[start : start + _BLOCK], minlength=n)
    return out


def _pairs_seen(a: np.ndarray, b: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    """Boolean (n_a, n_b) matrix, True at every (a[i], b[i]): one scatter into the flat
    matrix a block of rows at a time (a two-index scatter is about three times slower)."""
    seen = np.zeros(n_a * n_b, dtype=bool)
    for start in range(0, len(a), _BLOCK):  # a loop over blocks of rows
        cell = a[start : start + _BLOCK].astype(np.int64)
        cell *= n_b
        cell += b[start : start + _BLOCK]
        seen[cell] = True
    return seen.reshape(n_a, n_b)


def _priority_table(counts: pd.DataFrame, n_users: int, total_conv: int, phase_names: list[str]) -> pd.DataFrame:
    """The touchpoint priority table from :func:`_priority_counts` (rows summed per touchpoint)."""
    agg = {c: "sum" for c in ("users", "conv_users", "events", "exits")}
    if "phases_seen" in counts.columns:
        agg["phases_seen"] = lambda x: np.bitwise_or.reduce(x.to_numpy())  # type: ignore[assignment]
    c = counts.groupby("touchpoint", sort=True).agg(agg).reset_index()
    met_users = c["users"].to_numpy(dtype=np.int64)
    met_conv = c["conv_users"].to_numpy(dtype=np.float64)
    rate = met_conv / np.maximum(met_users, 1)
    others = n_users - met_users
    rate_without = np.where(others > 0, (total_conv - met_conv) / np.maximum(others, 1), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        # nobody converts without it: an unbounded lift (inf); nobody converts at all: undefined (NaN)
        lift = np.where(rate_without > 0, rate / np.where(rate_without > 0, rate_without, 1),
                        np.where(rate > 0, np.inf, np.nan))
    reach = met_users / max(n_users, 1)
    exit_rate = c["exits"].to_numpy(dtype=np.float64) / np.maximum(met_users, 1)
    priority = reach * exit_rate / (1 + np.nan_to_num(lift, nan=0.0, posinf=np.inf))
    out = pd.DataFrame(
        {
            "touchpoint": c["touchpoint"].to_numpy(dtype=object),
            "users": met_users,
            "events": c["events"].to_numpy(dtype=np.int64),
            "reach": reach,
            "exit_rate": exit_rate,
            "conversion_rate": rate,
            "conversion_rate_without": rate_without,
            "lift": lift,
            "priority": priority,
        }
    )
    if "phases_seen" in c.columns:
        bits = c["phases_seen"].to_numpy(dtype=np.int64)
        labels = [", ".join(p for j, p in enumerate(phase_names) if (b >> j) & 1) for b in bits]  # per touchpoint
        out.insert(1, "phases", labels)
    out = out.sort_values("priority", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1, dtype=np.int64)
    return out


def compare_segments(table: pd.DataFrame, by: str, a: Any, b: Any) -> pd.DataFrame:
    """Where does segment ``a`` drop off more than ``b``? A two-proportion z-test per step.

    Parameters
    ----------
    table : DataFrame
        A by-segment table from :func:`funnel` or :func:`phase_funnel` (``by=``).
    by : str
        The segment column.
    a, b : segment values to compare.

    Returns
    -------
    DataFrame
        One row per step (or phase): ``step``, ``step_index``, ``users_a``,
        ``users_b``, ``rate_a``, ``rate_b`` (conversion from the previous step),
        ``difference`` (rate_a − rate_b), ``z`` and ``p_value`` (two-sided,
        pooled two-proportion z-test; NaN for the first step).

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.datasets.simulate_webshop(2_000, seed=3)
    >>> t = jf.funnel(ev, ["product_view", "add_to_cart", "purchase"], window=None, by="device")
    >>> c = jf.compare_segments(t, "device", "mobile", "desktop")
    >>> list(c.columns)
    ['step', 'step_index', 'users_a', 'users_b', 'rate_a', 'rate_b', 'difference', 'z', 'p_value']
    """
    from scipy.stats import norm

    step = "phase" if "phase" in table.columns else "step"
    count = "sessions" if "sessions" in table.columns else "users"
    if by not in table.columns:
        raise SchemaError(f"Column {by!r} is not in the table; make it with by={by!r}.")
    parts = []
    for value in (a, b):
        part = table[table[by] == value].sort_values(f"{step}_index")
        if part.empty:
            raise OptionError(f"Segment {value!r} is not in column {by!r}; present: {sorted(map(str, table[by].unique()))}.")
        parts.append(part.reset_index(drop=True))
    pa_, pb = parts
    na, nb = pa_[count].to_numpy(float), pb[count].to_numpy(float)
    prev_a = np.concatenate([[np.nan], na[:-1]])
    prev_b = np.concatenate([[np.nan], nb[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        ra, rb = na / prev_a, nb / prev_b
        pooled = (na + nb) / (prev_a + prev_b)
        se = np.sqrt(pooled * (1 - pooled) * (1 / prev_a + 1 / prev_b))
        z = (ra - rb) / se
    p = 2 * norm.sf(np.abs(z))
    return pd.DataFrame(
        {
            step: pa_[step].to_numpy(dtype=object),
            f"{step}_index": pa_[f"{step}_index"].to_numpy(dtype=np.int64),
            "users_a": na.astype(np.int64),
            "users_b": nb.astype(np.int64),
            "rate_a": ra,
            "rate_b": rb,
            "difference": ra - rb,
            "z": z,
            "p_value": p,
        }
    )


def _open_funnel(events: pd.DataFrame, steps: Sequence[Step], *, window: Any, columns: Mapping[str, str] | None) -> pd.DataFrame:
    """Open-entry funnel: ordered runs may start at any step (see :func:`funnel`)."""
    names, _ = _prepare(events, columns, None)
    span = check_duration("window", window, allow_none=True)
    window_ns = None if span is None else int(span.value)
    masks, labels = _step_masks(events, names, steps, strict=True)
    s = _sorted_events(events, names, _step_rows(masks, "ordered"), labels=False)
    k = len(masks)
    n_users = s.n_users
    covered = np.zeros((n_users, k), dtype=bool)
    went_on = np.zeros((n_users, k), dtype=bool)  # reached step m from step m - 1 in one run
    for j in range(k):  # a loop over entry steps; each vectorised over all runs
        anchors, reached, _ = _chains(s, masks[j:], window_ns, "ordered")
        if len(anchors) == 0:
            continue
        furthest = np.full(n_users, -1, dtype=np.int64)
        np.maximum.at(furthest, s.user[anchors], j + reached - 1)
        has = furthest >= j
        steps_idx = np.arange(k)
        covered |= has[:, None] & (steps_idx[None, :] >= j) & (steps_idx[None, :] <= furthest[:, None])
        went_on |= has[:, None] & (steps_idx[None, :] > j) & (steps_idx[None, :] <= furthest[:, None])
    users = covered.sum(axis=0)
    anyone = covered.any(axis=1)
    first = np.where(anyone, covered.argmax(axis=1), -1)
    entered = np.bincount(first[anyone], minlength=k)
    cont = went_on.sum(axis=0)
    prev = np.concatenate([[0], users[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        from_prev = np.where(np.arange(k) == 0, 1.0, np.where(prev > 0, cont / np.maximum(prev, 1), np.nan))
    total = int(anyone.sum())
    return pd.DataFrame(
        {
            "step": np.asarray(labels, dtype=object),
            "step_index": np.arange(1, k + 1, dtype=np.int64),
            "users": users.astype(np.int64),
            "entered": entered.astype(np.int64),
            "conversion_from_start": users / total if total else np.full(k, np.nan),
            "conversion_from_previous": from_prev,
            "dropped": np.where(np.arange(k) == 0, 0, prev - cont).astype(np.int64),
            "median_time_from_previous": pd.to_timedelta(np.full(k, np.nan), unit="ns"),
        }
    )
