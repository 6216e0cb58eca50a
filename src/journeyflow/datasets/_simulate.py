"""A simulated webshop with a known causal truth.

The model, in the order the simulation runs (every random number is drawn up front,
so the same seed gives the same log, and re-running without a channel reuses the
same draws: common random numbers):

1. **Users.** Each user gets a persona (``bargain_hunter``, ``researcher``,
   ``loyal_fan``, ``impulse_buyer``), a device (mobile, desktop, tablet), a country,
   an arrival time uniform over ``days`` and a number of visits (1 + geometric; the
   mean depends on the persona: loyal fans and researchers come back more).
2. **Sessions.** Visit *j* of a user starts an exponential gap after visit *j − 1*
   (mean 2.5 days; hours for impulse buyers). Each visit arrives through a channel
   drawn from a persona-specific mix (first visits lean on search, social and
   display; later visits on direct and e-mail). The channel sets the session's entry
   fields the way real trackers see them: utm_source / utm_medium / utm_campaign for
   paid and e-mail traffic, a referrer for organic search, organic social and
   referral, nothing for direct.
3. **Propensity and conversion (the causal part).** Every visit through channel *c*
   adds ``LIFT[c]`` to the user's log-odds of buying, for this and every later visit.
   Visit *j* ends in a purchase when its uniform draw ``u_j`` is below
   ``sigmoid(BASE + persona + device + Σ lifts of visits ≤ j)``. Buying again later is
   possible (repeat purchases).
4. **Events in a session.** Entry event by channel (ad_impression_click,
   social_post_view, search_landing, newsletter_open, landing_page_view, …), then
   browsing (landing/blog/review/video/webinar/product/compare/lead form/chat) with
   persona- and device-specific probabilities, then the purchase funnel
   (product_view → add_to_cart → checkout_start → purchase). A buying visit always
   walks the whole funnel; a non-buying one drops at each step. Events inside a
   session are seconds to minutes apart (exponential, mean 75 s).
5. **After a purchase** (outside the session, with no utm/referrer): order
   confirmation e-mail (minutes), delivery (1-4 days), product use, and with smaller
   probabilities support tickets, chat, forum posts, returns, reviews (with a 1-5
   rating), community posts, referral shares, app opens, logins, newsletter opens
   and store visits (physical: no url/page), spread over the following weeks.

**Truth.** For each channel *c*, ``conversions_lost`` is the number of purchases in
the full simulation minus the number when every visit through *c* is taken out of
every journey (the visit does not happen: it cannot convert and adds no lift), with
all other draws unchanged. ``share`` is conversions_lost / Σ conversions_lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._validation import check_positive_int, describe
from ..exceptions import InputTypeError, OptionError

__all__ = ["CHANNELS", "EVENTS", "PERSONAS", "SimulationResult", "simulate_webshop"]

#: Channel labels, as the default channel grouping names them.
CHANNELS: tuple[str, ...] = (
    "Direct",
    "Organic Search",
    "Paid Search",
    "Organic Social",
    "Paid Social",
    "Email",
    "Referral",
    "Affiliates",
    "Display",
)
#: Log-odds lift of one visit through each channel (the causal effect).
LIFT = np.array([0.35, 0.55, 0.75, 0.25, 0.45, 0.6, 0.7, 0.5, 0.15])
BASE = -4.6

PERSONAS: tuple[str, ...] = ("bargain_hunter", "researcher", "loyal_fan", "impulse_buyer")
PERSONA_P = np.array([0.3, 0.3, 0.15, 0.25])
PERSONA_BIAS = np.array([-0.2, -0.4, 0.5, 0.3])
PERSONA_VISITS = np.array([2.5, 4.0, 5.0, 1.6])  # mean number of visits
PERSONA_GAP_DAYS = np.array([2.5, 3.0, 4.0, 0.4])
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
DEVICE_P = np.array([0.55, 0.35, 0.10])
DEVICE_BIAS = np.array([-0.35, 0.2, 0.0])
COUNTRIES: tuple[str, ...] = ("NL", "BE", "DE", "FR", "GB")
COUNTRY_P = np.array([0.45, 0.2, 0.15, 0.1, 0.1])

# channel mix: rows = first visit / later visits, times a persona multiplier
FIRST_MIX = np.array([0.08, 0.22, 0.16, 0.12, 0.14, 0.0, 0.08, 0.08, 0.12])
LATER_MIX = np.array([0.30, 0.14, 0.10, 0.06, 0.07, 0.20, 0.05, 0.04, 0.04])
PERSONA_MIX = np.array(
    [
        [1.0, 1.0, 1.3, 0.8, 1.0, 1.2, 0.8, 2.0, 1.0],  # bargain hunter: affiliates, deals
        [0.8, 1.6, 0.8, 0.8, 0.6, 0.8, 1.8, 0.6, 0.6],  # researcher: search, reviews
        [1.8, 0.8, 0.6, 1.2, 0.8, 1.8, 0.8, 0.5, 0.5],  # loyal fan: direct, e-mail
        [0.8, 0.6, 1.0, 1.4, 2.0, 0.8, 0.6, 0.8, 1.6],  # impulse buyer: ads, social
    ]
)

#: The event vocabulary, in funnel order.
EVENTS: tuple[str, ...] = (
    "ad_impression_click",
    "social_post_view",
    "video_view",
    "search_landing",
    "landing_page_view",
    "blog_view",
    "review_view",
    "webinar_signup",
    "webinar_attend",
    "lead_form_submit",
    "product_view",
    "compare_products",
    "add_to_cart",
    "checkout_start",
    "purchase",
    "order_confirmation_email",
    "delivery",
    "product_use",
    "chat_message",
    "support_ticket",
    "forum_post",
    "newsletter_open",
    "return_request",
    "review_write",
    "community_post",
    "referral_share",
    "app_open",
    "login",
    "store_visit",
    "page_view",
)
_E = {name: i for i, name in enumerate(EVENTS)}
PAGES: dict[str, str | None] = {
    "ad_impression_click": "/landing/offer",
    "social_post_view": "/landing/social",
    "video_view": "/video",
    "search_landing": "/",
    "landing_page_view": "/landing",
    "blog_view": "/blog/",
    "review_view": "/reviews",
    "webinar_signup": "/webinar",
    "webinar_attend": "/webinar/live",
    "lead_form_submit": "/contact",
    "product_view": "/product/",
    "compare_products": "/compare",
    "add_to_cart": "/cart",
    "checkout_start": "/checkout",
    "purchase": "/thank-you",
    "order_confirmation_email": None,
    "delivery": None,
    "product_use": "/account/orders",
    "chat_message": "/support/chat",
    "support_ticket": "/support",
    "forum_post": "/forum",
    "newsletter_open": "/newsletter",
    "return_request": "/account/returns",
    "review_write": "/reviews/write",
    "community_post": "/community",
    "referral_share": "/account/refer",
    "app_open": "/app",
    "login": "/account",
    "store_visit": None,
    "page_view": "/",
}
SHOP = "https://shop.example.com"

# entry event of a session, by channel
ENTRY_EVENT = np.array(
    [
        _E["page_view"],
        _E["search_landing"],
        _E["search_landing"],
        _E["social_post_view"],
        _E["ad_impression_click"],
        _E["newsletter_open"],
        _E["review_view"],
        _E["landing_page_view"],
        _E["ad_impression_click"],
    ]
)

# in-session browsing slots: (event, base probability, persona multipliers)
BROWSE = (
    ("landing_page_view", 0.35, (1.0, 0.8, 0.6, 1.2)),
    ("video_view", 0.10, (0.8, 1.0, 1.0, 1.6)),
    ("blog_view", 0.25, (0.7, 2.2, 1.0, 0.4)),
    ("review_view", 0.25, (1.2, 2.0, 0.6, 0.6)),
    ("webinar_signup", 0.03, (0.5, 2.5, 1.0, 0.2)),
    ("compare_products", 0.12, (1.8, 2.0, 0.5, 0.3)),
    ("lead_form_submit", 0.03, (1.0, 1.5, 0.5, 0.5)),
)
# after-purchase events: (event, probability, min days, max days)
AFTER = (
    ("order_confirmation_email", 1.0, 0.0, 0.01),
    ("delivery", 0.97, 1.0, 4.0),
    ("product_use", 0.8, 4.0, 10.0),
    ("chat_message", 0.12, 1.0, 6.0),
    ("support_ticket", 0.10, 3.0, 20.0),
    ("forum_post", 0.05, 5.0, 30.0),
    ("return_request", 0.06, 5.0, 14.0),
    ("review_write", 0.22, 6.0, 25.0),
    ("community_post", 0.05, 10.0, 40.0),
    ("referral_share", 0.08, 7.0, 30.0),
    ("app_open", 0.30, 2.0, 30.0),
    ("login", 0.35, 2.0, 30.0),
    ("newsletter_open", 0.25, 7.0, 35.0),
    ("store_visit", 0.05, 3.0, 30.0),
    ("webinar_attend", 0.0, 1.0, 7.0),  # probability set per user: signed up before
)

SOURCES = {
    "Organic Search": ["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"],
    "Organic Social": [
        "https://www.facebook.com/",
        "https://www.instagram.com/",
        "https://www.linkedin.com/",
        "https://t.co/",
    ],
    "Referral": ["https://www.trustpilot.com/review/shop.example.com", "https://techblog.example.org/best-buys"],
}
UTM = {
    "Paid Search": (["google", "bing"], "cpc", ["brand", "generic"]),
    "Paid Social": (["facebook", "instagram"], "paid_social", ["spring_sale", "retargeting"]),
    "Email": (["newsletter"], "email", ["weekly", "promo"]),
    "Affiliates": (["dealsite", "cashback"], "affiliate", ["partner"]),
    "Display": (["gdn", "criteo"], "display", ["awareness", "retargeting"]),
}


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate_webshop` returns with ``return_truth=True``.

    Attributes
    ----------
    events : DataFrame
        The event log (see :func:`simulate_webshop`).
    truth : DataFrame
        One row per channel: channel (str), conversions_lost (float64), share
        (float64; sums to 1 over channels with a positive loss).
    """

    events: pd.DataFrame
    truth: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"SimulationResult(events: {len(self.events):,} rows, "
            f"truth: {len(self.truth)} channels)"
        )


@dataclass(frozen=True)
class _Draws:
    """All the randomness of one simulation, drawn up front."""

    persona: np.ndarray  # per user
    device: np.ndarray
    country: np.ndarray
    arrival_ns: np.ndarray
    n_visits: np.ndarray
    visit_user: np.ndarray  # per visit (sorted by user, then visit number)
    visit_number: np.ndarray
    visit_start_ns: np.ndarray
    channel: np.ndarray
    u_buy: np.ndarray
    u_browse: np.ndarray  # visits x len(BROWSE)
    u_funnel: np.ndarray  # visits x 3: product_view, add_to_cart, checkout_start
    u_after: np.ndarray  # visits x len(AFTER)
    after_days: np.ndarray  # visits x len(AFTER), uniform(0, 1)
    gaps_s: np.ndarray  # visits x slots: seconds between in-session events
    revenue: np.ndarray  # per visit
    product: np.ndarray  # per visit
    source_pick: np.ndarray  # per visit, uniform(0, 1)
    campaign_pick: np.ndarray
    rating: np.ndarray  # per visit, 1..5


N_SLOTS = 1 + len(BROWSE) + 4 + 1  # entry, browsing, funnel x 4, chat


def _choice(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: index of the first cumulative probability above u."""
    cum = np.cumsum(probs, axis=-1)
    cum /= cum[..., -1:]
    if cum.ndim == 1:
        out = np.searchsorted(cum, u, side="right")
    else:
        out = (u[:, None] >= cum).sum(axis=1)
    return np.asarray(out, dtype=np.int64).clip(0, probs.shape[-1] - 1)


def _draw(n_users: int, seed: int, start_ns: int, days: int) -> _Draws:
    rng = np.random.default_rng(seed)
    persona = _choice(rng.random(n_users), PERSONA_P)
    device = _choice(rng.random(n_users), DEVICE_P)
    country = _choice(rng.random(n_users), COUNTRY_P)
    arrival = start_ns + (rng.random(n_users) * days * 86400e9).astype(np.int64)
    n_visits = np.minimum(rng.geometric(1 / PERSONA_VISITS[persona]), 12)
    visit_user = np.repeat(np.arange(n_users), n_visits)
    first = np.cumsum(n_visits) - n_visits
    visit_number = np.arange(len(visit_user)) - np.repeat(first, n_visits)
    gap_days = rng.exponential(1.0, len(visit_user)) * PERSONA_GAP_DAYS[persona[visit_user]]
    gap_ns = (gap_days * 86400e9).astype(np.int64) + 2 * 3_600 * 10**9  # at least two hours apart
    gap_ns[visit_number == 0] = 0
    cum = np.cumsum(gap_ns)
    visit_start = arrival[visit_user] + cum - np.repeat(cum[first], n_visits)
    mix = np.where((visit_number == 0)[:, None], FIRST_MIX, LATER_MIX) * PERSONA_MIX[persona[visit_user]]
    channel = _choice(rng.random(len(visit_user)), mix)
    n = len(visit_user)
    return _Draws(
        persona=persona,
        device=device,
        country=country,
        arrival_ns=arrival,
        n_visits=n_visits,
        visit_user=visit_user,
        visit_number=visit_number,
        visit_start_ns=visit_start,
        channel=channel,
        u_buy=rng.random(n),
        u_browse=rng.random((n, len(BROWSE))),
        u_funnel=rng.random((n, 4)),
        u_after=rng.random((n, len(AFTER))),
        after_days=rng.random((n, len(AFTER))),
        gaps_s=rng.exponential(75.0, (n, N_SLOTS)) + 2.0,
        revenue=np.round(rng.lognormal(np.log(60.0), 0.6, n), 2),
        product=rng.integers(1, 201, n),
        source_pick=rng.random(n),
        campaign_pick=rng.random(n),
        rating=np.clip(np.round(rng.normal(4.0, 1.0, n)), 1, 5),
    )


def _buys(d: _Draws, removed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(visit happens, visit ends in a purchase), deterministic given the draws."""
    happens = np.ones(len(d.channel), dtype=bool) if removed is None else d.channel != removed
    lift = np.where(happens, LIFT[d.channel], 0.0)
    cum = np.cumsum(lift)
    first = np.cumsum(d.n_visits) - d.n_visits
    before = np.repeat(cum[first] - lift[first], d.n_visits)
    logit = BASE + PERSONA_BIAS[d.persona[d.visit_user]] + DEVICE_BIAS[d.device[d.visit_user]]
    logit = logit + (cum - before)
    p = 1.0 / (1.0 + np.exp(-logit))
    return happens, happens & (d.u_buy < p)


def _truth(d: _Draws) -> pd.DataFrame:
    total = int(_buys(d)[1].sum())
    lost = np.array([total - int(_buys(d, removed=c)[1].sum()) for c in range(len(CHANNELS))], dtype=float)
    positive = np.clip(lost, 0, None)
    share = positive / positive.sum() if positive.sum() > 0 else np.zeros_like(positive)
    return pd.DataFrame({"channel": list(CHANNELS), "conversions_lost": lost, "share": share})


def _session_events(d: _Draws, buys: np.ndarray) -> dict[str, np.ndarray]:
    """Visit x slot matrices of (event code, present, time), flattened in time order."""
    n = len(d.channel)
    persona = d.persona[d.visit_user]
    device = d.device[d.visit_user]
    codes = np.full((n, N_SLOTS), -1, dtype=np.int64)
    present = np.zeros((n, N_SLOTS), dtype=bool)
    codes[:, 0] = ENTRY_EVENT[d.channel]
    present[:, 0] = True
    for j, (event, p, mult) in enumerate(BROWSE):
        prob = p * np.asarray(mult)[persona]
        codes[:, 1 + j] = _E[event]
        present[:, 1 + j] = d.u_browse[:, j] < prob
    # the funnel: a buying visit walks all of it; others drop at each step
    k = 1 + len(BROWSE)
    mobile = device == 0
    step_p = np.stack([np.full(n, 0.55), np.where(mobile, 0.18, 0.28), np.full(n, 0.45)], axis=1)
    reached = np.ones(n, dtype=bool)
    for j, event in enumerate(("product_view", "add_to_cart", "checkout_start")):
        reached = reached & (buys | (d.u_funnel[:, j] < step_p[:, j]))
        codes[:, k + j] = _E[event]
        present[:, k + j] = reached
    codes[:, k + 3] = _E["purchase"]
    present[:, k + 3] = buys
    codes[:, k + 4] = _E["chat_message"]
    present[:, k + 4] = d.u_funnel[:, 3] < np.where(persona == 1, 0.06, 0.03)
    # a search or review entry that also lands on the product page needs no extra landing view
    offsets = np.cumsum(np.where(present, d.gaps_s, 0.0), axis=1) - d.gaps_s[:, :1]
    times = d.visit_start_ns[:, None] + (offsets * 1e9).astype(np.int64)
    visit = np.broadcast_to(np.arange(n)[:, None], (n, N_SLOTS))
    slot = np.broadcast_to(np.arange(N_SLOTS)[None, :], (n, N_SLOTS))
    return {
        "visit": visit[present],
        "code": codes[present],
        "time": times[present],
        "slot": slot[present],
    }


def _after_events(d: _Draws, buys: np.ndarray, signed_up: np.ndarray) -> dict[str, np.ndarray]:
    """Events after each purchase, outside the buying session."""
    visits = np.flatnonzero(buys)
    m = len(AFTER)
    prob = np.array([a[1] for a in AFTER])[None, :].repeat(len(visits), axis=0)
    prob[:, -1] = np.where(signed_up[visits], 0.6, 0.0)
    lo = np.array([a[2] for a in AFTER])
    hi = np.array([a[3] for a in AFTER])
    present = d.u_after[visits] < prob
    days = lo + (hi - lo) * d.after_days[visits]
    # the purchase happens at the end of the buying session; its time is recomputed
    # by the caller and passed as visit start + the offset of the purchase slot
    codes = np.broadcast_to(np.array([_E[a[0]] for a in AFTER])[None, :], (len(visits), m))
    visit = np.broadcast_to(visits[:, None], (len(visits), m))
    return {
        "visit": visit[present],
        "code": codes[present],
        "days": days[present],
    }


def simulate_webshop(
    n_users: int = 10_000,
    *,
    seed: int = 0,
    start: str | pd.Timestamp = "2026-01-01",
    days: int = 60,
    rating: bool = True,
    return_truth: bool = False,
) -> pd.DataFrame | SimulationResult:
    """Simulate a webshop's event log, with the channels' true effect on conversion.

    Parameters
    ----------
    n_users : int, default 10_000
        Number of people. About 11 events per person on average.
    seed : int, default 0
        Seed of the random generator: the same seed gives the same log.
    start : str or Timestamp, default "2026-01-01"
        First possible arrival (UTC).
    days : int, default 60
        Arrivals are uniform over this many days; return visits and after-purchase
        events can run a few weeks past it.
    rating : bool, default True
        Add a ``rating`` column (1-5 on review_write and delivery events, else NaN).
    return_truth : bool, default False
        Return a :class:`SimulationResult` with the events and the per-channel truth.

    Returns
    -------
    DataFrame or SimulationResult
        Events sorted by timestamp then user: user_id (str, "u000123"), timestamp
        (datetime64[ns, UTC]), event, page (missing for store events), url (missing
        likewise), referrer (missing for direct visits), utm_source, utm_medium,
        utm_campaign (missing except on a campaign session's first event), revenue
        (float64, > 0 on purchases, NaN elsewhere), rating (float64, optional),
        device, persona, country. The text columns other than user_id are
        categoricals of str (sorted categories), as Parquet readers give
        dictionary-encoded columns: a tenth of the memory, and every journeyflow
        step works on their codes. ``.astype(str)`` gives plain strings.

    Raises
    ------
    OptionError
        When ``n_users`` or ``days`` is not a positive integer.

    Notes
    -----
    The behavioural model and the truth are described in the module docstring of
    ``journeyflow.datasets._simulate``: each visit through channel *c* adds a fixed
    lift to the visitor's log-odds of buying; ``truth.conversions_lost`` is the drop
    in purchases when every visit through *c* is taken out, computed by re-running
    the simulation on the same random draws.

    Examples
    --------
    >>> import journeyflow as jf
    >>> sim = jf.datasets.simulate_webshop(200, seed=1, return_truth=True)
    >>> sorted(sim.truth.columns)
    ['channel', 'conversions_lost', 'share']
    >>> bool((sim.events["revenue"].notna() == (sim.events["event"] == "purchase")).all())
    True
    """
    n_users = check_positive_int("n_users", n_users)
    days = check_positive_int("days", days)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise InputTypeError(f"seed must be an int; got {describe(seed)}.")
    try:
        t0 = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise OptionError(f"start must be a date such as '2026-01-01'; got {start!r} ({exc}).") from None
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    d = _draw(n_users, int(seed), int(t0.value), days)
    _, buys = _buys(d)
    ses = _session_events(d, buys)
    signed = np.zeros(len(d.channel), dtype=bool)
    signed[ses["visit"][ses["code"] == _E["webinar_signup"]]] = True
    aft = _after_events(d, buys, signed)
    # after-purchase events are timed from the purchase event of their visit
    purchase_time = np.zeros(len(d.channel), dtype=np.int64)
    is_purchase = ses["code"] == _E["purchase"]
    purchase_time[ses["visit"][is_purchase]] = ses["time"][is_purchase]
    aft_time = purchase_time[aft["visit"]] + (aft["days"] * 86400e9).astype(np.int64) + 60 * 10**9

    visit = np.concatenate([ses["visit"], aft["visit"]])
    code = np.concatenate([ses["code"], aft["code"]])
    time = np.concatenate([ses["time"], aft_time])
    entry = np.concatenate([ses["slot"] == 0, np.zeros(len(aft["visit"]), dtype=bool)])
    order = np.lexsort((code, visit, time))
    visit, code, time, entry = visit[order], code[order], time[order], entry[order]
    user = d.visit_user[visit]
    return _frame(d, visit, code, time, entry, user, n_users, rating, return_truth)


CATEGORICAL = ("event", "page", "url", "referrer", "utm_source", "utm_medium", "utm_campaign",
               "device", "persona", "country")


def _obj(values: np.ndarray) -> np.ndarray:
    """Object array of str/None: pandas 3 infers its ``str`` dtype, pandas 2 keeps object."""
    return np.asarray(values, dtype=object)


def _frame(
    d: _Draws,
    visit: np.ndarray,
    code: np.ndarray,
    time: np.ndarray,
    entry: np.ndarray,
    user: np.ndarray,
    n_users: int,
    rating: bool,
    return_truth: bool,
) -> pd.DataFrame | SimulationResult:
    width = max(6, len(str(n_users - 1)))
    user_ids = np.char.add("u", np.char.zfill(np.arange(n_users).astype(str), width))
    events = np.array(EVENTS, dtype=object)[code]
    page_by_code = np.array([PAGES[e] for e in EVENTS], dtype=object)
    page = page_by_code[code]
    is_product = code == _E["product_view"]
    page[is_product] = np.char.add("/product/", d.product[visit[is_product]].astype(str)).astype(object)
    is_blog = code == _E["blog_view"]
    page[is_blog] = np.char.add("/blog/guide-", (d.product[visit[is_blog]] % 12).astype(str)).astype(object)
    has_page = pd.notna(page)
    url = np.full(len(code), None, dtype=object)
    url[has_page] = np.char.add(SHOP, page[has_page].astype(str)).astype(object)

    channel = d.channel[visit]
    referrer = np.full(len(code), None, dtype=object)
    src = np.full(len(code), None, dtype=object)
    med = np.full(len(code), None, dtype=object)
    camp = np.full(len(code), None, dtype=object)
    pick = d.source_pick[visit]
    cpick = d.campaign_pick[visit]
    for name, refs in SOURCES.items():  # a loop over a handful of channels
        rows = entry & (channel == CHANNELS.index(name))
        idx = (pick[rows] * len(refs)).astype(int)
        referrer[rows] = np.array(refs, dtype=object)[idx]
    for name, (sources, medium, campaigns) in UTM.items():
        rows = entry & (channel == CHANNELS.index(name))
        src[rows] = np.array(sources, dtype=object)[(pick[rows] * len(sources)).astype(int)]
        med[rows] = medium
        camp[rows] = np.array(campaigns, dtype=object)[(cpick[rows] * len(campaigns)).astype(int)]
    is_buy = code == _E["purchase"]
    revenue = np.where(is_buy, d.revenue[visit], np.nan)
    cols: dict[str, object] = {
        "user_id": _obj(user_ids[user]),
        "timestamp": pd.to_datetime(time, unit="ns", utc=True),
        "event": _obj(events),
        "page": _obj(page),
        "url": _obj(url),
        "referrer": _obj(referrer),
        "utm_source": _obj(src),
        "utm_medium": _obj(med),
        "utm_campaign": _obj(camp),
        "revenue": revenue,
    }
    if rating:
        rated = (code == _E["review_write"]) | (code == _E["delivery"])
        cols["rating"] = np.where(rated, d.rating[visit], np.nan)
    cols["device"] = _obj(np.array(DEVICES, dtype=object)[d.device[user]])
    cols["persona"] = _obj(np.array(PERSONAS, dtype=object)[d.persona[user]])
    cols["country"] = _obj(np.array(COUNTRIES, dtype=object)[d.country[user]])
    for name in CATEGORICAL:
        if name in cols:  # low-cardinality text: encoded once here, as a Parquet reader would
            cols[name] = pd.Categorical(cols[name])
    frame = pd.DataFrame(cols)
    if not return_truth:
        return frame
    return SimulationResult(events=frame, truth=_truth(d))
