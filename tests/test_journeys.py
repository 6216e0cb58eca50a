"""build_journeys against hand-worked logs and a slow reference; path round trips."""

from __future__ import annotations

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
)
def test_matches_slow_reference_and_reconciles(rows: list[tuple[str, int, str, str]], lookback: pd.Timedelta) -> None:
    ev = pd.DataFrame(rows, columns=["user_id", "h", "event", "channel"])
    ev["timestamp"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(ev.pop("h"), unit="h")
    ev = ev.drop_duplicates(["user_id", "timestamp"])  # distinct times: the channel of a session is unambiguous
    assume((ev["event"] == "purchase").any())
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
