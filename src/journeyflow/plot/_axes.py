"""The one place that imports matplotlib; shared axes, colours and labels."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..exceptions import InputTypeError, SchemaError

__all__ = ["color_for", "empty", "get_axes", "percent", "pyplot", "require", "thousands"]

# Okabe-Ito and friends: distinguishable, colour-blind safe
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#8C564B", "#7F7F7F", "#17BECF", "#BCBD22",
)
FIXED = {
    # models keep their colour in every chart
    "first_touch": "#56B4E9", "last_touch": "#0072B2", "linear": "#009E73", "time_decay": "#F0E442",
    "position_based": "#CC79A7", "markov": "#D55E00", "shapley": "#E69F00", "truth": "#000000",
    "(exit)": "#BBBBBB", "other": "#999999",
}


def pyplot() -> Any:
    """matplotlib.pyplot, imported on first use."""
    import matplotlib.pyplot as plt

    return plt


def get_axes(ax: Any = None, figsize: tuple[float, float] = (8, 4.5)) -> Any:
    """The given Axes, or a new figure's Axes."""
    if ax is not None:
        if not hasattr(ax, "figure") or not hasattr(ax, "bar"):
            raise InputTypeError(f"ax must be a matplotlib Axes; got {type(ax).__name__}.")
        return ax
    _, new = pyplot().subplots(figsize=figsize, layout="constrained")
    return new


def color_for(name: Any, index: int | None = None) -> str:
    """A stable colour per name: fixed for models, hashed otherwise (same in every chart)."""
    key = str(name)
    base = key.split("(")[0] if key.split("(")[0] in FIXED else key
    if base in FIXED:
        return FIXED[base]
    if index is not None:
        return PALETTE[index % len(PALETTE)]
    digest = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16)
    return PALETTE[digest % len(PALETTE)]


def colors_for(names: Iterable[Any]) -> list[str]:
    """Distinct colours for a list of names (in order), fixed ones kept."""
    out, i = [], 0
    for n in names:
        key = str(n).split("(")[0]
        if str(n) in FIXED or key in FIXED:
            out.append(color_for(n))
        else:
            out.append(PALETTE[i % len(PALETTE)])
            i += 1
    return out


def thousands(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.1f}"


def percent(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.1f}%"


def require(table: Any, columns: Iterable[str], what: str, made_by: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise InputTypeError(f"{what} draws a DataFrame from {made_by}; got {type(table).__name__}.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SchemaError(
            f"{what} needs column {missing[0]!r} (the table {made_by} returns); columns present: "
            f"{[str(c) for c in table.columns]}."
        )
    return table


def empty(ax: Any, message: str) -> Any:
    """Write a message in the middle of an empty chart."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
