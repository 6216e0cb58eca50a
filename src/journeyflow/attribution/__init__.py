"""Multi-touch attribution: heuristics, Markov chains of any order, Shapley values.

``attribute`` fits several models on the same journeys and returns one tidy
comparison table; ``Bootstrap`` adds percentile intervals by resampling journeys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_fraction, check_positive_int, closest, describe
from ..exceptions import InputTypeError, OptionError
from ..journeys import Journeys
from .markov import MarkovAttribution
from .models import (
    AttributionModel,
    FirstTouch,
    LastTouch,
    Linear,
    PositionBased,
    ShapleyAttribution,
    TimeDecay,
)

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


@dataclass(frozen=True)
class Bootstrap:
    """Percentile intervals by resampling journeys with replacement.

    Each resample draws as many journeys as the data holds (conversions + nulls),
    from the paths in proportion to their counts (a multinomial draw, so
    aggregated path files resample the journeys they stand for), refits the model
    and records each channel's attributed conversions.

    Parameters
    ----------
    n_resamples : int, default 200
    seed : int, default 0
        Seed of the ``numpy.random.Generator``.
    level : float, default 0.95
        Coverage of the interval.

    Examples
    --------
    >>> import journeyflow as jf
    >>> jf.Bootstrap(n_resamples=100, seed=1)
    Bootstrap(n_resamples=100, seed=1, level=0.95)
    """

    n_resamples: int = 200
    seed: int = 0
    level: float = 0.95

    def __post_init__(self) -> None:
        check_positive_int("n_resamples", self.n_resamples)
        level = check_fraction("level", self.level, inclusive=False)
        object.__setattr__(self, "level", level)

    def intervals(self, model: AttributionModel, journeys: Journeys) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of each channel's attributed conversions."""
        rng = np.random.default_rng(self.seed)
        conv, nulls = journeys.conversions, journeys.nulls
        total = conv + nulls
        n = int(np.rint(total.sum()))
        # draw (path, outcome) cells: converting and null journeys of each path
        cells = np.concatenate([conv, nulls])
        p = cells / cells.sum()
        per_value = np.where(conv > 0, journeys.value / np.where(conv > 0, conv, 1), 0.0)
        samples = np.empty((self.n_resamples, len(journeys.channels)))
        for b in range(self.n_resamples):  # a loop over resamples
            draw = rng.multinomial(n, p)
            c_b, n_b = draw[: len(conv)].astype(float), draw[len(conv):].astype(float)
            jr_b = Journeys(
                journeys.touches, journeys.offsets, journeys.channels, c_b, n_b, c_b * per_value,
                times=journeys.times, conversion_times=journeys.conversion_times,
            )
            fitted = type(model)(**_init_params(model))
            samples[b] = _safe_fit(fitted, jr_b)
        alpha = (1 - self.level) / 2
        low, high = np.nanquantile(samples, [alpha, 1 - alpha], axis=0)
        return low, high


def _init_params(model: AttributionModel) -> dict[str, Any]:
    if isinstance(model, MarkovAttribution):
        return {"order": model.order}
    if isinstance(model, TimeDecay):
        return {"half_life": model.half_life}
    if isinstance(model, PositionBased):
        return {"first": model.first, "last": model.last}
    return {}


def _safe_fit(model: AttributionModel, jr: Journeys) -> np.ndarray:
    if jr.total_conversions <= 0:
        return np.zeros(len(jr.channels))
    model.fit(jr)
    assert model.attribution_ is not None
    return np.asarray(model.attribution_["conversions"].to_numpy(dtype=np.float64))


def _resolve(model: Any) -> AttributionModel:
    if isinstance(model, AttributionModel):
        return model
    if isinstance(model, str):
        if model in MODELS:
            return MODELS[model]()
        near = closest(model, MODELS)
        hint = f" Did you mean {near!r}?" if near else ""
        raise OptionError(
            f"Unknown attribution model {model!r}. Choose one of: {', '.join(MODELS)}; or pass a model "
            f"instance.{hint}"
        )
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
    if isinstance(models, (str, AttributionModel)):
        models = [models]
    if ci is not None and not isinstance(ci, Bootstrap):
        raise InputTypeError(f"ci must be a jf.Bootstrap or None; got {describe(ci)}.")
    frames = []
    for spec in models:  # a loop over models
        model = _resolve(spec)
        model.fit(journeys)
        assert model.attribution_ is not None
        table = model.attribution_.copy()
        table.insert(0, "model", model.label)
        if ci is not None:
            low, high = ci.intervals(model, journeys)
            table["ci_low"], table["ci_high"] = low, high
        frames.append(table)
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
