"""Sessionisation: split each user's events into visits (sessions).

The whole computation runs on sorted integer arrays: one stable sort by
(user code, time, input position), boolean "new session" flags from vectorised
comparisons, and a cumulative sum that numbers the sessions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._encode import (
    PARALLEL_ROWS,
    block_half,
    both,
    factorize_sorted,
    first_last_rows,
    ordered_codes,
    sort_groups,
    take_rows,
    time_ns,
)
from ._typing import DurationLike
from ._validation import check_duration, check_frame, describe
from .exceptions import DataError, InputTypeError
from .schema import CAMPAIGN_COLUMNS, resolve_columns

__all__ = ["sessionize", "sessions"]


def sessionize(
    events: pd.DataFrame,
    *,
    timeout: DurationLike = "30min",
    max_duration: DurationLike | None = None,
    split_on_campaign: bool = False,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Add a ``session_id`` that groups each user's events into sessions.

    Parameters
    ----------
    events : DataFrame
        Validated events (see :func:`journeyflow.validate_events`) with ``user_id``
        (str, int or categorical) and ``timestamp`` (datetime64, naive = UTC). Need not
        be sorted.
    timeout : str or Timedelta, default "30min"
        Inactivity that ends a session: a new session starts where the gap to the
        user's previous event is **strictly greater** than ``timeout``.
    max_duration : str or Timedelta, optional
        Longest session: a new session starts at the first event more than
        ``max_duration`` after the session's first event.
    split_on_campaign : bool, default False
        Start a new session where an event carries a campaign (``utm_source``,
        ``utm_medium``, ``utm_campaign``; any of them non-null) different from the
        session's current one.
    columns : dict, optional
        Canonical name -> your column name, e.g. ``{"user_id": "visitor"}``.

    Returns
    -------
    DataFrame
        A new frame with every input row and column, in input order and with the
        input's index, plus ``session_id`` (int64). The caller's frame is not changed;
        an existing ``session_id`` column is replaced.

    Raises
    ------
    SchemaError
        ``user_id`` or ``timestamp`` is missing (the message lists the columns present).
    DataError
        ``user_id`` or ``timestamp`` has missing values; run
        :func:`journeyflow.validate_events` first to reject them with reasons.
    OptionError
        ``timeout`` or ``max_duration`` is not a positive duration.

    Notes
    -----
    Events are ordered per user by timestamp; ties keep input order. Session ids are
    numbered 0, 1, ... in order of (user id value, session start), so the numbering does
    not depend on the input's row order.

    With ``split_on_campaign``, a session's campaign is the last non-null campaign seen
    since the last inactivity split (a campaign-less event, e.g. a direct page view,
    does not end a session). Campaign splits are applied before ``max_duration`` splits,
    and the maximum duration is measured from the start of each resulting session.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({
    ...     "user_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:20",
    ...                                  "2026-01-01 11:00", "2026-01-01 10:00"], utc=True),
    ...     "event": ["view", "cart", "view", "view"]})
    >>> jf.sessionize(ev, timeout="30min")["session_id"].tolist()
    [0, 0, 1, 2]
    """
    return _sessionize(
        events, timeout=timeout, max_duration=max_duration, split_on_campaign=split_on_campaign, columns=columns
    )[0]


#: The rows in (user, time, input position) order (int32 when they fit) and a mask of
#: each user's first position in it: :func:`journeyflow._encode.sort_groups` of the
#: sorted user codes and the times.
UserSort = tuple[np.ndarray, np.ndarray]


def user_last_rows(sort: UserSort) -> np.ndarray:
    """Each user's last event row by (time, input position), users numbered as the
    sort orders them (the codes of ``factorize_sorted``): the row before each next
    user's start in the :data:`UserSort`. At 10M events ~0.01 s, against ~0.09 s for
    :meth:`SessionIndex.user_last_rows` (a gather at every session's first row)."""
    order, starts = sort
    ends = np.flatnonzero(starts)
    ends[:-1] = ends[1:]
    if len(ends):
        ends[-1] = len(order)
    ends -= 1
    return np.asarray(order[ends], dtype=np.int64)


class SessionIndex(NamedTuple):
    """Each session's rows, by session id (0, 1, ... as :func:`sessionize` numbers them):
    first and last event row by (time, input position), and the number of events
    (int32 when the rows fit).
    Valid for the frame sessionize returned, as long as its rows are not changed."""

    first: np.ndarray
    last: np.ndarray
    counts: np.ndarray

    def user_last_rows(self, users: np.ndarray, n_users: int) -> np.ndarray:
        """Each user's last event row by (time, input position), -1 for codes without
        events, as :func:`journeyflow._encode.last_rows` gives it, from the sessions
        alone: ``users`` are the rows' user codes in sorted order of the ids (those of
        ``factorize_sorted``), so that a user's sessions are consecutive ids and the
        last of them ends at the user's last row."""
        out = np.full(n_users, -1, dtype=np.int64)
        if len(self.first):
            owner = users[self.first]  # the user of each session (non-decreasing)
            final = np.empty(len(owner), dtype=bool)
            np.not_equal(owner[1:], owner[:-1], out=final[:-1])
            final[-1] = True
            out[owner[final]] = self.last[final]
        return out


def _sessionize(
    events: pd.DataFrame,
    *,
    timeout: DurationLike = "30min",
    max_duration: DurationLike | None = None,
    split_on_campaign: bool = False,
    columns: Mapping[str, str] | None = None,
    keep_sort: bool = False,
) -> tuple[pd.DataFrame, SessionIndex, UserSort | None]:
    """:func:`sessionize`, and the :class:`SessionIndex` of the sessions it found (which
    the later steps of a pipeline would otherwise find again: a pass over all events
    each); with ``keep_sort``, the :data:`UserSort` it made (else None), which
    :func:`journeyflow.phases.assign_phases` would make again."""
    check_frame("events", events)
    gap = check_duration("timeout", timeout)
    assert gap is not None
    longest = check_duration("max_duration", max_duration, allow_none=True)
    if not isinstance(split_on_campaign, (bool, np.bool_)):
        raise InputTypeError(f"split_on_campaign must be True or False; got {describe(split_on_campaign)}.")
    optional = CAMPAIGN_COLUMNS if split_on_campaign else ()
    names = resolve_columns(events, columns, required=("user_id", "timestamp"), optional=optional)

    session, index, sort = _session_codes(
        events,
        names,
        timeout_ns=gap.value,
        max_duration_ns=None if longest is None else longest.value,
        split_on_campaign=bool(split_on_campaign),
        keep_sort=keep_sort,
    )
    out = events.copy(deep=False)
    out[names.get("session_id", "session_id")] = pd.Series(session, index=out.index, copy=False)  # (not copied again)
    return out, index, sort


def _user_time(events: pd.DataFrame, names: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """User codes (int64) and times (int64 ns) with clear errors for missing values."""
    user = events[names["user_id"]]
    n_null = int(user.isna().sum())
    if n_null:
        raise DataError(
            f"Column {names['user_id']!r} (user_id) has {n_null:,} missing values. Run "
            "jf.validate_events(...) first: it rejects such rows with a reason."
        )
    ts = events[names["timestamp"]]
    if ts.dtype.kind != "M" and not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise InputTypeError(
            f"Column {names['timestamp']!r} (timestamp) must be datetime64; got dtype {ts.dtype}. "
            "Parse it with jf.validate_events(...) (ISO strings, epoch seconds or milliseconds)."
        )
    n_nat = int(ts.isna().sum())
    if n_nat:
        raise DataError(
            f"Column {names['timestamp']!r} (timestamp) has {n_nat:,} missing values (NaT). Run "
            "jf.validate_events(...) first: it rejects such rows with a reason."
        )
    codes, _ = factorize_sorted(user)
    return codes, time_ns(ts)


def _campaign_codes(events: pd.DataFrame, names: Mapping[str, str]) -> np.ndarray | None:
    """One int64 code per row for the (source, medium, campaign) triple; -1 where all are null."""
    present = [names[c] for c in CAMPAIGN_COLUMNS if c in names]
    if not present:
        return None
    combined = np.zeros(len(events), dtype=np.int64)
    any_set = np.zeros(len(events), dtype=bool)
    for col in present:
        codes, uniques = pd.factorize(events[col], use_na_sentinel=True)
        any_set |= codes >= 0
        combined = combined * (len(uniques) + 1) + (codes.astype(np.int64) + 1)
    combined[~any_set] = -1
    return combined


def _session_codes(
    events: pd.DataFrame,
    names: Mapping[str, str],
    *,
    timeout_ns: int,
    max_duration_ns: int | None,
    split_on_campaign: bool,
    keep_sort: bool = False,
) -> tuple[np.ndarray, SessionIndex, UserSort | None]:
    """Session ids in input row order (int64), numbered by (user value, start time),
    each session's first and last row and size, and with ``keep_sort`` the sort by
    (user, time) it made.

    Sorted times, gaps and sorted ids are made a block of sorted rows at a time, into
    the result: no full-length temporaries besides the sort order (fresh memory is
    paid for in page faults: four 80 MB arrays at 10M events). From ``PARALLEL_ROWS``
    events on, each half of the sorted rows on its own thread (numpy's gathers and
    scatters release the GIL): at 10M events gaps 114 -> 70 ms, ids 330 -> 166 ms."""
    n = len(events)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, SessionIndex(empty, empty, empty), ((empty, np.zeros(0, dtype=bool)) if keep_sort else None)
    user, t = _user_time(events, names)
    order, new = sort_groups(user, t)  # and the user boundaries in sorted order, from the code counts
    del user
    user_starts = new.copy() if keep_sort else None  # (new gets the sessions' starts too)
    threads = n >= PARALLEL_ROWS
    half = block_half(n, _BLOCK)  # the rows in two halves of whole blocks, one per thread

    def gaps(begin: int, end: int) -> None:
        for start in range(begin, end, _BLOCK):  # a loop over blocks of sorted rows: gaps above the timeout
            lo, stop = max(start - 1, 0), min(start + _BLOCK, end)  # (each block's first row: the gap before it)
            ts = t[order[lo:stop]]
            new[lo + 1 : stop] |= (ts[1:] - ts[:-1]) > timeout_ns

    both(lambda: gaps(0, half), lambda: gaps(half, n), threads)
    if split_on_campaign:
        camp = _campaign_codes(events, names)
        if camp is not None:
            _split_on_campaign(new, camp[order])
    if max_duration_ns is not None:
        _split_on_duration(new, t[order], max_duration_ns)
    session = np.empty(n, dtype=np.int64)
    narrow = np.int32 if n < 2**31 - 1 else np.int64  # (4 bytes a session when they fit)
    n_sessions = int(np.count_nonzero(new))
    at = np.empty(n_sessions, dtype=narrow)  # each session's first position in sorted order
    first = np.empty(n_sessions, dtype=narrow)  # and its row

    def number(begin: int, end: int, last: int) -> None:
        """Ids of the sorted rows [begin, end), scattered to the rows; ``last``: the id
        before ``begin``."""
        for start in range(begin, end, _BLOCK):  # a loop over blocks of sorted rows
            stop = min(start + _BLOCK, end)
            block = new[start:stop]
            ids = np.cumsum(block, dtype=np.int64)
            ids += last
            session[order[start:stop]] = ids
            begins = np.flatnonzero(block)
            begins += start
            at[last + 1 : last + 1 + len(begins)] = begins
            first[last + 1 : last + 1 + len(begins)] = order[begins]
            last = int(ids[-1])

    before = int(np.count_nonzero(new[:half]))  # sessions starting in the first half
    both(lambda: number(0, half, -1), lambda: number(half, n, before - 1), threads and half < n)
    ends = np.empty_like(at)  # each session's last position in sorted order
    ends[:-1] = at[1:]
    ends[-1] = n
    ends -= 1
    last_row = np.empty_like(first)
    for start in range(0, n_sessions, _BLOCK):  # a loop over blocks of sessions: their last rows
        last_row[start : start + _BLOCK] = order[ends[start : start + _BLOCK]]
    ends -= at
    ends += 1
    sort = None
    if user_starts is not None:
        sort = (order.astype(narrow) if narrow != order.dtype else order, user_starts)
    return session, SessionIndex(first, last_row, ends), sort


#: Sorted rows per block in :func:`_session_codes` (temporaries of a few MB).
_BLOCK = 1 << 18


def _split_on_campaign(new: np.ndarray, camp: np.ndarray) -> None:
    """Mark (in place) events whose campaign differs from the session's current campaign.

    ``camp`` is in sorted order, -1 where an event carries no campaign. The campaign in
    force at an event is the last non-null campaign before it since the last inactivity
    split (-1 if none); a campaign-less event never splits.
    """
    idx = np.arange(len(new), dtype=np.int64)
    # anchor[i]: last row <= i that carries a campaign or starts a segment
    anchor = np.where((camp >= 0) | new, idx, 0)
    np.maximum.accumulate(anchor, out=anchor)
    in_force = np.empty_like(camp)
    in_force[0] = -1
    in_force[1:] = camp[anchor[:-1]]
    new |= (camp >= 0) & (camp != in_force)


def _split_on_duration(new: np.ndarray, ts: np.ndarray, max_ns: int) -> None:
    """Mark (in place) new sessions so that no session lasts more than ``max_ns``.

    Works in rounds over all sessions at once: each round moves every session's
    frontier to its first event more than ``max_ns`` after the frontier's time, found by
    a vectorised binary search inside the session. Rounds = the largest number of
    splits in one session; work per round is proportional to the sessions still split.
    """
    starts = np.flatnonzero(new)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = len(new)
    long = ts[ends - 1] - ts[starts] > max_ns  # only these sessions need work
    frontier, limit = starts[long], ends[long]
    while len(frontier):
        target = ts[frontier] + max_ns
        lo, hi = frontier + 1, limit.copy()
        # first index in [lo, hi) with ts > target (hi when none): ts sorted within a session
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            mid_safe = np.minimum(mid, len(ts) - 1)
            after = ts[mid_safe] > target
            hi = np.where(active & after, mid, hi)
            lo = np.where(active & ~after, mid + 1, lo)
        inside = lo < limit
        frontier, limit = lo[inside], limit[inside]
        new[frontier] = True


def sessions(
    events: pd.DataFrame,
    *,
    conversion: str | list[str] | None = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per session, from events that carry ``session_id``.

    Parameters
    ----------
    events : DataFrame
        Output of :func:`sessionize`.
    conversion : str or list of str, optional
        Event name(s) that count as a conversion; adds ``converted`` (bool) and
        ``n_conversions`` (int64).
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    DataFrame
        Sorted by ``session_id``, with columns:

        - ``session_id`` (int64), ``user_id`` (the input's dtype)
        - ``start``, ``end`` (datetime64[ns, UTC]): first and last event
        - ``duration`` (timedelta64[ns]), ``n_events`` (int64)
        - ``landing_event``: the first event's name; ``landing_page`` when ``page`` (or
          ``url``) is present
        - ``utm_source``, ``utm_medium``, ``utm_campaign``, ``referrer``, ``channel``: of
          the first event, each when present in the input
        - ``revenue`` (float64): sum over the session, when present
        - ``converted`` (bool), ``n_conversions`` (int64): when ``conversion`` is given

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"],
    ...                    "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:05",
    ...                                                 "2026-01-01 10:00"], utc=True),
    ...                    "event": ["view", "purchase", "view"]})
    >>> ss = jf.sessions(jf.sessionize(ev), conversion="purchase")
    >>> ss[["session_id", "user_id", "n_events", "converted"]]
       session_id user_id  n_events  converted
    0           0       a         2       True
    1           1       b         1      False
    """
    found = _session_rows(events, conversion=conversion, columns=columns)
    return _session_table(events, found, slice(None))


class _SessionRows(NamedTuple):
    """Per session, in session id order: what :func:`sessions` gathers its table from
    (about 24 bytes a session, against some 80 in the table)."""

    names: dict[str, str]
    ids: np.ndarray  # session id (the column's value at the first row)
    times: np.ndarray  # every event's time, int64 ns UTC (naive times taken as UTC)
    first: np.ndarray  # first event row (int32 when it fits)
    last: np.ndarray  # last event row
    counts: np.ndarray  # events
    revenue: np.ndarray | None  # float64 sum, when the events carry revenue
    n_conv: np.ndarray | None  # conversions, when asked for


def _session_rows(
    events: pd.DataFrame,
    *,
    conversion: str | list[str] | None,
    columns: Mapping[str, str] | None,
    index: SessionIndex | None = None,
) -> _SessionRows:
    """Check the events and find each session's rows (see :func:`sessions`); ``index``:
    :func:`_sessionize`'s, for the events it returned (not found again)."""
    check_frame("events", events)
    names = resolve_columns(
        events,
        columns,
        required=("user_id", "timestamp", "event", "session_id"),
        optional=("page", "url", "utm_source", "utm_medium", "utm_campaign", "referrer", "channel", "revenue"),
    )
    sid = events[names["session_id"]].to_numpy()
    if sid.dtype.kind not in "iu":
        raise InputTypeError(
            f"Column {names['session_id']!r} (session_id) must be integer codes as jf.sessionize "
            f"writes them; got dtype {sid.dtype}."
        )
    if len(events) == 0:
        raise DataError("events is empty: there are no sessions to describe.")
    code = ordered_codes(events[names["session_id"]])  # sessionize's ids (from 0) as they are, not copied
    times = time_ns(events[names["timestamp"]])  # (a view of UTC nanoseconds: no copy)
    if index is None:  # each session's first and last event, and its size
        first, last, counts = first_last_rows(code, times)
        assert last is not None and counts is not None
        table_codes = code[first]
    else:  # sessionize's: session i's rows at entry i (no gather of the ids)
        first, last, counts = index
        table_codes = np.arange(len(first), dtype=np.int64)
    narrow = np.int32 if len(events) < 2**31 - 1 else np.int64
    # per-session sums over the few rows that carry something: bincounts, no gather
    span = int(code.max()) + 1
    same = code.dtype == sid.dtype and code.ctypes.data == sid.ctypes.data  # the ids are their codes (from 0)
    revenue = None
    if "revenue" in names:
        col = events[names["revenue"]]
        if col.dtype == np.float64:
            rev = col.to_numpy()  # NaN already stands for missing: no copy
        else:
            rev = (col if col.dtype.kind == "f" else pd.to_numeric(col, errors="coerce")).to_numpy(
                dtype=np.float64, na_value=np.nan)
        has = np.flatnonzero(~np.isnan(rev))
        revenue = np.bincount(code[has], weights=rev[has], minlength=span)[table_codes]
    n_conv = None
    if conversion is not None:
        targets = [conversion] if isinstance(conversion, str) else list(conversion)
        is_conv = np.flatnonzero(events[names["event"]].isin(targets).to_numpy(dtype=bool))
        n_conv = np.bincount(code[is_conv], minlength=span)[table_codes].astype(narrow)
    return _SessionRows(
        dict(names), table_codes if same else sid[first], times, first.astype(narrow, copy=False), last.astype(narrow, copy=False),
        counts.astype(narrow, copy=False), revenue, n_conv
    )


def _session_table(events: pd.DataFrame, found: _SessionRows, part: slice) -> pd.DataFrame:
    """The rows ``part`` (a slice of sessions) of the :func:`sessions` table: numpy
    gathers at the sessions' first and last rows, a categorical's codes as they are."""
    names = found.names
    first, last = found.first[part], found.last[part]

    def at(col: str) -> Any:  # the dtype kept
        values = events[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            return pd.Categorical.from_codes(values.array.codes[first], dtype=values.dtype, validate=False)
        return values.iloc[first].reset_index(drop=True)

    start, end = found.times[first], found.times[last]
    cols: dict[str, Any] = {
        "session_id": found.ids[part].astype(np.int64),
        "user_id": take_rows(events[names["user_id"]], first),
        "start": pd.Series(start.view("datetime64[ns]"), copy=False).dt.tz_localize("UTC"),
        "end": pd.Series(end.view("datetime64[ns]"), copy=False).dt.tz_localize("UTC"),
        "duration": np.subtract(end, start).view("timedelta64[ns]"),
        "n_events": found.counts[part].astype(np.int64),
        "landing_event": at(names["event"]),
    }
    page = names.get("page", names.get("url"))
    if page is not None:
        cols["landing_page"] = at(page)
    for col in ("utm_source", "utm_medium", "utm_campaign", "referrer", "channel"):
        if col in names:
            cols[col] = at(names[col])
    if found.revenue is not None:
        cols["revenue"] = found.revenue[part]
    if found.n_conv is not None:
        cols["n_conversions"] = found.n_conv[part].astype(np.int64)
        cols["converted"] = cols["n_conversions"] > 0
    return pd.DataFrame(cols, copy=False)


def _session_parts(
    events: pd.DataFrame,
    *,
    conversion: str | list[str] | None = None,
    rows: int = 1 << 19,
    columns: Mapping[str, str] | None = None,
    index: SessionIndex | None = None,
) -> Iterator[pd.DataFrame]:
    """:func:`sessions` ``rows`` sessions at a time: the events are checked and each
    session's rows found at the call; each part (index from 0) is built when it is
    asked for. The parts, concatenated, equal ``sessions(events, ...)``; between them
    only the per-session rows are held (about a third of the table)."""
    found = _session_rows(events, conversion=conversion, columns=columns, index=index)
    n = len(found.first)

    def parts() -> Iterator[pd.DataFrame]:
        for start in range(0, n, rows):  # a loop over slices of sessions
            yield _session_table(events, found, slice(start, start + rows))

    return parts()
