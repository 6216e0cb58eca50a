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

Computation: the states are windows of touch codes (integer keys), counted block by
block of paths with ``bincount`` (no Python loop over paths, small temporaries).
The absorption probabilities with every state and with each channel's states
removed are one batched dense solve for chains of at most ``DENSE_STATES`` states;
larger chains iterate x <- r + Q x for all removals at once until the error bound is
below 1e-13 of the solution (a sparse direct solve per channel if that does not
converge in 2000 steps). Tests check all three against a dense chain built path by
path.

Deliberate consequence of the chain (shared with ChannelAttribution): a channel that
never appears on a converting path can still get credit, when its journeys lead
into states from which other journeys convert (the chain forgets which journey a
transition came from). The path-based models (heuristics, Shapley) give it zero.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from .._validation import check_positive_int
from ..exceptions import DataError, SparseChainWarning
from ..journeys import Journeys
from .models import AttributionModel, path_blocks

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
        chain = _Chain(jr, self.order)
        self._warn_if_sparse(chain)
        n_ch = len(jr.channels)
        x = chain.absorption()
        p_all, v_all = x[0]
        if p_all <= 0:
            raise DataError("No journey converts: the Markov chain's conversion probability is 0.")
        re = 1 - x[1:, 0] / p_all
        re_v = 1 - x[1:, 1] / v_all if v_all > 0 else np.zeros(n_ch)
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


#: Chains with at most this many states (start included) are solved densely, all
#: channels' removals in one batched solve; larger ones by a sparse solve per channel.
DENSE_STATES = 200
#: Transitions between states are summed into a dense (states x states) table up to
#: this size (32 MB), else as sparse entries.
_DENSE_CELLS = 1 << 22
#: ... and counted with one ``bincount`` per block up to this size (faster than adding
#: in place while the table is small against a block's touches).
_COUNTED_CELLS = 1 << 14


class _Chain:
    """Transition probabilities among S touch states plus start (index S)."""

    def __init__(self, jr: Journeys, k: int) -> None:
        states = _States(jr, k)
        s = len(states)
        self.n_states, self.keys, self.k = s, states.keys, k
        self.member = _membership(states.keys, k, len(jr.channels))
        width = s + 3  # to: states, start (never), conversion, null
        # state -> state transitions, summed per block: few states, counted in a (S + 1)^2
        # table (no state = S, the diagonal and row/column S dropped afterwards); more,
        # added into a dense S^2 table in place; many, kept as non-zero entries
        small = (s + 1) ** 2 <= _COUNTED_CELLS
        dense = not small and s * s <= _DENSE_CELLS
        between = np.zeros((s + 1) ** 2 if small else s * s if dense else 0)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        start, to_conv, to_null, value_end = (np.zeros(s) for _ in range(4))
        all_conv, all_nulls, all_value, lengths = jr.conversions, jr.nulls, jr.value, jr.lengths  # decoded once
        for paths_in, w in states.block_windows(jr):  # a loop over blocks of paths
            conv, nulls, value = all_conv[paths_in], all_nulls[paths_in], all_value[paths_in]
            both = conv + nulls
            ends, firsts = w.code[w.last], w.code[w.first]
            weight = np.repeat(both, lengths[paths_in])[:-1]  # of the transition from touch i to i + 1
            if small:
                weight[w.first[1:] - 1] = 0.0  # none into the next path
                cells = w.code[:-1] * (s + 1)
                cells += w.code[1:]
                between += np.bincount(cells, weights=weight, minlength=(s + 1) ** 2)
            else:  # transitions between windows: weight 0 where there is none (no state, another path)
                steps = np.where(w.step, weight, 0.0)
                cells = np.minimum(w.code[:-1], s - 1) * s + np.minimum(w.code[1:], s - 1)  # no state: weight 0
                if dense:
                    np.add.at(between, cells, steps)  # in place: no (states x states) temporary per block
                else:
                    keep = steps != 0
                    parts.append((cells[keep], steps[keep]))
            start += np.bincount(firsts, weights=both[w.paths], minlength=s)
            to_conv += np.bincount(ends, weights=conv[w.paths], minlength=s)
            to_null += np.bincount(ends, weights=nulls[w.paths], minlength=s)
            value_end += np.bincount(ends, weights=value[w.paths], minlength=s)
        if small:
            table = between.reshape(s + 1, s + 1)[:s, :s].copy()
            np.fill_diagonal(table, 0.0)  # staying in a state is no transition
            between = table.ravel()
        if small or dense:
            nz = np.flatnonzero(between)
            cells, weights = nz, between[nz]
        else:
            cells = np.concatenate([c for c, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
            weights = np.concatenate([x for _, x in parts]) if parts else np.zeros(0)
        idx = np.arange(s)
        counts = sp.csr_matrix(
            (np.concatenate([weights, start, to_conv, to_null]),
             (np.concatenate([cells // s, np.full(s, s), idx, idx]),
              np.concatenate([cells % s, idx, np.full(s, s + 1), np.full(s, s + 2)]))),
            shape=(s + 1, width),
        )
        counts.sum_duplicates()
        counts.eliminate_zeros()
        rows = np.asarray(counts.sum(axis=1)).ravel()
        self.visits = rows  # weighted transitions out of each state (and start)
        inv = np.where(rows > 0, 1.0 / np.where(rows > 0, rows, 1), 0.0)
        self.probs = sp.csr_matrix(sp.diags(inv) @ counts)  # (S + 1) x (S + 3)
        probs = self.probs.tocsc()
        self.q = probs[:, : s + 1].tocsr()  # transient -> transient
        self.r = np.asarray(probs[:, s + 1].todense()).ravel()  # -> conversion
        # average value of the conversions that ended in each state
        avg_value = np.divide(value_end, to_conv, out=np.zeros(s), where=to_conv > 0)
        self.r_value = self.r * np.concatenate([avg_value, [0.0]])

    def absorption(self) -> np.ndarray:
        """(P(conversion), E[value]) from start, shape (1 + channels, 2): with every
        state, then with the states of each channel removed (sent to null)."""
        s1 = self.n_states + 1
        keeps = _removals(self.member)
        rhs = np.stack([self.r, self.r_value], axis=1)
        if s1 <= DENSE_STATES:  # one batched dense solve; a removed state's row is zeroed
            q = self.q.toarray()
            a = np.eye(s1)[None, :, :] - q[None, :, :] * keeps[:, :, None]
            x = np.linalg.solve(a, rhs[None, :, :] * keeps[:, :, None])
            return np.asarray(x[:, -1, :])
        iterated = _absorb_iterative(self.q, rhs, keeps)
        if iterated is not None:
            return iterated
        out = np.zeros((len(keeps), 2))
        for i, keep in enumerate(keeps):  # a loop over channels, each one sparse solve
            idx = np.flatnonzero(keep)
            a = (sp.identity(len(idx), format="csc") - self.q[idx][:, idx].tocsc()).tocsc()
            out[i] = np.asarray(spsolve(a, rhs[idx])).reshape(len(idx), 2)[-1]
        return out

    def tidy(self, channels: pd.Index) -> pd.DataFrame:
        names = np.array(
            [*_state_names(self.keys, self.k, channels), "(start)", "(conversion)", "(null)"], dtype=object
        )
        coo = self.probs.tocoo()
        rank = np.empty(len(names), dtype=np.intp)
        rank[np.argsort(names, kind="stable")] = np.arange(len(names))  # sort by name via the (few) states
        order = np.lexsort((rank[coo.col], rank[coo.row]))
        row, col = coo.row[order], coo.col[order]
        return pd.DataFrame({"from_state": names[row], "to_state": names[col], "probability": coo.data[order]})


def _removals(member: np.ndarray) -> np.ndarray:
    """Which states stay transient, shape (1 + channels, states + 1): every state, then
    all but the states of each channel in turn (start, the last column, always stays)."""
    keeps = np.ones((1 + member.shape[1], member.shape[0] + 1), dtype=bool)
    keeps[1:, :-1] = ~member.T
    return keeps


def _absorb_iterative(q: sp.csr_matrix, rhs: np.ndarray, keeps: np.ndarray, max_iter: int = 2000) -> np.ndarray | None:
    """``absorption`` by iterating x <- r + Q x for every removal at once (each step is
    one sparse product). The error shrinks by the chain's spectral radius ρ < 1 each
    step; it stops when the bound ``step × ρ / (1 - ρ)`` on the remaining error is
    below 1e-13 of the solution, or gives up (None) after ``max_iter`` steps."""
    mask = np.concatenate([keeps.T, keeps.T], axis=1).astype(np.float64)  # (S + 1, 2 (1 + channels))
    r = np.concatenate([rhs[:, :1] * keeps.T, rhs[:, 1:] * keeps.T], axis=1)
    x = r.copy()
    steps: list[float] = []
    for _ in range(max_iter):  # a loop over iterations, each a sparse product over all states
        new = r + mask * (q @ x)
        steps.append(float(np.abs(new - x).max()))
        x = new
        if steps[-1] == 0:
            break
        if len(steps) > 3:  # ρ from the last three steps, the largest ratio (the decay need not be smooth)
            rho = max(b / a if a > 0 else 1.0 for a, b in itertools.pairwise(steps[-4:]))
            if rho < 1 and steps[-1] * rho / (1 - rho) <= 1e-13 * float(np.abs(x).max()):
                break
    else:
        return None
    m = keeps.shape[0]
    return np.stack([x[-1, :m], x[-1, m:]], axis=1)
    return None


@dataclass(frozen=True)
class _Windows:
    """The chain's states in a run of paths, by touch position: the window of ``k``
    touches starting at each touch (a path shorter than ``k`` is one window, at its
    first touch). ``code`` indexes the state keys, and is ``n_states`` where no
    window starts."""

    code: np.ndarray  # (n_touches,) intp
    paths: np.ndarray  # the paths with touches
    first: np.ndarray  # the position of their first window
    last: np.ndarray  # ... and of their last window
    n_states: int
    k: int

    @cached_property
    def step(self) -> np.ndarray:
        """(n_touches - 1,) bool: a transition from the window at i to the one at i + 1
        (another state, both windows present, the same path)."""
        code, s = self.code, self.n_states
        step: np.ndarray = code[1:] != code[:-1]
        if self.k > 1:
            step &= code[1:] < s
            step &= code[:-1] < s
        first = self.first
        step[first[first > 0] - 1] = False  # no transition into the next path
        return step


class _States:
    """The states present in the journeys: sorted keys (the touches' digits, times
    k + 1, plus the width) and the code of a key."""

    def __init__(self, jr: Journeys, k: int) -> None:
        n_ch = len(jr.channels)
        if n_ch ** max(k, 1) * (k + 1) >= 2**62:
            raise DataError(f"order={k} with {n_ch} channels gives too many possible states; use a lower order.")
        self.k, self.n_ch = k, n_ch
        space = n_ch**k * (k + 1)
        self.lut: np.ndarray | None = None
        self._block_keys: list[np.ndarray] = []  # each block's window keys, kept small for block_windows
        self.identity = False
        if k == 1 or space <= max(4 * jr.n_touches, 1 << 16):  # few possible states: a lookup table, no sort
            present = np.zeros(space + 1, dtype=bool)
            if k == 1:  # the channels that occur (window key 2 c + 1), a block at a time (no intp copy)
                seen = np.zeros(n_ch, dtype=bool)
                for _, touches, _ in path_blocks(jr):
                    seen[touches] = True
                present[1:-1:2] = seen
            small = np.int16 if space < 2**15 else np.int32 if space < 2**31 else np.int64
            for _, touches, offsets in path_blocks(jr) if k > 1 else ():
                keys = _window_keys(touches, offsets, n_ch, k)
                present[keys] = True  # -1 (no window) marks the extra slot
                self._block_keys.append(keys.astype(small))
            present[-1] = False
            self.keys = np.flatnonzero(present).astype(np.int64)
            self.lut = np.cumsum(present) - 1
            self.lut[-1] = len(self.keys)
            self.identity = k == 1 and len(self.keys) == n_ch  # order 1, every channel: code = channel
        else:
            found = [np.unique(keys[keys >= 0]) for keys in (_window_keys(t, o, n_ch, k) for _, t, o in path_blocks(jr))]
            self.keys = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def block_windows(self, jr: Journeys) -> Iterator[tuple[slice, _Windows]]:
        """The windows of each block of paths (``path_blocks``) of the journeys."""
        for i, (paths_in, touches, offsets) in enumerate(path_blocks(jr)):  # a loop over blocks of paths
            yield paths_in, self.windows(touches, offsets, self._block_keys[i] if self._block_keys else None)

    def windows(self, touches: np.ndarray, offsets: np.ndarray, keys: np.ndarray | None = None) -> _Windows:
        """The windows of the paths ``offsets`` over ``touches``; ``keys``: their window
        keys when known."""
        k, s = self.k, len(self.keys)
        if self.identity:
            code = touches.astype(np.intp)
        else:
            at = _window_keys(touches, offsets, self.n_ch, k) if keys is None else keys
            if self.lut is not None:
                code = self.lut[at]
            else:
                code = np.minimum(np.searchsorted(self.keys, at), s)
                code[at < 0] = s
        lengths = np.diff(offsets)
        paths = np.flatnonzero(lengths > 0)
        first = offsets[paths]
        last = np.where(lengths[paths] >= k, offsets[paths + 1] - k, first)
        return _Windows(code, paths, first, last, s, k)


def _window_keys(touches: np.ndarray, offsets: np.ndarray, n_ch: int, k: int) -> np.ndarray:
    """The key of the window starting at each touch, -1 where none starts."""
    n = len(touches)
    t = touches.astype(np.int64)
    if k == 1:  # every touch is a window of its own
        t *= 2
        t += 1
        return t
    lengths = np.diff(offsets)
    n_full = max(n - k + 1, 0)
    at = np.empty(n, dtype=np.int64)
    full = at[:n_full]
    full[:] = t[:n_full]
    for j in range(1, k):  # a loop over the order, not the data
        full *= n_ch
        full += t[j : j + n_full]
    full *= k + 1
    full += k
    at[n_full:] = -1
    paths = np.flatnonzero(lengths > 0)
    starts, ends = offsets[paths], offsets[paths + 1]
    for j in range(1, k):  # the last k - 1 touches of a path start no full window
        at[np.maximum(ends - j, starts)] = -1
    short = paths[lengths[paths] < k]  # the whole path is one state
    if len(short):
        starts, width = offsets[short], lengths[short]
        key_short = np.zeros(len(short), dtype=np.int64)
        for j in range(k - 1):
            key_short = np.where(j < width, key_short * n_ch + t[np.minimum(starts + j, n - 1)], key_short)
        at[starts] = key_short * (k + 1) + width
    return at


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
