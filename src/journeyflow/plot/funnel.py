"""Funnel, drop-off, time-to-convert and touchpoint-priority charts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._axes import colors_for, empty, get_axes, percent, require, thousands

__all__ = ["drop_off", "funnel", "time_to_convert", "touchpoint_priority"]


def funnel(table: pd.DataFrame, *, ax: Any = None, title: str | None = None) -> Any:
    """Bars per step (or phase) with people, conversion from start and drop-off.

    Parameters
    ----------
    table : DataFrame
        From :func:`journeyflow.funnel` or :func:`journeyflow.phase_funnel`; with
        segment columns first (``by=``), one group of bars per segment.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.datasets.simulate_webshop(200, seed=1)
    >>> ax = jf.plot.funnel(jf.funnel(ev, ["product_view", "add_to_cart", "purchase"]))
    >>> [round(p.get_width()) for p in ax.patches] == jf.funnel(ev, ["product_view", "add_to_cart", "purchase"])["users"].tolist()
    True
    >>> jf.plot.pyplot().close("all")
    """
    step = "phase" if "phase" in table.columns else "step"
    require(table, [step, f"{step}_index", "users", "conversion_from_start", "dropped"], "plot.funnel",
            "jf.funnel / jf.phase_funnel")
    ax = get_axes(ax)
    if len(table) == 0:
        return empty(ax, "No steps to draw: the funnel table is empty.")
    seg_cols = list(table.columns[: list(table.columns).index(step)])
    labels = list(dict.fromkeys(table[step].astype(str)))
    n = len(labels)
    if seg_cols:
        keys = table[seg_cols].astype(str).agg(" / ".join, axis=1)
        segments = list(dict.fromkeys(keys))
    else:
        keys = pd.Series("all", index=table.index)
        segments = ["all"]
    height = 0.8 / len(segments)
    colors = colors_for(segments)
    y = np.arange(n)
    top = float(table["users"].max()) or 1.0
    for i, seg in enumerate(segments):
        part = table[keys == seg]
        pos = y[: len(part)] + (i - (len(segments) - 1) / 2) * height
        ax.barh(pos, part["users"].to_numpy(dtype=float), height=height * 0.95, color=colors[i],
                label=None if seg == "all" else seg)
        for yy, (_, row) in zip(pos, part.iterrows(), strict=True):  # one label per bar
            text = f"{thousands(row['users'])}  ({percent(row['conversion_from_start'])})"
            if row["dropped"] > 0:
                text += f"  −{thousands(row['dropped'])}"
            ax.text(row["users"] + top * 0.01, yy, text, va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel("people")
    ax.xaxis.set_major_formatter(_fmt(thousands))
    ax.spines[["top", "right"]].set_visible(False)
    if seg_cols:
        ax.legend(title=", ".join(seg_cols), frameon=False, fontsize=8)
    ax.set_title(title or ("Phase funnel" if step == "phase" else "Funnel"), loc="left")
    return ax


def drop_off(table: pd.DataFrame, *, ax: Any = None, top: int = 4, title: str | None = None) -> Any:
    """Where people leave: per step, the exit touchpoints as stacked shares.

    Parameters
    ----------
    table : DataFrame
        From :func:`journeyflow.drop_off`.
    ax : matplotlib Axes, optional
    top : int, default 4
        Exit values shown per step; the rest are grouped as "other".
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.assign_touchpoints(jf.datasets.simulate_webshop(200, seed=1))
    >>> ax = jf.plot.drop_off(jf.drop_off(ev, ["product_view", "add_to_cart", "purchase"]))
    >>> jf.plot.pyplot().close("all")
    """
    step = "phase" if "phase" in table.columns else "step"
    last = [c for c in table.columns if c.startswith("last_") and c != "last_event"]
    require(table, [step, f"{step}_index", "users", *(last[:1] or ["last_touchpoint"])], "plot.drop_off",
            "jf.drop_off")
    ax = get_axes(ax)
    if len(table) == 0:
        return empty(ax, "Nobody dropped off: the drop-off table is empty.")
    col = last[0]
    grouped = table.groupby([f"{step}_index", step, col], sort=False)["users"].sum().reset_index()
    grouped = grouped.sort_values([f"{step}_index", "users"], ascending=[True, False], kind="stable")
    grouped["rank"] = grouped.groupby(f"{step}_index").cumcount()
    grouped[col] = np.where(grouped["rank"] < top, grouped[col].astype(str), "other")
    pivot = grouped.pivot_table(index=[f"{step}_index", step], columns=col, values="users", aggfunc="sum",
                                fill_value=0, observed=True)
    totals = pivot.sum(axis=1)
    order = pivot.sum(axis=0).sort_values(ascending=False).index
    pivot = pivot[order]
    colors = colors_for(order)
    y = np.arange(len(pivot))
    left = np.zeros(len(pivot))
    for i, name in enumerate(order):
        vals = pivot[name].to_numpy(dtype=float)
        ax.barh(y, vals, left=left, color=colors[i], label=str(name), height=0.7)
        for yy, v, lft, tot in zip(y, vals, left, totals.to_numpy(), strict=True):
            if v / tot >= 0.08:
                ax.text(lft + v / 2, yy, percent(v / tot), ha="center", va="center", fontsize=7, color="white")
        left += vals
    ax.set_yticks(y, [f"after {s}" for s in pivot.index.get_level_values(1)])
    ax.invert_yaxis()
    ax.set_xlabel("people who left")
    ax.xaxis.set_major_formatter(_fmt(thousands))
    ax.legend(title=f"last {col.removeprefix('last_')}", frameon=False, fontsize=7, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title or "Where people leave", loc="left")
    return ax


def time_to_convert(durations: pd.DataFrame, *, ax: Any = None, bins: int = 30, title: str | None = None) -> Any:
    """Histogram of durations on a log time axis, median and quartiles marked.

    Parameters
    ----------
    durations : DataFrame
        From :func:`journeyflow.time_to_convert` (a ``duration`` column).
    ax : matplotlib Axes, optional
    bins : int, default 30
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.datasets.simulate_webshop(300, seed=1)
    >>> ax = jf.plot.time_to_convert(jf.time_to_convert(ev, ["product_view", "purchase"]))
    >>> jf.plot.pyplot().close("all")
    """
    require(durations, ["duration"], "plot.time_to_convert", "jf.time_to_convert")
    ax = get_axes(ax)
    hours = durations["duration"].dt.total_seconds().to_numpy() / 3600
    hours = hours[np.isfinite(hours)]
    if hours.size == 0:
        return empty(ax, "No completed conversions to draw.")
    positive = np.clip(hours, 1 / 60, None)  # a minute at least, for the log axis
    edges = np.logspace(np.log10(positive.min()), np.log10(positive.max() * 1.001), bins + 1)
    ax.hist(positive, bins=edges, color="#0072B2", alpha=0.85)
    ax.set_xscale("log")
    for q, style in ((0.25, ":"), (0.5, "-"), (0.75, ":")):
        v = float(np.quantile(positive, q))
        ax.axvline(v, color="#D55E00", linestyle=style, linewidth=1.5)
        ax.text(v, ax.get_ylim()[1] * 0.95, f"{int(q * 100)}%: {_human(v)}", rotation=90, va="top", ha="right",
                fontsize=8)
    ticks = [t for t in (1 / 60, 0.25, 1, 6, 24, 72, 168, 720, 2160) if positive.min() / 2 <= t <= positive.max() * 2]
    ax.set_xticks(ticks, [_human(t) for t in ticks])
    ax.set_xlabel("time to convert")
    ax.set_ylabel("people")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title or f"Time to convert ({len(hours):,} people)", loc="left")
    return ax


def touchpoint_priority(table: pd.DataFrame, *, ax: Any = None, top: int = 12, title: str | None = None) -> Any:
    """Reach × exit rate per touchpoint, bubble size = people, top priorities labelled.

    Parameters
    ----------
    table : DataFrame
        From :func:`journeyflow.touchpoint_priority`.
    ax : matplotlib Axes, optional
    top : int, default 12
        Touchpoints labelled (by rank).
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.assign_touchpoints(jf.datasets.simulate_webshop(200, seed=1))
    >>> ax = jf.plot.touchpoint_priority(jf.touchpoint_priority(ev))
    >>> jf.plot.pyplot().close("all")
    """
    require(table, ["touchpoint", "users", "reach", "exit_rate", "priority"], "plot.touchpoint_priority",
            "jf.touchpoint_priority")
    ax = get_axes(ax)
    if len(table) == 0:
        return empty(ax, "No touchpoints to draw.")
    size = 30 + 600 * table["users"] / table["users"].max()
    sc = ax.scatter(table["reach"], table["exit_rate"], s=size, c=table["priority"], cmap="OrRd",
                    edgecolors="#333333", linewidths=0.5, alpha=0.85)
    ranked = table.sort_values("priority", ascending=False).head(top)
    for _, row in ranked.iterrows():  # one label per labelled touchpoint
        ax.annotate(str(row["touchpoint"]), (row["reach"], row["exit_rate"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("reach (share of people who met it)")
    ax.set_ylabel("exit rate (left there without converting)")
    ax.xaxis.set_major_formatter(_fmt(percent))
    ax.yaxis.set_major_formatter(_fmt(percent))
    ax.figure.colorbar(sc, ax=ax, label="priority")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title or "Touchpoints to fix first (top right)", loc="left")
    return ax


def _fmt(func: Any) -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: func(x))


def _human(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} d"
