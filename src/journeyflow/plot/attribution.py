"""Attribution comparison and Markov transition matrix charts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_fitted
from ._axes import color_for, empty, get_axes, percent, require, thousands

__all__ = ["attribution", "transition_matrix"]


def attribution(
    table: pd.DataFrame,
    *,
    ax: Any = None,
    truth: pd.DataFrame | None = None,
    measure: str = "share",
    title: str | None = None,
) -> Any:
    """Grouped bars: one group per channel, one bar per model, intervals as error bars.

    Parameters
    ----------
    table : DataFrame
        From :func:`journeyflow.attribute` (``ci_low``/``ci_high`` drawn when present).
    ax : matplotlib Axes, optional
    truth : DataFrame, optional
        channel and share (e.g. the simulator's truth): drawn as black markers.
    measure : {"share", "conversions", "value"}, default "share"
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> paths = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [4, 2], "total_null": [6, 8]})
    >>> at = jf.attribute(jf.Journeys.from_paths(paths), models=["first_touch", "markov"])
    >>> ax = jf.plot.attribution(at)
    >>> sorted(round(p.get_height(), 6) for p in ax.patches) == sorted(at["share"].round(6))
    True
    >>> jf.plot.pyplot().close("all")
    """
    require(table, ["model", "channel", measure], "plot.attribution", "jf.attribute")
    ax = get_axes(ax, figsize=(9, 4.5))
    if len(table) == 0:
        return empty(ax, "No attribution to draw.")
    models = list(dict.fromkeys(table["model"].astype(str)))
    order = table.groupby("channel", sort=False)[measure].mean().sort_values(ascending=False).index
    x = np.arange(len(order))
    width = 0.8 / len(models)
    has_ci = {"ci_low", "ci_high"} <= set(table.columns) and measure == "conversions"
    for i, m in enumerate(models):
        part = table[table["model"].astype(str) == m].set_index("channel").reindex(order)
        pos = x + (i - (len(models) - 1) / 2) * width
        vals = part[measure].to_numpy(dtype=float)
        err = None
        if has_ci:
            err = np.vstack([vals - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - vals])
            err = np.clip(err, 0, None)
        ax.bar(pos, vals, width=width * 0.95, color=color_for(m), label=m, yerr=err,
               error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"})
    if truth is not None:
        t = truth.set_index("channel").reindex(order)
        col = "share" if measure == "share" else "conversions_lost"
        ax.scatter(x, t[col].to_numpy(dtype=float), marker="D", color="black", zorder=5, label="truth", s=25)
    ax.set_xticks(x, [str(c) for c in order], rotation=30, ha="right")
    fmt = percent if measure == "share" else thousands
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt(v)))
    ax.set_ylabel({"share": "share of conversions", "conversions": "conversions", "value": "value"}[measure])
    ax.legend(frameon=False, fontsize=8, ncols=min(len(models) + (truth is not None), 4))
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title or "Credit per channel and model", loc="left")
    return ax


def transition_matrix(model: Any, *, ax: Any = None, max_states: int = 20, title: str | None = None) -> Any:
    """Heatmap of a fitted Markov model's transition probabilities.

    Parameters
    ----------
    model : MarkovAttribution
        Fitted; its ``transition_matrix_`` is drawn (rows: from, columns: to,
        including start, conversion and null).
    ax : matplotlib Axes, optional
    max_states : int, default 20
        The most visited states shown.
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> paths = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [4, 2], "total_null": [6, 8]})
    >>> ax = jf.plot.transition_matrix(jf.MarkovAttribution().fit(jf.Journeys.from_paths(paths)))
    >>> jf.plot.pyplot().close("all")
    """
    check_fitted(model, "transition_matrix_")
    tm = model.transition_matrix_
    ax = get_axes(ax, figsize=(7, 6))
    if len(tm) == 0:
        return empty(ax, "The chain has no transitions.")
    special = ["(start)", "(conversion)", "(null)"]
    states = [s for s in tm["from_state"].value_counts().index if s not in special][:max_states]
    rows = ["(start)", *states]
    cols = [*states, "(conversion)", "(null)"]
    grid = tm.pivot_table(index="from_state", columns="to_state", values="probability", aggfunc="sum")
    grid = grid.reindex(index=rows, columns=cols).fillna(0.0)
    im = ax.imshow(grid.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    if grid.size <= 400:
        for (i, j), v in np.ndenumerate(grid.to_numpy()):
            if v >= 0.005:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v > 0.6 else "#222222")
    ax.set_xlabel("to")
    ax.set_ylabel("from")
    ax.figure.colorbar(im, ax=ax, label="probability")
    ax.set_title(title or f"Transition probabilities ({model.label})", loc="left")
    return ax
