"""Tables behind the journey flow and the journey map (no plotting here).

``journey_flow_table`` counts how people move from one touch (channel,
touchpoint or phase) to the next, step by step; ``journey_map_table`` counts, per
phase and touchpoint, the people, their conversion rate and their mean rating.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._encode import factorize_sorted, sort_order, time_ns
from ._validation import check_frame, check_positive_int
from .exceptions import SchemaError
from .journeys import Journeys
from .schema import resolve_columns

__all__ = ["EXIT", "OTHER", "journey_flow_table", "journey_map_table"]

EXIT = "(exit)"
OTHER = "other"


def journey_flow_table(
    data: pd.DataFrame | Journeys,
    *,
    by: str = "channel",
    max_steps: int = 5,
    top: int = 8,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """People moving from each touch to the next, per step.

    Parameters
    ----------
    data : DataFrame or Journeys
        Events (one sequence per person, in time order, consecutive repeats of the
        ``by`` value merged) or journeys (one sequence per journey, as built).
    by : str, default "channel"
        Column of the events whose values are the nodes ("channel", "touchpoint",
        "phase", ...). Ignored for journeys.
    max_steps : int, default 5
        Steps to follow; sequences are cut after this many.
    top : int, default 8
        Keep the ``top`` most frequent values; the rest become "other".
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    DataFrame
        step (int64, from 1), source (str), target (str; "(exit)" when the
        sequence ends there), users (int64). Per step, users sums to the number
        of sequences at least that long.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-01"], utc=True),
    ...     "event": ["x"] * 4, "channel": ["Email", "Email", "Direct", "Email"]})
    >>> jf.flows.journey_flow_table(ev)
       step  source  target  users
    0     1   Email  (exit)      1
    1     1   Email  Direct      1
    2     2  Direct  (exit)      1
    """
    max_steps = check_positive_int("max_steps", max_steps)
    top = check_positive_int("top", top)
    if isinstance(data, Journeys):
        seq = data.path_index
        values = pd.Series(np.asarray(data.channels, dtype=object)[data.touches.astype(np.int64)])
        keep = np.ones(len(seq), dtype=bool)
    else:
        check_frame("data", data)
        names = resolve_columns(data, columns, required=("user_id", "timestamp"))
        if by not in data.columns:
            raise SchemaError(
                f"Column {by!r} (by=) is not in the events. Columns present: {[str(c) for c in data.columns]}."
            )
        users, _ = factorize_sorted(data[names["user_id"]])
        order = sort_order(users, time_ns(data[names["timestamp"]]))
        seq = users[order]
        raw = data[by].to_numpy(dtype=object)[order]
        values = pd.Series(np.where(pd.isna(raw), "(none)", raw).astype(str), dtype=object)
        same = np.zeros(len(seq), dtype=bool)
        same[1:] = (seq[1:] == seq[:-1]) & (values.to_numpy()[1:] == values.to_numpy()[:-1])
        keep = ~same
    seq = seq[keep]
    vals = values.to_numpy(dtype=object)[keep]
    counts = pd.Series(vals).value_counts()
    if len(counts) > top:
        vals = np.where(pd.Series(vals).isin(counts.index[:top]).to_numpy(), vals, OTHER)
    new = np.ones(len(seq), dtype=bool)
    new[1:] = seq[1:] != seq[:-1]
    starts = np.flatnonzero(new)
    pos = np.arange(len(seq)) - np.repeat(starts, np.diff(np.append(starts, len(seq))))
    in_range = pos < max_steps
    last = np.ones(len(seq), dtype=bool)
    last[:-1] = seq[1:] != seq[:-1]
    nxt = np.empty(len(seq), dtype=object)
    nxt[:-1] = vals[1:]
    target = np.where(last | (pos + 1 >= max_steps), EXIT, nxt)
    frame = pd.DataFrame({"step": pos[in_range] + 1, "source": vals[in_range], "target": target[in_range]})
    out = frame.groupby(["step", "source", "target"], sort=True).size().rename("users").reset_index()
    out["step"] = out["step"].astype(np.int64)
    out["users"] = out["users"].astype(np.int64)
    return out


def journey_map_table(
    events: pd.DataFrame,
    *,
    conversion: str | list[str] = "purchase",
    columns: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Per (phase, touchpoint): people, events, conversion rate, mean rating.

    Parameters
    ----------
    events : DataFrame
        Events with ``phase`` (ordered categorical) and ``touchpoint``.
    conversion : str or list of str, default "purchase"
        Conversion event name(s).
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    cells : DataFrame
        phase (categorical), touchpoint (str), users (int64), events (int64),
        conversion_rate (float64: share of those people who converted),
        rating (float64: mean rating there, NaN without ratings).
    curve : DataFrame or None
        phase, rating (mean per phase), n_ratings; None without a rating column.

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.assign_phases(jf.assign_touchpoints(jf.datasets.simulate_webshop(200, seed=2)))
    >>> cells, curve = jf.flows.journey_map_table(ev)
    >>> list(cells.columns)
    ['phase', 'touchpoint', 'users', 'events', 'conversion_rate', 'rating']
    """
    check_frame("events", events)
    names = resolve_columns(events, columns, required=("user_id", "event"), optional=("rating",))
    for col, fix in (("phase", "jf.assign_phases"), ("touchpoint", "jf.assign_touchpoints")):
        if col not in events.columns:
            raise SchemaError(f"journey_map needs a {col!r} column: run {fix}(events) first.")
    wanted = [conversion] if isinstance(conversion, str) else list(conversion)
    users, _ = factorize_sorted(events[names["user_id"]])
    converted = np.zeros(int(users.max()) + 1 if len(users) else 0, dtype=bool)
    converted[users[events[names["event"]].isin(wanted).to_numpy(dtype=bool)]] = True
    frame = pd.DataFrame(
        {
            "phase": events["phase"].to_numpy(),
            "touchpoint": events["touchpoint"].astype(object).to_numpy(),
            "user": users,
            "converted": converted[users],
            "rating": events[names["rating"]].to_numpy(dtype=np.float64, na_value=np.nan)
            if "rating" in names else np.nan,
        }
    )
    if isinstance(events["phase"].dtype, pd.CategoricalDtype):
        frame["phase"] = pd.Categorical(frame["phase"], categories=events["phase"].cat.categories, ordered=True)
    frame = frame[frame["phase"].notna()]
    per_user = frame.drop_duplicates(["phase", "touchpoint", "user"])
    g = per_user.groupby(["phase", "touchpoint"], observed=True, sort=True)
    cells = pd.DataFrame({"users": g.size(), "conversion_rate": g["converted"].mean()})
    e = frame.groupby(["phase", "touchpoint"], observed=True, sort=True)
    cells["events"] = e.size()
    cells["rating"] = e["rating"].mean()
    cells = cells.reset_index()[["phase", "touchpoint", "users", "events", "conversion_rate", "rating"]]
    cells["users"] = cells["users"].astype(np.int64)
    cells["events"] = cells["events"].astype(np.int64)
    curve: Any = None
    if "rating" in names:
        rated = frame[frame["rating"].notna()]
        pg = rated.groupby("phase", observed=False, sort=True)["rating"]
        curve = pd.DataFrame({"rating": pg.mean(), "n_ratings": pg.size().astype(np.int64)}).reset_index()
    return cells, curve
