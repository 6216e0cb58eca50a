"""Phase models and the multi-phase rule, against a slow per-user reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import journeyflow as jf
from journeyflow.exceptions import OptionError
from journeyflow.phases import BUILTIN_MODELS


def _slow_phases(events: pd.DataFrame, model: jf.PhaseModel) -> list[object]:
    """Per user, in time order (ties: input order), the rule as DESIGN.md words it."""
    out: dict[int, object] = {}
    ordered = events.reset_index(drop=True).reset_index().sort_values(["user_id", "timestamp", "index"])
    for _, rows in ordered.groupby("user_id", sort=False):
        reached = -1
        for _, row in rows.iterrows():
            phases = model.events.get(row["event"]) or model.touchpoints.get(row.get("touchpoint"))
            if not phases:
                out[row["index"]] = None
                continue
            idx = sorted(model.phases.index(p) for p in phases)
            later = [i for i in idx if i >= reached]
            chosen = later[0] if later else idx[-1]
            reached = max(reached, chosen)
            out[row["index"]] = model.phases[chosen]
    return [out[i] for i in range(len(events))]


def test_the_seed_example_social_media_moves_on() -> None:
    ev = pd.DataFrame(
        {
            "user_id": ["a"] * 5 + ["b"],
            "timestamp": pd.date_range("2026-01-01", periods=6, freq="D", tz="UTC"),
            "event": ["social_post_view", "blog_view", "social_post_view", "purchase", "social_post_view",
                      "social_post_view"],
        }
    )
    out = jf.assign_phases(jf.assign_touchpoints(ev), model="aacra")
    assert out["phase"].astype(str).tolist() == [
        "awareness",      # first touch: earliest phase of social media
        "consideration",  # blog
        "consideration",  # social media again: earliest not before consideration
        "purchase",
        "advocacy",       # after the purchase: the only social-media phase not before it
        "awareness",      # another person starts over
    ]
    assert out["phase"].cat.ordered
    assert list(out["phase"].cat.categories) == list(BUILTIN_MODELS["aacra"].phases)


def test_touchpoint_only_in_earlier_phases_takes_its_latest() -> None:
    model = jf.PhaseModel("m", ("a", "b", "c"), events={"x": ("a", "b"), "y": ("c",)})
    ev = pd.DataFrame(
        {"user_id": ["u"] * 3, "timestamp": pd.date_range("2026-01-01", periods=3, freq="D", tz="UTC"),
         "event": ["y", "x", "z"]}
    )
    out = jf.assign_phases(ev, model=model)
    assert out["phase"].astype(object).tolist()[:2] == ["c", "b"]
    assert pd.isna(out["phase"].iloc[2])  # unmapped event: no phase


@pytest.mark.parametrize("name", list(BUILTIN_MODELS))
def test_every_builtin_model_maps_every_simulator_event(name: str) -> None:
    ev = jf.assign_touchpoints(jf.datasets.simulate_webshop(300, seed=3))
    out = jf.assign_phases(ev, model=name)
    assert out["phase"].notna().all()
    model = BUILTIN_MODELS[name]
    assert set(out["phase"].astype(str)) <= set(model.phases)
    expected = _slow_phases(ev, model)
    assert out["phase"].astype(object).tolist() == expected


def test_custom_model_from_toml_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "b2b.toml"
    path.write_text(
        'name = "b2b"\nphases = ["aware", "evaluate", "buy"]\n[touchpoints]\nwebinar = ["aware", "evaluate"]\n'
        '[events]\npurchase = ["buy"]\n',
        encoding="utf-8",
    )
    model = jf.PhaseModel.from_toml(path)
    assert model.phases == ("aware", "evaluate", "buy")
    assert jf.PhaseModel.from_toml(path) == model
    with pytest.raises(OptionError, match=r"'evalute'.*Did you mean 'evaluate'"):
        jf.PhaseModel("x", ("aware", "evaluate"), touchpoints={"w": ("evalute",)})
    with pytest.raises(OptionError, match=r"Unknown phase model 'acra'.*Did you mean 'aacra'"):
        jf.get_model("acra")
    with pytest.raises(OptionError, match="unique"):
        jf.PhaseModel("x", ("a", "a"))


_EV = st.sampled_from(["social_post_view", "blog_view", "review_view", "purchase", "review_write",
                       "newsletter_open", "webinar_attend", "delivery", "teleport"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 6), _EV), min_size=1, max_size=30),
    st.sampled_from(list(BUILTIN_MODELS)),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_matches_the_slow_rule_and_ignores_row_order(rows: list[tuple[str, int, str]], name: str, rnd,  # type: ignore[no-untyped-def]
                                                     two_threads: bool) -> None:
    from unittest import mock

    from journeyflow import phases

    ev = pd.DataFrame(rows, columns=["user_id", "t", "event"])
    ev["timestamp"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(ev.pop("t"), unit="h")
    ev = jf.assign_touchpoints(ev)
    model = BUILTIN_MODELS[name]
    with mock.patch.object(phases, "_PARALLEL_ROWS", 0 if two_threads else 10**12):  # halves of the users
        got = jf.assign_phases(ev, model=model)["phase"].astype(object).tolist()
    want = _slow_phases(ev, model)
    assert [None if pd.isna(g) else g for g in got] == want
    # shuffling rows with distinct times changes nothing (ties keep input order, so dedupe first)
    uniq = ev.drop_duplicates(["user_id", "timestamp"])
    perm = list(range(len(uniq)))
    rnd.shuffle(perm)
    a = jf.assign_phases(uniq, model=model)["phase"]
    b = jf.assign_phases(uniq.iloc[perm], model=model)["phase"].loc[a.index]
    assert np.array_equal(a.astype(object).fillna("-").to_numpy(), b.astype(object).fillna("-").to_numpy())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.none(), _EV), st.sampled_from([None, "search", "blog", "webshop", "unknown"])),
             min_size=1, max_size=40),
    st.sampled_from([*BUILTIN_MODELS, "custom"]),
    st.booleans(),
)
def test_phase_masks_of_categoricals_equal_the_hashed_rows(rows: list[tuple[str | None, str | None]], name: str,
                                                           with_touchpoint: bool) -> None:
    """Categorical events and touchpoints get their masks from a table over the
    categories (in blocks of 3 rows here), the same as from the hashed distinct rows,
    missing values and unused categories included."""
    from unittest import mock

    from journeyflow import phases

    model = (jf.PhaseModel("c", ("a", "b"), touchpoints={"search": ["a"], "blog": ["a", "b"]},
                           events={"purchase": ["b"], "blog_view": ["a", "b"]}) if name == "custom" else BUILTIN_MODELS[name])
    m = phases.get_model(model)
    keys = pd.DataFrame(rows, columns=["event", "touchpoint"]).astype("category")
    keys["event"] = keys["event"].cat.add_categories(["never_seen"])
    if not with_touchpoint:
        keys = keys[["event"]]
    with mock.patch.object(phases, "_ROW_BLOCK", 3):
        direct = phases._categorical_masks(m, keys, {k: m.mask(v) for k, v in m.events.items()},
                                           {k: m.mask(v) for k, v in m.touchpoints.items()})
    with mock.patch.object(phases, "_categorical_masks", lambda *a: None):
        hashed = phases._phase_masks(m, keys)
    assert direct is not None and direct.dtype == hashed.dtype
    assert direct.tolist() == hashed.tolist()


def test_masks_and_sort_on_two_threads_equal_one_thread() -> None:
    """Large logs find the phase masks and the (user, time) sort on two threads: the same phases."""
    from unittest import mock

    from journeyflow import phases

    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(400, seed=4)))
    for model in ("aacra", "ten-phase"):
        with mock.patch.object(phases, "_PARALLEL_ROWS", 0):
            two = jf.assign_phases(ev, model=model)
        with mock.patch.object(phases, "_PARALLEL_ROWS", 10**12):
            one = jf.assign_phases(ev, model=model)
        pd.testing.assert_frame_equal(two, one)
        assert two["phase"].nunique() > 2
