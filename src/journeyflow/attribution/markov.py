"""Markov-chain attribution: exact removal effects by sparse linear solves, any order.

The chain (ChannelAttribution's ``markov_model`` convention, DESIGN.md): states
start, the touch states, conversion and null. For order k a touch state is a
window of k consecutive touches sliding by one; a path shorter than k is one state
made of the whole path; consecutive identical states are collapsed (for k = 1 this
drops self-loops). start -> first state, each state -> next, last state ->
conversion weighted by the path's conversions and -> null weighted by its nulls;
every other transition is weighted by conversions + nulls. Rows are normalised to
probabilities.

P(conversion) is the absorption probability from start: the solution of
``(I - Q) x = r`` at start, with Q the transient-to-transient probabilities and r
the one-step probabilities into conversion. Removing channel c sends every state
that contains c to null, i.e. drops those states from the system. Removal effect
RE_c = 1 - P_c / P, and attributed conversions = total × RE_c / Σ RE. Value: the
same chain with the step into conversion from a state paying the average value of
the conversions that ended there.

Deliberate consequence of the chain (shared with ChannelAttribution): a channel that
never appears on a converting path can still get credit, when its journeys lead
into states from which other journeys convert (the chain forgets which journey a
transition came from). The path-based models (heuristics, Shapley) give it zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from .._validation import check_positive_int
from ..exceptions import DataError, SparseChainWarning
from ..journeys import Journeys
from .models import AttributionModel

__all__ = ["MarkovAttribution"]


class MarkovAttribution(AttributionModel):
    """Markov-chain attribution of order ``order`` with exact removal effects.

    Parameters
    ----------
    order : int, default 1
        Number of consecutive touches that make one state.

    Attributes
    ----------
    attribution_ : DataFrame
        channel, conversions, value, share.
    removal_effects_ : DataFrame
        channel, removal_effect, removal_effect_value (float64).
    transition_matrix_ : DataFrame
        from_state, to_state (str), probability (float64): the non-zero entries.
    conversion_probability_ : float
        P(conversion) from start.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> paths = pd.DataFrame({"path": ["a > b", "a", "b"], "total_conversions": [1, 1, 0],
    ...                       "total_null": [1, 0, 1]})
    >>> mm = jf.MarkovAttribution().fit(jf.Journeys.from_paths(paths))
    >>> round(mm.conversion_probability_, 4)
    0.5
    >>> mm.removal_effects_.round(4)
      channel  removal_effect  removal_effect_value
    0       a          0.8333                0.8333
    1       b          0.5000                0.5000
    >>> mm.attribution_["conversions"].round(4).tolist()
    [1.25, 0.75]
    """

    name = "markov"

    def __init__(self, order: int = 1, *, min_transitions: int = 10) -> None:
        self.order = check_positive_int("order", order)
        self.min_transitions = check_positive_int("min_transitions", min_transitions)

    @property
    def label(self) -> str:
        return self.name if self.order == 1 else f"markov(order={self.order})"

    def _params(self) -> str:
        return f"order={self.order}"

    def _credit(self, jr: Journeys) -> tuple[np.ndarray, np.ndarray]:
        chain = _build_chain(jr, self.order)
        self._warn_if_sparse(chain)
        n_ch = len(jr.channels)
        p_all, v_all = _absorb(chain, np.ones(chain.n_states, dtype=bool))
        if p_all <= 0:
            raise DataError("No journey converts: the Markov chain's conversion probability is 0.")
        re = np.zeros(n_ch)
        re_v = np.zeros(n_ch)
        for c in range(n_ch):  # a loop over channels, each one sparse solve
            keep = ~chain.member[:, c]
            p_c, v_c = _absorb(chain, keep)
            re[c] = 1 - p_c / p_all
            re_v[c] = 1 - v_c / v_all if v_all > 0 else 0.0
        re = np.clip(re, 0, None)
        re_v = np.clip(re_v, 0, None)
        total_c, total_v = jr.total_conversions, jr.total_value
        conv = total_c * re / re.sum() if re.sum() > 0 else np.zeros(n_ch)
        value = total_v * re_v / re_v.sum() if re_v.sum() > 0 else np.zeros(n_ch)
        self.conversion_probability_ = float(p_all)
        self.removal_effects_ = pd.DataFrame(
            {"channel": np.asarray(jr.channels, dtype=object), "removal_effect": re, "removal_effect_value": re_v}
        )
        self.transition_matrix_ = chain.tidy(jr.channels)
        return conv, value

    def _warn_if_sparse(self, chain: _Chain) -> None:
        """Warn when most states of a higher-order chain are seen too rarely to trust."""
        seen = chain.visits[: chain.n_states]
        rare = float(np.mean(seen < self.min_transitions)) if len(seen) else 0.0
        if self.order > 1 and rare > 0.5:
            warnings.warn(
                f"MarkovAttribution(order={self.order}): {rare:.0%} of its {chain.n_states:,} states are left "
                f"fewer than {self.min_transitions} times; the removal effects rest on few journeys. Use a "
                "lower order or more data (min_transitions= sets the threshold).",
                SparseChainWarning,
                stacklevel=4,
            )

    def fit(self, journeys: Journeys) -> MarkovAttribution:
        super().fit(journeys)
        return self


class _Chain:
    """Transition probabilities among S touch states plus start (index S)."""

    def __init__(self, counts: sp.csr_matrix, member: np.ndarray, conv_value: np.ndarray, keys: np.ndarray, k: int):
        self.n_states = member.shape[0]
        s = self.n_states
        rows = np.asarray(counts.sum(axis=1)).ravel()
        self.visits = rows  # weighted transitions out of each state (and start)
        inv = np.where(rows > 0, 1.0 / np.where(rows > 0, rows, 1), 0.0)
        probs = sp.diags(inv) @ counts  # (S + 1) x (S + 3): states, start | states, start, conv, null
        probs = probs.tocsc()
        self.q = probs[:, : s + 1].tocsr()  # transient -> transient
        self.r = np.asarray(probs[:, s + 1].todense()).ravel()  # -> conversion
        self.r_value = self.r * np.concatenate([conv_value, [0.0]])
        self.probs = probs.tocsr()
        self.member = member
        self.keys = keys
        self.k = k

    def tidy(self, channels: pd.Index) -> pd.DataFrame:
        names = np.array(
            [*_state_names(self.keys, self.k, channels), "(start)", "(conversion)", "(null)"], dtype=object
        )
        coo = self.probs.tocoo()
        return pd.DataFrame(
            {"from_state": names[coo.row], "to_state": names[coo.col], "probability": coo.data}
        ).sort_values(["from_state", "to_state"], kind="stable").reset_index(drop=True)


def _absorb(chain: _Chain, keep_states: np.ndarray) -> tuple[float, float]:
    """(P(conversion), E[value]) from start, with only ``keep_states`` transient."""
    keep = np.concatenate([keep_states, [True]])  # start stays
    idx = np.flatnonzero(keep)
    q = chain.q[idx][:, idx]
    a = (sp.identity(len(idx), format="csc") - q.tocsc()).tocsc()
    rhs = np.column_stack([chain.r[idx], chain.r_value[idx]])
    x = spsolve(a, rhs)
    x = np.asarray(x).reshape(len(idx), 2)
    return float(x[-1, 0]), float(x[-1, 1])


@dataclass(frozen=True)
class _Edges:
    """The chain's transitions, one entry per (path, step), before weighting.

    kind 0: start -> first state or state -> next (weight conversions + nulls);
    kind 1: last state -> conversion (weight conversions); kind 2: -> null (nulls).
    """

    src: np.ndarray
    dst: np.ndarray
    path: np.ndarray
    kind: np.ndarray
    last_state: np.ndarray  # per path with states: its last state
    last_path: np.ndarray  # ... and that path
    n_states: int
    member: np.ndarray
    keys: np.ndarray


def _edges(jr: Journeys, k: int) -> _Edges:
    n_ch = len(jr.channels)
    lengths = jr.lengths
    pidx = jr.path_index
    t = jr.touches.astype(np.int64)
    pos = np.arange(jr.n_touches, dtype=np.int64) - jr.offsets[:-1][pidx]
    length = lengths[pidx]
    if n_ch ** max(k, 1) * (k + 1) >= 2**62:
        raise DataError(f"order={k} with {n_ch} channels gives too many possible states; use a lower order.")
    # state of each window start: full windows where pos + k <= length; whole path when length < k
    full = pos + k <= length
    short = (length < k) & (pos == 0)
    starts = np.flatnonzero(full | short)
    width = np.where(full[starts], k, length[starts])
    key = np.zeros(len(starts), dtype=np.int64)
    for j in range(k):  # a loop over the order, not the data
        inside = j < width
        digit = t[np.minimum(starts + j, len(t) - 1)]
        key = np.where(inside, key * n_ch + digit, key)
    key = key * (k + 1) + width
    spath = pidx[starts]
    codes, uniq = pd.factorize(key, sort=True)
    codes = codes.astype(np.int64)
    # collapse consecutive identical states within a path
    keep = np.ones(len(codes), dtype=bool)
    keep[1:] = ~((codes[1:] == codes[:-1]) & (spath[1:] == spath[:-1]))
    codes, spath = codes[keep], spath[keep]
    s = len(uniq)
    start, conv_col, null_col = s, s + 1, s + 2
    first = np.ones(len(codes), dtype=bool)
    first[1:] = spath[1:] != spath[:-1]
    last = np.ones(len(codes), dtype=bool)
    last[:-1] = spath[1:] != spath[:-1]
    n_first, n_last = int(first.sum()), int(last.sum())
    src = np.concatenate([np.full(n_first, start), codes[~last], codes[last], codes[last]])
    dst = np.concatenate([codes[first], codes[1:][~last[:-1]], np.full(n_last, conv_col), np.full(n_last, null_col)])
    path = np.concatenate([spath[first], spath[~last], spath[last], spath[last]])
    kind = np.concatenate([np.zeros(n_first + int((~last).sum()), np.int8), np.ones(n_last, np.int8),
                           np.full(n_last, 2, np.int8)])
    member = _membership(np.asarray(uniq, dtype=np.int64), k, n_ch)
    return _Edges(src, dst, path, kind, codes[last], spath[last], s, member, np.asarray(uniq, dtype=np.int64))


def _build_chain(jr: Journeys, k: int) -> _Chain:
    e = _edges(jr, k)
    s = e.n_states
    per_kind = np.stack([jr.conversions + jr.nulls, jr.conversions, jr.nulls])
    wt = per_kind[e.kind, e.path]
    counts = sp.coo_matrix((wt, (e.src, e.dst)), shape=(s + 1, s + 3)).tocsr()
    counts.sum_duplicates()
    # average value of the conversions that ended in each state
    conv_end = np.bincount(e.last_state, weights=jr.conversions[e.last_path], minlength=s)
    value_end = np.bincount(e.last_state, weights=jr.value[e.last_path], minlength=s)
    avg_value = np.where(conv_end > 0, value_end / np.where(conv_end > 0, conv_end, 1), 0.0)
    return _Chain(counts, e.member, avg_value, e.keys, k)


def _digits(keys: np.ndarray, k: int, n_ch: int) -> tuple[np.ndarray, np.ndarray]:
    width = keys % (k + 1)
    rest = keys // (k + 1)
    digits = np.full((len(keys), k), -1, dtype=np.int64)
    for j in range(k):  # last digit first
        has = j < width
        pos = width - 1 - j
        digits[has, pos[has]] = rest[has] % n_ch
        rest = np.where(has, rest // n_ch, rest)
    return digits, width


def _membership(keys: np.ndarray, k: int, n_ch: int) -> np.ndarray:
    digits, _ = _digits(keys, k, n_ch)
    member = np.zeros((len(keys), n_ch), dtype=bool)
    for j in range(k):
        has = digits[:, j] >= 0
        member[np.flatnonzero(has), digits[has, j]] = True
    return member


def _state_names(keys: np.ndarray, k: int, channels: pd.Index) -> list[str]:
    digits, _ = _digits(keys, k, len(channels))
    names = np.asarray(channels, dtype=object)
    cols = [np.where(digits[:, j] >= 0, names[np.maximum(digits[:, j], 0)], "") for j in range(k)]
    return [" > ".join(c for c in parts if c) for parts in zip(*cols, strict=True)] if len(keys) else []
