"""journeyflow against ChannelAttribution's stored results on the sample's journeys.

tests/reference/make_reference.py wrote them (see VERSION.txt for the tool version
and the calls). ChannelAttribution's Markov model estimates removal effects by
simulation, so those agree up to its noise; its heuristics are exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import journeyflow as jf

REF = Path(__file__).resolve().parent / "reference"


@pytest.fixture(scope="module")
def journeys() -> jf.Journeys:
    paths = pd.read_csv(REF / "sample_paths.csv")
    return jf.Journeys.from_paths(paths, conversions="conversions", nulls="nulls", value="value")


def test_stored_paths_are_the_sample_journeys(journeys: jf.Journeys) -> None:
    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.load_sample()))
    fresh = jf.build_journeys(ev, lookback="30D").to_paths()
    stored = journeys.to_paths()
    assert fresh["path"].tolist() == stored["path"].tolist()
    np.testing.assert_allclose(fresh[["conversions", "nulls", "value"]], stored[["conversions", "nulls", "value"]])


def test_heuristics_equal_channelattribution(journeys: jf.Journeys) -> None:
    ca = pd.read_csv(REF / "ca_heuristic.csv").set_index("channel_name")
    at = jf.attribute(journeys, models=["first_touch", "last_touch", "linear"])
    for ours, theirs in (("first_touch", "first_touch"), ("last_touch", "last_touch"), ("linear", "linear_touch")):
        t = at[at["model"] == ours].set_index("channel").reindex(ca.index)
        np.testing.assert_allclose(t["conversions"], ca[f"{theirs}_conversions"], rtol=1e-9)
        np.testing.assert_allclose(t["value"], ca[f"{theirs}_value"], rtol=1e-9)


@pytest.mark.parametrize("order", [1, 2])
def test_markov_agrees_within_simulation_noise(journeys: jf.Journeys, order: int) -> None:
    re_ca = pd.read_csv(REF / f"ca_removal_effects_order{order}.csv").set_index("channel_name")
    res_ca = pd.read_csv(REF / f"ca_markov_order{order}.csv").set_index("channel_name")
    mm = jf.MarkovAttribution(order=order).fit(journeys)
    ours = mm.removal_effects_.set_index("channel").reindex(re_ca.index)
    assert np.abs(ours["removal_effect"] - re_ca["removal_effects_conversion"]).max() < 0.02
    share = mm.attribution_.set_index("channel")["share"].reindex(res_ca.index)
    share_ca = res_ca["total_conversions"] / res_ca["total_conversions"].sum()
    assert np.abs(share - share_ca).max() < 0.015
    # the ranking of the big channels is the same
    big = share_ca[share_ca > 0.1].index
    assert list(share[big].sort_values().index) == list(share_ca[big].sort_values().index)
