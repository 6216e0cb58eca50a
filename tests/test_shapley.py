"""Shapley attribution beyond a handful of channels: exact per coalition, sampled past the limit.

Independent references: an all-coalitions Möbius/zeta transform (below, the way
journeyflow computed Shapley before per-coalition splitting) and a brute force over
all orderings of each coalition (``_slow_shapley`` in test_attribution.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import journeyflow as jf
from journeyflow.exceptions import DataQualityWarning
from test_attribution import _slow_shapley


def _journeys(rows: list[tuple[str, float, float]]) -> jf.Journeys:
    df = pd.DataFrame(rows, columns=["path", "total_conversions", "total_null"])
    df["value"] = df["total_conversions"] * 7.0
    return jf.Journeys.from_paths(df, value="value")


def _random_rows(rng: np.random.Generator, n_channels: int, n_paths: int, max_len: int) -> list[tuple[str, float, float]]:
    names = [f"c{i:03d}" for i in range(n_channels)]
    rows = []
    for _ in range(n_paths):
        k = int(rng.integers(1, max_len + 1))
        path = rng.choice(names, size=k, replace=True)
        rows.append((" > ".join(path), float(rng.integers(0, 6)), float(rng.integers(0, 6))))
    if sum(r[1] for r in rows) == 0:
        rows[0] = (rows[0][0], 1.0, rows[0][2])
    return rows


def _shapley_split(conv: np.ndarray, total: np.ndarray, value: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Credit per channel for a batch of games: inputs (batch, 2**n) per coalition mask,
    outputs (batch, n). The Möbius (Harsanyi dividend) transform over all 2**n masks."""
    size = 1 << n
    v = np.divide(conv, total, out=np.zeros_like(conv, dtype=np.float64), where=total > 0)
    v[:, 0] = 0.0
    masks = np.arange(size, dtype=np.int64)
    d = v.copy()
    for b in range(n):  # Moebius transform (Harsanyi dividends), a loop over bits
        has = np.flatnonzero((masks >> b) & 1 == 1)
        d[:, has] -= d[:, has ^ (1 << b)]
    popcount = np.zeros(size, dtype=np.int64)
    for b in range(n):
        popcount += (masks >> b) & 1
    per_member = np.where(popcount > 0, d / np.maximum(popcount, 1), 0.0)
    phi = np.zeros((*v.shape, n))
    for c in range(n):  # per channel: subset-sum (zeta) transform of d(T)/|T| over T containing c
        g = np.where((masks >> c) & 1 == 1, per_member, 0.0)
        for b in range(n):
            has = np.flatnonzero((masks >> b) & 1 == 1)
            g[:, has] += g[:, has ^ (1 << b)]
        phi[:, :, c] = g
    phi = np.clip(phi, 0.0, None)
    member = ((masks[:, None] >> np.arange(n)[None, :]) & 1) == 1
    weights = np.where(member[None, :, :], phi, 0.0)
    norm = weights.sum(axis=2, keepdims=True)
    equal = np.broadcast_to(member / np.maximum(member.sum(axis=1, keepdims=True), 1), weights.shape)
    split = np.where(norm > 0, weights / np.where(norm > 0, norm, 1), equal)
    return (split * conv[:, :, None]).sum(axis=1), (split * value[:, :, None]).sum(axis=1)


def _moebius_reference(jr: jf.Journeys) -> np.ndarray:
    used = np.unique(jr.touches.astype(np.int64))
    local = {c: i for i, c in enumerate(used)}
    bits = np.zeros(jr.n_paths, dtype=np.int64)
    for p in range(jr.n_paths):  # slow and obvious: a loop over paths
        for t in jr.touches[jr.offsets[p]:jr.offsets[p + 1]]:
            bits[p] |= 1 << local[int(t)]
    size = 1 << len(used)
    conv = np.bincount(bits, weights=jr.conversions, minlength=size)[None, :]
    total = np.bincount(bits, weights=jr.conversions + jr.nulls, minlength=size)[None, :]
    value = np.bincount(bits, weights=jr.value, minlength=size)[None, :]
    c, _ = _shapley_split(conv, total, value, len(used))
    out = np.zeros(len(jr.channels))
    out[used] = c[0]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_per_coalition_equals_the_all_coalitions_transform(seed: int) -> None:
    rows = _random_rows(np.random.default_rng(seed), n_channels=9, n_paths=300, max_len=6)
    jr = _journeys(rows)
    got = jf.ShapleyAttribution().fit(jr)
    np.testing.assert_allclose(got.attribution_["conversions"], _moebius_reference(jr), rtol=1e-9, atol=1e-9)
    assert got.sampling_se_ is None and got.n_sampled_coalitions_ == 0


@pytest.mark.parametrize("n_channels", [40, 70])  # 70 > 62: coalitions keyed by 64-bit hashes
def test_many_channels_are_exact_when_journeys_are_short(n_channels: int) -> None:
    rows = _random_rows(np.random.default_rng(n_channels), n_channels=n_channels, n_paths=400, max_len=4)
    jr = _journeys(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing sampled, nothing to warn about
        got = jf.ShapleyAttribution(method="exact").fit(jr).attribution_
    expected = _slow_shapley([(p, int(c), int(n)) for p, c, n in rows])
    assert dict(zip(got["channel"], got["conversions"], strict=True)) == pytest.approx(
        {k: expected.get(k, 0.0) for k in got["channel"]}, rel=1e-9, abs=1e-9
    )
    assert got["conversions"].sum() == pytest.approx(jr.total_conversions)
    assert got["value"].sum() == pytest.approx(jr.total_value)


def test_permutation_estimate_converges_to_the_exact_values() -> None:
    rows = _random_rows(np.random.default_rng(5), n_channels=7, n_paths=200, max_len=7)
    jr = _journeys(rows)
    exact = jf.ShapleyAttribution().fit(jr).attribution_["conversions"].to_numpy()
    model = jf.ShapleyAttribution(method="permutation", n_permutations=4000, seed=1).fit(jr)
    est = model.attribution_["conversions"].to_numpy()
    se = model.sampling_se_["conversions_se"].to_numpy()
    assert model.n_sampled_coalitions_ > 0
    assert (se > 0).any()
    assert np.all(np.abs(est - exact) <= 5 * se + 1e-6), (est, exact, se)
    assert est.sum() == pytest.approx(jr.total_conversions, rel=1e-12)
    assert model.attribution_["value"].sum() == pytest.approx(jr.total_value, rel=1e-12)
    # with few orders the estimate is visibly noisier: the error bound means something
    rough = jf.ShapleyAttribution(method="permutation", n_permutations=20, seed=1).fit(jr)
    assert np.abs(rough.attribution_["conversions"].to_numpy() - exact).max() > np.abs(est - exact).max()


def test_permutations_are_seeded() -> None:
    rows = _random_rows(np.random.default_rng(6), n_channels=6, n_paths=100, max_len=6)
    jr = _journeys(rows)

    def fit(seed: int) -> np.ndarray:
        m = jf.ShapleyAttribution(method="permutation", n_permutations=50, seed=seed)
        return m.fit(jr).attribution_["conversions"].to_numpy()

    np.testing.assert_array_equal(fit(3), fit(3))
    assert not np.array_equal(fit(3), fit(4))


def test_auto_samples_only_the_large_coalitions_and_says_so() -> None:
    rows = [("a > b", 3, 7), ("a", 1, 9), ("b", 2, 8), ("a > b > c > d > e", 4, 6), ("c > d", 1, 1)]
    jr = _journeys(rows)
    with pytest.warns(DataQualityWarning, match=r"1 coalitions .*\(36\.4% of conversions\)"):
        model = jf.ShapleyAttribution(max_channels=3, n_permutations=3000, seed=0).fit(jr)
    assert model.n_sampled_coalitions_ == 1
    exact = _slow_shapley(rows)
    got = dict(zip(model.attribution_["channel"], model.attribution_["conversions"], strict=True))
    se = dict(zip(model.sampling_se_["channel"], model.sampling_se_["conversions_se"], strict=True))
    for ch, x in exact.items():
        assert abs(got[ch] - x) <= 5 * se[ch] + 1e-9
    assert model.attribution_["conversions"].sum() == pytest.approx(jr.total_conversions)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), relabel=st.booleans())
def test_credit_sums_and_does_not_depend_on_labels_or_row_order(seed: int, relabel: bool) -> None:
    rng = np.random.default_rng(seed)
    rows = _random_rows(rng, n_channels=12, n_paths=60, max_len=5)
    jr = _journeys(rows)
    a = jf.ShapleyAttribution(max_channels=3, n_permutations=30, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        got = a.fit(jr).attribution_
    assert got["conversions"].sum() == pytest.approx(jr.total_conversions, rel=1e-12)
    assert (got["conversions"] >= -1e-12).all()
    # exact credit (all coalitions <= 5 channels) is invariant to path order and channel names
    perm = rng.permutation(len(rows))
    names = {f"c{i:03d}": (f"z{99 - i:03d}" if relabel else f"c{i:03d}") for i in range(12)}
    shuffled = [(" > ".join(names[t] for t in rows[i][0].split(" > ")), rows[i][1], rows[i][2]) for i in perm]
    base = jf.ShapleyAttribution(method="exact").fit(jr).attribution_
    other = jf.ShapleyAttribution(method="exact").fit(_journeys(shuffled)).attribution_
    back = {v: k for k, v in names.items()}
    mapped = dict(zip([back[c] for c in other["channel"]], other["conversions"], strict=True))
    assert dict(zip(base["channel"], base["conversions"], strict=True)) == pytest.approx(mapped, rel=1e-9, abs=1e-12)


def test_bootstrap_of_sampled_shapley_runs_and_brackets_the_estimate() -> None:
    rows = _random_rows(np.random.default_rng(8), n_channels=20, n_paths=150, max_len=6)
    jr = _journeys(rows)
    model = jf.ShapleyAttribution(max_channels=4, n_permutations=200, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        table = jf.attribute(jr, models=[model], ci=jf.Bootstrap(n_resamples=40, seed=1))
    assert table["conversions"].sum() == pytest.approx(jr.total_conversions)
    assert (table["ci_low"] <= table["conversions"] + 1e-9).mean() >= 0.9
    assert (table["ci_high"] >= table["conversions"] - 1e-9).mean() >= 0.9


def test_conversions_without_a_touch_are_an_error_not_lost() -> None:
    jr = jf.Journeys(np.array([0, 1], dtype=np.int64), np.array([0, 2, 2]), ["a", "b"], [1.0, 3.0], [1.0, 0.0])
    with pytest.raises(jf.exceptions.DataError, match="3 conversions are on journeys without a touch"):
        jf.ShapleyAttribution().fit(jr)


def test_sampling_standard_error_is_calibrated() -> None:
    """Over many seeds, (estimate - exact) / SE behaves like a t variable with 9 degrees of
    freedom (10 batches): mean square near 9/7. A standard error off by 2x would give 1/4 or 4x."""
    rows = [("a > b", 30, 70), ("a", 10, 90), ("b", 20, 80), ("a > b > c", 40, 60), ("c", 5, 95),
            ("b > c", 25, 75), ("a > c", 20, 80)]
    jr = _journeys(rows)
    exact = jf.ShapleyAttribution().fit(jr).attribution_["conversions"].to_numpy()
    z2 = []
    for seed in range(120):  # a loop over seeds: the check is about the estimator's spread
        m = jf.ShapleyAttribution(method="permutation", n_permutations=200, seed=seed).fit(jr)
        est, se = m.attribution_["conversions"].to_numpy(), m.sampling_se_["conversions_se"].to_numpy()
        ok = se > 0
        z2.extend(((est[ok] - exact[ok]) / se[ok]) ** 2)
    assert len(z2) >= 120
    assert 0.6 <= float(np.mean(z2)) <= 2.5
