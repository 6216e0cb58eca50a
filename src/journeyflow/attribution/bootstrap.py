"""Bootstrap intervals by resampling journeys, vectorised over resamples.

Poisson bootstrap: every (path, outcome) cell -- the converting and the null
journeys of each path -- gets a Poisson(count) count in each resample. That is
the journey-level bootstrap with a Poisson instead of a fixed total (the two agree
as the data grows), it resamples the journeys an aggregated path file stands for,
and the draws are independent, so they vectorise.

Fewer draws, the same resampling: models that look only at the paths resample
the distinct paths (a path n journeys took gets a Poisson(n) count, the sum of
their Poisson(1) counts); touch-weight models (time decay) resample only the
converting journeys (a null journey never gets credit); cells with a count of 0
are not drawn, and Poisson(1) counts come from an inverse-CDF table.

- Heuristic models are linear in the path counts: credit = counts @ W with W the
  (paths × channels) credit matrix, for all resamples in one sparse product.
- Markov models: transition counts are linear in the path counts too
  (counts = weights @ incidence), so all resamples' chains come from one sparse
  product; the absorption probabilities (with and without each channel) are then
  batched dense solves, one batch per channel. Used up to ``DENSE_STATES`` states;
  larger chains refit per resample.
- Other models refit per resample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_fraction, check_positive_int
from ..journeys import Journeys
from .markov import MarkovAttribution, _edges
from .models import (
    AttributionModel,
    FirstTouch,
    LastTouch,
    Linear,
    PositionBased,
    TimeDecay,
    _TouchWeights,
)
from .shapley import ShapleyAttribution

__all__ = ["Bootstrap"]

DENSE_STATES = 150
#: P(Poisson(1) <= k) for k = 0..19: inverse-CDF draws of Poisson(1) (one uniform and a
#: table lookup each, 3-4x faster than numpy's generic sampler); P(k > 19) < 1e-18.
_POISSON_1_CDF = np.cumsum([np.exp(-1.0) / math.factorial(k) for k in range(20)])
CHUNK = 25


@dataclass(frozen=True)
class Bootstrap:
    """Percentile intervals of attributed conversions by resampling journeys
    (Poisson bootstrap, see the module docstring).

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
        object.__setattr__(self, "level", check_fraction("level", self.level, inclusive=False))

    def _draws(self, journeys: Journeys) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(conversions, nulls) per path for chunks of resamples, shape (chunk, paths)."""
        rng = np.random.default_rng(self.seed)
        conv, nulls = journeys.conversions, journeys.nulls
        cells = np.concatenate([conv, nulls])
        ones = np.flatnonzero(cells == 1)  # one journey: Poisson(1), from a table
        other = np.flatnonzero((cells > 0) & (cells != 1))  # Poisson(0) is 0: not drawn
        done = 0
        while done < self.n_resamples:
            size = min(CHUNK, self.n_resamples - done)
            cells_first = np.zeros((len(cells), size))  # filled by rows (contiguous), used transposed
            cells_first[other] = rng.poisson(cells[other][:, None], size=(len(other), size))
            cells_first[ones] = np.searchsorted(_POISSON_1_CDF, rng.random((len(ones), size)), side="right")
            draw = cells_first.T
            yield draw[:, : len(conv)], draw[:, len(conv):]
            done += size

    def samples(self, model: AttributionModel, journeys: Journeys) -> np.ndarray:
        """Attributed conversions per resample and channel, shape (n_resamples, channels)."""
        return self.samples_many([model], journeys)[0]

    def samples_many(
        self, models: Sequence[AttributionModel], journeys: Journeys, *, paths: Journeys | None = None
    ) -> list[np.ndarray]:
        """:meth:`samples` for several models from one set of draws (the same resamples).

        Models whose credit depends only on the paths (not on touch times) resample the
        distinct paths: identical journeys are merged first (:meth:`Journeys.distinct`)
        and a path that n journeys took gets a Poisson(n) count, which is the sum of
        their Poisson(1) counts, so the resampling is the same, with far fewer draws.
        ``paths``: ``journeys.distinct()[0]`` when the caller has it already.
        """
        out: list[np.ndarray | None] = [None] * len(models)
        by_paths = [i for i, m in enumerate(models) if type(m) in PATH_ONLY]
        rest = [i for i in range(len(models)) if i not in by_paths]
        rest_jr = journeys
        converting = journeys.conversions > 0
        if rest and all(isinstance(models[i], _TouchWeights) for i in rest) and converting.any():
            rest_jr = journeys.take(converting)  # touch weights credit conversions only: nulls never count
        path_jr = journeys if not by_paths else paths if paths is not None else journeys.distinct()[0]
        groups = [(by_paths, path_jr), (rest, rest_jr)]
        for members, jr in groups:
            if not members:
                continue
            samplers = [_sampler(models[i], jr) for i in members]
            parts: list[list[np.ndarray]] = [[] for _ in members]
            for conv, nulls in self._draws(jr):
                for part, sampler in zip(parts, samplers, strict=True):
                    part.append(sampler(conv, nulls))
            for i, part in zip(members, parts, strict=True):
                out[i] = np.vstack(part)
        return [o for o in out if o is not None]

    def bounds(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) percentiles of samples at this level."""
        alpha = (1 - self.level) / 2
        low, high = np.nanquantile(samples, [alpha, 1 - alpha], axis=0)
        return low, high

    def intervals(self, model: AttributionModel, journeys: Journeys) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of each channel's attributed conversions."""
        return self.bounds(self.samples(model, journeys))


Sampler = Callable[[np.ndarray, np.ndarray], np.ndarray]


#: Models whose credit depends on the paths and their counts only (exact types: a
#: subclass may use more, e.g. touch times).
PATH_ONLY = (FirstTouch, LastTouch, Linear, PositionBased, MarkovAttribution, ShapleyAttribution)


def _sampler(model: AttributionModel, jr: Journeys) -> Sampler:
    """A function (conversions, nulls) of a chunk of resamples -> credit (chunk, channels)."""
    if isinstance(model, MarkovAttribution):
        markov = _markov_sampler(model.order, jr)
        if markov is not None:
            return markov
    if isinstance(model, _TouchWeights):
        # linear in the counts: resampling only changes how many journeys each path stands for
        return _linear_sampler(model, jr)
    if isinstance(model, ShapleyAttribution):
        return _shapley_sampler(model, jr)
    return _refit_sampler(model, jr)


def _linear_sampler(model: _TouchWeights, jr: Journeys) -> Sampler:
    w = model._weights(jr)
    credit = sp.csr_matrix(
        (w, (jr.path_index, jr.touches.astype(np.int64))), shape=(jr.n_paths, len(jr.channels))
    ).T.tocsr()
    return lambda conv, nulls: np.asarray((credit @ conv.T).T)


def _refit_samples(boot: Bootstrap, model: AttributionModel, jr: Journeys) -> np.ndarray:
    """Per-resample refits (reference for the tests; the fallback for other models)."""
    sampler = _refit_sampler(model, jr)
    return np.vstack([sampler(conv, nulls) for conv, nulls in boot._draws(jr)])


def _refit_sampler(model: AttributionModel, jr: Journeys) -> Sampler:
    per_value = np.where(jr.conversions > 0, jr.value / np.where(jr.conversions > 0, jr.conversions, 1), 0.0)
    touches, offsets, times, conversion_times = jr.touches, jr.offsets, jr.times, jr.conversion_times  # decoded once

    def run(conv: np.ndarray, nulls: np.ndarray) -> np.ndarray:
        rows = []
        for c_b, n_b in zip(conv, nulls, strict=True):  # a refit per resample: only for nonlinear models
            if c_b.sum() <= 0:
                rows.append(np.zeros(len(jr.channels)))
                continue
            jr_b = Journeys(touches, offsets, jr.channels, c_b, n_b, c_b * per_value,
                            times=times, conversion_times=conversion_times)
            fitted = type(model)(**_init_params(model))
            fitted.fit(jr_b)
            assert fitted.attribution_ is not None
            rows.append(fitted.attribution_["conversions"].to_numpy(dtype=np.float64))
        return np.vstack(rows)

    return run


def _init_params(model: AttributionModel) -> dict[str, Any]:
    if isinstance(model, MarkovAttribution):
        return {"order": model.order, "min_transitions": model.min_transitions}
    if isinstance(model, TimeDecay):
        return {"half_life": model.half_life}
    if isinstance(model, PositionBased):
        return {"first": model.first, "last": model.last}
    return {}


def _markov_sampler(order: int, jr: Journeys) -> Sampler | None:
    e = _edges(jr, order)
    s = e.n_states
    if s > DENSE_STATES:
        return None
    width = s + 3
    cell = e.src * width + e.dst
    n_cells = (s + 1) * width

    def incidence(kind: int) -> sp.csr_matrix:
        sel = e.kind == kind
        return sp.csr_matrix((np.ones(int(sel.sum())), (e.path[sel], cell[sel])), shape=(jr.n_paths, n_cells))

    way, to_conv, to_null = incidence(0), incidence(1), incidence(2)
    last = sp.csr_matrix((np.ones(len(e.last_path)), (e.last_path, e.last_state)), shape=(jr.n_paths, s))
    per_value = np.where(jr.conversions > 0, jr.value / np.where(jr.conversions > 0, jr.conversions, 1), 0.0)
    n_ch = len(jr.channels)
    keeps = [np.concatenate([~e.member[:, c], [True]]) for c in range(n_ch)]
    way_t, conv_t, null_t, last_t = way.T.tocsr(), to_conv.T.tocsr(), to_null.T.tocsr(), last.T.tocsr()

    def run(conv: np.ndarray, nulls: np.ndarray) -> np.ndarray:
        counts = np.asarray((way_t @ (conv + nulls).T).T + (conv_t @ conv.T).T + (null_t @ nulls.T).T)
        counts = counts.reshape(len(conv), s + 1, width)
        rows = counts.sum(axis=2, keepdims=True)
        probs = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
        q, r = probs[:, :, : s + 1], probs[:, :, s + 1]
        conv_end = np.asarray((last_t @ conv.T).T)
        value_end = np.asarray((last_t @ (conv * per_value).T).T)
        avg = np.divide(value_end, conv_end, out=np.zeros_like(conv_end), where=conv_end > 0)
        r_value = r * np.concatenate([avg, np.zeros((len(conv), 1))], axis=1)
        rhs = np.stack([r, r_value], axis=2)
        p_all = _absorb_batch(q, rhs, np.ones(s + 1, dtype=bool))
        re = np.zeros((len(conv), n_ch))
        for c in range(n_ch):  # a loop over channels; each a batched solve over resamples
            p_c = _absorb_batch(q, rhs, keeps[c])
            re[:, c] = 1 - np.divide(p_c[:, 0], p_all[:, 0], out=np.ones(len(conv)), where=p_all[:, 0] > 0)
        re = np.clip(re, 0, None)
        total = conv.sum(axis=1, keepdims=True)
        norm = re.sum(axis=1, keepdims=True)
        return np.asarray(np.divide(total * re, norm, out=np.zeros_like(re), where=norm > 0))

    return run


def _absorb_batch(q: np.ndarray, rhs: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Absorption (probability, value) from start for a batch of chains, shape (batch, 2)."""
    idx = np.flatnonzero(keep)
    qk = q[:, idx][:, :, idx]
    a = np.eye(len(idx))[None, :, :] - qk
    x = np.linalg.solve(a, rhs[:, idx, :])
    return np.asarray(x[:, -1, :])


def _shapley_sampler(model: ShapleyAttribution, jr: Journeys) -> Sampler:
    game = model.game(jr)  # coalitions and random orders once, for every resample
    per_value = np.where(jr.conversions > 0, jr.value / np.where(jr.conversions > 0, jr.conversions, 1), 0.0)

    def run(conv: np.ndarray, nulls: np.ndarray) -> np.ndarray:
        credit, _ = game.split(conv, nulls, conv * per_value)
        return credit

    return run
