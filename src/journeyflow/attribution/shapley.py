"""Shapley attribution in the conversion-rate game, exact or sampled per coalition.

The game and the split are described in :class:`ShapleyAttribution`. Two ways to
compute the split of every coalition present in the data:

The split of a coalition S needs the value of the subsets of S only, so
:class:`CoalitionGame` computes it per coalition present, at a cost of
Σ_S |S| 2^|S|, whatever the number of channels: coalitions of at most
``max_channels`` channels exactly from all their subsets, larger ones from random
orders of their channels (the permutation estimator), with a standard error.
(The tests check the exact path against an independent all-coalitions Möbius
transform and a brute force over permutations.)

Coalitions are looked up by a 64-bit key: the bit mask of their channels when
there are at most 62 channels, else the XOR of a fixed random 64-bit number per
channel (Zobrist hashing; distinct coalitions of the data are checked to have
distinct keys, and an absent subset takes a present coalition's value only when
their 64-bit keys collide, with probability about (subsets looked up) × (coalitions)
/ 2⁶⁴).
"""

from __future__ import annotations

import itertools
import warnings
from math import factorial
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_option, check_positive_int, describe
from ..exceptions import DataError, DataQualityWarning, InputTypeError
from ..journeys import Journeys
from .models import AttributionModel

__all__ = ["CoalitionGame", "ShapleyAttribution"]

METHODS = ("auto", "exact", "permutation")
_CHUNK = 1 << 22  # values per intermediate block (32 MB of float64)


class ShapleyAttribution(AttributionModel):
    """Shapley values of channels in the conversion-rate game (data-driven attribution).

    Players are channels. The value of a coalition S is the conversion rate of the
    journeys whose set of distinct channels is exactly S:
    ``v(S) = conversions(S) / (conversions(S) + nulls(S))``, so non-converting
    journeys count. Coalitions never seen in the data are worth 0, and v(∅) = 0.

    The conversions (and value) of the journeys with channel set S are split over
    the channels of S in proportion to their Shapley values in the game restricted
    to the subsets of S:
    ``φ_c(S) = Σ_{T ⊆ S − {c}} |T|! (|S|-|T|-1)! / |S|! · (v(T ∪ {c}) − v(T))``.
    Negative values (a channel whose presence lowers the rate) are clipped to 0
    before splitting; when all are 0 the split is equal. Attributed conversions
    therefore sum to the total.

    The split of S needs only the subsets of S, so the cost follows the largest
    coalitions present (most distinct channels in one journey), not the number of
    channels: each coalition of at most ``max_channels`` channels is computed
    exactly from its 2^|S| subsets (O(Σ_S |S| 2^|S|)), and larger coalitions are
    estimated by the permutation estimator:
    the average, over ``n_permutations`` random orders of S's channels, of each
    channel's marginal contribution ``v(before ∪ {c}) − v(before)``. Every order's
    contributions sum to v(S), so the estimate is efficient in each sample. The
    estimate is unbiased before clipping; where a channel's exact value in a
    coalition is near 0, clipping the noisy estimate at 0 biases its credit up
    slightly, which ``sampling_se_`` does not show: raise ``n_permutations`` (the
    bias shrinks with the noise) or ``max_channels``.

    Parameters
    ----------
    max_channels : int, default 16
        Largest coalition computed exactly (2^|S| subsets each).
    method : {"auto", "exact", "permutation"}, default "auto"
        "exact" refuses coalitions larger than ``max_channels``; "permutation"
        samples every coalition (for checks); "auto" is exact where it can be and
        samples the rest, with a warning that says how many conversions that covers.
    n_permutations : int, default 1000
        Random orders per sampled coalition.
    seed : int, optional
        Seed of the permutations (results are reproducible with the same seed).

    Attributes
    ----------
    attribution_ : DataFrame
        channel, conversions, value, share.
    sampling_se_ : DataFrame or None
        channel, conversions_se, value_se: the standard error of the attributed
        conversions and value from sampling (batch means over 10 batches of
        permutations); None when everything was exact.
    n_sampled_coalitions_ : int
        Coalitions estimated by sampling (0: all exact).

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> paths = pd.DataFrame({"path": ["a", "b", "a > b"], "total_conversions": [2, 1, 5],
    ...                       "total_null": [8, 9, 5]})
    >>> jf.ShapleyAttribution().fit(jf.Journeys.from_paths(paths)).attribution_["conversions"].round(6).tolist()
    [5.0, 3.0]
    """

    name = "shapley"
    sampling_se_: Any = None
    n_sampled_coalitions_: int = 0

    def __init__(
        self,
        max_channels: int = 16,
        *,
        method: str = "auto",
        n_permutations: int = 1000,
        seed: int | None = None,
    ) -> None:
        self.max_channels = check_positive_int("max_channels", max_channels)
        self.method = check_option("method", method, METHODS)
        self.n_permutations = check_positive_int("n_permutations", n_permutations)
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise InputTypeError(f"seed must be an int or None; got {describe(seed)}.")
        self.seed = seed

    def _params(self) -> str:
        parts = [] if self.max_channels == 16 else [f"max_channels={self.max_channels}"]
        if self.method != "auto":
            parts.append(f"method={self.method!r}")
        return ", ".join(parts)

    def game(self, jr: Journeys) -> CoalitionGame:
        """The coalitions of ``jr`` and how each is computed (raises for method="exact"
        when a coalition has more than ``max_channels`` channels)."""
        game = CoalitionGame(jr, self.max_channels, self.method, self.n_permutations, self.seed)
        lost = float(jr.conversions[game.empty[game.path_coal]].sum()) if game.n_coalitions else 0.0
        if lost > 0:
            raise DataError(
                f"{lost:,.0f} conversions are on journeys without a touch: no channel can get their credit. "
                "Build the journeys with drop_empty=True (the default) or missing='label'."
            )
        if self.method == "exact" and game.largest > self.max_channels:
            raise DataError(
                f"Exact Shapley attribution of a journey with {game.largest} distinct channels needs "
                f"2^{game.largest} subsets; the limit is max_channels={self.max_channels}. Use "
                "method='permutation' (or 'auto') to estimate the largest coalitions by sampling, raise "
                "max_channels, or merge rare channels (e.g. into 'Other')."
            )
        return game

    def fit(self, journeys: Journeys) -> ShapleyAttribution:
        super().fit(journeys)
        return self

    def _credit(self, jr: Journeys) -> tuple[np.ndarray, np.ndarray]:
        game = self.game(jr)
        self.n_sampled_coalitions_ = game.n_sampled
        if game.n_sampled and self.method == "auto":
            share = game.sampled_conversions / max(jr.total_conversions, 1e-300)
            warnings.warn(
                f"{game.n_sampled:,} coalitions with more than max_channels={self.max_channels} channels "
                f"({share:.1%} of conversions) were estimated from {self.n_permutations:,} random orders each; "
                "see sampling_se_ for the sampling error.",
                DataQualityWarning,
                stacklevel=4,
            )
        conv, value = game.split(jr.conversions[None, :], jr.nulls[None, :], jr.value[None, :])
        self.sampling_se_ = None
        if game.n_sampled:
            import pandas as pd

            se_c, se_v = game.sampling_se(jr.conversions, jr.nulls, jr.value)
            self.sampling_se_ = pd.DataFrame(
                {"channel": np.asarray(jr.channels, dtype=object), "conversions_se": se_c, "value_se": se_v}
            )
        return conv[0], value[0]


class CoalitionGame:
    """The coalitions of a set of journeys, ready to split any counts over them.

    ``split(conv, nulls, value)`` takes per-path counts for a batch of resamples,
    shape (batch, n_paths), and returns per-channel credit (batch, n_channels):
    the conversions and value of each coalition split by the Shapley values of its
    channels (see :class:`ShapleyAttribution`). The structure (which subset is which
    coalition, the random orders) is computed once and reused across the batch.
    """

    def __init__(self, jr: Journeys, max_exact: int, method: str, n_permutations: int, seed: int | None) -> None:
        n_ch = len(jr.channels)
        touches = jr.touches.astype(np.int64)
        pidx = jr.path_index
        # distinct (path, channel) pairs -> each path's channel set
        pair = _sorted_unique(pidx * n_ch + touches)
        p_of, c_of = pair // n_ch, pair % n_ch
        self.n_channels = n_ch
        if n_ch <= 62:
            ch_key = np.left_shift(np.int64(1), np.arange(n_ch, dtype=np.int64))
        else:
            rng = np.random.default_rng(0x5EED5)  # fixed: keys must not depend on the caller's seed
            ch_key = rng.integers(1, np.iinfo(np.int64).max, n_ch, dtype=np.int64)
        self._xor = n_ch > 62
        path_key = np.zeros(jr.n_paths, dtype=np.int64)
        np.bitwise_xor.at(path_key, p_of, ch_key[c_of])  # XOR = OR for distinct bits
        keys, path_coal = _unique_inverse(path_key)
        self.path_coal = path_coal.astype(np.int64)
        n_coal = len(keys)
        # members of each coalition, from one representative path each
        rep = np.zeros(n_coal, dtype=np.int64)
        rep[self.path_coal] = np.arange(jr.n_paths)
        size = np.bincount(p_of, minlength=jr.n_paths)[rep]
        rep_pairs = np.isin(p_of, rep)
        members_flat = c_of[rep_pairs]  # pairs sorted by path: members in channel order
        coal_of_pair = self.path_coal[p_of[rep_pairs]]
        order = np.argsort(coal_of_pair, kind="stable")
        members_flat, coal_sorted = members_flat[order], coal_of_pair[order]
        self.sorted_keys, self.key_order = keys, np.arange(n_coal)
        if self._xor and len(np.unique(keys)) != n_coal:  # pragma: no cover - 2^-64 per pair
            raise DataError("Two distinct channel sets share a 64-bit key; please report this.")
        self.ch_key = ch_key
        self.largest = int(size.max()) if n_coal else 0
        self.n_coalitions = n_coal
        self.empty = keys == 0  # journeys without a touch: worth nothing, credited to nobody
        starts = np.concatenate([[0], np.cumsum(np.bincount(coal_sorted, minlength=n_coal))])
        self.groups: list[dict[str, Any]] = []
        self.n_sampled = 0
        self.sampled_conversions = 0.0
        rng_perm = np.random.default_rng(seed)
        sampled_mask = np.zeros(n_coal, dtype=bool)
        for s in np.unique(size[size > 0]):  # a loop over coalition sizes
            ids = np.flatnonzero(size == s)
            members = members_flat[starts[ids][:, None] + np.arange(s)[None, :]]
            exact = method != "permutation" and (s <= max_exact or method == "exact")
            group: dict[str, Any] = {"size": int(s), "ids": ids, "members": members, "exact": exact}
            if exact:
                group["subsets"] = self._lookup(self._subset_keys(members))
            else:
                group["orders"] = [
                    self._orders(members[chunk], n_permutations, rng_perm)
                    for chunk in _chunks(len(ids), max(1, _CHUNK // (n_permutations * int(s))))
                ]
                sampled_mask[ids] = True
            self.groups.append(group)
        self.n_sampled = int(sampled_mask.sum())
        self.sampled_conversions = float(jr.conversions[sampled_mask[self.path_coal]].sum())
        self.n_permutations = n_permutations
        self.to_coal = sp.csr_matrix(
            (np.ones(jr.n_paths), (np.arange(jr.n_paths), self.path_coal)), shape=(jr.n_paths, n_coal)
        )

    # ---- structure ------------------------------------------------------------

    def _combine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.bitwise_xor(a, b) if self._xor else np.bitwise_or(a, b)
        return out

    def _subset_keys(self, members: np.ndarray) -> np.ndarray:
        """Keys of all 2^s subsets of each coalition, (m, 2^s); bit b of the subset
        index stands for the coalition's b-th channel."""
        keys = np.zeros((len(members), 1), dtype=np.int64)
        for b in range(members.shape[1]):  # a loop over the coalition's channels
            keys = np.concatenate([keys, self._combine(keys, self.ch_key[members[:, b]][:, None])], axis=1)
        return keys

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        """Coalition index of each key, -1 where the subset is not a coalition of the data."""
        idx = np.searchsorted(self.sorted_keys, keys)
        idx = np.minimum(idx, max(self.n_coalitions - 1, 0))
        found = (self.sorted_keys[idx] == keys) & (keys != 0)
        return np.where(found, self.key_order[idx], -1).astype(np.int64)

    def _orders(self, members: np.ndarray, n_perm: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Random orders of each coalition's channels and the coalition index of every
        prefix: ``pos`` (m, P, s) positions into ``members``, ``prefix`` (m, P, s)."""
        m, s = members.shape
        pos = np.argsort(rng.random((m, n_perm, s)), axis=2)
        chans = np.take_along_axis(np.broadcast_to(members[:, None, :], (m, n_perm, s)), pos, axis=2)
        key = self.ch_key[chans]
        prefix = (np.bitwise_xor if self._xor else np.bitwise_or).accumulate(key, axis=2)
        return {"pos": pos, "prefix": self._lookup(prefix), "members": members}

    # ---- splitting --------------------------------------------------------------

    def split(
        self, conv: np.ndarray, nulls: np.ndarray, value: np.ndarray, batch: slice | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel credit (conversions, value), each (batch, n_channels), from
        per-path counts of shape (batch, n_paths). ``batch`` restricts the random
        orders used (for batch-means standard errors)."""
        c = np.asarray(conv @ self.to_coal)  # (R, coalitions)
        t = np.asarray((conv + nulls) @ self.to_coal)
        v = np.asarray(value @ self.to_coal)
        return self.split_coalitions(c, t, v, batch)

    def split_coalitions(
        self, c: np.ndarray, t: np.ndarray, v: np.ndarray, batch: slice | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`split` from the conversions ``c``, journeys ``t`` and value ``v`` per
        coalition, each (batch, coalitions)."""
        rate = np.divide(c, t, out=np.zeros_like(c, dtype=np.float64), where=t > 0)
        rate[:, self.empty] = 0.0
        rate_ext = np.concatenate([rate, np.zeros((len(rate), 1))], axis=1)  # index -1: absent -> 0
        out_c = np.zeros((len(c), self.n_channels))
        out_v = np.zeros((len(c), self.n_channels))
        for g in self.groups:  # a loop over coalition sizes
            s = g["size"]
            if g["exact"]:
                blocks = [(chunk, None) for chunk in _chunks(len(g["ids"]), max(1, _CHUNK // (len(c) << s)))]
            else:
                blocks = []
                start = 0
                for o in g["orders"]:
                    blocks.append((slice(start, start + len(o["members"])), o))
                    start += len(o["members"])
            for chunk, o in blocks:
                ids, members = g["ids"][chunk], g["members"][chunk]
                if o is None:
                    phi = _exact_phi(rate_ext[:, g["subsets"][chunk]], s)
                else:  # resamples a few at a time: (R, m, P, s) values at once
                    step = max(1, _CHUNK // max(o["prefix"].size, 1))
                    phi = np.concatenate([_sampled_phi(rate_ext[r], o, batch) for r in _chunks(len(c), step)])
                _credit(phi, members, c[:, ids], v[:, ids], out_c, out_v)
        return out_c, out_v

    def sampling_se(
        self, conv: np.ndarray, nulls: np.ndarray, value: np.ndarray, n_batches: int = 10
    ) -> tuple[np.ndarray, np.ndarray]:
        """Standard error of the credit from sampling: batch means over ``n_batches``
        disjoint batches of the random orders."""
        b = min(n_batches, self.n_permutations)
        edges = np.linspace(0, self.n_permutations, b + 1).astype(int)
        runs = [
            self.split(conv[None, :], nulls[None, :], value[None, :], slice(lo, hi))
            for lo, hi in itertools.pairwise(edges)
        ]
        cs = np.concatenate([r[0] for r in runs])
        vs = np.concatenate([r[1] for r in runs])
        scale = 1.0 / np.sqrt(b)
        return cs.std(axis=0, ddof=1) * scale, vs.std(axis=0, ddof=1) * scale


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """Distinct values in order (a sort; numpy's hash-based unique is slower on these)."""
    s = np.sort(x)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def _unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values in order and, per value, its index among them."""
    order = np.argsort(x, kind="stable")
    s = x[order]
    new = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, dtype=bool)
    inverse = np.empty(len(x), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return s[new], inverse


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _weights(s: int) -> np.ndarray:
    """Shapley weight |T|! (s - |T| - 1)! / s! by |T| = 0 .. s - 1."""
    return np.array([factorial(t) * factorial(s - t - 1) / factorial(s) for t in range(s)])


def _exact_phi(v_sub: np.ndarray, s: int) -> np.ndarray:
    """Shapley values (R, m, s) from the values of all subsets (R, m, 2^s)."""
    masks = np.arange(1 << s)
    pop = np.zeros(1 << s, dtype=np.int64)
    for b in range(s):
        pop += (masks >> b) & 1
    w = _weights(s)
    phi = np.empty((*v_sub.shape[:2], s))
    for i in range(s):  # a loop over the coalition's channels
        without = masks[(masks >> i) & 1 == 0]
        phi[:, :, i] = (v_sub[:, :, without | (1 << i)] - v_sub[:, :, without]) @ w[pop[without]]
    return phi


def _sampled_phi(rate_ext: np.ndarray, o: dict[str, np.ndarray], batch: slice | None) -> np.ndarray:
    """Permutation estimate of the Shapley values (R, m, s)."""
    pos, prefix = o["pos"], o["prefix"]
    if batch is not None:
        pos, prefix = pos[:, batch], prefix[:, batch]
    vals = rate_ext[:, prefix]  # (R, m, P, s)
    marg = np.diff(vals, axis=3, prepend=0.0)
    inv = np.argsort(pos, axis=2)  # position of each member in each order
    by_member = np.take_along_axis(marg, np.broadcast_to(inv[None], marg.shape), axis=3)
    out: np.ndarray = by_member.mean(axis=2)
    return out


def _credit(phi: np.ndarray, members: np.ndarray, conv: np.ndarray, value: np.ndarray,
            out_c: np.ndarray, out_v: np.ndarray) -> None:
    """Split each coalition's conversions and value by its clipped Shapley values and
    add them to the channels (in place)."""
    phi = np.clip(phi, 0.0, None)
    norm = phi.sum(axis=2, keepdims=True)
    share = np.where(norm > 0, phi / np.where(norm > 0, norm, 1.0), 1.0 / phi.shape[2])
    flat = members.ravel()
    to_ch = sp.csr_matrix((np.ones(len(flat)), (np.arange(len(flat)), flat)), shape=(len(flat), out_c.shape[1]))
    out_c += (share * conv[:, :, None]).reshape(len(conv), -1) @ to_ch
    out_v += (share * value[:, :, None]).reshape(len(value), -1) @ to_ch
