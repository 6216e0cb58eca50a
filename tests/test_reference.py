"""journeyflow against ChannelAttribution's stored results on the sample's journeys.

tests/reference/make_reference.py wrote them (see VERSION.txt for the tool version
and the calls). ChannelAttribution's Markov model estimates removal effects by
simulating walks (1e7 here), so those agree up to its noise; its heuristics are exact.
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


@pytest.mark.filterwarnings("ignore::journeyflow.exceptions.SparseChainWarning")  # order 3 on the sample
@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_agrees_within_two_percent_per_channel(journeys: jf.Journeys, order: int) -> None:
    """ChannelAttribution simulated 1e7 walks (VERSION.txt); at that count its noise is
    below 1-2 %, so both conversions and value agree within 2 % on every channel."""
    re_ca = pd.read_csv(REF / f"ca_removal_effects_order{order}.csv").set_index("channel_name")
    res_ca = pd.read_csv(REF / f"ca_markov_order{order}.csv").set_index("channel_name")
    mm = jf.MarkovAttribution(order=order).fit(journeys)
    ours = mm.attribution_.set_index("channel").reindex(res_ca.index)
    np.testing.assert_allclose(ours["conversions"], res_ca["total_conversions"], rtol=0.02)
    np.testing.assert_allclose(ours["value"], res_ca["total_conversion_value"], rtol=0.02)
    removal = mm.removal_effects_.set_index("channel").reindex(re_ca.index)
    np.testing.assert_allclose(removal["removal_effect"], re_ca["removal_effects_conversion"], rtol=0.02)
