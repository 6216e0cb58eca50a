"""Journey flow (alluvial) and customer journey map."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..flows import EXIT, journey_flow_table, journey_map_table
from ..journeys import Journeys
from ._axes import colors_for, empty, get_axes, percent, thousands

__all__ = ["journey_flow", "journey_map"]


def journey_flow(
    data: pd.DataFrame | Journeys,
    *,
    by: str = "channel",
    max_steps: int = 5,
    top: int = 8,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Alluvial flow of people from touch to touch, with exits, step by step.

    Parameters
    ----------
    data : DataFrame or Journeys
        Events or journeys; see :func:`journeyflow.flows.journey_flow_table`. A
        table from that function is drawn as is.
    by : str, default "channel"
        "channel", "touchpoint", "phase" or another column of the events.
    max_steps, top : int
        Steps drawn; values kept before grouping the rest as "other".
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes
        Node heights and band widths are people; the bands leaving a column sum
        to the people in it (exits drawn grey).

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.assign_touchpoints(jf.datasets.simulate_webshop(200, seed=1))
    >>> ax = jf.plot.journey_flow(ev, by="channel", max_steps=4)
    >>> jf.plot.pyplot().close("all")
    """
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path

    if isinstance(data, pd.DataFrame) and {"step", "source", "target", "users"} <= set(data.columns):
        table = data
    else:
        table = journey_flow_table(data, by=by, max_steps=max_steps, top=top)
    ax = get_axes(ax, figsize=(10, 5.5))
    if len(table) == 0:
        return empty(ax, "No journeys to draw.")
    steps = int(table["step"].max())
    names = [n for n in pd.concat([table["source"], table["target"]]).value_counts().index if n != EXIT]
    colors = dict(zip(names, colors_for(names), strict=True))
    colors[EXIT] = "#CCCCCC"
    total = float(table.loc[table["step"] == 1, "users"].sum())
    gap = total * 0.02
    node_w = 0.12
    # node sizes per column: column k holds the sources of step k
    columns: list[pd.Series] = [table[table["step"] == k].groupby("source")["users"].sum() for k in range(1, steps + 1)]
    tops: list[dict[str, float]] = []
    for k, col in enumerate(columns):
        order = [n for n in names if n in col.index]
        y = 0.0
        pos = {}
        for n in order:
            pos[n] = y
            ax.add_patch(Rectangle((k - node_w / 2, y), node_w, col[n], color=colors[n], zorder=3))
            if col[n] >= total * 0.03:
                ax.text(k + node_w / 2 + 0.02, y + col[n] / 2, f"{n} {thousands(col[n])}", va="center", fontsize=7,
                        zorder=4, bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.5})
            y += col[n] + gap
        tops.append(pos)
    # bands
    for k in range(steps):
        part = table[table["step"] == k + 1]
        out_off = {n: tops[k][n] for n in tops[k]}
        in_off = dict(tops[k + 1]) if k + 1 < steps else {}
        for _, row in part.sort_values(["source", "target"]).iterrows():  # a band per (source, target)
            src, dst, w = row["source"], row["target"], float(row["users"])
            y0 = out_off[src]
            out_off[src] += w
            if dst == EXIT or dst not in in_off:
                # people leaving: a grey wedge that narrows to nothing just right of the node
                xa = k - node_w / 2
                verts = [(xa, y0), (xa - 0.12, y0 + w / 2), (xa, y0 + w), (xa, y0)]
                codes = [Path.MOVETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY]
                ax.add_patch(PathPatch(Path(verts, codes), facecolor="#9E9E9E", edgecolor="none", alpha=0.6))
                continue
            y1 = in_off[dst]
            in_off[dst] += w
            xa, xb = k + node_w / 2, k + 1 - node_w / 2
            xm = (xa + xb) / 2
            verts = [(xa, y0), (xm, y0), (xm, y1), (xb, y1), (xb, y1 + w), (xm, y1 + w), (xm, y0 + w), (xa, y0 + w), (xa, y0)]
            codes = [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO, Path.CURVE4, Path.CURVE4,
                     Path.CURVE4, Path.CLOSEPOLY]
            ax.add_patch(PathPatch(Path(verts, codes), facecolor=colors[src], edgecolor="none", alpha=0.35))
    height = max(sum(c.to_numpy()) + gap * len(c) for c in columns)
    ax.set_xlim(-0.4, steps - 0.4)
    ax.set_ylim(height, -gap)
    ax.set_xticks(range(steps), [f"step {k + 1}" for k in range(steps)])
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or f"Journey flow by {by} ({thousands(total)} people; grey wedges: people who leave)", loc="left")
    return ax


def journey_map(
    events: pd.DataFrame,
    *,
    conversion: str | list[str] = "purchase",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """The customer journey map: phases as columns, touchpoints as rows.

    Each cell shows how many people met the touchpoint in that phase (bubble
    size) and how many of them converted (colour). With a ``rating`` column, the
    experience curve (mean rating per phase) is drawn in a band above.

    Parameters
    ----------
    events : DataFrame
        Events with ``phase`` and ``touchpoint``.
    conversion : str or list of str, default "purchase"
    ax : matplotlib Axes, optional
        The map's Axes; the experience curve is an inset above it.
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.assign_phases(jf.assign_touchpoints(jf.datasets.simulate_webshop(200, seed=1)))
    >>> ax = jf.plot.journey_map(ev)
    >>> jf.plot.pyplot().close("all")
    """
    cells, curve = journey_map_table(events, conversion=conversion)
    ax = get_axes(ax, figsize=(10, 7))
    if len(cells) == 0:
        return empty(ax, "No events with both a phase and a touchpoint.")
    phases = list(cells["phase"].cat.categories) if isinstance(cells["phase"].dtype, pd.CategoricalDtype) else \
        list(dict.fromkeys(cells["phase"]))
    first_phase = cells.assign(p=cells["phase"].map({p: i for i, p in enumerate(phases)}).astype(int))
    tp_order = first_phase.groupby("touchpoint")["p"].min().sort_values(kind="stable").index.tolist()
    x = cells["phase"].map({p: i for i, p in enumerate(phases)}).astype(int).to_numpy()
    y = cells["touchpoint"].map({t: i for i, t in enumerate(tp_order)}).to_numpy()
    size = 40 + 900 * cells["users"] / cells["users"].max()
    sc = ax.scatter(x, y, s=size, c=cells["conversion_rate"], cmap="viridis", vmin=0, vmax=1,
                    edgecolors="#333333", linewidths=0.4)
    big = cells["users"].to_numpy() >= 0.25 * cells["users"].max()
    for xi, yi, u in zip(x[big], y[big], cells["users"].to_numpy()[big], strict=True):
        ax.text(xi, yi, thousands(u), ha="center", va="center", fontsize=6, color="white", zorder=4)
    ax.set_xticks(range(len(phases)), phases, rotation=20, ha="right")
    ax.set_yticks(range(len(tp_order)), tp_order, fontsize=8)
    ax.set_xlim(-0.6, len(phases) - 0.4)
    ax.set_ylim(len(tp_order) - 0.5, -0.5)
    ax.set_axisbelow(True)
    ax.grid(True, color="#EEEEEE")
    cb = ax.figure.colorbar(sc, ax=ax, label="converted", fraction=0.04)
    from matplotlib.ticker import FuncFormatter

    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: percent(v)))
    if curve is not None and curve["n_ratings"].sum() > 0:
        inset = ax.inset_axes((0.0, 1.04, 1.0, 0.18), sharex=ax)
        cx = curve["phase"].map({p: i for i, p in enumerate(phases)}).astype(int).to_numpy()
        has = curve["n_ratings"].to_numpy() > 0
        inset.plot(cx[has], curve["rating"].to_numpy()[has], marker="o", color="#D55E00")
        inset.set_ylim(1, 5)
        inset.set_ylabel("rating", fontsize=7)
        inset.tick_params(labelbottom=False, labelsize=7)
        inset.set_title(title or "Customer journey map (top: experience curve)", loc="left")
    else:
        ax.set_title(title or "Customer journey map", loc="left")
    return ax
