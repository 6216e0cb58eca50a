"""The attribution model interface and the heuristic models.

Every model takes its parameters in ``__init__``, learns from a
:class:`~journeyflow.Journeys` in ``fit`` and exposes ``attribution_``: a table
with one row per channel (channel, conversions, value, share) whose conversions
sum to the journeys' total conversions and whose value sums to their total value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import check_duration, check_fitted, check_fraction, describe
from ..exceptions import DataError, InputTypeError, OptionError
from ..journeys import Journeys

#: Shares of a path's conversions by position, per path: (to every touch, plus to the
#: first touch, plus to the last touch); None for no share.
Shares = tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]

__all__ = [
    "AttributionModel",
    "FirstTouch",
    "LastTouch",
    "Linear",
    "PositionBased",
    "TimeDecay",
]


class AttributionModel:
    """Base class: ``fit(journeys) -> self`` fills ``attribution_``."""

    name = "model"
    attribution_: pd.DataFrame | None = None

    @property
    def label(self) -> str:
        """The model's name with its parameters, as written in the ``model`` column."""
        return self.name

    def fit(self, journeys: Journeys) -> AttributionModel:
        if not isinstance(journeys, Journeys):
            raise InputTypeError(
                f"fit() takes a jf.Journeys (from jf.build_journeys or jf.Journeys.from_paths); got {describe(journeys)}."
            )
        return self._set(journeys, self._credit(journeys))

    def _set(self, journeys: Journeys, credit: tuple[np.ndarray, np.ndarray]) -> AttributionModel:
        """Fill the fitted attributes from the (conversions, value) per channel."""
        self.attribution_ = _table(journeys.channels, *credit)
        self.n_journeys_ = journeys.n_paths
        self.total_conversions_ = journeys.total_conversions
        return self

    def _credit(self, jr: Journeys) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        fitted = ""
        if self.attribution_ is not None:
            fitted = (
                f" fitted on {self.n_journeys_:,} journeys, {len(self.attribution_)} channels, "
                f"{self.total_conversions_:,.0f} conversions"
            )
        return f"{type(self).__name__}({self._params()}){fitted}"

    def _params(self) -> str:
        return ""


def _table(channels: pd.Index, conv: np.ndarray, value: np.ndarray) -> pd.DataFrame:
    total = conv.sum()
    return pd.DataFrame(
        {
            "channel": np.asarray(channels, dtype=object),
            "conversions": conv.astype(np.float64),
            "value": value.astype(np.float64),
            "share": conv / total if total > 0 else np.zeros(len(conv)),
        }
    )


class _TouchWeights(AttributionModel):
    """Models that split each path's credit over its touches by a weight per touch."""

    def _weights(self, jr: Journeys) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _credit(self, jr: Journeys) -> tuple[np.ndarray, np.ndarray]:
        if jr.n_touches == 0:
            return np.zeros(len(jr.channels)), np.zeros(len(jr.channels))
        _check_touched(jr)
        return self._split(jr)

    def _shares(self, jr: Journeys) -> Shares | None:
        """The model's shares by position (``position_credit``), or None when the
        weight of a touch depends on more than its position (``_weights``)."""
        return None

    def _split(self, jr: Journeys) -> tuple[np.ndarray, np.ndarray]:
        """(conversions, value) per channel: by position, else from the weight of every touch."""
        shares = self._shares(jr)
        if shares is not None:
            return position_credit(jr, [shares])[0]
        w = self._weights(jr)
        pidx = jr.path_index
        codes = jr.touches.astype(np.intp)
        conv = np.bincount(codes, weights=w * jr.conversions[pidx], minlength=len(jr.channels))
        value = np.bincount(codes, weights=w * jr.value[pidx], minlength=len(jr.channels))
        return conv, value


def _check_touched(jr: Journeys) -> None:
    empty = (jr.lengths == 0) & (jr.conversions > 0)
    if empty.any():
        raise DataError(
            f"{int(empty.sum())} converting journeys have no touch (e.g. path {int(np.flatnonzero(empty)[0])}); "
            "their conversions could not be credited to any channel."
        )


#: Paths per block in ``position_credit``, in units of ``BLOCK``.
_CREDIT_BLOCKS = 2


def position_credit(jr: Journeys, specs: list[Shares]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(conversions, value) per channel for each model in ``specs``, each giving a share
    ``every[p]`` of path p's conversions to each of its touches, plus ``first[p]`` to its
    first touch and ``last[p]`` to its last.

    Per block of paths, the models' amounts per path (one column per model and
    amount) are summed into channels by three sparse products: the (channels x
    paths) matrix of the block's touches, whose CSC structure is the journeys' own
    (indices = touch codes, pointers = offsets), and those of the first and last
    touches. One pass over the touches serves every model."""
    n_ch = len(jr.channels)
    lengths, offsets, touches = jr.lengths, jr.offsets, jr.touches  # each access may decode: once
    amounts = (jr.conversions, jr.value)
    ends: list[list[tuple[int, np.ndarray]]] = [[], [], []]  # per end: (model, its shares)
    for i, spec in enumerate(specs):
        for end, share in enumerate(spec):
            if share is not None:
                ends[end].append((i, share))
    size = BLOCK * _CREDIT_BLOCKS
    totals = [np.zeros((n_ch, 2 * len(cols))) for cols in ends]
    for a in range(0, jr.n_paths, size):  # a loop over blocks of paths
        b = min(a + size, jr.n_paths)
        lo, hi = int(offsets[a]), int(offsets[b])
        filled = np.flatnonzero(lengths[a:b] > 0)  # paths with touches
        one_each = np.arange(len(filled) + 1)
        at: tuple[tuple[np.ndarray, np.ndarray, Any], ...] = (  # (codes, CSC pointers, rows of the paths)
            (touches[lo:hi], offsets[a : b + 1] - lo, slice(a, b)),  # every touch
            (touches[offsets[a:b][filled]], one_each, filled + a),  # first touches
            (touches[offsets[a + 1 : b + 1][filled] - 1], one_each, filled + a),  # last touches
        )
        for (codes, pointers, rows), cols, total in zip(at, ends, totals, strict=True):
            if cols:
                y = np.empty((len(pointers) - 1, 2 * len(cols)))
                here = [amount[rows] for amount in amounts]
                for k, (_, share) in enumerate(cols):  # a loop over models
                    part = share[rows]
                    for m, amount in enumerate(here):
                        np.multiply(part, amount, out=y[:, 2 * k + m])
                matrix = sp.csc_matrix(
                    (np.ones(len(codes)), codes.astype(np.int32), pointers.astype(np.int32)),
                    shape=(n_ch, len(pointers) - 1),
                )
                total += matrix @ y
    out = np.zeros((len(specs), 2, n_ch))
    for cols, total in zip(ends, totals, strict=True):
        for k, (i, _) in enumerate(cols):
            out[i] += total[:, 2 * k : 2 * k + 2].T
    return [(o[0], o[1]) for o in out]


def fit_by_position(models: list[AttributionModel], jr: Journeys) -> list[AttributionModel]:
    """Fit the position-based heuristics among ``models`` on ``jr`` together, with one
    pass over the touches for all of them; returns the models it fitted."""
    if jr.n_touches == 0:
        return []
    joint = [(m, m._shares(jr)) for m in models if isinstance(m, _TouchWeights)]
    specs = [(m, shares) for m, shares in joint if shares is not None]
    if len(specs) < 2:
        return []
    _check_touched(jr)
    for (model, _), credit in zip(specs, position_credit(jr, [shares for _, shares in specs]), strict=True):
        model._set(jr, credit)
    return [m for m, _ in specs]


#: Paths per block where a model works block by block, so that its temporary arrays
#: per touch stay small (a few MB) whatever the number of journeys.
BLOCK = 1 << 13


def path_blocks(jr: Journeys) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """(paths, their touches, their offsets from 0) for consecutive runs of ``BLOCK`` paths."""
    touches, offsets = jr.touches, jr.offsets  # each access may decode: once
    for a in range(0, jr.n_paths, BLOCK):  # a loop over blocks of paths
        b = min(a + BLOCK, jr.n_paths)
        lo, hi = int(offsets[a]), int(offsets[b])
        yield slice(a, b), touches[lo:hi], offsets[a : b + 1] - lo


def _position(jr: Journeys) -> tuple[np.ndarray, np.ndarray]:
    pidx = jr.path_index
    pos = np.arange(jr.n_touches, dtype=np.int64) - jr.offsets[:-1][pidx]
    return pos, jr.lengths[pidx]


class FirstTouch(_TouchWeights):
    """All credit to the first touch of each path.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> jr = jf.Journeys.from_paths(pd.DataFrame({"path": ["a > b"], "total_conversions": [2], "total_null": [0]}))
    >>> jf.FirstTouch().fit(jr).attribution_["conversions"].tolist()
    [2.0, 0.0]
    """

    name = "first_touch"

    def _weights(self, jr: Journeys) -> np.ndarray:
        pos, _ = _position(jr)
        return np.asarray(pos == 0, dtype=np.float64)

    def _shares(self, jr: Journeys) -> Shares:
        return None, np.ones(jr.n_paths), None


class LastTouch(_TouchWeights):
    """All credit to the last touch of each path.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> jr = jf.Journeys.from_paths(pd.DataFrame({"path": ["a > b"], "total_conversions": [2], "total_null": [0]}))
    >>> jf.LastTouch().fit(jr).attribution_["conversions"].tolist()
    [0.0, 2.0]
    """

    name = "last_touch"

    def _weights(self, jr: Journeys) -> np.ndarray:
        pos, length = _position(jr)
        return np.asarray(pos == length - 1, dtype=np.float64)

    def _shares(self, jr: Journeys) -> Shares:
        return None, None, np.ones(jr.n_paths)


class Linear(_TouchWeights):
    """Equal credit to every touch of a path.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> jr = jf.Journeys.from_paths(pd.DataFrame({"path": ["a > b > a"], "total_conversions": [3], "total_null": [0]}))
    >>> jf.Linear().fit(jr).attribution_["conversions"].tolist()
    [2.0, 1.0]
    """

    name = "linear"

    def _weights(self, jr: Journeys) -> np.ndarray:
        _, length = _position(jr)
        return 1.0 / length

    def _shares(self, jr: Journeys) -> Shares:
        return 1.0 / np.maximum(jr.lengths, 1), None, None


class PositionBased(_TouchWeights):
    """``first`` to the first touch, ``last`` to the last, the rest shared by the middle.

    One touch gets everything; two touches split ``first : last`` normalised
    (50/50 by default).

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> jr = jf.Journeys.from_paths(pd.DataFrame({"path": ["a > b > c > d"], "total_conversions": [10],
    ...                                            "total_null": [0]}))
    >>> jf.PositionBased().fit(jr).attribution_["conversions"].round(6).tolist()
    [4.0, 1.0, 1.0, 4.0]
    """

    name = "position_based"

    def __init__(self, first: float = 0.4, last: float = 0.4) -> None:
        self.first = check_fraction("first", first)
        self.last = check_fraction("last", last)
        if self.first + self.last > 1:
            raise OptionError(f"first + last must be at most 1; got {self.first} + {self.last}.")

    @property
    def label(self) -> str:
        return self.name if (self.first, self.last) == (0.4, 0.4) else f"position_based({self._params()})"

    def _params(self) -> str:
        return f"first={self.first}, last={self.last}"

    def _weights(self, jr: Journeys) -> np.ndarray:
        pos, length = _position(jr)
        f, la = self.first, self.last
        two_first = f / (f + la) if f + la > 0 else 0.5
        middle = (1 - f - la) / np.maximum(length - 2, 1)
        w = np.where(pos == 0, f, np.where(pos == length - 1, la, middle))
        w = np.where(length == 2, np.where(pos == 0, two_first, 1 - two_first), w)
        return np.where(length == 1, 1.0, w)

    def _shares(self, jr: Journeys) -> Shares:
        f, la = self.first, self.last
        two_first = f / (f + la) if f + la > 0 else 0.5
        length = jr.lengths
        middle = np.where(length > 2, (1 - f - la) / np.maximum(length - 2, 1), 0.0)
        # the middle share goes to every touch; the ends get theirs minus what that gave them
        first = np.select([length == 1, length == 2], [1.0, two_first], f - middle)
        last = np.select([length == 1, length == 2], [0.0, 1 - two_first], la - middle)
        return middle, first, last


class TimeDecay(_TouchWeights):
    """Credit ∝ 2^(−age / half_life), age = time from the touch to the conversion.

    Needs touch times and conversion times (journeys from :func:`journeyflow.build_journeys`).
    Null paths get no credit, so their weights do not matter.

    Examples
    --------
    >>> import numpy as np, journeyflow as jf
    >>> day = 86_400 * 10**9
    >>> jr = jf.Journeys([0, 1], [0, 2], ["a", "b"], [1.0], times=[0, 7 * day], conversion_times=[7 * day])
    >>> jf.TimeDecay(half_life="7D").fit(jr).attribution_["conversions"].round(4).tolist()
    [0.3333, 0.6667]
    """

    name = "time_decay"

    def __init__(self, half_life: Any = "7D") -> None:
        span = check_duration("half_life", half_life)
        assert span is not None
        self.half_life = span

    @property
    def label(self) -> str:
        return self.name if self.half_life == pd.Timedelta("7D") else f"time_decay({self._params()})"

    def _params(self) -> str:
        return f"half_life={str(self.half_life)!r}"

    def _credit(self, jr: Journeys) -> tuple[np.ndarray, np.ndarray]:
        # only journeys with conversions or value get credit: the others' touches are not
        # weighed (at 10M events 218k of 1.1M journeys: 0.18-0.25 s -> 0.09-0.10 s); their
        # amounts are zeros, so the sums per channel are the same
        keep = (jr.conversions > 0) | (jr.value != 0)
        return super()._credit(jr if keep.all() else jr.take(keep))

    def _weights(self, jr: Journeys) -> np.ndarray:
        times, conversion_times = jr.times, jr.conversion_times  # each access decodes
        if times is None or conversion_times is None:
            raise DataError(
                "time_decay needs touch times and conversion times; build the journeys with "
                "jf.build_journeys(events) (paths read with from_paths have no times)."
            )
        pidx = jr.path_index
        conv_t = conversion_times[pidx]
        converted = jr.conversions[pidx] > 0
        age = np.where(converted, (conv_t - times).astype(np.float64), 0.0)
        raw = np.exp2(-np.clip(age, 0, None) / float(self.half_life.value))
        total = np.bincount(pidx, weights=raw, minlength=jr.n_paths)
        return np.asarray(raw / total[pidx], dtype=np.float64)


def check_fitted_model(model: AttributionModel) -> pd.DataFrame:
    check_fitted(model, "attribution_")
    assert model.attribution_ is not None
    return model.attribution_
