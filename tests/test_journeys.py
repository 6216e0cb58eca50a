"""build_journeys against hand-worked logs and a slow reference; path round trips."""

from __future__ import annotations

import itertools
import pickle
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import journeyflow as jf
from journeyflow.exceptions import DataError, SchemaError


def _log(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    ev = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "channel"])
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    return ev


def test_hand_worked_journeys_with_repeat_conversions_and_lookback() -> None:
    ev = _log(
        [
            ("a", "2026-01-01 09:00", "view", "Display"),        # older than 30 days before the 1st purchase
            ("a", "2026-02-10 09:00", "view", "Email"),
            ("a", "2026-02-11 09:00", "view", "Paid Search"),
            ("a", "2026-02-11 09:05", "purchase", "Paid Search"),  # same session as the view
            ("a", "2026-02-11 09:06", "purchase", "Paid Search"),  # two purchases in one session
            ("a", "2026-02-20 10:00", "view", "Direct"),
            ("a", "2026-02-21 10:00", "purchase", "Email"),
            ("a", "2026-03-01 10:00", "view", "Organic Social"),  # no conversion after: null path
            ("b", "2026-01-05 10:00", "view", "Referral"),
        ]
    )
    ev["revenue"] = [np.nan, np.nan, np.nan, 10.0, 5.0, np.nan, 7.5, np.nan, np.nan]
    jr = jf.build_journeys(jf.sessionize(ev), lookback="30D")
    paths = jr.to_paths(aggregate=False)
    assert paths["path"].tolist() == [
        "Email > Paid Search",
        "Direct > Email",
        "Organic Social",
        "Referral",
    ]
    assert paths["conversions"].tolist() == [2.0, 1.0, 0.0, 0.0]
    assert paths["nulls"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert paths["value"].tolist() == [15.0, 7.5, 0.0, 0.0]
    assert list(jr.user_ids) == ["a", "a", "a", "b"]
    assert jr.total_conversions == (ev["event"] == "purchase").sum()
    ct = pd.to_datetime(jr.conversion_times[:2], utc=True)
    assert list(ct) == [pd.Timestamp("2026-02-11 09:05", tz="UTC"), pd.Timestamp("2026-02-21 10:00", tz="UTC")]
    # without lookback the old Display touch stays
    all_touches = jf.build_journeys(jf.sessionize(ev), lookback=None).to_paths(aggregate=False)
    assert all_touches["path"].iloc[0] == "Display > Email > Paid Search"


def test_unit_event_collapse_and_segments() -> None:
    ev = _log(
        [
            ("a", "2026-01-01 09:00", "view", "Email"),
            ("a", "2026-01-01 09:01", "view", "Email"),
            ("a", "2026-01-01 09:02", "purchase", "Direct"),
        ]
    ).assign(device="mobile")
    jr = jf.build_journeys(ev, unit="event", value=None, segments=["device"])
    assert jr.to_paths()["path"].tolist() == ["Email > Email > Direct"]
    jr2 = jf.build_journeys(ev, unit="event", collapse_repeats=True, value=None)
    assert jr2.to_paths()["path"].tolist() == ["Email > Direct"]
    assert jr.segments is not None and jr.segments["device"].tolist() == ["mobile"]


def test_conversion_as_list_or_boolean_column_and_errors() -> None:
    ev = _log([("a", "2026-01-01", "signup", "Email"), ("a", "2026-01-03", "purchase", "Direct")])
    assert jf.build_journeys(ev, conversion=["signup", "purchase"], value=None).total_conversions == 2
    flagged = ev.assign(is_conv=[False, True])
    assert jf.build_journeys(flagged, conversion="is_conv", value=None).total_conversions == 1
    with pytest.raises(DataError, match="never occur"):
        jf.build_journeys(ev, conversion="order")
    with pytest.raises(SchemaError, match="assign_touchpoints"):
        jf.build_journeys(ev.drop(columns="channel"))


def _slow_journeys(ev: pd.DataFrame, lookback: pd.Timedelta) -> list[tuple[str, tuple[str, ...], int]]:
    """Loop over users and their sessions in time order."""
    out = []
    ses = jf.sessionize(ev)
    for user, rows in ses.sort_values(["user_id", "timestamp"], kind="stable").groupby("user_id", sort=True):
        sessions = []
        for _, s in rows.groupby("session_id", sort=False):
            conv_rows = s[s["event"] == "purchase"]
            sessions.append((s["timestamp"].iloc[0], s["channel"].iloc[0], len(conv_rows),
                             conv_rows["timestamp"].min() if len(conv_rows) else None))
        sessions.sort(key=lambda x: x[0])
        current: list[tuple[pd.Timestamp, str]] = []
        for start, ch, n_conv, t_conv in sessions:
            current.append((start, ch))
            if n_conv:
                kept = [c for st_, c in current[:-1] if st_ >= t_conv - lookback] + [current[-1][1]]
                out.append((str(user), tuple(kept), n_conv))
                current = []
        if current:
            out.append((str(user), tuple(c for _, c in current), 0))
    return out


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 24 * 20),
            st.sampled_from(["view", "view", "purchase"]),
            st.sampled_from(["Email", "Direct", "Paid Search"]),
        ),
        min_size=1,
        max_size=40,
    ).filter(lambda rows: any(r[2] == "purchase" for r in rows)),
    st.sampled_from([pd.Timedelta("2D"), pd.Timedelta("7D")]),
    st.booleans(),
)
def test_matches_slow_reference_and_reconciles(rows: list[tuple[str, int, str, str]], lookback: pd.Timedelta,
                                               two_threads: bool) -> None:
    from unittest import mock

    from journeyflow import journeys

    ev = pd.DataFrame(rows, columns=["user_id", "h", "event", "channel"])
    ev["timestamp"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(ev.pop("h"), unit="h")
    ev = ev.drop_duplicates(["user_id", "timestamp"])  # distinct times: the channel of a session is unambiguous
    assume((ev["event"] == "purchase").any())
    with mock.patch.object(journeys, "_PARALLEL_ROWS", 0 if two_threads else 10**12):
        jr = jf.build_journeys(ev, lookback=lookback, value=None)
    got = []
    frame = jr.to_frame()
    for j in range(jr.n_paths):
        touches = tuple(frame.loc[frame["journey"] == j, "touch"].astype(str))
        got.append((str(jr.user_ids[j]), touches, int(jr.conversions[j])))
    assert got == _slow_journeys(ev, lookback)
    assert jr.total_conversions == (ev["event"] == "purchase").sum()
    # row order does not matter
    shuffled = jf.build_journeys(ev.iloc[::-1], lookback=lookback, value=None)
    assert shuffled.to_paths(aggregate=False).equals(jr.to_paths(aggregate=False))
    # session ids of the user's own, with gaps between them, give the same journeys
    own = jf.sessionize(ev).assign(session_id=lambda d: d["session_id"] * 7 + 3)
    gaps = jf.build_journeys(own, lookback=lookback, value=None)
    assert gaps.to_paths(aggregate=False).equals(jr.to_paths(aggregate=False))
    # ... and ids in no particular order (the sessions are sorted by user and start),
    # conversion times included
    sid = jf.sessionize(ev)["session_id"].to_numpy()
    mixed = own.assign(session_id=np.random.default_rng(len(ev)).permutation(sid.max() + 1)[sid])
    again = jf.build_journeys(mixed, lookback=lookback, value=None)
    assert again.to_paths(aggregate=False).equals(jr.to_paths(aggregate=False))
    np.testing.assert_array_equal(again.conversion_times, jr.conversion_times)


def test_from_paths_round_trip_and_separator_clash() -> None:
    paths = pd.DataFrame({"path": ["a > b > c", "b", "c > a"], "total_conversions": [3, 0, 2],
                          "total_null": [1, 5, 0], "value": [30.0, 0.0, 12.5]})
    jr = jf.Journeys.from_paths(paths, value="value")
    back = jr.to_paths()
    assert back["path"].tolist() == paths["path"].tolist()
    assert back["conversions"].tolist() == [3.0, 0.0, 2.0]
    assert back["nulls"].tolist() == [1.0, 5.0, 0.0]
    assert back["value"].tolist() == [30.0, 0.0, 12.5]
    again = jf.Journeys.from_paths(back, conversions="conversions", nulls="nulls", value="value")
    assert again.to_paths().equals(back)
    odd = jf.Journeys([0], [0, 1], ["a > b"], [1.0])
    with pytest.raises(DataError, match="'a > b' contains the separator"):
        odd.to_paths()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["", " ", "  "]), st.sampled_from(["a", "b", "Paid Search", "é"]),
                                   st.sampled_from(["", " "])), min_size=1, max_size=5), min_size=1, max_size=12),
       st.sampled_from([1, 3, 1 << 16]))
def test_from_paths_parses_like_a_python_split(rows: list[list[tuple[str, str, str]]], block: int) -> None:
    """Against str.split and strip, parsed in blocks of 1 or 3 rows or in one: the same
    touches, channels in order of first appearance."""
    from journeyflow import journeys

    text = [">".join(f"{pre}{name}{post}" for pre, name, post in row) for row in rows]
    names: dict[str, int] = {}
    expected = [[names.setdefault(t.strip(), len(names)) for t in s.split(">")] for s in text]
    with mock.patch.object(journeys, "PARSE_BLOCK", block):
        jr = jf.Journeys.from_paths(pd.DataFrame({"path": text, "total_conversions": 1, "total_null": 0}))
    assert list(jr.channels) == list(names)
    assert [jr.touches[a:b].tolist() for a, b in itertools.pairwise(jr.offsets)] == expected


@pytest.mark.parametrize("block", [1, 2, 1 << 16])
def test_from_paths_names_the_row_of_an_empty_touch(block: int) -> None:
    from journeyflow import journeys

    df = pd.DataFrame({"path": ["a > b", "b", "c >  > a", "a"], "total_conversions": 1, "total_null": 0})
    with mock.patch.object(journeys, "PARSE_BLOCK", block), pytest.raises(DataError, match="row 2 has an empty touch"):
        jf.Journeys.from_paths(df)
    with pytest.raises(DataError, match="missing path at row 1"):
        jf.Journeys.from_paths(pd.DataFrame({"path": ["a", None], "total_conversions": 1, "total_null": 0}))
    with pytest.raises(DataError, match="must hold path strings"):
        jf.Journeys.from_paths(pd.DataFrame({"path": [1, 2], "total_conversions": 1, "total_null": 0}))


def test_missing_touches_label_drop_and_empty_journeys() -> None:
    ev = _log(
        [
            ("a", "2026-01-01", "view", "Email"),
            ("a", "2026-01-02", "purchase", None),   # the converting session has no channel
            ("b", "2026-01-01", "purchase", None),   # a journey with no known touch at all
        ]
    )
    labelled = jf.build_journeys(ev, value=None)
    assert labelled.to_paths(aggregate=False)["path"].tolist() == ["Email > (none)", "(none)"]
    # the same as a categorical with an unused category: the same touches and channels
    cat = ev.assign(channel=pd.Categorical(ev["channel"], categories=["Display", "Email"]))
    as_cat = jf.build_journeys(cat, value=None)
    assert as_cat.to_paths(aggregate=False)["path"].tolist() == ["Email > (none)", "(none)"]
    assert list(as_cat.channels) == ["Email", "(none)"]
    dropped = jf.build_journeys(ev, value=None, missing="drop")
    assert dropped.to_paths(aggregate=False)["path"].tolist() == ["Email", ""]
    assert dropped.total_conversions == 2  # the empty journey is kept by default
    with pytest.warns(jf.DataQualityWarning, match="1 journeys had no touch left.*1 of 2 conversions"):
        gone = jf.build_journeys(ev, value=None, missing="drop", drop_empty=True)
    assert gone.n_paths == 1 and gone.total_conversions == 1


def _held_bytes(obj: object) -> int:
    """Slow reference for nbytes: every array reachable through the container's slots."""
    if obj is None or isinstance(obj, (int, str, np.dtype)):
        return 0
    if isinstance(obj, np.ndarray):
        deep = pd.Series(obj, dtype=object).memory_usage(deep=True, index=False) if obj.dtype == object else 0
        return int(deep or obj.nbytes)
    if isinstance(obj, pa.Array):
        return int(obj.get_total_buffer_size())
    if isinstance(obj, (pd.Index, pd.DataFrame)):
        usage = obj.memory_usage(deep=True) if isinstance(obj, pd.Index) else obj.memory_usage(deep=True, index=False).sum()
        return int(usage)
    slots = [s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())]
    assert slots, f"unexpected object held by Journeys: {type(obj)}"
    return sum(_held_bytes(getattr(obj, s)) for s in slots)


def test_nbytes_counts_everything_held_and_the_user_id_text() -> None:
    ev = jf.assign_touchpoints(jf.datasets.simulate_webshop(200, seed=4))
    jr = jf.build_journeys(ev, segments=["device"])
    assert jr.nbytes == _held_bytes(jr)
    assert jr.nbytes >= jr.n_touches * (1 + 8)  # a code and an int64 ns time per touch at least
    # the text of the ids is counted: 40 more characters per person, at least 40 more bytes each
    longer = ev.assign(user_id="x" * 40 + ev["user_id"].astype(str))
    assert jf.build_journeys(longer, segments=["device"]).nbytes - jr.nbytes >= 40 * ev["user_id"].nunique()
    paths = jf.Journeys.from_paths(jr.to_paths(), conversions="conversions", nulls="nulls", value="value")
    assert paths.nbytes == _held_bytes(paths)
    assert paths.nbytes < jr.nbytes  # aggregated: no times, no user ids
    mixed = jf.Journeys([0], [0, 1, 1], ["a"], [1.0, 0.0], user_ids=np.array([("tuple", 1), None], dtype=object))
    assert mixed.nbytes == _held_bytes(mixed)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from("abc"), min_size=0, max_size=4), st.integers(0, 3),
                          st.integers(0, 3)), min_size=1, max_size=30))
def test_distinct_merges_exactly_the_identical_paths(rows: list[tuple[list[str], int, int]]) -> None:
    channels = ["a", "b", "c"]
    touches = np.array([channels.index(t) for path, _, _ in rows for t in path], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p, _, _ in rows])])
    jr = jf.Journeys(touches, offsets, channels, [c for _, c, _ in rows], [n for _, _, n in rows],
                     value=[2.0 * c for _, c, _ in rows])
    merged, which = jr.distinct()
    order: list[tuple[str, ...]] = []  # slow reference: dict of tuples in order of first appearance
    sums: dict[tuple[str, ...], list[float]] = {}
    for path, c, n in rows:
        key = tuple(path)
        if key not in sums:
            order.append(key)
            sums[key] = [0.0, 0.0]
        sums[key][0] += c
        sums[key][1] += n
    assert merged.n_paths == len(order)
    got = [tuple(channels[t] for t in merged.touches[merged.offsets[i]:merged.offsets[i + 1]])
           for i in range(merged.n_paths)]
    assert got == order
    assert merged.conversions.tolist() == [sums[k][0] for k in order]
    assert merged.nulls.tolist() == [sums[k][1] for k in order]
    assert merged.value.tolist() == [2.0 * sums[k][0] for k in order]
    assert [order[w] for w in which] == [tuple(p) for p, _, _ in rows]


# --------------------------------------------------------------- compact storage
NAT = np.iinfo(np.int64).min
T0 = pd.Timestamp("2026-01-01", tz="UTC").value  # ns
SECOND, MS = 10**9, 10**6


def _plain(jr: jf.Journeys) -> dict[str, object]:
    return {name: getattr(jr, name) for name in (
        "touches", "offsets", "conversions", "nulls", "value", "times", "conversion_times", "user_ids", "lengths",
        "path_index")}


def _assert_same(got: object, want: object, name: str) -> None:
    if want is None:
        assert got is None, name
        return
    want = np.asarray(want)
    assert isinstance(got, np.ndarray), name
    if want.dtype.kind == "f":  # bit for bit: -0.0 is not 0.0
        assert got.dtype == np.float64 and np.array_equal(got.view(np.int64), want.view(np.int64)), name
    elif want.dtype == object:
        missing = pd.isna(want)  # NaN != NaN once pickled (another float object)
        assert got.dtype == object and np.array_equal(pd.isna(got), missing), name
        assert got[~missing].tolist() == want[~missing].tolist(), name
        assert [type(x) for x in got] == [type(x) for x in want], name
    else:
        assert got.dtype.kind == want.dtype.kind and np.array_equal(got, want), name


def _check_round_trip(lengths: list[int], touches: np.ndarray, conversions: np.ndarray, nulls: np.ndarray | None,
                      value: np.ndarray | None, times: np.ndarray | None, conversion_times: np.ndarray | None,
                      user_ids: object) -> jf.Journeys:
    """Build, then compare every attribute with the uncompressed inputs; also after take and concat."""
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    channels = [f"c{i}" for i in range(int(touches.max()) + 1 if len(touches) else 1)]
    jr = jf.Journeys(touches, offsets, channels, conversions, nulls, value, times=times,
                     conversion_times=conversion_times, user_ids=user_ids)
    want = {
        "touches": touches, "offsets": offsets, "conversions": conversions,
        "nulls": np.clip(1.0 - conversions, 0.0, None) if nulls is None else nulls,
        "value": conversions if value is None else value, "times": times, "conversion_times": conversion_times,
        "user_ids": None if user_ids is None else np.asarray(user_ids), "lengths": np.asarray(lengths, dtype=np.int64),
        "path_index": np.repeat(np.arange(len(lengths)), lengths),
    }
    for name, got in _plain(jr).items():
        _assert_same(got, want[name], name)
    assert jr.offsets.dtype == np.int64 and jr.lengths.dtype == np.int64
    assert jr.nbytes == _held_bytes(jr)
    for name, got in _plain(pickle.loads(pickle.dumps(jr))).items():  # as dask ships it
        _assert_same(got, want[name], f"pickled: {name}")
    # take: every other path, reversed; the same values as taking the plain arrays
    idx = np.arange(len(lengths))[::-2]
    part = jr.take(idx)
    sub_offsets = np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64)[idx])])
    pos = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx]).astype(np.int64) if len(idx) else idx
    for name, got in _plain(part).items():
        full = want[name]
        if name == "offsets":
            expected: object = sub_offsets
        elif name in ("lengths", "path_index"):
            continue
        elif full is None:
            expected = None
        else:
            expected = np.asarray(full)[pos if name in ("touches", "times") else idx]
        _assert_same(got, expected, f"take: {name}")
    # concat with itself: the two halves read back the same
    both = jf.Journeys.concat([jr, jr], channels=channels)
    for name in ("touches", "conversions", "nulls", "value", "times", "conversion_times"):
        full = want[name]
        _assert_same(getattr(both, name), None if full is None else np.concatenate([full, full]), f"concat: {name}")
    return jr


def _single_journeys(rng: np.random.Generator, n_paths: int) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    lengths = rng.integers(0, 6, n_paths).tolist()
    touches = rng.integers(0, 9, sum(lengths))
    conversions = (rng.random(n_paths) < 0.2).astype(np.float64)
    value = np.where(conversions > 0, np.round(rng.gamma(2.0, 40.0, n_paths), 2), 0.0)
    return lengths, touches, conversions, value


def _touch_times(rng: np.random.Generator, lengths: list[int], unit: int, gap: int, days: int = 120) -> np.ndarray:
    """Non-decreasing times within each path, whole multiples of ``unit``, gaps below ``gap``,
    paths starting anywhere in ``days`` days."""
    start = T0 + rng.integers(0, max(days * 86_400 * SECOND // unit, 1), len(lengths)) * unit
    steps = rng.integers(0, max(gap // unit, 1), sum(lengths)) * unit
    first = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths).astype(np.int64)
    csum = np.cumsum(steps)
    return np.asarray(np.repeat(start, lengths) + csum - csum[first], dtype=np.int64)


def _conversion_times(rng: np.random.Generator, times: np.ndarray, lengths: list[int], conversions: np.ndarray,
                      unit: int) -> np.ndarray:
    """After each converting path's last touch (or at T0 for an empty path), NaT elsewhere."""
    ends = np.cumsum(lengths) - 1
    last = np.where(np.asarray(lengths) > 0, times[np.maximum(ends, 0)] if len(times) else T0, T0)
    after = last + rng.integers(0, max(3600 * SECOND // unit, 1), len(lengths)) * unit
    return np.where(conversions > 0, after, NAT).astype(np.int64)


# (label, unit of the times, largest gap between touches, days the paths start over, expected layout)
TIME_CASES = [
    ("ns over months: int64 fallback", 1, 7 * 86_400 * SECOND, 120, "int64"),
    ("ns within a second: uint32 ns", 1, 100 * MS, 0, "global"),
    ("whole seconds over months: uint32 seconds", SECOND, 7 * 86_400 * SECOND, 120, "global"),
    ("whole minutes: the unit is the gcd", 60 * SECOND, 7 * 86_400 * SECOND, 120, "global"),
    ("ms over 20 days: uint32 ms", MS, 86_400 * SECOND, 20, "global"),
    ("ms over months: uint32 ms from each path's first touch", MS, 86_400 * SECOND, 120, "per_path"),
    ("ms, paths spanning months: int64 fallback", MS, 60 * 86_400 * SECOND, 120, "int64"),
]


@pytest.mark.parametrize(("label", "unit", "gap", "days", "layout"), TIME_CASES, ids=[c[0] for c in TIME_CASES])
def test_times_round_trip_exactly_in_every_layout(label: str, unit: int, gap: int, days: int, layout: str) -> None:
    rng = np.random.default_rng(7)
    lengths, touches, conversions, value = _single_journeys(rng, 3000)
    times = _touch_times(rng, lengths, unit, gap, days)
    conv_times = _conversion_times(rng, times, lengths, conversions, unit)
    ids = np.array([f"u{i // 2:05d}" for i in range(len(lengths))], dtype=object)  # two journeys per person
    jr = _check_round_trip(lengths, touches, conversions, None, value, times, conv_times, ids)
    stored = jr._times
    assert stored is not None
    got = "int64" if stored.codes.dtype == np.int64 else "per_path" if stored.per_path else "global"
    assert got == layout
    if layout != "int64":
        assert stored.codes.dtype == np.uint32 and stored.unit == unit
    assert jr.conversion_times is not None and (jr.conversion_times == NAT).sum() == (conversions == 0).sum()


def test_touches_too_far_from_their_path_start_are_kept_whole() -> None:
    # ms times: most paths span a few days, some null paths run for months (beyond 2**32 ms = 49.7 days)
    rng = np.random.default_rng(11)
    lengths, touches, conversions, value = _single_journeys(rng, 3000)
    times = _touch_times(rng, lengths, MS, 86_400 * SECOND)
    ends = np.cumsum(lengths)[np.asarray(lengths) > 1] - 1
    late = rng.choice(ends, 30, replace=False)
    times[late] += 80 * 86_400 * SECOND  # the last touch of 30 paths, 80 days later
    conv_times = _conversion_times(rng, times, lengths, conversions, MS)
    jr = _check_round_trip(lengths, touches, conversions, None, value, times, conv_times, None)
    stored = jr._times
    assert stored is not None and stored.per_path and stored.codes.dtype == np.uint32 and stored.unit == MS
    assert stored.patch_at is not None and sorted(stored.patch_at.tolist()) == sorted(late.tolist())
    assert stored.nbytes < 8 * jr.n_touches


def test_times_that_are_not_ordered_within_a_path_or_are_nat_round_trip() -> None:
    rng = np.random.default_rng(3)
    lengths, touches, conversions, value = _single_journeys(rng, 500)
    ordered = _touch_times(rng, lengths, MS, 86_400 * SECOND)
    assert _check_round_trip(lengths, touches, conversions, None, value, ordered, None, None)._times.per_path
    # each path's touches in reverse: the same spans, but the first touch is the latest
    first = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    rank = np.arange(len(ordered)) - first
    times = ordered[first + np.repeat(lengths, lengths) - 1 - rank]
    jr = _check_round_trip(lengths, touches, conversions, None, value, times, None, None)
    assert jr._times is not None and jr._times.codes.dtype == np.int64
    shuffled = rng.permutation(ordered)
    assert _check_round_trip(lengths, touches, conversions, None, value, shuffled, None, None)._times.codes.dtype == np.int64
    with_nat = times.copy()
    with_nat[::7] = NAT
    jr = _check_round_trip(lengths, touches, conversions, None, value, with_nat, np.full(len(lengths), NAT), None)
    assert jr.conversion_times is not None and (jr.conversion_times == NAT).all()


# per-path numbers: (label, conversions, nulls, value) on 6 paths
NUMBER_CASES = [
    ("single journeys", [0, 1, 0, 0, 1, 0], None, [0, 12.5, 0, 0, 0.1, 0]),
    ("single journeys, nulls given", [0, 1, 0, 0, 1, 0], [1, 0, 1, 1, 0, 1], None),
    ("repeat conversions", [0, 2, 0, 1, 3, 0], [1, 0, 1, 0, 0, 1], [0, 30, 0, 1e300, -5, 0]),
    ("aggregated counts", [3, 0, 300, 1, 0, 7], [70_000, 5, 1, 0, 2, 9], None),
    ("fractions", [0.5, 0.25, 0, 0.1, 1.5, 3], [0.5, 0.1, 1, 0, 0, 2.0**-30], [0.5, -0.0, 0, 0.1, 2.5, 3]),
    ("fractions, default nulls", [0.5, 0.25, 0, 0.1, 1.5, 3], None, None),
    ("beyond 32 bits", [2.0**40, 1, 0, 0, 5, 2.0**32], [0, 0, 2.0**33, 1, 0, 0], [1e-9, 0, 0, 0, 0, 0]),
    ("value -0.0 on a null path", [0, 1, 0, 0, 0, 0], None, [-0.0, 3, 0, 0, 0, 0]),
]


@pytest.mark.parametrize(("label", "conversions", "nulls", "value"), NUMBER_CASES, ids=[c[0] for c in NUMBER_CASES])
def test_per_path_numbers_round_trip_bit_for_bit(label: str, conversions: list[float], nulls: list[float] | None,
                                                 value: list[float] | None) -> None:
    lengths = [1, 2, 0, 3, 1, 1]
    touches = np.array([0, 1, 2, 0, 2, 1, 1, 0], dtype=np.int64)
    _check_round_trip(lengths, touches, np.array(conversions, dtype=np.float64),
                      None if nulls is None else np.array(nulls, dtype=np.float64),
                      None if value is None else np.array(value, dtype=np.float64), None, None, None)


def test_single_journeys_store_no_nulls_and_value_only_where_converted() -> None:
    rng = np.random.default_rng(5)
    lengths, touches, conversions, value = _single_journeys(rng, 4000)
    jr = jf.Journeys(touches, np.concatenate([[0], np.cumsum(lengths)]), [f"c{i}" for i in range(9)], conversions,
                     1 - conversions, value)
    assert jr._nulls is None  # derived from conversions
    assert jr._conversions.values.dtype == np.uint8
    assert jr._value.mask is not None and len(jr._value.values) == np.count_nonzero(value)
    assert jr._touches.dtype == np.int8 and jr._offsets.dtype == np.int32
    many = jf.Journeys([200], [0, 1], [f"c{i}" for i in range(300)], [1.0])
    assert many.touches.dtype == np.int16 and many.touches.tolist() == [200]


# user ids: (label, ids for 6 paths, expected layout: "runs", "codes" or "plain")
ID_CASES = [
    ("strings, consecutive per person", np.array(["b", "b", "a", "c", "c", "c"], dtype=object), "runs"),
    ("strings, interleaved", np.array(["b", "a", "b", "c", "a", "é"], dtype=object), "codes"),
    ("integers", np.array([10, 10, 3, 2**40, 2**40, -1]), "runs"),
    ("fixed-width numpy strings", np.array(["x", "yy", "x", "zzz", "x", "yy"]), "codes"),
    ("mixed objects", np.array(["1", 1, 1, "1", 2.5, "1"], dtype=object), "codes"),
    ("missing values", np.array(["a", None, "b", np.nan, None, "a"], dtype=object), "plain"),
    ("floats", np.array([0.0, -0.0, 1.5, np.nan, 1.5, 2.0]), "plain"),
]


@pytest.mark.parametrize(("label", "ids", "layout"), ID_CASES, ids=[c[0] for c in ID_CASES])
def test_user_ids_round_trip_with_their_types(label: str, ids: np.ndarray, layout: str) -> None:
    lengths = [1, 2, 0, 3, 1, 1]
    touches = np.array([0, 1, 2, 0, 2, 1, 1, 0], dtype=np.int64)
    conversions = np.array([0, 1, 0, 0, 1, 0], dtype=np.float64)
    jr = _check_round_trip(lengths, touches, conversions, None, None, None, None, ids)
    stored = jr._user_ids
    got = "plain" if isinstance(stored, np.ndarray) else "runs" if stored.codes is None else "codes"
    assert got == layout
    if label == "floats":  # -0.0 and 0.0 stay apart
        assert np.signbit(jr.user_ids[1]) and not np.signbit(jr.user_ids[0])


def test_user_ids_from_categoricals_and_arrow_strings() -> None:
    touches = np.array([0, 1, 0], dtype=np.int64)
    cat = pd.Categorical(["b", "a", "b"], categories=["z", "a", "b"])  # an unused category
    jr = jf.Journeys(touches, [0, 1, 2, 3], ["p", "q"], [1.0, 0.0, 0.0], user_ids=cat)
    assert jr.user_ids is not None and jr.user_ids.dtype == object and jr.user_ids.tolist() == ["b", "a", "b"]
    arrow = pd.Series(["x", "y", "y"], dtype="string[pyarrow]")
    jr = jf.Journeys(touches, [0, 1, 2, 3], ["p", "q"], [1.0, 0.0, 0.0], user_ids=arrow)
    assert jr.user_ids is not None and jr.user_ids.tolist() == ["x", "y", "y"]
    assert isinstance(jr._user_ids.categories, pa.Array) and jr.take([2, 0]).user_ids.tolist() == ["y", "x"]


def test_public_arrays_are_read_only() -> None:
    rng = np.random.default_rng(1)
    lengths, touches, conversions, value = _single_journeys(rng, 50)
    times = _touch_times(rng, lengths, SECOND, 86_400 * SECOND)
    jr = jf.Journeys(touches, np.concatenate([[0], np.cumsum(lengths)]), [f"c{i}" for i in range(9)], conversions,
                     value=value, times=times, user_ids=np.arange(50))
    for name in ("touches", "offsets", "conversions", "nulls", "value", "times", "user_ids"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(jr, name)[0] = 1
    times[0] += 1  # the caller's arrays are not shared
    assert jr.times is not None and jr.times[0] == times[0] - 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=40),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 1000, MS, SECOND, 3600 * SECOND]),
    st.sampled_from([10 * MS, 86_400 * SECOND, 40 * 86_400 * SECOND]),
    st.sampled_from(["single", "counts", "fractions"]),
    st.sampled_from(["strings", "ints", "none"]),
)
def test_every_attribute_round_trips(lengths: list[int], seed: int, unit: int, gap: int, numbers: str,
                                     ids: str) -> None:
    rng = np.random.default_rng(seed)
    n = len(lengths)
    touches = rng.integers(0, 5, sum(lengths))
    if numbers == "single":
        conversions = (rng.random(n) < 0.3).astype(np.float64)
        nulls, value = None, np.where(conversions > 0, rng.integers(0, 10_000, n) / 100, 0.0)
    elif numbers == "counts":
        conversions, nulls = rng.integers(0, 2**rng.integers(1, 20), (2, n)).astype(np.float64)
        value = None
    else:
        conversions, nulls, value = rng.choice([0.0, 0.5, 1.0, 0.1, 7.0, -0.0, 1e12], size=(3, n))
        conversions, nulls = np.abs(conversions) + 0.0, np.abs(nulls) + 0.0
    times = _touch_times(rng, lengths, unit, gap, days=int(rng.integers(0, 200)))
    conv_times = _conversion_times(rng, times, lengths, conversions, unit)
    users = np.sort(rng.integers(0, max(n // 2, 1), n)) if rng.random() < 0.5 else rng.integers(0, 5, n)
    user_ids = None if ids == "none" else users if ids == "ints" else np.array([f"id{u}" for u in users], dtype=object)
    _check_round_trip(lengths, touches, conversions, nulls, value, times, conv_times, user_ids)


def test_build_journeys_keeps_whole_second_times_compact_and_exact() -> None:
    ev = jf.sessionize(jf.assign_touchpoints(jf.datasets.simulate_webshop(300, seed=2)))
    ev["timestamp"] = ev["timestamp"].dt.floor("s")
    jr = jf.build_journeys(ev)
    assert jr._times is not None and jr._times.codes.dtype == np.uint32 and jr._times.unit % SECOND == 0
    first_of_session = ev.sort_values(["session_id", "timestamp"]).groupby("session_id")["timestamp"].first()
    frame = jr.to_frame()
    assert frame["time"].isin(first_of_session).all()
    assert jr.times is not None and jr.times.min() == ev["timestamp"].min().value
    converted = jr.conversion_times[jr.conversions > 0]
    assert np.isin(converted, ev.loc[ev["event"] == "purchase", "timestamp"].astype("int64")).all()


def test_journeys_of_the_simulated_log_take_at_most_16_bytes_per_touch() -> None:
    # issue 3: the container's memory (a size, not a timing); 28.0 B/touch before compact storage
    ev = jf.datasets.simulate_webshop(90_000, seed=0)
    jr = jf.build_journeys(jf.assign_phases(jf.assign_touchpoints(jf.sessionize(ev))))
    assert jr.n_touches > 300_000
    assert jr.nbytes == _held_bytes(jr)
    assert jr.nbytes / jr.n_touches <= 16.0
