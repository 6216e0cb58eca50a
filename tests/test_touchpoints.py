"""Channel and touchpoint rules: order, case, regex, TOML round trip, defaults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import journeyflow as jf
from journeyflow.exceptions import InputTypeError, OptionError
from journeyflow.rules import Rule, RuleSet
from journeyflow.touchpoints import DEFAULT_CHANNEL_RULES, DEFAULT_TOUCHPOINT_RULES


def _events(**cols: list[object]) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {
        "user_id": [f"u{i}" for i in range(n)],
        "timestamp": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
        "event": ["page_view"] * n,
    }
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize(
    ("src", "med", "camp", "ref", "expected"),
    [
        (None, None, None, None, "Direct"),
        ("google", "cpc", None, None, "Paid Search"),
        ("Google", "CPC", None, None, "Paid Search"),  # case-insensitive
        ("bing", "ppc", None, None, "Paid Search"),
        ("facebook", "paid_social", None, None, "Paid Social"),
        ("youtube", "cpv", None, None, "Paid Video"),
        ("gdn", "display", None, None, "Display"),
        ("criteo", "cpm", None, None, "Display"),
        ("amazon", "cpc", None, None, "Paid Shopping"),
        ("partner", "retargeting", None, None, "Paid Other"),
        (None, None, None, "https://www.google.com/", "Organic Search"),
        (None, None, None, "https://duckduckgo.com/?q=x", "Organic Search"),
        (None, None, None, "https://t.co/abc", "Organic Social"),
        (None, None, None, "https://www.linkedin.com/feed", "Organic Social"),
        (None, None, None, "https://www.youtube.com/watch", "Organic Video"),
        (None, None, None, "https://www.ebay.com/itm/1", "Organic Shopping"),
        (None, None, None, "https://techblog.example.org/best", "Referral"),
        ("newsletter", "email", None, None, "Email"),
        ("dealsite", "affiliate", None, None, "Affiliates"),
        ("x", "y", "summer cross-network push", None, "Cross-network"),
        ("spotify", "audio", None, None, "Audio"),
        ("sms", "text", None, None, "SMS"),
        ("app", "web_push", None, None, "Mobile Push"),
        ("something", "unknown", None, None, "Unassigned"),
    ],
)
def test_default_channel_grouping(src: object, med: object, camp: object, ref: object, expected: str) -> None:
    ev = _events(utm_source=[src], utm_medium=[med], utm_campaign=[camp], referrer=[ref])
    out = jf.assign_touchpoints(ev)
    assert out["channel"].tolist() == [expected]


def test_simulated_channels_are_recovered_from_entry_fields() -> None:
    """The simulator's hidden channel of each visit is what the default grouping finds."""
    from journeyflow.datasets import _simulate as sim

    d = sim._draw(300, 5, int(pd.Timestamp("2026-01-01", tz="UTC").value), 30)
    ev = jf.datasets.simulate_webshop(300, seed=5, days=30)
    out = jf.assign_touchpoints(jf.sessionize(ev))
    entries = out.sort_values("timestamp", kind="stable").drop_duplicates("session_id")
    tagged = entries[entries["utm_medium"].notna() | entries["referrer"].notna()]
    assert set(tagged["channel"]) <= set(sim.CHANNELS) - {"Direct"}
    # every simulated visit channel appears, under the same label
    assert set(out["channel"]) == {sim.CHANNELS[c] for c in np.unique(d.channel)}


def test_first_match_wins_and_prepend_overrides() -> None:
    ev = _events(utm_source=["google"], utm_medium=["cpc"])
    custom = jf.touchpoints.channel_rules([Rule("Brand Search", {"source": "google", "medium": "cpc"})], mode="prepend")
    assert jf.assign_touchpoints(ev, rules=custom)["channel"].tolist() == ["Brand Search"]
    only = jf.touchpoints.channel_rules([Rule("Mine", {"medium": {"regex": "^c.c$"}})])
    assert len(only) == 1
    assert jf.assign_touchpoints(ev, rules=only)["channel"].tolist() == ["Mine"]
    none = jf.touchpoints.channel_rules([Rule("Mine", {"medium": "organic"})])
    assert jf.assign_touchpoints(ev, rules=none)["channel"].tolist() == ["Unassigned"]


def test_condition_forms() -> None:
    frame = pd.DataFrame({"page": ["/Blog/a", "/shop/x", "/p/push", None, "/forum"]})
    rs = RuleSet(
        [
            Rule("prefix", {"page": {"prefix": "/blog"}}),
            Rule("contains", {"page": {"contains": ["shop", "zzz"]}}),
            Rule("suffix", {"page": {"suffix": "push"}}),
            Rule("missing", {"page": {"missing": True}}),
            Rule("regex", {"page": {"regex": r"^/fo+rum$"}}),
        ],
        fields=["page"], default="none", name="label",
    )
    got = rs.match(frame)
    assert got["label"].tolist() == ["prefix", "contains", "suffix", "missing", "regex"]
    assert got["rule"].tolist() == [0, 1, 2, 3, 4]


def test_toml_round_trip(tmp_path: Path) -> None:
    for rs in (DEFAULT_CHANNEL_RULES, DEFAULT_TOUCHPOINT_RULES):
        path = tmp_path / f"{rs.name}.toml"
        path.write_text(rs.to_toml(), encoding="utf-8")
        back = jf.touchpoints._ruleset(path, rs, "replace")
        assert [(r.value, r.conditions, dict(r.attrs)) for r in back.rules] == [
            (r.value, r.conditions, {k: v for k, v in r.attrs.items()}) for r in rs.rules
        ]
        assert back.default == rs.default


def test_toml_prepend_mode(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('mode = "prepend"\n[[rule]]\nvalue = "Podcast"\nmedium = "podcast"\n', encoding="utf-8")
    ev = _events(utm_source=["pod"], utm_medium=["podcast"])
    out = jf.assign_touchpoints(ev, rules=path)
    assert out["channel"].tolist() == ["Podcast"]


def test_bad_rules_are_named(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="unknown field 'colour'"):
        jf.touchpoints.channel_rules([Rule("x", {"colour": "red"})])
    with pytest.raises(OptionError, match="bad regular expression"):
        Rule("x", {"medium": {"regex": "("}})
    with pytest.raises(OptionError, match="unknown test 'startswith'"):
        Rule("x", {"medium": {"startswith": "a"}})
    with pytest.raises(InputTypeError, match="must be None, a RuleSet"):
        jf.assign_touchpoints(_events(utm_source=["a"]), rules=42)  # type: ignore[arg-type]
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]]\nmedium = 'x'\n", encoding="utf-8")
    with pytest.raises(OptionError, match="needs a 'value'"):
        jf.assign_touchpoints(_events(utm_source=["a"]), rules=bad)


def test_every_simulator_event_has_a_touchpoint_and_unmatched_are_reported() -> None:
    ev = pd.DataFrame(
        {
            "user_id": "u",
            "timestamp": pd.date_range("2026-01-01", periods=len(jf.datasets.EVENTS) + 2, freq="D", tz="UTC"),
            "event": [*jf.datasets.EVENTS, "teleport", "teleport"],
        }
    )
    out = jf.assign_touchpoints(ev)
    known = out.iloc[: len(jf.datasets.EVENTS)]
    assert (known["touchpoint"] != "(unassigned)").all()
    assert set(out["kind"]) == {"digital", "physical"}
    assert out.loc[out["event"] == "store_visit", "kind"].item() == "physical"
    assert out.loc[out["event"] == "review_view", "ownership"].item() == "indirect"
    report = jf.touchpoints.unmatched(out)
    assert report["event"].tolist() == ["teleport"]
    assert report["n_events"].tolist() == [2]


def test_channel_is_per_session_and_existing_channel_kept() -> None:
    ev = pd.DataFrame(
        {
            "user_id": ["a", "a", "a"],
            "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:10", "2026-01-01 12:00"], utc=True),
            "event": ["page_view", "page_view", "page_view"],
            "utm_source": ["google", "facebook", None],
            "utm_medium": ["cpc", "paid_social", None],
        }
    )
    out = jf.assign_touchpoints(ev)
    assert out["channel"].tolist() == ["Paid Search", "Paid Search", "Direct"]
    assert out["session_id"].tolist() == [0, 0, 1]
    given_ch = ev.assign(channel=["TV", None, None])
    assert jf.assign_touchpoints(given_ch)["channel"].tolist() == ["TV", "TV", "Direct"]
    assert "channel" not in ev.columns  # the input is not touched


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(12))))
def test_row_order_independence(perm: list[int]) -> None:
    ev = jf.datasets.simulate_webshop(20, seed=1).head(12)
    a = jf.assign_touchpoints(jf.sessionize(ev))
    b = jf.assign_touchpoints(jf.sessionize(ev.iloc[perm])).loc[a.index]
    pd.testing.assert_frame_equal(a, b)


def test_channels_on_a_second_thread_equal_one_thread() -> None:
    """Large logs assign channels and touchpoints on two threads: the same columns."""
    from unittest import mock

    from journeyflow import touchpoints

    ev = jf.sessionize(jf.datasets.simulate_webshop(400, seed=3))
    with mock.patch.object(touchpoints, "_PARALLEL_ROWS", 0):
        two = jf.assign_touchpoints(ev)
    with mock.patch.object(touchpoints, "_PARALLEL_ROWS", 10**12):
        one = jf.assign_touchpoints(ev)
    pd.testing.assert_frame_equal(two, one)
    assert two["channel"].nunique() > 3  # a real mix of channels was compared
