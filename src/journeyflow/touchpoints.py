"""Channels (what brought a session in) and touchpoints (what a person met).

``assign_touchpoints`` adds four columns to an event log:

- ``channel``: the channel of the event's session, from the session's first event
  through :data:`DEFAULT_CHANNEL_RULES` (the widely used default channel grouping);
- ``touchpoint``, ``kind`` (digital | physical), ``ownership`` (direct | indirect):
  per event, through :data:`DEFAULT_TOUCHPOINT_RULES`.

Both rule sets are ordered, first-match-wins :class:`~journeyflow.rules.RuleSet`
objects, matched once per distinct combination of values and broadcast back to the
events, so the cost grows with the distinct values, not with the events.

The default channel grouping
----------------------------
Rules see four derived, lower-cased fields: ``source`` (utm_source; else the
referrer's host; else "(direct)"), ``medium`` (utm_medium; else "organic" for a
search-engine referrer, "referral" for another referrer; else "(none)"),
``campaign`` (utm_campaign) and ``referrer``. In order, first match wins:

================  ===========================================================
Direct            source "(direct)" and medium "(none)"/"(not set)"
Cross-network     campaign contains "cross-network"
Paid Shopping     (shopping site or campaign matches shop/shopping) and paid medium
Paid Search       search site and paid medium
Paid Social       social site and paid medium
Paid Video        video site and paid medium
Display           medium display, banner, expandable, interstitial or cpm
Paid Other        paid medium (``^(.*cp.*|ppc|retargeting|paid.*)$``)
Organic Shopping  shopping site, or campaign matches shop/shopping
Organic Social    social site, or medium social / social-network / social-media / sm
Organic Video     video site, or medium contains "video"
Organic Search    search site, or medium "organic"
Email             source or medium email / e-mail / e_mail / e mail / newsletter
Affiliates        medium affiliate
Referral          medium referral
Audio             medium audio
SMS               source or medium sms
Mobile Push       medium ends with "push", or contains "mobile" or "notification"
Unassigned        anything else
================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._encode import (
    PARALLEL_ROWS,
    both,
    factorize_rows,
    first_rows,
    ordered_codes,
    small_int,
    time_ns,
)
from ._validation import check_frame, check_option, describe
from .exceptions import InputTypeError
from .rules import Rule, RuleSet, iter_rules, load_toml
from .schema import resolve_columns
from .sessions import SessionIndex

__all__ = [
    "DEFAULT_CHANNEL_RULES",
    "DEFAULT_TOUCHPOINT_RULES",
    "UNASSIGNED",
    "assign_touchpoints",
    "channel_rules",
    "touchpoint_rules",
    "unmatched",
]

UNASSIGNED = "(unassigned)"

SEARCH_SITES = (
    "google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "qwant", "ask.com",
    "aol", "naver", "seznam", "startpage", "brave", "search.",
)
SOCIAL_SITES = (
    "facebook", "instagram", "linkedin", "lnkd.in", "t.co", "twitter", "x.com", "pinterest",
    "reddit", "tiktok", "snapchat", "whatsapp", "messenger", "threads", "mastodon", "bsky",
    "tumblr", "quora", "vk.com", "weibo", "wechat", "line.me", "discord", "telegram",
)
VIDEO_SITES = ("youtube", "youtu.be", "vimeo", "twitch", "dailymotion", "wistia")
SHOPPING_SITES = ("amazon", "ebay", "etsy", "shopping", "shopify", "bol.com", "walmart", "aliexpress", "zalando")
PAID_MEDIUM = r"^(.*cp.*|ppc|retargeting|paid.*)$"
SHOP_CAMPAIGN = r"^(.*(([^a-df-z]|^)shop|shopping).*)$"
EMAIL = ["email", "e-mail", "e_mail", "e mail", "newsletter"]


def _c(value: str, **when: Any) -> Rule:
    return Rule(value, when)


DEFAULT_CHANNEL_RULES = RuleSet(
    [
        _c("Direct", source="(direct)", medium=["(none)", "(not set)"]),
        _c("Cross-network", campaign={"contains": "cross-network"}),
        _c("Paid Shopping", source=list(SHOPPING_SITES), medium={"regex": PAID_MEDIUM}),
        _c("Paid Shopping", campaign={"regex": SHOP_CAMPAIGN}, medium={"regex": PAID_MEDIUM}),
        _c("Paid Search", source={"contains": list(SEARCH_SITES)}, medium={"regex": PAID_MEDIUM}),
        _c("Paid Social", source={"contains": list(SOCIAL_SITES)}, medium={"regex": PAID_MEDIUM}),
        _c("Paid Video", source={"contains": list(VIDEO_SITES)}, medium={"regex": PAID_MEDIUM}),
        _c("Display", medium=["display", "banner", "expandable", "interstitial", "cpm"]),
        _c("Paid Other", medium={"regex": PAID_MEDIUM}),
        _c("Organic Shopping", source={"contains": list(SHOPPING_SITES)}),
        _c("Organic Shopping", campaign={"regex": SHOP_CAMPAIGN}),
        _c("Organic Social", source={"contains": list(SOCIAL_SITES)}),
        _c("Organic Social", medium=["social", "social-network", "social-media", "sm", "social network", "social media"]),
        _c("Organic Video", source={"contains": list(VIDEO_SITES)}),
        _c("Organic Video", medium={"contains": "video"}),
        _c("Organic Search", source={"contains": list(SEARCH_SITES)}),
        _c("Organic Search", medium="organic"),
        _c("Email", medium=EMAIL),
        _c("Email", source=EMAIL),
        _c("Affiliates", medium="affiliate"),
        _c("Referral", medium="referral"),
        _c("Audio", medium="audio"),
        _c("SMS", medium="sms"),
        _c("SMS", source="sms"),
        _c("Mobile Push", medium={"suffix": "push"}),
        _c("Mobile Push", medium={"contains": ["mobile", "notification"]}),
    ],
    fields=("source", "medium", "campaign", "referrer"),
    default="Unassigned",
    name="channel",
)


def _t(value: str, kind: str = "digital", ownership: str = "direct", **when: Any) -> Rule:
    return Rule(value, when, {"kind": kind, "ownership": ownership})


DEFAULT_TOUCHPOINT_RULES = RuleSet(
    [
        # by event name (the simulator's vocabulary and common analytics names)
        _t("online ad", ownership="indirect", event=["ad_impression_click", "ad_click", "ad_impression"]),
        _t("social media", ownership="indirect", event=["social_post_view", "video_view", "social_click"]),
        _t("search", ownership="indirect", event=["search_landing", "search", "site_search"]),
        _t("landing page", event=["landing_page_view"]),
        _t("lead form", event=["lead_form_submit", "generate_lead", "sign_up"]),
        _t("blog", event=["blog_view"]),
        _t("reviews", ownership="indirect", event=["review_view", "review_write"]),
        _t("webinar", event=["webinar_signup", "webinar_attend"]),
        _t("webshop", event=[
            "product_view", "compare_products", "add_to_cart", "checkout_start", "purchase",
            "view_item", "begin_checkout", "add_payment_info", "return_request",
        ]),
        _t("e-mail", event=["order_confirmation_email", "email_open", "email_click"]),
        _t("delivery", kind="physical", event=["delivery", "shipment"]),
        _t("product use", kind="physical", event=["product_use"]),
        _t("chat", event=["chat_message", "chat_start"]),
        _t("customer service", event=["support_ticket", "call", "contact"]),
        _t("forum", event=["forum_post"]),
        _t("newsletter", event=["newsletter_open", "newsletter_signup"]),
        _t("community", event=["community_post"]),
        _t("word of mouth", ownership="indirect", event=["referral_share", "share"]),
        _t("app", event=["app_open", "app_install"]),
        _t("login portal", event=["login", "account_view"]),
        _t("store visit", kind="physical", event=["store_visit"]),
        # by page, for generic page views
        _t("blog", page={"prefix": "/blog"}),
        _t("reviews", page={"prefix": "/review"}),
        _t("webinar", page={"prefix": "/webinar"}),
        _t("webshop", page={"prefix": ["/product", "/cart", "/checkout", "/shop", "/compare", "/thank-you"]}),
        _t("login portal", page={"prefix": ["/account", "/login", "/my"]}),
        _t("customer service", page={"prefix": ["/support", "/help", "/contact"]}),
        _t("forum", page={"prefix": "/forum"}),
        _t("community", page={"prefix": "/community"}),
        _t("landing page", page={"prefix": "/landing"}),
        _t("website", event=["page_view", "pageview", "screen_view"]),
    ],
    fields=("event", "page", "url", "channel"),
    default=UNASSIGNED,
    name="touchpoint",
    attrs={"kind": "digital", "ownership": "direct"},
)


def channel_rules(rules: Sequence[Rule | Mapping[str, Any]] | str | Path | RuleSet | None = None,
                  *, mode: str = "replace") -> RuleSet:
    """The channel rule set: the default, your rules, or a TOML file of rules.

    Parameters
    ----------
    rules : RuleSet, list of Rule/dict, path to a TOML file, or None
        None: :data:`DEFAULT_CHANNEL_RULES`. A list: rules over ``source``,
        ``medium``, ``campaign``, ``referrer``. A TOML file: ``[[rule]]`` tables
        with ``value`` and conditions, and optionally ``mode``.
    mode : {"replace", "prepend", "append"}
        For a list: use only these rules, or try them before / after the defaults.

    Examples
    --------
    >>> import journeyflow as jf
    >>> from journeyflow.rules import Rule
    >>> rs = jf.touchpoints.channel_rules([Rule("Podcast", {"medium": "podcast"})], mode="prepend")
    >>> rs.rules[0].value, len(rs) == len(jf.touchpoints.DEFAULT_CHANNEL_RULES) + 1
    ('Podcast', True)
    """
    return _ruleset(rules, DEFAULT_CHANNEL_RULES, mode)


def touchpoint_rules(rules: Sequence[Rule | Mapping[str, Any]] | str | Path | RuleSet | None = None,
                     *, mode: str = "replace") -> RuleSet:
    """The touchpoint rule set; like :func:`channel_rules`, over ``event``, ``page``,
    ``url``, ``channel``, with outputs ``kind`` and ``ownership``.

    Examples
    --------
    >>> import journeyflow as jf
    >>> rs = jf.touchpoints.touchpoint_rules(
    ...     [{"value": "showroom", "event": "showroom_visit", "kind": "physical"}], mode="prepend")
    >>> rs.rules[0]
    Rule('showroom', event='showroom_visit', kind='physical')
    """
    return _ruleset(rules, DEFAULT_TOUCHPOINT_RULES, mode)


def _ruleset(rules: Any, template: RuleSet, mode: str) -> RuleSet:
    if rules is None:
        return template
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, (str, Path)):
        return RuleSet.from_dict(load_toml(rules), template=template)
    if isinstance(rules, Sequence):
        given = iter_rules(rules)
        if mode == "prepend":
            return template.prepend(*given)
        if mode == "append":
            return template.append(*given)
        check_option("mode", mode, ("replace", "prepend", "append"))
        return replace(template, rules=tuple(given))
    raise InputTypeError(
        f"{template.name} rules must be None, a RuleSet, a list of rules or a path to a TOML file; "
        f"got {describe(rules)}."
    )


def _host(url: pd.Series) -> pd.Series:
    """Host of a URL, without 'www.': 'https://www.google.com/x' -> 'google.com'."""
    host = url.str.extract(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?([^/?#:]+)", expand=False)
    return host.str.lower().str.replace(r"^www\.", "", regex=True)


def _channel_fields(entries: pd.DataFrame) -> pd.DataFrame:
    """source / medium / campaign / referrer of distinct session entries."""
    def col(name: str) -> pd.Series:
        if name in entries.columns:
            s = entries[name].astype(object)
            return s.where(s.notna(), "").astype(str).str.strip()
        return pd.Series("", index=entries.index, dtype=object)

    src, med, camp, ref = col("utm_source"), col("utm_medium"), col("utm_campaign"), col("referrer")
    host = _host(ref).fillna("")
    is_search = host.str.contains("|".join(SEARCH_SITES), regex=True)
    source = src.where(src != "", host.where(host != "", "(direct)"))
    medium = med.where(med != "", np.where(host == "", "(none)", np.where(is_search, "organic", "referral")))
    return pd.DataFrame({"source": source, "medium": medium, "campaign": camp, "referrer": ref})


def assign_touchpoints(
    events: pd.DataFrame,
    rules: Sequence[Rule | Mapping[str, Any]] | str | Path | RuleSet | None = None,
    *,
    touchpoint_rules: Sequence[Rule | Mapping[str, Any]] | str | Path | RuleSet | None = None,
    columns: Mapping[str, str] | None = None,
    keep_channel: bool = True,
) -> pd.DataFrame:
    """Add ``channel`` (per session), ``touchpoint``, ``kind`` and ``ownership`` (per event).

    Parameters
    ----------
    events : DataFrame
        Canonical events with ``session_id`` (from :func:`journeyflow.sessionize`;
        sessionised with the default 30-minute timeout when absent).
    rules : channel rules, optional
        See :func:`channel_rules`. Default: the default channel grouping.
    touchpoint_rules : touchpoint rules, optional
        See :func:`touchpoint_rules`.
    columns : dict, optional
        Canonical name -> your column name.
    keep_channel : bool, default True
        When the events already have a ``channel`` column, keep its non-null values
        (for the session's first event) and use the rules only where it is null.

    Returns
    -------
    DataFrame
        A new frame: every input row and column, plus ``channel``, ``touchpoint``,
        ``kind``, ``ownership`` (str) and ``session_id`` when it was absent.

    Notes
    -----
    The channel of a session is that of its first event (in time order, ties in
    input order); every event of the session carries it. An event no touchpoint
    rule matches gets ``"(unassigned)"``; :func:`unmatched` lists what was left.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({
    ...     "user_id": ["a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:05", "2026-01-01 11:00"], utc=True),
    ...     "event": ["search_landing", "purchase", "page_view"],
    ...     "utm_source": ["google", None, None], "utm_medium": ["cpc", None, None]})
    >>> out = jf.assign_touchpoints(jf.sessionize(ev))
    >>> out[["channel", "touchpoint", "kind"]].values.tolist()
    [['Paid Search', 'search', 'digital'], ['Paid Search', 'webshop', 'digital'], ['Direct', 'website', 'digital']]
    """
    return _assign_touchpoints(
        events, rules, touchpoint_rules=touchpoint_rules, columns=columns, keep_channel=keep_channel
    )


def _assign_touchpoints(
    events: pd.DataFrame,
    rules: Sequence[Rule | Mapping[str, Any]] | str | Path | RuleSet | None = None,
    *,
    touchpoint_rules: Sequence[Rule | Mapping[str, Any]] | str | Path | RuleSet | None = None,
    columns: Mapping[str, str] | None = None,
    keep_channel: bool = True,
    index: SessionIndex | None = None,
) -> pd.DataFrame:
    """:func:`assign_touchpoints`; ``index``: the sessions' rows from
    ``sessions._sessionize`` for these events (each session's first row not found again)."""
    check_frame("events", events)
    names = resolve_columns(
        events, columns, required=("user_id", "timestamp", "event"),
        optional=("session_id", "page", "url", "referrer", "utm_source", "utm_medium", "utm_campaign", "channel"),
    )
    ch_rules = _ruleset(rules, DEFAULT_CHANNEL_RULES, "replace")
    tp_rules = _ruleset(touchpoint_rules, DEFAULT_TOUCHPOINT_RULES, "replace")
    out = events
    if "session_id" not in names:
        from .sessions import sessionize

        out = sessionize(events, columns=columns)
        names["session_id"] = "session_id"
        index = None  # (not these sessions')
    tp_fields = {f: names[f] for f in ("event", "page", "url") if f in names}
    frame = out[list(tp_fields.values())].set_axis(list(tp_fields), axis=1)

    def touchpoints(frame: pd.DataFrame) -> dict[str, pd.Series]:
        which = tp_rules.match_rules(frame)
        return {
            "touchpoint": _categorical(tp_rules.labels(), which, out.index),
            "kind": _categorical(tp_rules.outputs("kind"), which, out.index),
            "ownership": _categorical(tp_rules.outputs("ownership"), which, out.index),
        }

    if any(c.field == "channel" for r in tp_rules.rules for c in r.conditions):  # touchpoints need the channel
        channel = _session_channels(out, names, ch_rules, keep_channel, index)
        columns_tp = touchpoints(frame.assign(channel=pd.Series(channel, index=frame.index)))
    else:  # independent: the touchpoints beside the channels, on a second thread for large logs
        channel, columns_tp = both(
            lambda: _session_channels(out, names, ch_rules, keep_channel, index),
            lambda: touchpoints(frame),
            len(out) >= _PARALLEL_ROWS,
        )
    return out.assign(channel=pd.Series(channel, index=out.index), **columns_tp)


#: From this many events on, channels and touchpoints are assigned on two threads.
_PARALLEL_ROWS = PARALLEL_ROWS  # (a module copy: tests set it per module)


def _session_channels(
    out: pd.DataFrame, names: Mapping[str, str], ch_rules: RuleSet, keep_channel: bool, index: SessionIndex | None
) -> pd.Categorical:
    """The channel of every event: its session's, from the session's first event (the
    channel rules run on the distinct entry combinations only)."""
    codes = ordered_codes(out[names["session_id"]])
    first = first_rows(codes, time_ns(out[names["timestamp"]])) if index is None else index.first
    entries = np.zeros(len(codes), dtype=bool)  # the entry rows in row order: the gathers below run forwards
    entries[first] = True
    del first
    entries = np.flatnonzero(entries)
    fields = [f for f in ("utm_source", "utm_medium", "utm_campaign", "referrer") if f in names]
    if fields:
        entry_codes, distinct = factorize_rows(out[[names[f] for f in fields]].set_axis(fields, axis=1), entries)
    else:
        entry_codes, distinct = np.zeros(len(entries), dtype=np.int64), pd.DataFrame(index=[0])
    per_entry = ch_rules.match_rules(_channel_fields(distinct))
    categories = list(dict.fromkeys(ch_rules.labels()))
    lookup = np.array([categories.index(v) for v in ch_rules.labels()], dtype=np.int64)
    session_code = lookup[per_entry][entry_codes]
    if keep_channel and "channel" in names:
        given = out[names["channel"]].iloc[entries].to_numpy(dtype=object)
        has = pd.notna(given)
        extra = sorted({str(v) for v in given[has]} - set(categories))
        categories += extra
        given_codes = pd.Categorical(np.where(has, given, None), categories=categories).codes
        session_code = np.where(has, given_codes, session_code)
    per_code = np.zeros(int(codes.max()) + 1 if len(codes) else 0, dtype=small_int(len(categories)))
    per_code[codes[entries]] = session_code
    return pd.Categorical.from_codes(per_code[codes], categories=categories)


def _categorical(values: np.ndarray, which: np.ndarray, index: pd.Index) -> pd.Series:
    """``values[which]`` as a categorical whose categories are all possible values
    (the same for every partition of a log)."""
    categories = list(dict.fromkeys(str(v) for v in values))
    lookup = np.array([categories.index(str(v)) for v in values], dtype=small_int(len(categories)))
    return pd.Series(pd.Categorical.from_codes(lookup[which], categories=categories), index=index)


def unmatched(events: pd.DataFrame, *, top: int = 20) -> pd.DataFrame:
    """What no touchpoint rule matched: the most frequent unassigned events/pages.

    Parameters
    ----------
    events : DataFrame
        Output of :func:`assign_touchpoints`.
    top : int, default 20
        Rows to return.

    Returns
    -------
    DataFrame
        event, page (when present), n_events (int64), share (float64, of all
        events), sorted by n_events descending. Empty when everything matched.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({"user_id": ["a", "a"],
    ...                    "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
    ...                    "event": ["purchase", "hologram_call"]})
    >>> jf.touchpoints.unmatched(jf.assign_touchpoints(ev))
               event  n_events  share
    0  hologram_call         1    0.5
    """
    if "touchpoint" not in events.columns:
        raise InputTypeError("events have no 'touchpoint' column; run jf.assign_touchpoints(events) first.")
    left = events.loc[events["touchpoint"] == UNASSIGNED]
    keys = [c for c in ("event", "page") if c in events.columns]
    counts = left.groupby(keys, dropna=False, observed=True).size().rename("n_events")
    table = counts.sort_values(ascending=False, kind="stable").head(top).reset_index()
    table["n_events"] = table["n_events"].astype(np.int64)
    table["share"] = table["n_events"] / max(len(events), 1)
    return table
