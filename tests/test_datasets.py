"""The simulated webshop and the bundled sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import journeyflow as jf
from journeyflow.datasets import _simulate as sim
from journeyflow.exceptions import InputTypeError, OptionError


@pytest.fixture(scope="module")
def run() -> jf.datasets.SimulationResult:
    out = jf.datasets.simulate_webshop(5_000, seed=7, return_truth=True)
    assert isinstance(out, jf.datasets.SimulationResult)
    return out


def test_same_seed_same_log_other_seed_other_log() -> None:
    a = jf.datasets.simulate_webshop(300, seed=3)
    b = jf.datasets.simulate_webshop(300, seed=3)
    c = jf.datasets.simulate_webshop(300, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_columns_and_dtypes(run: jf.datasets.SimulationResult) -> None:
    ev = run.events
    assert list(ev.columns) == [
        "user_id", "timestamp", "event", "page", "url", "referrer", "utm_source",
        "utm_medium", "utm_campaign", "revenue", "rating", "device", "persona", "country",
    ]
    assert str(ev["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert ev["revenue"].dtype == np.float64
    for col in ("event", "page", "url", "referrer", "utm_source", "device", "persona", "country"):
        assert isinstance(ev[col].dtype, pd.CategoricalDtype), col
        assert list(ev[col].cat.categories) == sorted(ev[col].dropna().astype(str).unique()), col
    assert not isinstance(ev["user_id"].dtype, pd.CategoricalDtype)
    assert ev[["user_id", "timestamp", "event"]].notna().all().all()
    assert ev["timestamp"].is_monotonic_increasing
    assert "rating" not in jf.datasets.simulate_webshop(50, seed=1, rating=False).columns


def test_every_vocabulary_event_occurs(run: jf.datasets.SimulationResult) -> None:
    assert set(run.events["event"]) == set(jf.datasets.EVENTS)


def test_revenue_and_rating_sit_on_the_right_events(run: jf.datasets.SimulationResult) -> None:
    ev = run.events
    is_purchase = ev["event"] == "purchase"
    assert (ev["revenue"].notna() == is_purchase).all()
    assert (ev.loc[is_purchase, "revenue"] > 0).all()
    rated = ev["rating"].notna()
    assert set(ev.loc[rated, "event"]) <= {"review_write", "delivery"}
    assert ev.loc[rated, "rating"].between(1, 5).all()


def test_store_visit_is_physical_and_urls_follow_pages(run: jf.datasets.SimulationResult) -> None:
    ev = run.events
    store = ev["event"] == "store_visit"
    assert ev.loc[store, ["url", "page"]].isna().all().all()
    has = ev["page"].notna()
    assert (ev.loc[has, "url"].astype(str) == "https://shop.example.com" + ev.loc[has, "page"].astype(str)).all()


def test_timestamps_within_the_window(run: jf.datasets.SimulationResult) -> None:
    ts = run.events["timestamp"]
    start = pd.Timestamp("2026-01-01", tz="UTC")
    assert ts.min() >= start
    # arrivals over 60 days, at most 12 visits with day-scale gaps, then ~40 days of after-care
    assert ts.max() < start + pd.Timedelta(days=60 + 12 * 30 + 45)


def test_session_structure(run: jf.datasets.SimulationResult) -> None:
    """Inside a visit events are minutes apart; visits start hours apart, so a 30-minute
    sessionisation recovers them and the utm/referrer fields sit on session entries."""
    ev = run.events.sort_values(["user_id", "timestamp"], kind="stable")
    gap = ev.groupby("user_id")["timestamp"].diff().dropna()
    short = gap <= pd.Timedelta("30min")
    assert 0.5 < short.mean() < 0.95
    ses = jf.sessionize(run.events, timeout="30min")
    first = ~ses.sort_values(["session_id", "timestamp"], kind="stable")["session_id"].duplicated()
    tagged = ses["utm_medium"].notna() | ses["referrer"].notna()
    # after-purchase events (no utm) may fall just before a later visit; nothing else may
    assert first.reindex(ses.index)[tagged].mean() > 0.99


def test_funnel_is_nested_per_visit(run: jf.datasets.SimulationResult) -> None:
    counts = run.events["event"].value_counts()
    assert counts["product_view"] > counts["add_to_cart"] > counts["checkout_start"] > counts["purchase"]
    assert counts["purchase"] == counts["order_confirmation_email"]


def test_channels_derivable_from_entry_fields(run: jf.datasets.SimulationResult) -> None:
    ev = run.events
    mediums = set(ev["utm_medium"].dropna())
    assert mediums == {"cpc", "paid_social", "email", "affiliate", "display"}
    refs = ev["referrer"].dropna()
    assert refs.str.contains("google|bing|duckduckgo").any()
    assert refs.str.contains("facebook|instagram|linkedin|t.co").any()


def test_segments_change_behaviour(run: jf.datasets.SimulationResult) -> None:
    ev = run.events
    buyers = ev.loc[ev["event"] == "purchase", "user_id"].unique()
    users = ev.drop_duplicates("user_id").set_index("user_id")
    rate = users.index.isin(buyers)
    by_device = pd.Series(rate, index=users.index).groupby(users["device"]).mean()
    assert by_device["mobile"] < by_device["desktop"]
    reviews = ev[ev["event"] == "review_view"].groupby("persona").size() / users.groupby("persona").size()
    assert reviews["researcher"] > reviews["impulse_buyer"]


def _slow_purchases(d: sim._Draws, removed: int | None) -> int:
    """Loop over users and visits: the model as written in the docstring."""
    n = 0
    i = 0
    for user, k in enumerate(d.n_visits):
        logit = sim.BASE + sim.PERSONA_BIAS[d.persona[user]] + sim.DEVICE_BIAS[d.device[user]]
        for _ in range(k):
            c = d.channel[i]
            if c != removed:
                logit += sim.LIFT[c]
                if d.u_buy[i] < 1 / (1 + np.exp(-logit)):
                    n += 1
            i += 1
    return n


def test_truth_matches_a_slow_resimulation() -> None:
    out = jf.datasets.simulate_webshop(400, seed=11, return_truth=True)
    assert isinstance(out, jf.datasets.SimulationResult)
    d = sim._draw(400, 11, int(pd.Timestamp("2026-01-01", tz="UTC").value), 60)
    total = _slow_purchases(d, None)
    assert total == int((out.events["event"] == "purchase").sum())
    expected = [total - _slow_purchases(d, c) for c in range(len(sim.CHANNELS))]
    assert out.truth["channel"].tolist() == list(sim.CHANNELS)
    np.testing.assert_array_equal(out.truth["conversions_lost"].to_numpy(), expected)


def test_truth_shares(run: jf.datasets.SimulationResult) -> None:
    truth = run.truth
    assert truth["share"].sum() == pytest.approx(1.0)
    assert (truth["conversions_lost"] >= 0).all()
    # every channel with a positive lift and visits loses conversions when removed
    assert (truth["conversions_lost"] > 0).all()
    assert "SimulationResult(events:" in repr(run)


def test_bad_options_are_named() -> None:
    with pytest.raises(InputTypeError, match="n_users"):
        jf.datasets.simulate_webshop("10")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="days"):
        jf.datasets.simulate_webshop(10, days=0)
    with pytest.raises(OptionError, match="start"):
        jf.datasets.simulate_webshop(10, start="not a date")
    with pytest.raises(InputTypeError, match="seed"):
        jf.datasets.simulate_webshop(10, seed=1.5)  # type: ignore[arg-type]


def test_load_sample_is_the_documented_simulation() -> None:
    ev = jf.datasets.load_sample()
    assert str(ev["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert ev["user_id"].nunique() == 4_000
    again = jf.datasets.simulate_webshop(4_000, seed=2026, start="2026-01-01", days=60)
    assert len(ev) == len(again)
    assert (ev["user_id"].to_numpy() == again["user_id"].to_numpy()).all()
    assert (ev["event"].to_numpy() == again["event"].to_numpy()).all()
    np.testing.assert_allclose(ev["revenue"].to_numpy(), again["revenue"].to_numpy())
