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
are not drawn, and Poisson(1) counts (most cells: one journey) come from 16 random
bits and a table, refined by a uniform in the few buckets a step of the CDF falls in.
Aggregated path files (``Journeys.from_paths``) are resampled as they are.

- Heuristic models are linear in the path counts: credit = W @ counts with W the
  (channels × drawn cells) credit matrix.
- Markov models: transition counts are linear in the path counts too; the absorption
  probabilities of every resample with and without each channel are then one batched
  dense solve. Used up to ``DENSE_STATES`` states; larger chains refit per resample.
- Shapley: the conversions, journeys and value of each coalition are linear too.
- The linear statistics of every model of a draw group are rows of one stacked
  (statistics × drawn cells) CSC matrix: a chunk of resamples takes one sparse
  product, which reads the draws once, in order.
- Other models refit per resample.
- Large inputs use a second thread twice over, with the same draws: the next chunk is
  drawn while the models use the current one, and the two draw groups (models of the
  paths; touch-weight models) run side by side, each from its own generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._encode import both
from .._validation import check_fraction, check_positive_int
from ..journeys import Journeys
from .markov import DENSE_STATES, MarkovAttribution, _membership, _removals, _States
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

#: P(Poisson(1) <= k) for k = 0..19; P(k > 19) < 1e-18.
_POISSON_1_CDF = np.cumsum([np.exp(-1.0) / math.factorial(k) for k in range(20)])
#: Poisson(1) by inverse CDF from 16 random bits: _P1_TABLE[b] is the count for every u in
#: [b, b + 1) / 2**16, or -1 for the few buckets a CDF step falls inside, where a
#: uniform refines u (so the draw is the inverse CDF of a uniform in double precision).
#: One byte per entry (255: refine), so the table stays in cache (64 KB, not 512 KB).
_P1_EDGES = np.arange(1 << 16) / float(1 << 16)
_P1_TABLE = np.searchsorted(_POISSON_1_CDF, _P1_EDGES, side="right").astype(np.uint8)
_P1_UPPER = np.searchsorted(_POISSON_1_CDF, _P1_EDGES + 1.0 / (1 << 16), side="left")  # just below the next edge
_P1_TABLE[_P1_UPPER != _P1_TABLE] = 255
_P1_BLOCK = 1 << 16
CHUNK = 25


def _poisson_1(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill ``out`` (float64, C-contiguous) with Poisson(1) counts.

    The table lookup goes by blocks of ``_P1_BLOCK`` draws, so that its temporaries
    (the indices as intp, the bytes of the table) stay in cache: 27 -> 18 ms for 5.5M
    draws. The random bits are drawn at once, before the uniforms of the refined buckets."""
    n = out.size
    # the bits of rng.bytes(2 * n), without its three copies: that is how it draws them
    words = rng.integers(0, 1 << 32, size=(n - 1) // 2 + 1, dtype=np.uint32)
    bits = words.astype("<u4", copy=False).view(np.uint16)[:n]
    flat = out.reshape(-1)
    index = np.empty(min(_P1_BLOCK, n), dtype=np.intp)
    small = np.empty(min(_P1_BLOCK, n), dtype=np.uint8)
    refine = []
    for start in range(0, n, _P1_BLOCK):  # blocks of memory (not of journeys)
        k = min(_P1_BLOCK, n - start)
        index[:k] = bits[start : start + k]
        np.take(_P1_TABLE, index[:k], out=small[:k])
        flat[start : start + k] = small[:k]
        refine.append(np.flatnonzero(small[:k] == 255) + start)
    at = np.concatenate(refine) if refine else np.zeros(0, dtype=np.intp)
    if len(at):
        u = (bits[at] + rng.random(len(at))) / float(1 << 16)
        flat[at] = np.searchsorted(_POISSON_1_CDF, u, side="right")


class _Cells:
    """The (path, outcome) cells a resample draws: the converting and the null journeys
    of each path (cell p and n_paths + p). Cells with a count of 0 are not drawn; the
    drawn ones are ordered with the single journeys (Poisson(1)) first."""

    def __init__(self, jr: Journeys) -> None:
        self.n_paths = jr.n_paths
        counts = np.concatenate([jr.conversions, jr.nulls])
        ones, other = counts == 1, (counts > 0) & (counts != 1)
        self.index = np.concatenate([np.flatnonzero(ones), np.flatnonzero(other)])
        self.counts = counts[self.index]
        self.n_ones = int(ones.sum())
        self.n_drawn = len(self.index)

    def split(self, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(conversions, nulls) per path, each (chunk, n_paths), from drawn counts (cells, chunk)."""
        full = np.zeros((drawn.shape[1], 2 * self.n_paths))
        full[:, self.index] = drawn.T
        return full[:, : self.n_paths], full[:, self.n_paths :]
_Entries = tuple[np.ndarray, np.ndarray, np.ndarray]  # row, path, weight


@dataclass(frozen=True)
class _Linear:
    """A sampler in two steps: statistics linear in the drawn counts (``n_rows`` rows
    given by entries (row, path, weight) of the conversion cells and of the null cells,
    duplicates summed), then ``finish(stats)`` -> credit (chunk, channels) from the
    statistics of a chunk of resamples (n_rows, chunk). Every model's statistics come
    from one stacked sparse product per chunk (:class:`_Stack`)."""

    n_rows: int
    conv: _Entries
    nulls: _Entries
    finish: Callable[[np.ndarray], np.ndarray]


#: run(stats, drawn) -> credit (chunk, channels): a sampler fed by the stacked product.
_Run = Callable[[np.ndarray, np.ndarray], np.ndarray]


class _Stack:
    """The statistics of every linear sampler of a draw group as one (rows x drawn cells)
    matrix in CSC form (a column per cell), so that a chunk of resamples needs one sparse
    product: ``csc_matvecs`` reads the (cells, chunk) draws once, in order, and adds each
    into the few rows of its column (a small output that stays in cache), where a CSR
    matrix per model read rows of the draws at random once per nonzero, for each model.

    :meth:`add` keeps a sampler's entries of drawn cells with a nonzero weight, compactly
    (so the sampler's own arrays can go before the next one is built), and gives its
    rows after the previous sampler's; :meth:`matrix` sums the entries with the same
    (row, cell)."""

    def __init__(self, cells: _Cells) -> None:
        self.cells = cells
        self.index = np.int32 if 2 * cells.n_paths < 2**31 else np.int64  # scipy's choice: half the bytes
        self.at = np.full(2 * cells.n_paths, -1, dtype=self.index)  # the column of each cell, -1: not drawn
        self.at[cells.index] = np.arange(cells.n_drawn, dtype=self.index)
        self.n_rows = 0
        self.entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # row, column, weight

    def add(self, sampler: _Linear | Sampler) -> _Run:
        """Stack a linear sampler's statistics; run(stats, drawn) for either kind of sampler."""
        if not isinstance(sampler, _Linear):
            return lambda stats, drawn: sampler(drawn)
        start, n_paths = self.n_rows, self.cells.n_paths
        for (row, path, weight), column in ((sampler.conv, self.at[:n_paths]), (sampler.nulls, self.at[n_paths:])):
            col = column[path]
            keep = col >= 0
            keep &= weight != 0
            self.entries.append((np.compress(keep, row) + start, np.compress(keep, col), np.compress(keep, weight)))
        self.n_rows += sampler.n_rows
        rows, finish = slice(start, self.n_rows), sampler.finish  # not the sampler: its entries can go
        return lambda stats, drawn: finish(stats[rows])

    def matrix(self) -> sp.csc_matrix | None:
        """The stacked (rows x drawn cells) matrix, None when no sampler is linear."""
        if not self.n_rows:
            return None
        index = self.index if self.n_rows < 2**31 else np.int64
        rows, cols, weights = ([e[k] for e in self.entries] for k in range(3))
        self.entries = []
        return sp.csc_matrix(
            (np.concatenate(weights), (np.concatenate(rows, dtype=index), np.concatenate(cols, dtype=index))),
            shape=(self.n_rows, self.cells.n_drawn),
        )


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

    def _cell_draws(self, cells: _Cells) -> Iterator[np.ndarray]:
        """Poisson counts of the drawn cells for chunks of resamples, shape (cells, chunk).

        Two buffers take turns: a chunk is overwritten two chunks later, so a consumer
        must be done with it by then (the samplers are: they return new arrays; see
        :func:`_ahead` for drawing the next chunk on a second thread)."""
        rng = np.random.default_rng(self.seed)
        n_ones, lam = cells.n_ones, cells.counts[cells.n_ones :]
        buffers = [np.empty((cells.n_drawn, min(CHUNK, self.n_resamples))) for _ in range(2)]
        done = 0
        while done < self.n_resamples:
            size = min(CHUNK, self.n_resamples - done)
            buffers.reverse()
            out = buffers[0] if size == buffers[0].shape[1] else np.empty((cells.n_drawn, size))
            _poisson_1(rng, out[:n_ones])
            out[n_ones:] = rng.poisson(lam[:, None], size=(len(lam), size))
            yield out
            done += size

    def _draws(self, journeys: Journeys) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(conversions, nulls) per path for chunks of resamples, shape (chunk, paths)."""
        cells = _Cells(journeys)
        for drawn in self._cell_draws(cells):
            yield cells.split(drawn)

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
        ``paths``: :func:`merged_paths` of the journeys when the caller has it already.
        """
        out: list[np.ndarray | None] = [None] * len(models)
        by_paths = [i for i, m in enumerate(models) if type(m) in PATH_ONLY]
        rest = [i for i in range(len(models)) if i not in by_paths]
        rest_jr = journeys
        converting = journeys.conversions > 0
        if rest and all(isinstance(models[i], _TouchWeights) for i in rest) and converting.any():
            rest_jr = journeys.take(converting)  # touch weights credit conversions only: nulls never count
        path_jr = journeys if not by_paths else paths if paths is not None else merged_paths(journeys)

        def group(members: list[int], jr: Journeys) -> None:
            """The samples of the models ``members`` (indices), from draws of ``jr``'s cells."""
            if not members:
                return
            cells = _Cells(jr)
            stack = _Stack(cells)
            runs = [stack.add(_sampler(models[i], jr, cells)) for i in members]
            by_cell = stack.matrix()
            parts: list[list[np.ndarray]] = [[] for _ in members]
            for drawn in _ahead(self._cell_draws(cells), cells.n_drawn * self.n_resamples >= _AHEAD_MIN_DRAWS):
                stats = np.asarray(by_cell @ drawn) if by_cell is not None else drawn  # all statistics at once
                for part, run in zip(parts, runs, strict=True):
                    part.append(run(stats, drawn))
            for i, part in zip(members, parts, strict=True):
                out[i] = np.vstack(part)

        # the two groups draw from their own generators (each seeded with the seed): on two threads for large inputs
        large = min(path_jr.n_paths, rest_jr.n_paths) * self.n_resamples >= _AHEAD_MIN_DRAWS
        both(lambda: group(by_paths, path_jr), lambda: group(rest, rest_jr), bool(by_paths and rest) and large)
        return [o for o in out if o is not None]

    def bounds(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) percentiles of samples at this level."""
        alpha = (1 - self.level) / 2
        low, high = np.nanquantile(samples, [alpha, 1 - alpha], axis=0)
        return low, high

    def intervals(self, model: AttributionModel, journeys: Journeys) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of each channel's attributed conversions."""
        return self.bounds(self.samples(model, journeys))


#: Draws (cells x resamples) from which the next chunk is drawn on a second thread.
_AHEAD_MIN_DRAWS = 1 << 22


def _ahead(chunks: Iterator[np.ndarray], threads: bool) -> Iterator[np.ndarray]:
    """The chunks of :meth:`Bootstrap._cell_draws`, the next one drawn on a second thread
    while the caller uses the current one (with ``threads``; else as they come). The
    report's 7 models at 10M events: 1.29-1.46 s instead of 1.49-1.67 s (the draws take
    about a third, the stacked products and the models' finishing steps most of the rest;
    the random numbers release the GIL).

    The draws are the same (one generator, on one thread, in order); the generator's two
    buffers take turns, so it may draw chunk k + 1 only once the caller is done with
    chunk k - 1: a semaphore of two counts the buffers the caller has handed back."""
    if not threads:
        yield from chunks
        return
    import queue
    import threading

    free = threading.Semaphore(2)
    done = threading.Event()  # the caller stopped early: the drawing thread ends
    ready: queue.Queue[tuple[np.ndarray | None, BaseException | None]] = queue.Queue()

    def draw() -> None:
        try:
            while True:
                free.acquire()
                if done.is_set():
                    return
                chunk = next(chunks, None)
                ready.put((chunk, None))
                if chunk is None:
                    return
        except BaseException as exc:  # handed to the caller
            ready.put((None, exc))

    worker = threading.Thread(target=draw, name="journeyflow-draws", daemon=True)
    worker.start()
    try:
        while True:
            chunk, error = ready.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
            free.release()  # the caller is done with this chunk: its buffer may be drawn into
    finally:
        done.set()
        free.release()
        worker.join()


def merged_paths(journeys: Journeys) -> Journeys:
    """The journeys with identical paths merged (:meth:`Journeys.distinct`) when they are
    single journeys (conversions + nulls <= 1 each, as from :func:`build_journeys`), where
    many share a path; aggregated paths (e.g. from ``from_paths``) are taken as they are.
    Models of the paths give the same credit either way; merging only saves work."""
    single = journeys.n_paths > 0 and float(np.max(journeys.conversions + journeys.nulls)) <= 1
    return journeys.distinct()[0] if single else journeys


Sampler = Callable[[np.ndarray], np.ndarray]


#: Models whose credit depends on the paths and their counts only (exact types: a
#: subclass may use more, e.g. touch times).
PATH_ONLY = (FirstTouch, LastTouch, Linear, PositionBased, MarkovAttribution, ShapleyAttribution)


def _sampler(model: AttributionModel, jr: Journeys, cells: _Cells) -> _Linear | Sampler:
    """How a model's credit per resample comes from the drawn counts of a chunk of
    resamples (cells, chunk): through statistics linear in the counts (:class:`_Linear`),
    or a function of the drawn counts -> credit (chunk, channels) (refits)."""
    if isinstance(model, MarkovAttribution):
        markov = _markov_sampler(model.order, jr)
        if markov is not None:
            return markov
    if isinstance(model, _TouchWeights):
        # linear in the counts: resampling only changes how many journeys each path stands for
        return _linear_sampler(model, jr)
    if isinstance(model, ShapleyAttribution):
        return _shapley_sampler(model, jr)
    run = _refit_sampler(model, jr)
    return lambda drawn: run(*cells.split(drawn))


def _nothing() -> _Entries:
    """No entries (for :class:`_Linear`)."""
    return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), np.zeros(0)


def _transposed(stats: np.ndarray) -> np.ndarray:
    """Credit per resample and channel from the credit statistics (channels, chunk)."""
    return np.transpose(stats)


def _linear_sampler(model: _TouchWeights, jr: Journeys) -> _Linear:
    touch = (jr.touches.astype(np.intp), jr.path_index, model._weights(jr))
    return _Linear(len(jr.channels), touch, _nothing(), _transposed)  # null journeys get no credit


def _refit_samples(boot: Bootstrap, model: AttributionModel, jr: Journeys) -> np.ndarray:
    """Per-resample refits (reference for the tests; the fallback for other models)."""
    sampler = _refit_sampler(model, jr)
    return np.vstack([sampler(conv, nulls) for conv, nulls in boot._draws(jr)])


def _per_value(jr: Journeys) -> np.ndarray:
    return np.asarray(np.divide(jr.value, jr.conversions, out=np.zeros(jr.n_paths), where=jr.conversions > 0))


def _refit_sampler(model: AttributionModel, jr: Journeys) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    per_value = _per_value(jr)
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


def _markov_sampler(order: int, jr: Journeys) -> _Linear | None:
    """All resamples' chains from one sparse product (transition counts are linear in
    the path counts), then one batched dense solve per chunk for every removal."""
    states = _States(jr, order)
    s = len(states)
    if s + 1 > DENSE_STATES:
        return None
    width = s + 3
    n_cells = (s + 1) * width
    w = states.windows(jr.touches, jr.offsets)
    pidx = jr.path_index
    pairs = np.flatnonzero(w.step)
    ends, firsts = w.code[w.last], w.code[w.first]
    rows = np.concatenate([w.code[pairs] * width + w.code[pairs + 1], s * width + firsts])
    paths = np.concatenate([pidx[pairs], w.paths])
    ones = np.ones(len(rows) + len(ends) + jr.n_paths)
    every = np.arange(jr.n_paths)
    # the transition counts, and one last row: the conversions (every converting journey)
    conv = (np.concatenate([rows, ends * width + s + 1, np.full(jr.n_paths, n_cells)]),
            np.concatenate([paths, w.paths, every]), ones)
    nulls = (np.concatenate([rows, ends * width + s + 2]), np.concatenate([paths, w.paths]), ones[: -jr.n_paths])
    keeps = _removals(_membership(states.keys, order, len(jr.channels)))

    def finish(stats: np.ndarray) -> np.ndarray:
        counts = stats[:n_cells].T.reshape(stats.shape[1], s + 1, width)
        rows = counts.sum(axis=2, keepdims=True)
        probs = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
        q, r = probs[:, :, : s + 1], probs[:, :, s + 1]
        # every resample with every removal (a removed state's row zeroed): one batched solve
        a = np.eye(s + 1) - q[:, None, :, :] * keeps[None, :, :, None]
        x = np.linalg.solve(a, (r[:, None, :] * keeps[None, :, :])[..., None])[:, :, -1, 0]  # (chunk, 1 + ch)
        p_all = x[:, :1]
        re = 1 - np.divide(x[:, 1:], p_all, out=np.ones_like(x[:, 1:]), where=p_all > 0)
        re = np.clip(re, 0, None)
        total = stats[n_cells][:, None]
        norm = re.sum(axis=1, keepdims=True)
        return np.asarray(np.divide(total * re, norm, out=np.zeros_like(re), where=norm > 0))

    return _Linear(n_cells + 1, conv, nulls, finish)


def _shapley_sampler(model: ShapleyAttribution, jr: Journeys) -> _Linear:
    game = model.game(jr)  # coalitions and random orders once, for every resample
    n_coal = game.to_coal.shape[1]
    paths = np.arange(jr.n_paths)
    coal = game.path_coal
    # 3 rows per coalition: its conversions, journeys and value
    conv = (np.concatenate([coal, coal + n_coal, coal + 2 * n_coal]), np.tile(paths, 3),
            np.concatenate([np.ones(2 * jr.n_paths), _per_value(jr)]))
    nulls = (coal + n_coal, paths, np.ones(jr.n_paths))

    def finish(stats: np.ndarray) -> np.ndarray:
        c, t, v = np.split(stats.T, 3, axis=1)
        credit, _ = game.split_coalitions(c, t, v)
        return credit

    return _Linear(3 * n_coal, conv, nulls, finish)
