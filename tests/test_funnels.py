"""Funnels against a slow, obviously-correct reference; hand-made boundary cases."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import journeyflow as jf
from journeyflow.exceptions import DataError, OptionError, SchemaError


@pytest.fixture(scope="module", autouse=True, params=["searches", "tables", "two sets of people"])
def _next_step_lookup(request: pytest.FixtureRequest) -> object:
    """Every test runs with both ways of finding the next step event (binary searches
    over the step's events, or one table per step), and once more with the people
    split in sets counted on two threads (as for millions of events; here at any size,
    in sets of a few rows, however lopsided), which must all agree with the references."""
    import sys

    funnels = sys.modules["journeyflow.funnels"]
    encode = sys.modules["journeyflow._encode"]
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "two sets of people":
            mp.setattr(encode, "_SPLIT_MIN_ROWS", 0)
            mp.setattr(encode, "_SPLIT_SLACK", float("inf"))
            mp.setattr(funnels, "_PART_ROWS", 3)
        else:
            mp.setattr(funnels, "_SEARCH_BELOW", 0 if request.param == "searches" else 10**9)
        yield request.param

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _ev(rows: list[tuple[str, float, str]], **extra: list[object]) -> pd.DataFrame:
    ev = pd.DataFrame(rows, columns=["user_id", "h", "event"])
    ev["timestamp"] = T0 + pd.to_timedelta(ev.pop("h"), unit="h")
    for k, v in extra.items():
        ev[k] = v
    return ev


def _slow_furthest(
    ev: pd.DataFrame, steps: list[str], window: pd.Timedelta | None, mode: str, exclude: str | None = None
) -> dict[str, int]:
    """Try every combination of events per user: the definition, no cleverness."""
    out = {}
    ordered = ev.reset_index(drop=True).reset_index().sort_values(["user_id", "timestamp", "index"], kind="stable")
    for user, rows in ordered.groupby("user_id", sort=False):
        evs = list(zip(rows["timestamp"], rows["event"], range(len(rows))))
        best = 0
        for k in range(1, len(steps) + 1):
            ok = False
            if mode == "unordered":
                choices = [[e for e in evs if e[1] == steps[j]] for j in range(k)]
                for combo in itertools.product(*choices):
                    ts = [c[0] for c in combo]
                    if len({c[2] for c in combo}) == k and (window is None or max(ts) - min(ts) <= window):
                        ok = True
                        break
            else:
                for combo in itertools.permutations(evs, k) if k <= 3 else itertools.combinations(evs, k):
                    if any(combo[j][1] != steps[j] for j in range(k)):
                        continue
                    pos = [c[2] for c in combo]
                    ts = [c[0] for c in combo]
                    if any(ts[j] < ts[j - 1] for j in range(1, k)):
                        continue
                    if mode == "strict" and any(pos[j] != pos[j - 1] + 1 for j in range(1, k)):
                        continue
                    if exclude is not None and any(
                        e[1] == exclude and pos[j - 1] < e[2] < pos[j] for j in range(1, k) for e in evs
                    ):
                        continue
                    if window is not None and ts[-1] - ts[0] > window:
                        continue
                    ok = True
                    break
            if ok:
                best = k
            else:
                break
        out[str(user)] = best
    return out


def _counts(furthest: dict[str, int], k: int) -> list[int]:
    return [sum(v >= j for v in furthest.values()) for j in range(1, k + 1)]


def test_hand_made_window_boundary_and_repeated_attempts() -> None:
    ev = _ev(
        [
            ("a", 0, "view"), ("a", 24 * 7, "cart"),             # exactly at the 7-day window: counts
            ("b", 0, "view"), ("b", 24 * 7 + 1, "cart"),         # one hour late: no
            ("b", 24 * 10, "view"), ("b", 24 * 10 + 2, "cart"),  # but a later attempt succeeds
            ("b", 24 * 10 + 3, "buy"),
            ("c", 5, "cart"), ("c", 6, "view"),                  # cart before view: not ordered
        ]
    )
    table = jf.funnel(ev, ["view", "cart", "buy"], window="7D")
    assert table["users"].tolist() == [3, 2, 1]
    assert table["dropped"].tolist() == [0, 1, 1]
    assert table["conversion_from_start"].tolist() == pytest.approx([1, 2 / 3, 1 / 3])
    assert table["conversion_from_previous"].tolist() == pytest.approx([1, 2 / 3, 1 / 2])
    med = table["median_time_from_previous"].tolist()
    assert pd.isna(med[0])
    assert med[1] == pd.Timedelta(hours=(24 * 7 + 2) / 2)  # a: 7 days, b: 2 hours
    assert med[2] == pd.Timedelta(hours=1)
    un = jf.funnel(ev, ["view", "cart", "buy"], window="7D", mode="unordered")
    assert un["users"].tolist() == [3, 3, 1]  # c has both within the window, in any order


def test_strict_needs_consecutive_events() -> None:
    ev = _ev([("a", 0, "view"), ("a", 1, "blog"), ("a", 2, "cart"), ("b", 0, "view"), ("b", 1, "cart")])
    assert jf.funnel(ev, ["view", "cart"], mode="strict")["users"].tolist() == [2, 1]
    assert jf.funnel(ev, ["view", "cart"], mode="ordered")["users"].tolist() == [2, 2]


def test_step_as_list_and_boolean_column_and_segments() -> None:
    ev = _ev(
        [("a", 0, "view"), ("a", 1, "buy_app"), ("b", 0, "view"), ("b", 1, "buy_web"), ("c", 0, "view")],
        device=["mobile", "mobile", "desktop", "desktop", "mobile"],
    )
    ev["is_view"] = ev["event"] == "view"
    t = jf.funnel(ev, ["is_view", ["buy_app", "buy_web"]], by="device")
    assert list(t.columns[:3]) == ["device", "step", "step_index"]
    assert t["device"].tolist() == ["desktop", "desktop", "mobile", "mobile"]
    assert t["users"].tolist() == [1, 1, 2, 1]
    assert t["step"].tolist()[1] == "buy_app | buy_web"


def test_errors_name_the_problem() -> None:
    ev = _ev([("a", 0, "view")])
    with pytest.raises(DataError, match="Step 2 \\(cart\\) never occurs"):
        jf.funnel(ev, ["view", "cart"])
    with pytest.raises(OptionError, match="mode"):
        jf.funnel(ev, ["view"], mode="loose")
    with pytest.raises(SchemaError, match="'persona' \\(by=\\)"):
        jf.funnel(ev, ["view"], by="persona")
    with pytest.raises(OptionError, match="window"):
        jf.funnel(ev, ["view"], window=7)


_row = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 40), st.sampled_from(["v", "c", "b", "x"]))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(_row, min_size=1, max_size=16).filter(lambda r: any(x[2] == "v" for x in r)),
    st.sampled_from(["ordered", "strict", "unordered"]),
    st.sampled_from([None, pd.Timedelta("6h"), pd.Timedelta("1D")]),
    st.sampled_from([("v", "c", "b"), ("v", "v", "c"), ("c", "v", "c")]),  # repeats: one event, one step
)
def test_matches_the_slow_reference(
    rows: list[tuple[str, int, str]], mode: str, window: pd.Timedelta | None, step_names: tuple[str, ...]
) -> None:
    ev = _ev(rows)
    steps = list(step_names)
    present = [s for s in steps if (ev["event"] == s).any()]
    steps = steps[: next((i for i, s in enumerate(steps) if s not in present), len(steps))]
    assume(steps)
    if mode == "unordered" and len(set(steps)) < len(steps):  # one event, one step: refused, with a reason
        with pytest.raises(OptionError, match="one step only"):
            jf.funnel(ev, steps, window=window, mode=mode)
        return
    exclude = "x" if mode != "unordered" and len(rows) % 2 == 0 else None
    table = jf.funnel(ev, steps, window=window, mode=mode, exclude=exclude)
    expected = _counts(_slow_furthest(ev, steps, window, mode, exclude), len(steps))
    assert table["users"].tolist() == expected
    assert (np.diff(table["users"]) <= 0).all()
    assert table["dropped"].sum() == table["users"].iloc[0] - table["users"].iloc[-1]
    shuffled = jf.funnel(ev.sample(frac=1, random_state=1), steps, window=window, mode=mode, exclude=exclude)
    if ev.duplicated(["user_id", "timestamp"]).sum() == 0:
        assert shuffled["users"].tolist() == table["users"].tolist()


def test_phase_funnel_time_to_convert_drop_off_priority_reconcile() -> None:
    ev = jf.assign_phases(jf.assign_touchpoints(jf.datasets.simulate_webshop(400, seed=4)), model="ten-phase")
    pf = jf.phase_funnel(ev, "ten-phase")
    assert pf["phase"].tolist() == list(jf.get_model("ten-phase").phases)
    assert (np.diff(pf["users"]) <= 0).all()
    steps = ["product_view", "add_to_cart", "purchase"]
    fn = jf.funnel(ev, steps, window=None)
    d = jf.drop_off(ev, steps, window=None)
    # people who dropped after step k = users at k - users at k+1
    dropped = d.groupby("step_index")["users"].sum()
    for k in (1, 2):
        assert dropped.get(k, 0) == fn["users"].iloc[k - 1] - fn["users"].iloc[k]
    ttc = jf.time_to_convert(ev, ["product_view", "purchase"])
    assert len(ttc) == jf.funnel(ev, ["product_view", "purchase"], window=None)["users"].iloc[-1]
    assert (ttc["duration"] >= pd.Timedelta(0)).all()
    tp = jf.touchpoint_priority(ev)
    n_users = ev["user_id"].nunique()
    met = ev.groupby("touchpoint")["user_id"].nunique()
    assert dict(zip(tp["touchpoint"], tp["users"])) == met.to_dict()
    assert tp["reach"].tolist() == pytest.approx((tp["users"] / n_users).tolist())
    assert (tp["priority"].diff().dropna() <= 0).all()


@pytest.mark.parametrize("categorical", [False, True])
def test_drop_off_counts_a_missing_last_touchpoint_and_by_the_event_itself(categorical: bool) -> None:
    """By hand: a person whose last event has no touchpoint is counted under a missing
    value (NaN, as in the column), and by_column may be the event column itself."""
    ev = _ev(
        [("a", 0, "v"), ("a", 1, "x"), ("b", 0, "v"), ("b", 2, "c"), ("c", 0, "v"), ("d", 0, "v"), ("d", 1, "x"),
         ("e", 0, "v"), ("e", 1, "c"), ("e", 2, "b")],  # (e finishes: not a drop-off)
        touchpoint=["ad", None, "ad", "shop", "blog", "ad", None, "ad", "ad", None],
    )
    if categorical:
        ev["touchpoint"] = ev["touchpoint"].astype("category")
    d = jf.drop_off(ev, ["v", "c", "b"])
    got = {(int(r.step_index), None if pd.isna(r.last_touchpoint) else r.last_touchpoint, r.last_event): int(r.users)
           for r in d.itertuples()}
    assert got == {(1, None, "x"): 2, (1, "blog", "v"): 1, (2, "shop", "c"): 1}
    missing = d.loc[d["last_touchpoint"].isna(), "last_touchpoint"].tolist()
    assert len(missing) == 1 and isinstance(missing[0], float)  # NaN, not None
    by_event = jf.drop_off(ev, ["v", "c", "b"], by_column="event")
    assert sorted(by_event.columns) == sorted(["step", "step_index", "last_event", "users", "share"])
    assert {(int(r.step_index), r.last_event): int(r.users) for r in by_event.itertuples()} == {
        (1, "x"): 2, (1, "v"): 1, (2, "c"): 1}


def test_exclude_ends_an_attempt_between_steps() -> None:
    ev = _ev(
        [
            ("a", 0, "view"), ("a", 1, "refund"), ("a", 2, "cart"),  # refund between: attempt fails
            ("a", 3, "view"), ("a", 4, "cart"),                      # a later clean attempt succeeds
            ("b", 0, "view"), ("b", 1, "refund"), ("b", 2, "cart"),  # b never gets a clean attempt
            ("c", 0, "view"), ("c", 1, "cart"), ("c", 2, "refund"),  # refund after the last step: fine
        ]
    )
    t = jf.funnel(ev, ["view", "cart"], exclude="refund")
    assert t["users"].tolist() == [3, 2]
    assert jf.funnel(ev, ["view", "cart"])["users"].tolist() == [3, 3]
    with pytest.raises(OptionError, match="exclude"):
        jf.funnel(ev, ["view", "cart"], exclude="refund", mode="unordered")


def test_unit_session_counts_sessions() -> None:
    ev = _ev([("a", 0, "view"), ("a", 0.1, "cart"), ("a", 5, "view"), ("b", 0, "view")])
    t = jf.funnel(jf.sessionize(ev, timeout="30min"), ["view", "cart"], unit="session")
    assert "sessions" in t.columns and "users" not in t.columns
    assert t["sessions"].tolist() == [3, 1]  # a's two sessions and b's one; only one reached cart


def test_compare_segments_by_hand() -> None:
    rows = []
    for i in range(100):  # mobile: 100 view, 20 buy; desktop: 100 view, 40 buy
        rows.append((f"m{i}", 0, "view"))
        rows.append((f"d{i}", 0, "view"))
        if i < 20:
            rows.append((f"m{i}", 1, "buy"))
        if i < 40:
            rows.append((f"d{i}", 1, "buy"))
    ev = _ev(rows)
    ev["device"] = np.where(ev["user_id"].str.startswith("m"), "mobile", "desktop")
    t = jf.funnel(ev, ["view", "buy"], by="device")
    c = jf.compare_segments(t, "device", "mobile", "desktop")
    assert c["rate_a"].iloc[1] == pytest.approx(0.2) and c["rate_b"].iloc[1] == pytest.approx(0.4)
    pooled = 0.3
    z = (0.2 - 0.4) / np.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert c["z"].iloc[1] == pytest.approx(z)
    from scipy.stats import norm

    assert c["p_value"].iloc[1] == pytest.approx(2 * norm.sf(abs(z)))
    assert np.isnan(c["p_value"].iloc[0])


def _slow_open(ev: pd.DataFrame, steps: list[str], window: pd.Timedelta | None) -> tuple[list[int], list[int], list[int]]:
    """Per person and entry step j, the furthest step of an ordered run from j (brute force
    via the closed funnel on the steps from j), then coverage, continuation, entries."""
    k = len(steps)
    covered: dict[str, set[int]] = {}
    went_on: dict[str, set[int]] = {}
    for j in range(k):
        present = [s for s in steps[j:]]
        if not (ev["event"] == steps[j]).any():
            continue
        furthest = _slow_furthest(ev, present, window, "ordered")
        for user, f in furthest.items():
            for m in range(j, j + f):
                covered.setdefault(user, set()).add(m)
                if m > j:
                    went_on.setdefault(user, set()).add(m)
    users = [sum(m in c for c in covered.values()) for m in range(k)]
    cont = [sum(m in c for c in went_on.values()) for m in range(k)]
    entered = [sum(min(c) == m for c in covered.values() if c) for m in range(k)]
    return users, cont, entered


@settings(max_examples=60, deadline=None)
@given(
    st.lists(_row, min_size=1, max_size=14).filter(lambda r: {"v", "c", "b"} <= {x[2] for x in r}),
    st.sampled_from([None, pd.Timedelta("6h")]),
)
def test_open_entry_matches_a_brute_force_reference(rows: list[tuple[str, int, str]], window: pd.Timedelta | None) -> None:
    ev = _ev(rows)
    steps = ["v", "c", "b"]
    t = jf.funnel(ev, steps, window=window, entry="open")
    users, cont, entered = _slow_open(ev, steps, window)
    assert t["users"].tolist() == users
    assert t["entered"].tolist() == entered
    assert t["dropped"].tolist()[1:] == [users[m - 1] - cont[m] for m in range(1, 3)]


def test_open_entry_by_hand_and_options() -> None:
    ev = _ev([("a", 0, "view"), ("a", 1, "cart"), ("b", 0, "cart"), ("c", 0, "cart"), ("c", 1, "buy")])
    t = jf.funnel(ev, ["view", "cart", "buy"], entry="open")
    assert t["users"].tolist() == [1, 3, 1]    # b and c enter at cart
    assert t["entered"].tolist() == [1, 2, 0]
    assert t["dropped"].tolist() == [0, 0, 2]  # a and b stop at cart
    with pytest.raises(OptionError, match="entry='open'"):
        jf.funnel(ev, ["view", "cart"], entry="open", by="user_id")


def _slow_drop_off(ev: pd.DataFrame, steps: list[str], window: pd.Timedelta | None, mode: str) -> dict[tuple, int]:
    """People per (furthest step, last touchpoint, last event) for those who started and
    did not finish: the furthest step from the brute force, the last event by (time, row)."""
    furthest = _slow_furthest(ev, steps, window, mode)
    ordered = ev.reset_index(drop=True).reset_index().sort_values(["timestamp", "index"], kind="stable")
    last = ordered.groupby("user_id").tail(1).set_index("user_id")
    out: dict[tuple, int] = {}
    for user, f in furthest.items():
        if 1 <= f < len(steps):
            key = (f, last.loc[user, "touchpoint"], last.loc[user, "event"])
            out[key] = out.get(key, 0) + 1
    return out


_touch_row = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 40), st.sampled_from(["v", "c", "b", "x"]),
    st.sampled_from(["ad", "blog", "shop"]),
)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(_touch_row, min_size=1, max_size=16).filter(lambda r: any(x[2] == "v" for x in r)),
    st.sampled_from(["ordered", "strict", "unordered"]),
    st.sampled_from([None, pd.Timedelta("6h")]),
    st.sampled_from([("v", "c", "b"), ("v", "c")]),
)
def test_drop_off_matches_the_slow_reference(
    rows: list[tuple[str, int, str, str]], mode: str, window: pd.Timedelta | None, step_names: tuple[str, ...]
) -> None:
    ev = _ev([r[:3] for r in rows], touchpoint=[r[3] for r in rows])
    steps = list(step_names)
    assume(all((ev["event"] == s).any() for s in steps))
    d = jf.drop_off(ev, steps, window=window, mode=mode)
    got = {(int(r.step_index), r.last_touchpoint, r.last_event): int(r.users) for r in d.itertuples()}
    assert got == _slow_drop_off(ev, steps, window, mode)
    assert d.groupby("step_index")["share"].sum().round(12).eq(1).all()
    if not ev.duplicated(["user_id", "timestamp"]).any():  # row order matters only between ties
        shuffled = jf.drop_off(ev.sample(frac=1, random_state=2), steps, window=window, mode=mode)
        assert shuffled.equals(d)


_PHASES = list(jf.get_model("aacra").phases)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 30), st.sampled_from([*_PHASES, None])),
        min_size=1, max_size=14,
    ).filter(lambda r: any(x[2] == _PHASES[0] for x in r)),
    st.sampled_from([None, pd.Timedelta("5h")]),
)
def test_phase_funnel_matches_the_slow_reference(rows: list[tuple[str, int, str | None]], window: pd.Timedelta | None) -> None:
    ev = _ev([(u, h, p or "other") for u, h, p in rows])
    ev["phase"] = pd.Categorical([p for _, _, p in rows], categories=_PHASES)
    ev["device"] = np.where(ev["timestamp"].dt.hour % 2 == 0, "even", "odd")
    pf = jf.phase_funnel(ev, "aacra", window=window)
    slow = ev.assign(event=ev["phase"].astype(object).fillna("-"))
    assert pf["users"].tolist() == _counts(_slow_furthest(slow, _PHASES, window, "ordered"), len(_PHASES))
    assert (np.diff(pf["users"]) <= 0).all()
    # segments and median times agree with the phase steps counted as a funnel of boolean
    # columns by the general chains (the sort-free count is off for it)
    import sys

    flags = ev.assign(**{p: (ev["phase"] == p).to_numpy(dtype=bool) for p in _PHASES})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules["journeyflow.funnels"], "_greedy_fits", lambda *a: False)
        by_funnel = jf.funnel(flags, _PHASES, window=window, by="device")
    by_phase = jf.phase_funnel(ev, "aacra", window=window, by="device")
    assert by_phase.drop(columns=["phase", "phase_index"]).equals(by_funnel.drop(columns=["step", "step_index"]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(_row, min_size=1, max_size=16).filter(lambda r: any(x[2] == "v" for x in r)),
    st.sampled_from([("v", "c", "b"), ("c", "v", "b"), ("v", "b")]),
    st.booleans(),
)
def test_unwindowed_funnel_without_sort_matches_the_chains(
    rows: list[tuple[str, int, str]], step_names: tuple[str, ...], shuffle: bool
) -> None:
    """Ordered funnels with no window are counted without a sort (the earliest start is the
    best attempt); the whole table (segments, median times) equals the general chains'."""
    import sys

    funnels = sys.modules["journeyflow.funnels"]
    ev = _ev(rows, device=[("m", "d")[i % 2] for i in range(len(rows))])
    if shuffle:
        ev = ev.sample(frac=1, random_state=3)
    steps = [s for s in step_names if (ev["event"] == s).any()]
    assume(len(steps) == len(step_names))
    fast = jf.funnel(ev, steps, window=None, by="device")
    fast_drop = jf.drop_off(ev, steps, window=None, by_column="event")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(funnels, "_greedy_fits", lambda *a: False)
        slow = jf.funnel(ev, steps, window=None, by="device")
        slow_drop = jf.drop_off(ev, steps, window=None, by_column="event")
    with pytest.MonkeyPatch.context() as mp:  # the rows in two halves of 3-row blocks, on two threads
        mp.setattr(funnels, "PARALLEL_ROWS", 0)
        mp.setattr(funnels, "_BLOCK", 3)
        halves = jf.funnel(ev, steps, window=None, by="device")
        halves_drop = jf.drop_off(ev, steps, window=None, by_column="event")
    assert fast.equals(slow)
    assert fast_drop.equals(slow_drop)
    assert halves.equals(slow)
    assert halves_drop.equals(slow_drop)
    assert funnels._greedy_fits(funnels._step_masks(ev, {"event": "event"}, steps)[0], "ordered", None, None)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(_row, min_size=1, max_size=16).filter(lambda r: any(x[2] == "v" for x in r)),
    st.sampled_from(["ordered", "strict", "unordered"]),
    st.sampled_from([None, pd.Timedelta("6h")]),
    st.sampled_from([("v", "c", "b"), ("v", "v", "c")]),
)
def test_encoded_ids_are_split_by_their_codes(
    rows: list[tuple[str, int, str]], mode: str, window: pd.Timedelta | None, step_names: tuple[str, ...]
) -> None:
    """Ids already encoded (e.g. by jf.sessionize) are split into sets of people by their
    codes: the same tables as from ids never seen before."""
    import sys

    funnels, encode = sys.modules["journeyflow.funnels"], sys.modules["journeyflow._encode"]
    ev = _ev(rows)
    steps = [s for s in step_names if (ev["event"] == s).any()]
    assume(steps == list(step_names) and not (mode == "unordered" and len(set(steps)) < len(steps)))
    plain = jf.funnel(ev, steps, window=window, mode=mode)
    plain_drop = jf.drop_off(ev, steps, window=window, mode=mode, by_column="event")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(encode, "_CACHE_MIN_ROWS", 0)
        mp.setattr(encode, "_SPLIT_MIN_ROWS", 0)
        mp.setattr(encode, "_SPLIT_SLACK", float("inf"))
        mp.setattr(funnels, "_PART_ROWS", 3)
        encoded = ev.assign(user_id=pd.array(ev["user_id"].tolist(), dtype="str"))  # a new Arrow array
        assert not encode.is_cached(encoded["user_id"])
        encode.factorize_sorted(encoded["user_id"])
        assert encode.is_cached(encoded["user_id"])
        got = jf.funnel(encoded, steps, window=window, mode=mode)
        got_drop = jf.drop_off(encoded, steps, window=window, mode=mode, by_column="event")
    pd.testing.assert_frame_equal(got, plain)
    pd.testing.assert_frame_equal(got_drop, plain_drop)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(_row, min_size=1, max_size=16).filter(lambda r: any(x[2] == "v" for x in r)),
    st.sampled_from(["ordered", "strict", "unordered"]),
    st.sampled_from([pd.Timedelta("6h"), pd.Timedelta("1D")]),
    st.sampled_from([("v", "c", "b"), ("v", "v", "c"), ("c", "v", "b")]),
    st.booleans(),
    st.booleans(),
)
def test_the_sort_sessionize_made_gives_the_same_people(
    rows: list[tuple[str, int, str]], mode: str, window: pd.Timedelta, step_names: tuple[str, ...],
    exclude: bool, two_threads: bool,
) -> None:
    """The report passes sessionize's (user, time) sort to the funnel, which then sorts
    nothing: every person's row (furthest step, gaps, anchor row, segment) equals the
    funnel's own, the people cut in two halves on two threads or not."""
    import sys

    funnels = sys.modules["journeyflow.funnels"]
    from journeyflow.sessions import _sessionize

    ev = _ev(rows, device=[("m", "d", "t")[i % 3] for i in range(len(rows))]).sample(frac=1, random_state=len(rows))
    steps = [s for s in step_names if (ev["event"] == s).any()]
    assume(steps == list(step_names) and not (mode == "unordered" and len(set(steps)) < len(steps)))
    excl = "x" if exclude and mode != "unordered" else None
    events, _, sort = _sessionize(ev, keep_sort=True)
    assert sort is not None

    def people(given: tuple[np.ndarray, np.ndarray] | None) -> pd.DataFrame:
        out, _, _ = funnels._funnel_per_user(events, steps, window=window, mode=mode, by="device", columns=None,
                                             exclude=excl, rows=True, sort=given)
        return out.sort_values(funnels._ANCHOR, ignore_index=True)

    own = people(None)
    with pytest.MonkeyPatch.context() as mp:  # (and the running counts in blocks of 3 rows)
        mp.setattr(funnels, "PARALLEL_ROWS", 0 if two_threads else 10**12)
        mp.setattr(funnels, "_BLOCK", 3)
        given = people(sort)
    pd.testing.assert_frame_equal(given, own)
    assert len(given) == len(set(given[funnels._ANCHOR]))  # one row a person
    expected = _counts(_slow_furthest(ev, steps, window, mode, excl), len(steps))
    assert funnels._table_from_users(given, steps, [], "step")["users"].tolist() == expected


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), people=st.integers(5, 60))
def test_touchpoint_priority_equals_a_groupby_of_the_events(seed: int, people: int) -> None:
    """Every count behind the priority table, against pandas group-bys of the events
    (rows shuffled): who met each touchpoint, who of them converted, its events, the
    phases its events fell in, and the people whose last event (by time, then row)
    was there and who never converted."""
    ev = jf.assign_phases(jf.assign_touchpoints(jf.datasets.simulate_webshop(people, seed=seed % 1000)))
    ev = ev.iloc[np.random.default_rng(seed).permutation(len(ev))].reset_index(drop=True)
    conversion = ["purchase"]
    tp = jf.touchpoint_priority(ev, conversion=conversion).set_index("touchpoint")
    touch = ev["touchpoint"].astype(object).where(ev["touchpoint"].notna(), "(none)")
    frame = pd.DataFrame({"user": ev["user_id"].to_numpy(), "touch": touch.to_numpy(),
                          "phase": ev["phase"].astype(object).to_numpy(), "t": ev["timestamp"].to_numpy(),
                          "pos": np.arange(len(ev)), "conv": ev["event"].isin(conversion).to_numpy()})
    converted = set(frame.loc[frame["conv"], "user"])
    n_users = frame["user"].nunique()
    met = frame.groupby("touch")["user"].agg(lambda u: set(u))
    last = frame.sort_values(["user", "t", "pos"]).groupby("user").tail(1)
    exits = last[~last["user"].isin(converted)].groupby("touch").size()
    order = list(jf.get_model("aacra").phases)
    assert sorted(tp.index) == sorted(met.index)
    for name, users in met.items():
        row = tp.loc[name]
        assert row["users"] == len(users)
        assert row["events"] == int((frame["touch"] == name).sum())
        phases = set(frame.loc[frame["touch"] == name, "phase"].dropna())
        assert row["phases"] == ", ".join(p for p in order if p in phases)
        assert row["exit_rate"] == pytest.approx(exits.get(name, 0) / len(users))
        assert row["conversion_rate"] == pytest.approx(len(users & converted) / len(users))
        others = n_users - len(users)
        if others:
            assert row["conversion_rate_without"] == pytest.approx(len(converted - users) / others)
