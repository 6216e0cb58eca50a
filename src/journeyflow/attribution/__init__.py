"""Multi-touch attribution: heuristics, Markov chains of any order, Shapley values.

``attribute`` fits several models on the same journeys and returns one tidy
comparison table; ``Bootstrap`` adds percentile intervals by resampling journeys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._encode import both
from .._validation import describe, lookup
from ..exceptions import InputTypeError, OptionError
from ..journeys import Journeys
from .bootstrap import PATH_ONLY, Bootstrap, merged_paths
from .markov import MarkovAttribution
from .models import (
    AttributionModel,
    FirstTouch,
    LastTouch,
    Linear,
    PositionBased,
    TimeDecay,
    fit_by_position,
)
from .shapley import ShapleyAttribution

__all__ = [
    "MODELS",
    "AttributionModel",
    "Bootstrap",
    "FirstTouch",
    "LastTouch",
    "Linear",
    "MarkovAttribution",
    "PositionBased",
    "ShapleyAttribution",
    "TimeDecay",
    "attribute",
    "evaluate_attribution",
]

#: Model names accepted by :func:`attribute`, and the class each one builds.
MODELS: dict[str, type[AttributionModel]] = {
    "first_touch": FirstTouch,
    "last_touch": LastTouch,
    "linear": Linear,
    "time_decay": TimeDecay,
    "position_based": PositionBased,
    "markov": MarkovAttribution,
    "shapley": ShapleyAttribution,
}
DEFAULT_MODELS = ("first_touch", "last_touch", "linear", "position_based", "markov", "shapley")


def _resolve(model: Any) -> AttributionModel:
    if isinstance(model, AttributionModel):
        return model
    if isinstance(model, str):
        return lookup("attribution model", model, MODELS, instead="pass a model instance")()
    raise InputTypeError(f"A model must be a name or an attribution model instance; got {describe(model)}.")


def attribute(
    journeys: Journeys,
    models: Sequence[str | AttributionModel] = DEFAULT_MODELS,
    *,
    ci: Bootstrap | None = None,
) -> pd.DataFrame:
    """Fit several attribution models on the same journeys; one tidy table.

    Parameters
    ----------
    journeys : Journeys
        From :func:`journeyflow.build_journeys` or :meth:`journeyflow.Journeys.from_paths`.
    models : list of str or model instances
        Names from ``first_touch, last_touch, linear, time_decay, position_based,
        markov, shapley``, or instances such as ``MarkovAttribution(order=2)``.
        Default: all but time_decay (which needs touch times).
    ci : Bootstrap, optional
        Add ``ci_low`` / ``ci_high`` (percentile intervals of conversions).

    Returns
    -------
    DataFrame
        One row per (model, channel): ``model`` (str label, e.g.
        ``markov(order=2)``), ``channel`` (str), ``conversions``, ``value``,
        ``share`` (float64), and ``ci_low``, ``ci_high`` with ``ci``. Per model,
        conversions sum to the total conversions and value to the total value.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> paths = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [4, 2], "total_null": [6, 8]})
    >>> at = jf.attribute(jf.Journeys.from_paths(paths), models=["first_touch", "linear"])
    >>> at[["model", "channel", "conversions"]]
             model channel  conversions
    0  first_touch       a          4.0
    1  first_touch       b          2.0
    2       linear       a          2.0
    3       linear       b          4.0
    """
    if not isinstance(journeys, Journeys):
        raise InputTypeError(f"journeys must be a jf.Journeys; got {describe(journeys)}.")
    fitted = resolve_models(models)
    paths = merged_paths(journeys) if any(type(m) in PATH_ONLY for m in fitted) else journeys
    return attribute_parts(paths, journeys, fitted, ci=ci)


#: From this many journeys on, :func:`attribute_parts` fits the models on a second
#: thread while the bootstrap resamples on this one.
_PARALLEL_PATHS = 1 << 17


def resolve_models(models: Sequence[str | AttributionModel] | str | AttributionModel) -> list[AttributionModel]:
    """Model instances from names (a fresh instance each) or instances (as they are)."""
    if isinstance(models, (str, AttributionModel)):
        models = [models]
    return [_resolve(spec) for spec in models]


def attribute_parts(
    paths: Journeys, journeys: Journeys, models: Sequence[AttributionModel], *, ci: Bootstrap | None = None
) -> pd.DataFrame:
    """:func:`attribute` from the distinct paths (for models of the paths only) and
    journeys holding at least every converting journey (for the others, e.g. time
    decay, which credits only converting journeys). The Dask engine builds both per
    partition; :func:`attribute` passes ``merged_paths(journeys)`` and ``journeys``."""
    if ci is not None and not isinstance(ci, Bootstrap):
        raise InputTypeError(f"ci must be a jf.Bootstrap or None; got {describe(ci)}.")
    fitted = list(models)

    def fit() -> list[pd.DataFrame]:
        frames = []
        together = fit_by_position([m for m in fitted if type(m) in PATH_ONLY], paths)  # one pass: heuristics
        for model in fitted:  # a loop over models
            if not any(model is m for m in together):
                model.fit(paths if type(model) in PATH_ONLY else journeys)
            assert model.attribution_ is not None
            table = model.attribution_.copy()
            table.insert(0, "model", model.label)
            frames.append(table)
        return frames

    if ci is None:
        frames = fit()
    else:  # one set of resamples for every model (their intervals are comparable); the fits beside
        boot = ci
        threads = journeys.n_paths >= _PARALLEL_PATHS
        samples, frames = both(lambda: boot.samples_many(fitted, journeys, paths=paths), fit, threads)
        for table, sample in zip(frames, samples, strict=True):
            table["ci_low"], table["ci_high"] = ci.bounds(sample)
    out = pd.concat(frames, ignore_index=True)
    if ci is not None:
        out.attrs["ci"] = {"method": "bootstrap", "n_resamples": ci.n_resamples, "level": ci.level, "seed": ci.seed}
    return out


def evaluate_attribution(table: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Score each model's shares against a ground truth (e.g. the simulator's).

    Parameters
    ----------
    table : DataFrame
        From :func:`attribute` (model, channel, share).
    truth : DataFrame
        channel and share (the true incremental share of each channel; the
        simulator's ``truth``). Channels missing on either side count as 0.

    Returns
    -------
    DataFrame
        One row per model, best first: ``model``, ``mean_abs_error`` and
        ``max_abs_error`` (of shares, per channel), ``total_abs_error`` (sum over
        channels of |share - true share|, in [0, 2]), ``rank_correlation``
        (Spearman, between the model's and the true shares).

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> at = pd.DataFrame({"model": ["m", "m"], "channel": ["a", "b"], "share": [0.6, 0.4]})
    >>> truth = pd.DataFrame({"channel": ["a", "b"], "share": [0.5, 0.5]})
    >>> jf.evaluate_attribution(at, truth).round(3)
      model  mean_abs_error  max_abs_error  total_abs_error  rank_correlation
    0     m             0.1            0.1              0.2               NaN
    """
    from scipy.stats import spearmanr

    for name, frame, cols in (("table", table, ("model", "channel", "share")), ("truth", truth, ("channel", "share"))):
        if not isinstance(frame, pd.DataFrame):
            raise InputTypeError(f"{name} must be a DataFrame; got {describe(frame)}.")
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise OptionError(f"{name} needs column {missing[0]!r}; it has {[str(c) for c in frame.columns]}.")
    true = truth.groupby("channel")["share"].sum()
    rows = []
    for model, part in table.groupby("model", sort=False):  # a loop over models
        got = part.groupby("channel")["share"].sum()
        channels = got.index.union(true.index)
        a, b = got.reindex(channels, fill_value=0.0), true.reindex(channels, fill_value=0.0)
        err = (a - b).abs()
        rho = spearmanr(a, b).statistic if a.nunique() > 1 and b.nunique() > 1 else np.nan
        rows.append(
            {
                "model": model,
                "mean_abs_error": float(err.mean()),
                "max_abs_error": float(err.max()),
                "total_abs_error": float(err.sum()),
                "rank_correlation": float(rho),
            }
        )
    return pd.DataFrame(rows).sort_values("total_abs_error", kind="stable").reset_index(drop=True)
