"""Sessionisation against a slow, obviously-correct reference written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import journeyflow as jf
from journeyflow.sessions import sessionize, sessions


@pytest.fixture(scope="module", autouse=True, params=["one block", "blocks of 3 rows", "two threads"])
def _blocks(request: pytest.FixtureRequest) -> object:
    """Every test runs with the sorted rows in one block, in blocks of three rows (gaps
    and ids are found a block at a time: a block boundary must change nothing), and in
    blocks of three rows split in two halves on two threads (as from 512k rows on)."""
    import sys

    with pytest.MonkeyPatch.context() as mp:
        if request.param != "one block":
            mp.setattr(sys.modules["journeyflow.sessions"], "_BLOCK", 3)
        if request.param == "two threads":
            mp.setattr(sys.modules["journeyflow.sessions"], "PARALLEL_ROWS", 0)
        yield request.param


def reference_sessions(
    df: pd.DataFrame,
    timeout: pd.Timedelta,
    max_duration: pd.Timedelta | None = None,
    split_on_campaign: bool = False,
) -> list[int]:
    """Plain-Python sessionisation, one user at a time; returns ids in input order."""
    rows = list(range(len(df)))
    users = df["user_id"].tolist()
    times = [pd.Timestamp(t) for t in df["timestamp"]]
    camp_cols = [c for c in ("utm_source", "utm_medium", "utm_campaign") if c in df.columns]

    def campaign(i: int) -> tuple | None:
        vals = tuple(None if pd.isna(df[c].iloc[i]) else df[c].iloc[i] for c in camp_cols)
        return None if all(v is None for v in vals) else vals

    def user_key(u: object) -> tuple:
        return (type(u).__name__, u)

    assigned: dict[int, tuple] = {}
    for u in sorted(set(users), key=user_key):
        mine = sorted((i for i in rows if users[i] == u), key=lambda i: (times[i], i))
        k = -1
        prev_t = start_t = None
        in_force = None
        for i in mine:
            t = times[i]
            split = prev_t is None or (t - prev_t) > timeout
            if split:
                in_force = None
            c = campaign(i) if split_on_campaign else None
            if not split and split_on_campaign and c is not None and c != in_force:
                split = True
            if not split and max_duration is not None and (t - start_t) > max_duration:
                split = True
            if split:
                k += 1
                start_t = t
            if c is not None:
                in_force = c
            prev_t = t
            assigned[i] = (user_key(u), k)
    keys = sorted(set(assigned.values()))
    number = {key: n for n, key in enumerate(keys)}
    return [number[assigned[i]] for i in rows]


def frame(users, minutes, **extra) -> pd.DataFrame:
    base = pd.Timestamp("2026-03-01", tz="UTC")
    return pd.DataFrame(
        {
            "user_id": users,
            "timestamp": [base + pd.Timedelta(minutes=m) for m in minutes],
            "event": ["view"] * len(users),
            **extra,
        }
    )


def test_gap_equal_to_timeout_stays_in_session():
    ev = frame(["a", "a", "a"], [0, 30, 60.5])
    out = sessionize(ev, timeout="30min")
    # 0 -> 30 is exactly the timeout (not strictly greater): same session; 30 -> 60.5 splits
    assert out["session_id"].tolist() == [0, 0, 1]


def test_unsorted_input_and_numbering_by_user_then_start():
    ev = frame(["b", "a", "b", "a"], [100, 50, 0, 0])
    out = sessionize(ev, timeout="30min")
    # user a: 0, 50 -> sessions 0, 1 ; user b: 0, 100 -> sessions 2, 3
    assert out["session_id"].tolist() == [3, 1, 2, 0]
    assert out.index.equals(ev.index)


def test_input_not_mutated_and_columns_kept():
    ev = frame(["a", "b"], [0, 1], device=["m", "d"])
    before = ev.copy()
    out = sessionize(ev)
    pd.testing.assert_frame_equal(ev, before)
    assert list(out.columns) == ["user_id", "timestamp", "event", "device", "session_id"]
    assert out["session_id"].dtype == np.int64


def test_max_duration_splits_from_session_start():
    # events every 10 minutes for 70 minutes; max 25 minutes -> starts at 0, 30, 60
    ev = frame(["a"] * 8, [0, 10, 20, 30, 40, 50, 60, 70])
    out = sessionize(ev, timeout="30min", max_duration="25min")
    assert out["session_id"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_split_on_campaign():
    ev = frame(
        ["a"] * 5,
        [0, 1, 2, 3, 4],
        utm_source=[None, "google", None, "google", "mail"],
        utm_medium=[None, "cpc", None, "cpc", "email"],
    )
    out = sessionize(ev, split_on_campaign=True)
    # direct start; google/cpc arrives -> new; campaign-less view stays; same campaign stays; mail -> new
    assert out["session_id"].tolist() == [0, 1, 1, 1, 2]


def test_ties_keep_input_order_with_campaign_split():
    ev = frame(["a", "a", "a"], [0, 0, 0], utm_source=["x", "y", "x"])
    out = sessionize(ev, split_on_campaign=True)
    assert out["session_id"].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "users",
    [
        [3, 1, 3, 2],
        ["ü", "a", "ü", "日本"],
        pd.Categorical(["x", "y", "x", "z"], categories=["z", "y", "x"]),
    ],
)
def test_user_id_dtypes_match_reference(users):
    ev = frame(users, [0, 5, 50, 5])
    got = sessionize(ev)["session_id"].tolist()
    ref_ev = ev.assign(user_id=ev["user_id"].astype(object))
    assert got == reference_sessions(ref_ev, pd.Timedelta("30min"))


def test_tz_aware_and_naive_agree():
    ev = frame(["a", "a", "b"], [0, 31, 0])
    naive = ev.assign(timestamp=ev["timestamp"].dt.tz_localize(None))
    other_tz = ev.assign(timestamp=ev["timestamp"].dt.tz_convert("Europe/Amsterdam"))
    expected = sessionize(ev)["session_id"].tolist()
    assert expected == [0, 1, 2]
    assert sessionize(naive)["session_id"].tolist() == expected
    assert sessionize(other_tz)["session_id"].tolist() == expected


def test_column_mapping():
    ev = frame(["a", "a"], [0, 40]).rename(columns={"user_id": "visitor", "timestamp": "ts"})
    out = sessionize(ev, columns={"user_id": "visitor", "timestamp": "ts"})
    assert out["session_id"].tolist() == [0, 1]
    assert "user_id" not in out.columns


def test_empty_and_single_event():
    ev = frame(["a"], [0])
    assert sessionize(ev)["session_id"].tolist() == [0]
    assert sessionize(ev.iloc[:0])["session_id"].tolist() == []


def test_missing_column_error_names_it_and_suggests():
    ev = frame(["a"], [0]).rename(columns={"user_id": "userid"})
    with pytest.raises(jf.SchemaError, match=r"'user_id'.*userid"):
        sessionize(ev)


def test_bad_timeout_messages():
    ev = frame(["a"], [0])
    with pytest.raises(jf.OptionError, match=r"timeout must be a positive duration.*got -5 \(a int\)"):
        sessionize(ev, timeout=-5)
    with pytest.raises(jf.OptionError, match="timeout must be a positive duration"):
        sessionize(ev, timeout="-1min")
    with pytest.raises(jf.OptionError, match="cannot parse"):
        sessionize(ev, timeout="soon")


def test_null_user_and_string_timestamps_are_clear_errors():
    ev = frame(["a", None], [0, 1])
    with pytest.raises(jf.DataError, match=r"1 missing values.*validate_events"):
        sessionize(ev)
    ev = frame(["a"], [0]).assign(timestamp=["2026-01-01"])
    with pytest.raises(jf.InputTypeError, match="must be datetime64"):
        sessionize(ev)


# ---------------------------------------------------------------- properties
event_rows = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "ü4"]),
        st.integers(min_value=0, max_value=300),  # minutes
        st.sampled_from([None, "g", "m"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(rows=event_rows, timeout=st.sampled_from([1, 10, 30, 60]), maxd=st.sampled_from([None, 15, 45]))
def test_matches_reference(rows, timeout, maxd):
    users, minutes, camp = zip(*rows)
    ev = frame(list(users), list(minutes), utm_source=list(camp))
    for split in (False, True):
        got = sessionize(
            ev,
            timeout=f"{timeout}min",
            max_duration=None if maxd is None else f"{maxd}min",
            split_on_campaign=split,
        )["session_id"].tolist()
        ref = reference_sessions(
            ev,
            pd.Timedelta(minutes=timeout),
            None if maxd is None else pd.Timedelta(minutes=maxd),
            split,
        )
        assert got == ref


@settings(max_examples=60, deadline=None)
@given(rows=event_rows, seed=st.integers(0, 2**31 - 1))
def test_row_order_independence_and_gaps(rows, seed):
    users, minutes, _ = zip(*rows)
    ev = frame(list(users), list(minutes))
    out = sessionize(ev, timeout="30min")
    perm = np.random.default_rng(seed).permutation(len(ev))
    shuffled = sessionize(ev.iloc[perm], timeout="30min")
    # the same rows get the same ids, whatever the order
    assert shuffled["session_id"].sort_index().tolist() == out["session_id"].tolist()
    assert len(out) == len(ev)
    # every in-session gap is <= timeout; every user's sessions are disjoint in time
    srt = out.sort_values(["session_id", "timestamp"])
    gaps = srt.groupby("session_id")["timestamp"].diff().dropna()
    assert (gaps <= pd.Timedelta("30min")).all()
    assert (out.groupby("session_id")["user_id"].nunique() == 1).all()


@settings(max_examples=60, deadline=None)
@given(rows=event_rows, seed=st.integers(0, 2**31 - 1), maxd=st.sampled_from([None, 15]))
def test_session_index_is_each_sessions_first_and_last_row_and_size(rows, seed, maxd):
    """_sessionize's SessionIndex (passed on to later steps in the report) equals a
    plain group-by of the ids it wrote: the first and last row by (time, input
    position) and the size of each session, whatever the row order."""
    from journeyflow.sessions import _sessionize

    users, minutes, camp = zip(*rows)
    ev = frame(list(users), list(minutes), utm_source=list(camp))
    ev = ev.iloc[np.random.default_rng(seed).permutation(len(ev))]
    out, index, sort = _sessionize(ev, timeout="30min", max_duration=None if maxd is None else f"{maxd}min",
                                   split_on_campaign=True, keep_sort=True)
    assert out.equals(sessionize(ev, timeout="30min", max_duration=None if maxd is None else f"{maxd}min",
                                 split_on_campaign=True))
    by = pd.DataFrame({"sid": out["session_id"].to_numpy(), "t": out["timestamp"].to_numpy(),
                       "pos": np.arange(len(out))}).sort_values(["sid", "t", "pos"])
    grouped = by.groupby("sid")["pos"]
    assert index.first.tolist() == grouped.first().tolist()
    assert index.last.tolist() == grouped.last().tolist()
    assert index.counts.tolist() == grouped.size().tolist()
    assert grouped.ngroups == out["session_id"].max() + 1  # every id 0 .. S-1 has its entry
    # each user's last row (the report's drop-off and priority stages take it from here)
    from journeyflow._encode import factorize_sorted, last_rows, time_ns

    codes, labels = factorize_sorted(out["user_id"])
    per_user = pd.DataFrame({"user": out["user_id"].to_numpy(), "t": out["timestamp"].to_numpy(),
                             "pos": np.arange(len(out))}).sort_values(["user", "t", "pos"])
    expected = per_user.groupby("user")["pos"].last()
    got = index.user_last_rows(codes, len(labels))
    assert got.tolist() == expected.loc[list(labels)].tolist()
    assert got.tolist() == last_rows(codes, time_ns(out["timestamp"]), len(labels)).tolist()
    # the (user, time) sort kept for the phases: rows by (user, time, position), users' first positions
    assert sort is not None
    assert sort[0].tolist() == per_user["pos"].tolist()
    assert sort[1].tolist() == (~per_user["user"].duplicated()).tolist()
    # and each user's last row read off that sort (the report's funnel stage does)
    from journeyflow.sessions import user_last_rows

    assert user_last_rows(sort).tolist() == expected.loc[list(labels)].tolist()


def test_sessions_table_matches_groupby():
    rng = np.random.default_rng(3)
    n = 500
    ev = frame(
        rng.choice(["a", "b", "c", "d"], n).tolist(),
        np.sort(rng.integers(0, 2000, n)).tolist(),
        page=rng.choice(["/", "/blog", "/cart"], n),
        utm_source=rng.choice(["g", None], n),
        revenue=rng.choice([np.nan, 0.0, 10.0, 2.5], n),
    )
    ev["event"] = rng.choice(["view", "purchase"], n)
    ev = ev.sample(frac=1, random_state=1)
    sv = sessionize(ev)
    ss = sessions(sv, conversion="purchase")
    g = sv.sort_values("timestamp", kind="stable").groupby("session_id")
    assert ss["session_id"].tolist() == sorted(sv["session_id"].unique())
    assert ss["n_events"].tolist() == g.size().tolist()
    assert ss["start"].tolist() == g["timestamp"].min().tolist()
    assert ss["end"].tolist() == g["timestamp"].max().tolist()
    assert ss["landing_page"].tolist() == g["page"].first().tolist()
    assert np.allclose(ss["revenue"], g["revenue"].sum())  # NaN counts as 0
    assert ss["converted"].tolist() == g["event"].apply(lambda e: (e == "purchase").any()).tolist()
    assert ss["n_conversions"].tolist() == g["event"].apply(lambda e: int((e == "purchase").sum())).tolist()
    assert ss["n_events"].sum() == len(ev)
    assert (ss["duration"] == ss["end"] - ss["start"]).all()


@pytest.mark.parametrize("clock", ["utc", "naive", "amsterdam", "microseconds"])
@pytest.mark.parametrize("categorical", [False, True])
def test_sessions_table_keeps_each_instant_and_dtype(clock: str, categorical: bool) -> None:
    """The table's start and end are the sessions' first and last instants in UTC
    nanoseconds whatever the events' clock (naive times are taken as UTC), and text
    or categorical columns keep their dtype: against a group-by of the events."""
    rng = np.random.default_rng(7)
    n = 300
    ev = frame(rng.choice(["a", "b", "c"], n).tolist(), np.sort(rng.integers(0, 900, n)).tolist(),
               page=rng.choice(["/", "/blog", "/cart"], n), utm_source=rng.choice(["g", "fb", None], n))
    stamps = ev["timestamp"]
    ev["timestamp"] = {
        "utc": stamps,
        "naive": stamps.dt.tz_localize(None),
        "amsterdam": stamps.dt.tz_convert("Europe/Amsterdam"),
        "microseconds": stamps.astype("datetime64[us, UTC]"),
    }[clock]
    if categorical:
        ev = ev.astype({"page": "category", "utm_source": "category"})
    sv = sessionize(ev.sample(frac=1, random_state=2))
    ss = sessions(sv)
    g = sv.assign(instant=stamps.loc[sv.index]).sort_values("instant", kind="stable").groupby("session_id")
    assert str(ss["start"].dtype) == str(ss["end"].dtype) == "datetime64[ns, UTC]"
    assert ss["start"].tolist() == g["instant"].min().tolist()
    assert ss["end"].tolist() == g["instant"].max().tolist()
    assert (ss["duration"] == ss["end"] - ss["start"]).all()
    firsts = sv.assign(instant=stamps.loc[sv.index]).sort_values(["session_id", "instant"], kind="stable")
    firsts = firsts.drop_duplicates("session_id")  # each session's first row (ties: in input order)
    for col, landing in (("page", "landing_page"), ("utm_source", "utm_source")):
        assert ss[landing].dtype == ev[col].dtype
        assert [None if pd.isna(v) else v for v in ss[landing]] == [None if pd.isna(v) else v for v in firsts[col]]


def test_sessions_table_with_far_apart_session_ids() -> None:
    """Session ids of your own spread over 10**12 give the same table as jf.sessionize's
    0, 1, ... (they are encoded, not used as positions in a table of that size)."""
    ev = jf.sessionize(jf.datasets.simulate_webshop(50, seed=1))
    dense = jf.sessions(ev)
    spread = jf.sessions(ev.assign(session_id=ev["session_id"] * 10**12 + 5))
    assert (spread["session_id"] == dense["session_id"] * 10**12 + 5).all()
    pd.testing.assert_frame_equal(spread.drop(columns="session_id"), dense.drop(columns="session_id"))
