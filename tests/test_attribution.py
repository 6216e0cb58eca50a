"""Attribution models: hand-worked cases, slow references, invariants for every model."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from fractions import Fraction
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import journeyflow as jf
from journeyflow.exceptions import DataError, InputTypeError, OptionError

ALL = ["first_touch", "last_touch", "linear", "position_based", "markov", "shapley",
       jf.MarkovAttribution(order=2), jf.MarkovAttribution(order=3)]


def _paths(rows: list[tuple[str, int, int]]) -> jf.Journeys:
    df = pd.DataFrame(rows, columns=["path", "total_conversions", "total_null"])
    df["value"] = df["total_conversions"] * 10.0
    return jf.Journeys.from_paths(df, value="value")


def _slow_markov(paths: list[tuple[list[str], float, float]], k: int, removed: str | None) -> float:
    """Dense chain built path by path, absorption by a dense solve."""
    seqs = []
    for touches, conv, null in paths:
        if len(touches) < k:
            states = [tuple(touches)]
        else:
            states = [tuple(touches[i : i + k]) for i in range(len(touches) - k + 1)]
        collapsed = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
        seqs.append((collapsed, conv, null))
    names = sorted({s for seq, _, _ in seqs for s in seq})
    idx = {s: i for i, s in enumerate(names)}
    n = len(names)
    start, conv_i, null_i = n, n + 1, n + 2
    counts = np.zeros((n + 3, n + 3))
    for seq, conv, null in seqs:
        w = conv + null
        counts[start, idx[seq[0]]] += w
        for a, b in itertools.pairwise(seq):
            counts[idx[a], idx[b]] += w
        counts[idx[seq[-1]], conv_i] += conv
        counts[idx[seq[-1]], null_i] += null
    probs = counts / np.where(counts.sum(1, keepdims=True) > 0, counts.sum(1, keepdims=True), 1)
    if removed is not None:
        for s, i in idx.items():
            if removed in s:
                probs[i] = 0
                probs[i, null_i] = 1
    transient = list(range(n + 1))
    q = probs[np.ix_(transient, transient)]
    r = probs[transient, conv_i]
    x = np.linalg.solve(np.eye(n + 1) - q, r)
    return float(x[start])


def test_heuristics_by_hand() -> None:
    jr = _paths([("a > b > c", 3, 1), ("c", 1, 0), ("b > a", 2, 5)])
    at = jf.attribute(jr, models=["first_touch", "last_touch", "linear", "position_based"])
    got = {m: dict(zip(t["channel"], t["conversions"])) for m, t in at.groupby("model")}
    assert got["first_touch"] == {"a": 3, "b": 2, "c": 1}
    assert got["last_touch"] == {"a": 2, "b": 0, "c": 4}
    assert got["linear"] == pytest.approx({"a": 1 + 1, "b": 1 + 1, "c": 1 + 1})
    # a>b>c: 40/20/40 of 3; b>a: 50/50 of 2; c: 100% of 1
    assert got["position_based"] == pytest.approx({"a": 1.2 + 1, "b": 0.6 + 1, "c": 1.2 + 1})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 3), max_size=6), st.integers(0, 3), st.integers(0, 3)),
                min_size=1, max_size=15),
       st.floats(0, 0.5), st.floats(0, 0.5), st.booleans())
def test_heuristics_per_path_equal_the_touch_weights(rows: list[tuple[list[int], int, int]], f: float,
                                                     la: float, blocks: bool) -> None:
    """The per-path shortcuts of the heuristics, one model at a time and all together,
    in blocks of 3 paths or in one, equal crediting every touch by its weight."""
    from journeyflow.attribution import models

    rows = [(p, c if p else 0, n) for p, c, n in rows]  # a converting journey needs a touch
    lengths = [len(p) for p, _, _ in rows]
    jr = jf.Journeys(np.array([t for p, _, _ in rows for t in p], dtype=np.int64), np.r_[0, np.cumsum(lengths)], ["a", "b", "c", "d"],
                     [c for _, c, _ in rows], [n for _, _, n in rows], [2.5 * c for _, c, _ in rows])
    heuristics = [jf.FirstTouch(), jf.LastTouch(), jf.Linear(), jf.PositionBased(first=f, last=la)]
    with mock.patch.object(models, "BLOCK", 1), mock.patch.object(models, "_CREDIT_BLOCKS", 3 if blocks else 10**6):
        alone = [model._credit(jr) for model in heuristics]
        together = models.fit_by_position([*heuristics, jf.MarkovAttribution()], jr)
    assert len(together) == (4 if jr.n_touches else 0)
    for model, fast in zip(heuristics, alone, strict=True):
        if jr.n_touches:  # the slow way: the weight of every touch
            w = model._weights(jr)
            pidx, codes = jr.path_index, jr.touches.astype(np.intp)
            slow = [np.bincount(codes, weights=w * amount[pidx], minlength=4) for amount in (jr.conversions, jr.value)]
        else:
            slow = [np.zeros(4), np.zeros(4)]
        for got in (fast, (model.attribution_["conversions"], model.attribution_["value"]) if together else fast):
            np.testing.assert_allclose(got[0], slow[0], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(got[1], slow[1], rtol=1e-12, atol=1e-12)


def test_time_decay_by_hand() -> None:
    day = 86_400 * 10**9
    jr = jf.Journeys([0, 1, 0], [0, 3], ["a", "b"], [2.0], times=[0, 7 * day, 14 * day],
                     conversion_times=[14 * day])
    got = jf.TimeDecay(half_life="7D").fit(jr).attribution_
    w = np.array([0.25, 0.5, 1.0]) / 1.75
    assert got["conversions"].tolist() == pytest.approx([2 * (w[0] + w[2]), 2 * w[1]])
    with pytest.raises(DataError, match="time_decay needs touch times"):
        jf.TimeDecay().fit(_paths([("a", 1, 0)]))


def test_markov_by_hand_fractions() -> None:
    """start->a 3/4, start->b 1/4, a->b 2/3, a->conv 1/3, b->conv 1/3, b->null 2/3."""
    jr = _paths([("a > b", 1, 1), ("a", 1, 0), ("b", 0, 1)])
    mm = jf.MarkovAttribution().fit(jr)
    p = Fraction(3, 4) * (Fraction(1, 3) + Fraction(2, 3) * Fraction(1, 3)) + Fraction(1, 4) * Fraction(1, 3)
    assert mm.conversion_probability_ == pytest.approx(float(p))
    re_a = 1 - (Fraction(1, 4) * Fraction(1, 3)) / p
    re_b = 1 - (Fraction(3, 4) * Fraction(1, 3)) / p
    assert mm.removal_effects_["removal_effect"].tolist() == pytest.approx([float(re_a), float(re_b)])
    total = 2
    assert mm.attribution_["conversions"].tolist() == pytest.approx(
        [total * float(re_a / (re_a + re_b)), total * float(re_b / (re_a + re_b))]
    )
    tm = mm.transition_matrix_
    row = tm[tm["from_state"] == "(start)"].set_index("to_state")["probability"]
    assert row.to_dict() == pytest.approx({"a": 0.75, "b": 0.25})
    assert "MarkovAttribution(order=1) fitted on 3 journeys, 2 channels, 2 conversions" in repr(mm)


@pytest.mark.parametrize("solver", ["dense", "iterative", "sparse"])
def test_markov_transition_matrix_by_hand(solver: str) -> None:
    """A repeated touch is no transition (a state does not lead to itself): from
    "a > a > b" (1 conversion) and "a" (1 null), a leads to b 1/2, null 1/2."""
    with _markov_solver(solver):
        tm = jf.MarkovAttribution().fit(_paths([("a > a > b", 1, 0), ("a", 0, 1)])).transition_matrix_
    got = {(f, t): p for f, t, p in tm.itertuples(index=False)}
    assert got == pytest.approx({("(start)", "a"): 1.0, ("a", "b"): 0.5, ("a", "(null)"): 0.5,
                                 ("b", "(conversion)"): 1.0})
    assert list(tm["from_state"]) == sorted(tm["from_state"])  # sorted by state, then target


@contextlib.contextmanager
def _markov_solver(solver: str) -> Iterator[None]:
    """Force one of the chain's three solvers: batched dense (small chains), iterative,
    or a sparse solve per channel (the iterative solver's fallback) on sparse counts."""
    from journeyflow.attribution import markov

    with contextlib.ExitStack() as stack:
        if solver != "dense":  # and the transitions added into a dense table in place, not counted
            stack.enter_context(mock.patch.object(markov, "DENSE_STATES", 0))
            stack.enter_context(mock.patch.object(markov, "_COUNTED_CELLS", 0))
        if solver == "sparse":  # and the transition counts summed sparsely too
            stack.enter_context(mock.patch.object(markov, "_absorb_iterative", lambda *a, **k: None))
            stack.enter_context(mock.patch.object(markov, "_DENSE_CELLS", 0))
        yield


def test_markov_solvers_agree_on_a_large_chain() -> None:
    """Order 3 over 12 channels (about 1,900 states, past the dense limit): the
    iterative solver equals the sparse direct solves."""
    rng = np.random.default_rng(5)
    names = [f"c{i}" for i in range(12)]
    rows = [(" > ".join(rng.choice(names, rng.integers(1, 9))), int(rng.integers(0, 3)), int(rng.integers(0, 5)))
            for _ in range(3000)]
    jr = _paths([r for r in rows if r[1] + r[2] > 0])
    fits = {}
    for solver in ("iterative", "sparse"):
        with _markov_solver(solver):
            fits[solver] = jf.MarkovAttribution(order=3, min_transitions=1).fit(jr)
    assert fits["iterative"].conversion_probability_ == pytest.approx(fits["sparse"].conversion_probability_,
                                                                      rel=1e-11)
    for col in ("removal_effect", "removal_effect_value"):
        np.testing.assert_allclose(fits["iterative"].removal_effects_[col], fits["sparse"].removal_effects_[col],
                                   rtol=1e-9, atol=1e-12)


_path = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=6)


@pytest.mark.filterwarnings("ignore::journeyflow.exceptions.SparseChainWarning")
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(_path, st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12)
    .filter(lambda rows: sum(r[1] for r in rows) > 0),
    st.sampled_from([1, 2, 3]),
    st.sampled_from(["dense", "iterative", "sparse"]),
    st.sampled_from([2, 5, 1 << 15]),
)
def test_markov_matches_a_dense_reference(rows: list[tuple[list[str], int, int]], k: int, solver: str,
                                          block: int) -> None:
    """Against a dense chain built path by path; every solver, and the chain counted in
    blocks of a few paths or in one."""
    from journeyflow.attribution import models

    rows = [r for r in rows if r[1] + r[2] > 0]
    jr = _paths([(" > ".join(p), c, n) for p, c, n in rows])
    with _markov_solver(solver), mock.patch.object(models, "BLOCK", block):
        mm = jf.MarkovAttribution(order=k).fit(jr)
    ref = [(p, float(c), float(n)) for p, c, n in rows]
    p_all = _slow_markov(ref, k, None)
    assert mm.conversion_probability_ == pytest.approx(p_all, rel=1e-9, abs=1e-12)
    expected = [1 - _slow_markov(ref, k, ch) / p_all for ch in jr.channels]
    assert mm.removal_effects_["removal_effect"].tolist() == pytest.approx(
        [max(e, 0) for e in expected], rel=1e-7, abs=1e-9
    )


@pytest.mark.filterwarnings("ignore::journeyflow.exceptions.SparseChainWarning")
@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(_path, st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=10)
    .filter(lambda rows: sum(r[1] for r in rows) > 0)
)
def test_every_model_reconciles_and_ignores_path_order(rows: list[tuple[list[str], int, int]]) -> None:
    rows = [r for r in rows if r[1] + r[2] > 0]
    jr = _paths([(" > ".join(p), c, n) for p, c, n in rows])
    at = jf.attribute(jr, models=ALL)
    for _, t in at.groupby("model"):
        assert t["conversions"].sum() == pytest.approx(jr.total_conversions)
        assert t["value"].sum() == pytest.approx(jr.total_value)
        assert t["share"].sum() == pytest.approx(1.0)
        assert (t["conversions"] >= -1e-12).all()
    rev = _paths([(" > ".join(p), c, n) for p, c, n in rows[::-1]])
    at2 = jf.attribute(rev, models=ALL)
    key = ["model", "channel"]
    a = at.sort_values(key).reset_index(drop=True)
    b = at2.sort_values(key).reset_index(drop=True)
    np.testing.assert_allclose(a["conversions"], b["conversions"], rtol=1e-9, atol=1e-9)


def _slow_shapley(rows: list[tuple[str, int, int]]) -> dict[str, float]:
    """Per coalition, Shapley values by brute force over orderings, then split its conversions."""
    import itertools
    import math

    by_set: dict[frozenset[str], list[float]] = {}
    for path, conv, null in rows:
        key = frozenset(path.split(" > "))
        c, t = by_set.get(key, [0.0, 0.0])
        by_set[key] = [c + conv, t + conv + null]

    def v(coalition: frozenset[str]) -> float:
        c, t = by_set.get(coalition, [0.0, 0.0])
        return c / t if t > 0 else 0.0

    out: dict[str, float] = {}
    for coalition, (conv, _) in by_set.items():
        players = sorted(coalition)
        phi = dict.fromkeys(players, 0.0)
        for perm in itertools.permutations(players):
            seen: frozenset[str] = frozenset()
            for ch in perm:
                phi[ch] += (v(seen | {ch}) - v(seen)) / math.factorial(len(players))
                seen = seen | {ch}
        pos = {k: max(x, 0.0) for k, x in phi.items()}
        norm = sum(pos.values())
        for k in players:
            out[k] = out.get(k, 0.0) + conv * (pos[k] / norm if norm > 0 else 1 / len(players))
    return out


def test_shapley_by_hand() -> None:
    """a: 2 of 10 convert, b: 1 of 10, a+b: 5 of 10. In the {a, b} game
    phi_a = (0.2 + (0.5 - 0.1)) / 2 = 0.3 and phi_b = (0.1 + (0.5 - 0.2)) / 2 = 0.2,
    so the 5 conversions of a+b split 3 : 2."""
    jr = _paths([("a", 2, 8), ("b", 1, 9), ("a > b", 5, 5)])
    got = jf.ShapleyAttribution().fit(jr).attribution_
    assert got["conversions"].tolist() == pytest.approx([2 + 3, 1 + 2])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(_path, st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=10)
    .filter(lambda rows: sum(r[1] for r in rows) > 0)
)
def test_shapley_matches_brute_force(rows: list[tuple[list[str], int, int]]) -> None:
    rows = [r for r in rows if r[1] + r[2] > 0]
    as_text = [(" > ".join(p), c, n) for p, c, n in rows]
    got = jf.ShapleyAttribution().fit(_paths(as_text)).attribution_
    expected = _slow_shapley(as_text)
    assert dict(zip(got["channel"], got["conversions"])) == pytest.approx(expected)


def test_shapley_is_not_the_linear_model() -> None:
    jr = _paths([("a", 1, 99), ("b", 30, 70), ("a > b", 10, 10)])
    shap = jf.ShapleyAttribution().fit(jr).attribution_["conversions"].to_numpy()
    lin = jf.Linear().fit(jr).attribution_["conversions"].to_numpy()
    assert not np.allclose(shap, lin)
    with pytest.raises(DataError, match=r"3 distinct channels.*max_channels=2.*method='permutation'"):
        jf.ShapleyAttribution(max_channels=2, method="exact").fit(_paths([("a > b > c", 1, 0)]))


def test_bootstrap_intervals_cover_the_estimate_and_are_seeded() -> None:
    jr = _paths([("a > b", 30, 20), ("b", 10, 40), ("a", 15, 15)])
    at = jf.attribute(jr, models=["linear", "markov"], ci=jf.Bootstrap(n_resamples=60, seed=3))
    assert (at["ci_low"] <= at["conversions"] + 1e-9).all()
    assert (at["conversions"] <= at["ci_high"] + 1e-9).all()
    again = jf.attribute(jr, models=["linear", "markov"], ci=jf.Bootstrap(n_resamples=60, seed=3))
    pd.testing.assert_frame_equal(at, again)
    assert at.attrs["ci"]["n_resamples"] == 60


def test_markov_recovers_the_simulated_ranking_roughly() -> None:
    """On simulated data the Markov shares correlate with the true removal shares."""
    sim = jf.datasets.simulate_webshop(3_000, seed=11, return_truth=True)
    ev = jf.assign_touchpoints(jf.sessionize(sim.events))
    jr = jf.build_journeys(ev, lookback=None)
    mm = jf.MarkovAttribution().fit(jr).attribution_.set_index("channel")["share"]
    truth = sim.truth.set_index("channel")["share"].reindex(mm.index)
    assert np.corrcoef(mm.to_numpy(), truth.to_numpy())[0, 1] > 0.7


def test_errors() -> None:
    jr = _paths([("a", 1, 0)])
    with pytest.raises(OptionError, match=r"Unknown attribution model 'markof'.*Did you mean 'markov'"):
        jf.attribute(jr, models=["markof"])
    with pytest.raises(InputTypeError, match=r"jf\.Journeys"):
        jf.attribute(pd.DataFrame(), models=["linear"])  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="first \\+ last"):
        jf.PositionBased(first=0.7, last=0.5)
    with pytest.raises(DataError, match="No journey converts"):
        jf.MarkovAttribution().fit(_paths([("a", 0, 3)]))


def test_evaluate_attribution_by_hand() -> None:
    at = pd.DataFrame({"model": ["good"] * 3 + ["bad"] * 3, "channel": ["a", "b", "c"] * 2,
                       "share": [0.5, 0.3, 0.2, 0.1, 0.3, 0.6]})
    truth = pd.DataFrame({"channel": ["a", "b", "c"], "share": [0.6, 0.3, 0.1], "conversions_lost": [6, 3, 1]})
    ev = jf.evaluate_attribution(at, truth)
    assert ev["model"].tolist() == ["good", "bad"]
    assert ev["total_abs_error"].tolist() == pytest.approx([0.2, 1.0])
    assert ev["max_abs_error"].tolist() == pytest.approx([0.1, 0.5])
    assert ev["rank_correlation"].tolist() == pytest.approx([1.0, -1.0])


@pytest.mark.filterwarnings("ignore::journeyflow.exceptions.SparseChainWarning")
@pytest.mark.parametrize("model", [jf.MarkovAttribution(order=1), jf.MarkovAttribution(order=2), jf.Linear(),
                                   jf.PositionBased(), jf.FirstTouch(), jf.ShapleyAttribution()])
def test_vectorised_bootstrap_equals_refitting_each_resample(model: jf.attribution.AttributionModel) -> None:
    from journeyflow.attribution.bootstrap import _refit_samples

    jr = _paths([("a > b > c", 12, 20), ("b", 5, 30), ("c > a", 8, 9), ("a", 2, 15), ("b > b > a", 4, 4)])
    boot = jf.Bootstrap(n_resamples=30, seed=5)
    fast = boot.samples(model, jr)
    slow = _refit_samples(boot, model, jr)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9)


def test_bootstrap_interval_covers_the_true_value_about_as_often_as_it_says() -> None:
    """Journeys drawn from a known path distribution: the 90% interval of the linear
    model's credit contains the population value in roughly 90% of repetitions."""
    rng = np.random.default_rng(0)
    paths = ["a", "b", "a > b", "b > c", "c"]
    p_path = np.array([0.3, 0.2, 0.2, 0.2, 0.1])
    p_conv = np.array([0.1, 0.05, 0.3, 0.2, 0.15])
    # population credit per journey: linear splits of the expected conversions
    expected_a = 0.3 * 0.1 + 0.2 * 0.3 / 2
    hits = 0
    reps = 40
    for rep in range(reps):
        counts = rng.multinomial(2_000, p_path)
        conv = rng.binomial(counts, p_conv)
        jr = _paths([(p, int(c), int(n - c)) for p, c, n in zip(paths, conv, counts)])
        at = jf.attribute(jr, models=["linear"], ci=jf.Bootstrap(n_resamples=200, seed=rep, level=0.9))
        row = at.set_index("channel").loc["a"]
        hits += row["ci_low"] <= expected_a * 2_000 <= row["ci_high"]
    assert 0.75 <= hits / reps <= 1.0


def test_time_decay_bootstrap_is_linear_in_the_counts() -> None:
    from journeyflow.attribution.bootstrap import _refit_samples

    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(200, seed=4)))
    jr = jf.build_journeys(ev)
    boot = jf.Bootstrap(n_resamples=10, seed=2)
    # touch weights never credit a null journey: only the converting journeys are resampled
    converting = jr.take(jr.conversions > 0)
    assert converting.n_paths < jr.n_paths
    np.testing.assert_allclose(boot.samples(jf.TimeDecay(), jr), _refit_samples(boot, jf.TimeDecay(), converting),
                               rtol=1e-9, atol=1e-9)
    full = _refit_samples(boot, jf.TimeDecay(), jr)  # the same distribution from other draws
    np.testing.assert_allclose(full.mean(axis=0), boot.samples(jf.TimeDecay(), jr).mean(axis=0), rtol=0.25)


def test_sparse_higher_order_chain_warns() -> None:
    sparse = _paths([("a > b > c", 1, 1), ("c > b > a", 0, 2), ("b > a > c", 1, 0)])
    with pytest.warns(jf.SparseChainWarning, match="order=2"):
        jf.MarkovAttribution(order=2).fit(sparse)
    dense = _paths([("a > b", 50, 50), ("b > a", 40, 60), ("a", 30, 70), ("b", 20, 80)])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jf.MarkovAttribution(order=2).fit(dense)
        jf.MarkovAttribution(order=1).fit(sparse)  # order 1 never warns


@pytest.mark.parametrize("model", ["first_touch", "last_touch", "linear", "position_based", "markov", "shapley"])
def test_relabelling_channels_relabels_the_credit(model: str) -> None:
    rows = [("a > b > c", 12, 20), ("b", 5, 30), ("c > a", 8, 9), ("a", 2, 15), ("d > b", 0, 9)]
    rename = {"a": "x", "b": "y", "c": "z", "d": "w"}
    renamed = [(" > ".join(rename[t] for t in p.split(" > ")), c, n) for p, c, n in rows]
    a = jf.attribute(_paths(rows), models=[model]).set_index("channel")["conversions"]
    b = jf.attribute(_paths(renamed), models=[model]).set_index("channel")["conversions"]
    np.testing.assert_allclose(a.rename(rename).sort_index(), b.sort_index(), rtol=1e-9)
    # d is never on a converting path: the path-based models give it nothing. The Markov
    # chain does (d -> b leads into a state that converts): documented in markov.py.
    if model != "markov":
        assert a["d"] == pytest.approx(0.0, abs=1e-12)
    else:
        assert a["d"] > 0


@pytest.mark.parametrize("model", [jf.MarkovAttribution(order=1), jf.Linear(), jf.ShapleyAttribution()])
def test_bootstrap_of_journeys_resamples_their_distinct_paths(model: jf.attribution.AttributionModel) -> None:
    """Journeys that took the same path are resampled through their path's Poisson(n) count:
    the samples equal per-resample refits on the merged paths with the same draws."""
    from journeyflow.attribution.bootstrap import _refit_samples

    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(300, seed=8)))
    jr = jf.build_journeys(ev)
    merged, _ = jr.distinct()
    assert merged.n_paths < jr.n_paths  # many journeys share a path
    boot = jf.Bootstrap(n_resamples=12, seed=3)
    np.testing.assert_allclose(boot.samples(model, jr), _refit_samples(boot, model, merged), rtol=1e-9, atol=1e-9)


@pytest.mark.filterwarnings("ignore::journeyflow.exceptions.SparseChainWarning")
@pytest.mark.parametrize(("names", "dense_states"), [
    (["first_touch", "last_touch", "linear", "position_based", "time_decay", "markov", "shapley"], 200),
    (["markov2", "shapley", "time_decay"], 200),
    (["markov", "markov2", "linear"], 200),
    (["time_decay"], 200),
    (["markov", "linear", "shapley"], 3),  # Markov refits per resample beside the stacked product of the others
])
def test_stacked_bootstrap_equals_refitting_each_model(names: list[str], dense_states: int) -> None:
    """samples_many draws once and gets every model's linear statistics from one stacked
    sparse product: each model's samples equal per-resample refits of that model alone
    on the same draws (the distinct paths for models of the paths, the converting
    journeys when every other model is time decay)."""
    from journeyflow.attribution.bootstrap import _refit_samples, merged_paths

    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(250, seed=21)))
    jr = jf.build_journeys(ev)
    make = {"markov2": lambda: jf.MarkovAttribution(order=2)}
    models = [make[n]() if n in make else jf.attribution._resolve(n) for n in names]
    boot = jf.Bootstrap(n_resamples=30, seed=9)  # two chunks of resamples
    with mock.patch("journeyflow.attribution.bootstrap.DENSE_STATES", dense_states):
        fast = boot.samples_many(models, jr)
    others = [m for m in models if type(m) not in jf.attribution.PATH_ONLY]
    assert all(isinstance(m, jf.TimeDecay) for m in others)
    for model, got in zip(models, fast, strict=True):
        data = merged_paths(jr) if type(model) in jf.attribution.PATH_ONLY else jr.take(jr.conversions > 0)
        slow = _refit_samples(boot, model, data)
        assert got.shape == (30, len(jr.channels))
        np.testing.assert_allclose(got, slow, rtol=1e-9, atol=1e-9)
        assert got.std(axis=0).max() > 0  # the resamples differ


def test_draws_ahead_are_the_same_draws() -> None:
    """With the next chunk drawn on a second thread and the two draw groups (models of
    the paths, time decay) on two threads (forced here: small data runs in line), every
    model's samples are those drawn in line."""
    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(250, seed=21)))
    jr = jf.build_journeys(ev)
    boot = jf.Bootstrap(n_resamples=80, seed=4)  # four chunks
    models = ["linear", "markov", "shapley", jf.TimeDecay()]
    inline = boot.samples_many([jf.attribution._resolve(m) for m in models], jr)
    with mock.patch("journeyflow.attribution.bootstrap._AHEAD_MIN_DRAWS", 0):
        ahead = boot.samples_many([jf.attribution._resolve(m) for m in models], jr)
    for a, b in zip(inline, ahead, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.std(axis=0).max() > 0


def test_draws_ahead_never_overwrite_the_chunk_in_use() -> None:
    """The drawing thread runs one chunk ahead, never into the buffer the caller holds;
    its errors reach the caller, and it ends when the caller stops early."""
    import threading
    import time

    from journeyflow.attribution.bootstrap import _ahead

    def chunks(n: int, fail_at: int = -1) -> Iterator[np.ndarray]:
        buffers = [np.empty(1000), np.empty(1000)]  # two buffers taking turns, as _cell_draws
        for k in range(n):
            if k == fail_at:
                raise ValueError("draw failed")
            buffers.reverse()
            buffers[0][:] = k
            yield buffers[0]

    seen = []
    for k, chunk in enumerate(_ahead(chunks(12), threads=True)):
        time.sleep(0.005)  # the drawing thread could run ahead meanwhile
        assert (chunk == k).all()
        seen.append(k)
    assert seen == list(range(12))
    with pytest.raises(ValueError, match="draw failed"):
        list(_ahead(chunks(12, fail_at=5), threads=True))
    it = _ahead(chunks(12), threads=True)
    assert (next(it) == 0).all()
    it.close()
    assert not any(t.name == "journeyflow-draws" for t in threading.enumerate())


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (40_000, 5)])  # an odd count of 16-bit draws; several blocks
def test_poisson_1_draws_are_the_inverse_cdf_of_the_seeded_random_bits(shape: tuple[int, int]) -> None:
    """The Poisson(1) counts of a seed are pinned: 16 bits per draw from rng.bytes, the
    inverse CDF where a bucket of 2**-16 holds one count, and a uniform (drawn after all
    the bits, in order) refining the buckets a CDF step falls in. Users rely on a seed
    giving the same intervals, so a faster sampler must give these counts."""
    from math import exp, factorial

    from journeyflow.attribution.bootstrap import _poisson_1

    cdf = np.cumsum([exp(-1.0) / factorial(k) for k in range(20)])
    ref_rng = np.random.default_rng(17)
    n = shape[0] * shape[1]
    bits = np.frombuffer(ref_rng.bytes(2 * n), dtype="<u2").astype(np.float64)
    low = np.searchsorted(cdf, bits / 2**16, side="right")
    high = np.searchsorted(cdf, (bits + 1) / 2**16, side="left")
    ambiguous = np.flatnonzero(low != high)
    expected = low.astype(np.float64)
    expected[ambiguous] = np.searchsorted(cdf, (bits[ambiguous] + ref_rng.random(len(ambiguous))) / 2**16, side="right")
    rng = np.random.default_rng(17)
    out = np.full(shape, np.nan)
    _poisson_1(rng, out)
    np.testing.assert_array_equal(out.ravel(), expected)
    assert rng.random() == ref_rng.random()  # the same random numbers consumed
    if n > 1000:
        assert len(ambiguous) > 0 and set(np.unique(out)) >= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_bootstrap_draws_are_poisson_counts() -> None:
    """One journey per cell (the table sampler) and larger counts (numpy's): frequencies
    match the Poisson probabilities (chi-square, 6 categories)."""
    from math import exp, factorial

    from scipy import stats

    jr = jf.Journeys(np.zeros(4000, dtype=np.int64), np.arange(4001), ["a"], np.r_[np.ones(2000), np.full(2000, 3.0)],
                     np.zeros(4000))
    boot = jf.Bootstrap(n_resamples=50, seed=11)
    draws = np.vstack([c for c, _ in boot._draws(jr)])
    for lam, block in ((1.0, draws[:, :2000]), (3.0, draws[:, 2000:])):
        k = np.minimum(block.ravel().astype(int), 5)
        observed = np.bincount(k, minlength=6)
        p = np.array([exp(-lam) * lam**i / factorial(i) for i in range(5)])
        expected = np.r_[p, 1 - p.sum()] * k.size
        assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_time_decay_weighs_only_credited_journeys_with_the_same_sums() -> None:
    """Time decay weighs the touches of journeys with conversions or value only: the
    same (conversions, value) per channel, to the bit, as weighing every journey."""
    from journeyflow.attribution.models import _TouchWeights

    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(400, seed=6)))
    jr = jf.build_journeys(ev)
    assert (jr.conversions == 0).sum() > 10 and (jr.conversions > 0).sum() > 10
    model = jf.TimeDecay(half_life="3D")
    every = _TouchWeights._credit(model, jr)  # the touches of every journey weighed
    fitted = model.fit(jr).attribution_
    np.testing.assert_array_equal(fitted["conversions"].to_numpy(), every[0])
    np.testing.assert_array_equal(fitted["value"].to_numpy(), every[1])
    assert fitted["channel"].tolist() == list(jr.channels)
    assert model.n_journeys_ == jr.n_paths


def test_fits_beside_the_bootstrap_give_the_same_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large inputs fit the models on a second thread while the bootstrap resamples:
    the table (estimates and intervals of every model) is the one of the serial run."""
    import journeyflow.attribution as attribution

    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(300, seed=11)))
    jr = jf.build_journeys(ev)
    models = ["first_touch", "linear", "time_decay", "markov", "position_based", "shapley"]
    serial = jf.attribute(jr, models=models, ci=jf.Bootstrap(n_resamples=30, seed=3))
    monkeypatch.setattr(attribution, "_PARALLEL_PATHS", 0)
    threaded = jf.attribute(jr, models=models, ci=jf.Bootstrap(n_resamples=30, seed=3))
    pd.testing.assert_frame_equal(threaded, serial)
    assert threaded["ci_low"].notna().all() and (threaded["ci_low"] <= threaded["ci_high"]).all()
