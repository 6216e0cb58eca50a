"""Plots: they draw what the tables say, on the given Axes, and leave nothing open."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import journeyflow as jf
from journeyflow.exceptions import SchemaError


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    ev = jf.datasets.simulate_webshop(400, seed=8)
    return jf.assign_phases(jf.assign_touchpoints(jf.sessionize(ev)))


@pytest.fixture(autouse=True)
def _close_figures() -> object:
    """Charts return open figures (the caller owns them); close them between tests."""
    yield
    plt.close("all")


STEPS = ["product_view", "add_to_cart", "checkout_start", "purchase"]


def test_funnel_bars_equal_the_table_and_use_the_given_ax(events: pd.DataFrame) -> None:
    table = jf.funnel(events, STEPS)
    fig, ax = plt.subplots()
    out = jf.plot.funnel(table, ax=ax)
    assert out is ax
    assert [p.get_width() for p in ax.patches] == table["users"].astype(float).tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == STEPS
    plt.close(fig)
    assert plt.get_fignums() == []


def test_funnel_by_segment_draws_one_bar_per_row(events: pd.DataFrame) -> None:
    table = jf.funnel(events, STEPS, by="device")
    ax = jf.plot.funnel(table)
    assert sorted(p.get_width() for p in ax.patches) == sorted(table["users"].astype(float))
    assert len(ax.get_legend().get_texts()) == table["device"].nunique()


def test_phase_funnel_and_empty_table(events: pd.DataFrame) -> None:
    pf = jf.phase_funnel(events, "aacra")
    ax = jf.plot.funnel(pf)
    assert [p.get_width() for p in ax.patches] == pf["users"].astype(float).tolist()
    empty = jf.plot.funnel(pf.iloc[:0])
    assert "empty" in empty.texts[0].get_text()


def test_attribution_bars_and_intervals() -> None:
    paths = pd.DataFrame({"path": ["a > b", "b", "c > a"], "total_conversions": [30, 10, 5],
                          "total_null": [20, 40, 10]})
    at = jf.attribute(jf.Journeys.from_paths(paths), models=["linear", "markov"],
                      ci=jf.Bootstrap(n_resamples=30, seed=0))
    ax = jf.plot.attribution(at, measure="conversions")
    heights = sorted(round(p.get_height(), 9) for p in ax.patches)
    assert heights == sorted(at["conversions"].round(9))
    from matplotlib.container import BarContainer, ErrorbarContainer

    assert sum(isinstance(c, BarContainer) for c in ax.containers) == 2  # one per model
    assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 2  # intervals drawn
    truth = pd.DataFrame({"channel": ["a", "b", "c"], "share": [0.5, 0.3, 0.2]})
    ax2 = jf.plot.attribution(at, truth=truth)
    assert any(c.get_label() == "truth" for c in ax2.collections)


def test_drop_off_stacks_sum_to_people_who_left(events: pd.DataFrame) -> None:
    table = jf.drop_off(events, STEPS)
    ax = jf.plot.drop_off(table)
    widths = pd.Series([p.get_width() for p in ax.patches], index=[p.get_y() for p in ax.patches])
    per_row = widths.groupby(level=0).sum().sort_index().to_numpy()
    expected = table.groupby("step_index")["users"].sum().to_numpy()
    np.testing.assert_allclose(per_row, expected)


def test_journey_flow_bands_sum_to_the_people(events: pd.DataFrame) -> None:
    table = jf.flows.journey_flow_table(events, by="channel", max_steps=4)
    users = events["user_id"].nunique()
    assert table.loc[table["step"] == 1, "users"].sum() == users
    for k in range(1, 4):
        arriving = table.loc[(table["step"] == k) & (table["target"] != "(exit)"), "users"].sum()
        assert table.loc[table["step"] == k + 1, "users"].sum() == arriving
    ax = jf.plot.journey_flow(table)
    assert ax.get_xticklabels()[0].get_text() == "step 1"


def test_other_charts_return_axes(events: pd.DataFrame) -> None:
    assert jf.plot.time_to_convert(jf.time_to_convert(events, ["product_view", "purchase"])) is not None
    assert jf.plot.touchpoint_priority(jf.touchpoint_priority(events)) is not None
    jr = jf.build_journeys(events)
    assert jf.plot.transition_matrix(jf.MarkovAttribution().fit(jr)) is not None
    ax = jf.plot.journey_map(events)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(jf.get_model("aacra").phases)


def test_wrong_table_is_named() -> None:
    with pytest.raises(SchemaError, match=r"plot\.attribution needs column 'model'"):
        jf.plot.attribution(pd.DataFrame({"x": [1]}))


def test_one_row_tables() -> None:
    one = pd.DataFrame({"step": ["view"], "step_index": [1], "users": [5], "conversion_from_start": [1.0],
                        "conversion_from_previous": [1.0], "dropped": [0],
                        "median_time_from_previous": [pd.NaT]})
    ax = jf.plot.funnel(one)
    assert [p.get_width() for p in ax.patches] == [5.0]
