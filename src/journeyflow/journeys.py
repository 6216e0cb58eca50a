"""Journeys: the compact columnar container that attribution models read.

A :class:`Journeys` holds many paths in CSR form: one flat array of integer touch
codes and an offsets array, plus per-path conversion and null counts, conversion
value and (optionally) touch times. A row (path) either stands for one person's
journey (``conversions`` 0 or 1, ``nulls`` = 1 − conversions) or for an aggregated
distinct path with counts (the ChannelAttribution "path file" shape).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._compact import (
    PackedFloats,
    PackedLabels,
    labels_from_codes,
    labels_nbytes,
    pack_floats,
    pack_labels,
    pack_maybe_times,
    pack_times,
    readonly,
    same_bits,
)
from ._encode import PARALLEL_ROWS
from ._validation import check_frame, describe
from .exceptions import DataError, InputTypeError, OptionError, SchemaError
from .schema import resolve_columns
from .sessions import SessionIndex

__all__ = ["Journeys", "build_journeys"]


class Journeys:
    """Paths of touches with their conversions, in compact CSR arrays.

    Parameters
    ----------
    touches : array of int, shape (n_touches,)
        Touch codes, each an index into ``channels``; paths are concatenated.
    offsets : array of int, shape (n_paths + 1,)
        ``touches[offsets[i]:offsets[i + 1]]`` is path ``i``; starts at 0, non-decreasing.
    channels : sequence of str
        Channel (touch) names; code ``k`` means ``channels[k]``. Names must be unique.
    conversions : array of float, shape (n_paths,)
        Conversions of each path (0/1 for single journeys, counts for aggregated paths).
    nulls : array of float, shape (n_paths,), optional
        Non-converting journeys each path stands for. Default ``1 - conversions``
        clipped at 0 (single journeys).
    value : array of float, shape (n_paths,), optional
        Total conversion value of each path. Default: equal to ``conversions``.
    times : array of int64 or datetime64, shape (n_touches,), optional
        Time of each touch (ns since the epoch, UTC). Needed by time decay.
    conversion_times : array of int64 or datetime64, shape (n_paths,), optional
        Time of each path's conversion (NaT for null paths).
    user_ids : array, shape (n_paths,), optional
        The user each journey belongs to (strings, integers, a categorical, ...).
    segments : DataFrame, optional
        One row per path with segment columns (device, persona, ...).

    Attributes
    ----------
    touches, offsets, conversions, nulls, value, times, conversion_times, user_ids
        The arrays above as read-only numpy arrays: ``touches`` int8/int16/int32
        (the narrowest for the number of channels), ``offsets`` int64, the per-path
        numbers float64, the times int64 ns, ``user_ids`` of the dtype given.
    lengths, path_index
        Touches per path, and the path of each touch (int64).
    n_paths, n_touches, total_conversions, total_nulls, total_value, nbytes

    Notes
    -----
    The arrays are stored compactly and losslessly (every value comes back bit for
    bit) and decoded on access, so read an attribute once per computation rather
    than in a loop; writing into one raises instead of changing a copy. Touch times
    are kept as 32-bit steps of their coarsest exact unit (whole seconds, ms, ...)
    when they fit, otherwise as int64; nulls of single journeys and a value equal to
    the conversions are derived; per-path numbers and conversion times keep only the
    entries that are not zero or NaT; a user id's text is stored once per person.
    ``nbytes`` counts all of it, the text of string user ids included.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> paths = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [3, 1],
    ...                       "total_null": [7, 9]})
    >>> jr = jf.Journeys.from_paths(paths)
    >>> jr
    Journeys(2 paths, 3 touches, 2 channels, 4 conversions, 16 nulls)
    >>> jr.to_paths()
        path  conversions  nulls  value
    0  a > b          3.0    7.0    3.0
    1      b          1.0    9.0    1.0
    """

    __slots__ = (
        "_channels",
        "_conversion_times",
        "_conversions",
        "_nulls",
        "_offsets",
        "_times",
        "_touches",
        "_user_ids",
        "_value",
        "segments",
    )

    def __init__(
        self,
        touches: Any,
        offsets: Any,
        channels: Sequence[str] | pd.Index,
        conversions: Any,
        nulls: Any = None,
        value: Any = None,
        times: Any = None,
        conversion_times: Any = None,
        user_ids: Any = None,
        segments: pd.DataFrame | None = None,
    ) -> None:
        channels = pd.Index(channels, dtype=object)
        if not channels.is_unique:
            dup = channels[channels.duplicated()].tolist()[:5]
            raise DataError(f"channels must be unique; {dup} appear more than once.")
        offsets = np.asarray(offsets, dtype=np.int64)
        n_channels = len(channels)
        code_dtype = np.int8 if n_channels <= 2**7 else np.int16 if n_channels <= 2**15 else np.int32
        touches = np.asarray(touches)
        if touches.dtype.kind not in "iu":
            raise InputTypeError(f"touches must be integer codes; got dtype {touches.dtype}.")
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(touches):
            raise DataError(
                "offsets must start at 0, end at len(touches) and have one entry more than "
                f"there are paths; got {len(offsets)} offsets ending at "
                f"{offsets[-1] if len(offsets) else None} for {len(touches)} touches."
            )
        lengths = np.diff(offsets)
        if np.any(lengths < 0):
            raise DataError("offsets must be non-decreasing.")
        if len(touches) and (touches.min() < 0 or touches.max() >= n_channels):
            raise DataError(
                f"touch codes must lie in [0, {n_channels}) to index channels; got codes from "
                f"{touches.min()} to {touches.max()}."
            )
        n = len(offsets) - 1
        conversions = self._per_path("conversions", conversions, n)
        checked = [("conversions", conversions)]
        if nulls is not None:
            nulls = self._per_path("nulls", nulls, n)
            checked.append(("nulls", nulls))
        if value is not None:
            value = self._per_path("value", value, n)
        for name, arr in checked:
            if np.any(~np.isfinite(arr)) or np.any(arr < 0):
                raise DataError(f"{name} must be finite and >= 0 for every path.")
        if value is not None and np.any(~np.isfinite(value)):
            raise DataError("value must be finite for every path (use 0 for no value).")
        if times is not None:
            times = _as_ns(times, "times")
            if len(times) != len(touches):
                raise DataError(f"times must have one entry per touch ({len(touches)}); got {len(times)}.")
        if conversion_times is not None:
            conversion_times = _as_ns(conversion_times, "conversion_times")
            if len(conversion_times) != n:
                raise DataError(f"conversion_times must have one entry per path ({n}); got {len(conversion_times)}.")
        if user_ids is not None and len(user_ids) != n:
            raise DataError(f"user_ids must have one entry per path ({n}); got {len(user_ids)}.")
        if segments is not None and len(segments) != n:
            raise DataError(f"segments must have one row per path ({n}); got {len(segments)}.")
        # Compact storage (see _compact): the public attributes below decode it on access.
        self._channels = channels
        self._touches = touches.astype(code_dtype)  # (n_touches,), int8 for up to 128 channels
        self._offsets = offsets.astype(np.int32) if len(touches) < 2**31 else offsets  # (n_paths + 1,)
        self._conversions = pack_floats(conversions)
        # None: the single-journey default, nulls = max(1 - conversions, 0)
        self._nulls = None if nulls is None or same_bits(nulls, _single_nulls(self._conversions)) else pack_floats(nulls)
        # None: value equals conversions (each conversion worth 1)
        self._value = None if value is None or same_bits(value, conversions) else pack_floats(value)
        self._times = None if times is None else pack_times(times, offsets)
        self._conversion_times = None if conversion_times is None else pack_maybe_times(conversion_times)
        self._user_ids = None if user_ids is None else pack_labels(user_ids)
        self.segments = segments.reset_index(drop=True) if segments is not None else None

    @staticmethod
    def _per_path(name: str, values: Any, n: int) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != (n,):
            raise DataError(f"{name} must have one entry per path ({n}); got shape {arr.shape}.")
        return arr

    # ------------------------------------------------------------------ data
    # Read-only arrays: a write into one would change a decoded copy, not the journeys.
    @property
    def touches(self) -> np.ndarray:
        """Touch codes (int8, int16 or int32), shape (n_touches,); paths concatenated."""
        return readonly(self._touches)

    @property
    def offsets(self) -> np.ndarray:
        """int64, shape (n_paths + 1,): ``touches[offsets[i]:offsets[i + 1]]`` is path ``i``."""
        return readonly(np.asarray(self._offsets, dtype=np.int64))

    @property
    def conversions(self) -> np.ndarray:
        """Conversions of each path, float64, shape (n_paths,)."""
        return readonly(self._conversions.decode())

    @property
    def nulls(self) -> np.ndarray:
        """Non-converting journeys each path stands for, float64, shape (n_paths,)."""
        if self._nulls is None:
            return readonly(_single_nulls(self._conversions))
        return readonly(self._nulls.decode())

    @property
    def value(self) -> np.ndarray:
        """Conversion value of each path, float64, shape (n_paths,)."""
        return self.conversions if self._value is None else readonly(self._value.decode())

    @property
    def times(self) -> np.ndarray | None:
        """Time of each touch, int64 ns since the epoch (UTC), shape (n_touches,); None if unknown."""
        if self._times is None:
            return None
        return readonly(self._times.decode(self.lengths if self._times.per_path else None))

    @property
    def conversion_times(self) -> np.ndarray | None:
        """Time of each path's first conversion, int64 ns (NaT for null paths); None if unknown."""
        return None if self._conversion_times is None else readonly(self._conversion_times.decode())

    @property
    def user_ids(self) -> np.ndarray | None:
        """The user of each journey, shape (n_paths,); None if unknown."""
        if self._user_ids is None:
            return None
        if isinstance(self._user_ids, PackedLabels):
            return readonly(self._user_ids.decode())
        return readonly(self._user_ids)

    # ------------------------------------------------------------------ facts
    @property
    def channels(self) -> pd.Index:
        """Channel names; touch code ``k`` is ``channels[k]``."""
        return self._channels

    @property
    def n_paths(self) -> int:
        return len(self._offsets) - 1

    @property
    def n_touches(self) -> int:
        return len(self._touches)

    @property
    def nbytes(self) -> int:
        """Memory held by the container: its compact arrays, the channel names, and user
        ids and segments counted deep (the text of string ids included)."""
        packed = (self._conversions, self._nulls, self._value, self._times, self._conversion_times)
        total = self._touches.nbytes + self._offsets.nbytes + sum(p.nbytes for p in packed if p is not None)
        total += int(self._channels.memory_usage(deep=True))
        if self._user_ids is not None:
            total += labels_nbytes(self._user_ids)
        if self.segments is not None:
            total += int(self.segments.memory_usage(deep=True, index=False).sum())
        return int(total)

    @property
    def lengths(self) -> np.ndarray:
        """Number of touches of each path, int64, shape (n_paths,)."""
        return np.asarray(np.diff(self._offsets), dtype=np.int64)

    @property
    def path_index(self) -> np.ndarray:
        """The path each touch belongs to, shape (n_touches,)."""
        return np.repeat(np.arange(self.n_paths, dtype=np.int64), self.lengths)

    @property
    def total_conversions(self) -> float:
        return float(self.conversions.sum())

    @property
    def total_nulls(self) -> float:
        return float(self.nulls.sum())

    @property
    def total_value(self) -> float:
        return float(self.value.sum())

    def __len__(self) -> int:
        return self.n_paths

    def __repr__(self) -> str:
        return (
            f"Journeys({self.n_paths:,} paths, {self.n_touches:,} touches, "
            f"{len(self._channels):,} channels, {_num(self.total_conversions)} conversions, "
            f"{_num(self.total_nulls)} nulls)"
        )

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(repr(self))}</pre>"

    def take(self, paths: Any) -> Journeys:
        """A new Journeys with only the given paths (indices or boolean mask), in that order."""
        idx = np.asarray(paths)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        offsets, pos = self._touch_positions(idx)
        times = self.times
        conversion_times = self.conversion_times
        ids = self._user_ids
        return Journeys(
            self._touches[pos],
            offsets,
            self._channels,
            self.conversions[idx],
            None if self._nulls is None else self.nulls[idx],
            None if self._value is None else self.value[idx],
            times=None if times is None else times[pos],
            conversion_times=None if conversion_times is None else conversion_times[idx],
            user_ids=None if ids is None else ids.take(idx) if isinstance(ids, PackedLabels) else ids[idx],
            segments=None if self.segments is None else self.segments.iloc[idx],
        )

    def _touch_positions(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of the paths ``idx`` (int64) taken in that order, and the flat positions of their touches."""
        lengths = self.lengths[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = self.offsets[idx]
        # flat positions of the kept touches: start of own path + rank within path
        pos = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        return offsets, pos

    @classmethod
    def concat(cls, parts: Sequence[Journeys], channels: Sequence[str] | None = None) -> Journeys:
        """Journeys of several parts, one after the other (e.g. partitions of a log).

        Touch codes are renumbered to ``channels`` (default: the parts' channels,
        sorted); times, conversion times and user ids are kept when every part has
        them. Segments are not kept.

        Examples
        --------
        >>> import pandas as pd, journeyflow as jf
        >>> a = jf.Journeys.from_paths(pd.DataFrame({"path": ["x > y"], "total_conversions": [1], "total_null": [0]}))
        >>> b = jf.Journeys.from_paths(pd.DataFrame({"path": ["z"], "total_conversions": [0], "total_null": [2]}))
        >>> jf.Journeys.concat([a, b]).to_paths()["path"].tolist()
        ['x > y', 'z']
        """
        parts = list(parts)
        if not parts:
            raise InputTypeError("concat needs at least one Journeys.")
        names = list(channels) if channels is not None else sorted({str(c) for p in parts for c in p.channels})
        index = {c: i for i, c in enumerate(names)}
        missing = sorted({str(c) for p in parts for c in p.channels} - set(index))
        if missing:
            raise DataError(f"channels lacks {missing[:5]}, used by the parts.")
        touches = np.concatenate(
            [np.array([index[str(c)] for c in p.channels], dtype=np.int64)[p.touches.astype(np.int64)] for p in parts]
        )
        lengths = np.concatenate([p.lengths for p in parts])
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def joined(attr: str) -> Any:
            values = [getattr(p, attr) for p in parts]
            return None if any(v is None for v in values) else np.concatenate([np.asarray(v) for v in values])

        return cls(
            touches,
            offsets,
            names,
            np.concatenate([p.conversions for p in parts]),
            np.concatenate([p.nulls for p in parts]),
            np.concatenate([p.value for p in parts]),
            times=joined("times"),
            conversion_times=joined("conversion_times"),
            user_ids=joined("user_ids"),
        )

    def distinct(self) -> tuple[Journeys, np.ndarray]:
        """Identical paths merged, and which merged path each path went to.

        Returns
        -------
        (Journeys, ndarray)
            The distinct paths in order of first appearance, with conversions, nulls
            and value summed (no times, user ids or segments: they differ between
            the journeys merged), and for every path the index of its distinct path.

        Notes
        -----
        Paths are grouped by a 64-bit polynomial hash of their touch codes and
        length, then every touch is compared with the same touch of its group's
        first path, so the grouping is exact (a hash collision falls back to
        grouping by the path text).

        Examples
        --------
        >>> import pandas as pd, journeyflow as jf
        >>> jr = jf.Journeys.from_paths(pd.DataFrame(
        ...     {"path": ["a > b", "b", "a > b"], "total_conversions": [1, 0, 2], "total_null": [0, 1, 1]}))
        >>> merged, which = jr.distinct()
        >>> merged.to_paths(aggregate=False)["conversions"].tolist(), which.tolist()
        ([3.0, 0.0], [0, 1, 0])
        """
        n = self.n_paths
        lengths = self.lengths
        pidx = self.path_index
        pos = np.arange(self.n_touches, dtype=np.int64) - self.offsets[pidx]
        code = self.touches.astype(np.uint64) + np.uint64(1)
        top = int(lengths.max()) if n else 0
        powers = np.cumprod(np.full(max(top, 1), 0x9E3779B97F4A7C15, dtype=np.uint64))  # wraps mod 2^64
        key = lengths.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        nonempty = lengths > 0
        if nonempty.any():
            key[nonempty] += np.add.reduceat(code * powers[pos], self.offsets[:-1][nonempty])
        group = pd.factorize(key)[0].astype(np.int64)  # in order of first appearance
        seen = np.maximum.accumulate(group) if n else group
        first = np.flatnonzero(np.concatenate([[True], seen[1:] > seen[:-1]])) if n else group
        rep = first[group]  # each path's group representative
        exact = bool(np.array_equal(lengths, lengths[rep])) and bool(
            np.array_equal(self.touches, self.touches[self.offsets[rep[pidx]] + pos])
        )
        if not exact:  # pragma: no cover - needs a 64-bit hash collision
            text = self.to_paths(sep="\x1f", aggregate=False)["path"]
            group = pd.factorize(text.to_numpy())[0].astype(np.int64)
            seen = np.maximum.accumulate(group)
            first = np.flatnonzero(np.concatenate([[True], seen[1:] > seen[:-1]]))
        m = len(first)
        offsets, pos = self._touch_positions(first)
        merged = Journeys(
            self._touches[pos],
            offsets,
            self._channels,
            np.bincount(group, weights=self.conversions, minlength=m),
            np.bincount(group, weights=self.nulls, minlength=m),
            np.bincount(group, weights=self.value, minlength=m),
        )
        return merged, group

    # ------------------------------------------------------------- conversion
    @classmethod
    def from_paths(
        cls,
        df: pd.DataFrame,
        *,
        path: str = "path",
        conversions: str = "total_conversions",
        nulls: str | None = "total_null",
        value: str | None = None,
        sep: str = ">",
    ) -> Journeys:
        """Read aggregated paths in the ChannelAttribution format.

        Parameters
        ----------
        df : DataFrame
            One row per distinct path.
        path : str, default "path"
            Column with paths such as ``"search > email > direct"``.
        conversions : str, default "total_conversions"
            Column with the number of conversions of the path.
        nulls : str or None, default "total_null"
            Column with the number of journeys on the path that did not convert.
            None means 0 for every path.
        value : str or None
            Column with the total conversion value of the path. None: value equals
            conversions (each conversion is worth 1).
        sep : str, default ">"
            Separator between touches. White space around names is removed.

        Returns
        -------
        Journeys
            Paths in input order; channels are numbered in order of first appearance.
            Touch times are not known, so time decay cannot run on the result.

        Raises
        ------
        SchemaError
            A named column is missing.
        DataError
            A path is empty or has an empty touch (e.g. ``"a >> b"``), or a count is
            negative or missing.

        Examples
        --------
        >>> import pandas as pd, journeyflow as jf
        >>> df = pd.DataFrame({"path": ["seo > email", "email"], "conv": [2, 1]})
        >>> jf.Journeys.from_paths(df, conversions="conv", nulls=None).channels.tolist()
        ['seo', 'email']
        """
        check_frame("df", df)
        if not isinstance(sep, str) or not sep:
            raise OptionError(f"sep must be a non-empty string such as '>'; got {describe(sep)}.")
        names = {"path": path, "conversions": conversions}
        if nulls is not None:
            names["nulls"] = nulls
        if value is not None:
            names["value"] = value
        resolve_columns(df, names, required=list(names), what="path table")
        codes, offsets, channels = _parse_paths(df[path], path, sep)
        conv = _counts(df, conversions)
        nul = _counts(df, nulls) if nulls is not None else np.zeros(len(df))
        val = _numeric(df, value) if value is not None else None
        return cls(codes, offsets, channels, conv, nul, val)

    def to_paths(self, *, sep: str = " > ", aggregate: bool = True) -> pd.DataFrame:
        """The paths as a table in the ChannelAttribution format.

        Parameters
        ----------
        sep : str, default " > "
            Separator written between touches.
        aggregate : bool, default True
            Sum identical paths into one row (in order of first appearance).

        Returns
        -------
        DataFrame
            ``path`` (str), ``conversions``, ``nulls``, ``value`` (float64).

        Raises
        ------
        DataError
            A channel name contains ``sep`` (the path could not be read back); the
            message names the channel and suggests another separator.
        """
        stripped = sep.strip() or sep
        clash = [c for c in self._channels if stripped in str(c)]
        if clash:
            raise DataError(
                f"Channel {clash[0]!r} contains the separator {stripped!r}, so the path could "
                f"not be read back. Pass another sep, such as sep=' | '."
            )
        names = pa.array([str(c) for c in self._channels], type=pa.large_string())
        flat = names.take(pa.array(self.touches.astype(np.int64)))
        lists = pa.LargeListArray.from_arrays(pa.array(self.offsets), flat)
        joined = pc.binary_join(lists, pa.scalar(sep, type=pa.large_string()))
        out = pd.DataFrame(
            {
                "path": np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object),
                "conversions": self.conversions,
                "nulls": self.nulls,
                "value": self.value,
            }
        )
        if aggregate:
            out = out.groupby("path", sort=False, as_index=False).sum()
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per touch.

        Returns
        -------
        DataFrame
            ``journey`` (int64 path index), ``position`` (int64, 0 = first touch),
            ``touch`` (categorical of channel names), ``time`` (datetime64[ns, UTC], when
            known), ``converted`` (bool: the journey has a conversion), ``user_id`` (when
            known).
        """
        pidx = self.path_index
        position = np.arange(self.n_touches, dtype=np.int64) - self.offsets[:-1][pidx]
        data: dict[str, Any] = {
            "journey": pidx,
            "position": position,
            "touch": pd.Categorical.from_codes(self.touches.astype(np.int64), categories=self._channels),
        }
        if self.times is not None:
            data["time"] = pd.to_datetime(self.times, utc=True)
        data["converted"] = (self.conversions > 0)[pidx]
        if self.user_ids is not None:
            data["user_id"] = np.asarray(self.user_ids)[pidx]
        return pd.DataFrame(data)


#: Rows of a path table parsed at a time (bounds the temporary Arrow arrays).
PARSE_BLOCK = 1 << 12


def _parse_paths(column: pd.Series, name: str, sep: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Touch codes, offsets and channel names of path strings, with Arrow string
    kernels, ``PARSE_BLOCK`` rows at a time, two blocks at once on two threads: split
    at ``sep``, dictionary-encode the raw touches, then trim white space on the (small)
    dictionary and merge the entries that trim to the same name. Channels are
    numbered in order of first appearance (the blocks are merged in order)."""
    try:
        arr = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise DataError(f"Column {name!r} must hold path strings such as 'a {sep} b': {err}") from None
    if pa.types.is_dictionary(arr.type):
        arr = pc.cast(arr, arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise DataError(f"Column {name!r} must hold path strings such as 'a {sep} b'; got Arrow type {arr.type}.")
    if arr.null_count:
        bad = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"Column {name!r} has a missing path at row {bad}; drop or fill it.")
    index: dict[str, int] = {}  # channel name -> code, in order of first appearance
    codes, lengths = [], []
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]  # not combined: that would copy
    starts = np.cumsum([0] + [len(c) for c in chunks])
    blocks = [(int(at) + s, c.slice(s, PARSE_BLOCK)) for at, c in zip(starts, chunks, strict=False)
              for s in range(0, len(c), PARSE_BLOCK)]
    with ThreadPoolExecutor(2) as pool:  # Arrow's kernels release the GIL: two blocks at a time
        done = _ahead(pool, lambda block: _split_encode(block[1], sep), blocks)
        for (start, _), (offsets, encoded) in zip(blocks, done, strict=True):  # a loop over blocks of rows
            raw = encoded.indices.to_numpy(zero_copy_only=False)
            trimmed = pc.utf8_trim_whitespace(encoded.dictionary).to_pylist()
            if "" in trimmed:
                empty = np.flatnonzero(np.isin(raw, [i for i, t in enumerate(trimmed) if t == ""]))[0]
                row = start + int(np.searchsorted(offsets - offsets[0], empty, side="right") - 1)
                raise DataError(
                    f"Column {name!r} row {row} has an empty touch: {column.iloc[row]!r}. "
                    f"Paths must look like 'a {sep} b'; check the separator (sep={sep!r})."
                )
            lut = np.array([index.setdefault(t, len(index)) for t in trimmed])  # a loop over distinct touches only
            codes.append(lut.astype(np.int16 if len(index) < 2**15 else np.int32)[raw])
            lengths.append(np.diff(offsets))
    offsets = np.zeros(len(arr) + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    touches = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int16)
    return touches, offsets, list(index)


def _single_nulls(conversions: PackedFloats) -> np.ndarray:
    """Nulls of single journeys: max(1 - conversions, 0), so 1 without conversion, else 0."""
    whole = conversions.whole_numbers()
    if whole is not None:  # the same bits as below, 20x faster than np.clip
        return np.asarray(whole == 0, dtype=np.float64)
    return np.clip(1.0 - conversions.decode(), 0.0, None)


def _ahead(pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Sequence[Any], n: int = 2) -> Iterator[Any]:
    """``map(fn, items)`` on the pool, at most ``n`` items ahead of the caller (memory stays bounded)."""
    pending: collections.deque[Future[Any]] = collections.deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > n:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _split_encode(block: pa.Array, sep: str) -> tuple[np.ndarray, pa.DictionaryArray]:
    """Offsets and dictionary-encoded raw touches of a block of path strings. The
    system allocator returns each block's memory at once (mimalloc, Arrow's default,
    kept about 20 MB more at 1M paths)."""
    parts = pc.split_pattern(block, pattern=sep, memory_pool=pa.system_memory_pool())
    offsets = np.asarray(parts.offsets.to_numpy(), dtype=np.int64)
    return offsets, pc.dictionary_encode(parts.flatten(), memory_pool=pa.system_memory_pool())


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.2f}"


def _as_ns(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]").view(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if isinstance(values, (pd.Series, pd.Index)) and isinstance(values.dtype, pd.DatetimeTZDtype):
        return np.asarray(pd.Series(values).dt.tz_convert("UTC").to_numpy().astype("datetime64[ns]").view(np.int64))
    raise InputTypeError(f"{name} must be datetime64 or int64 nanoseconds; got dtype {arr.dtype}.")


def _numeric(df: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DataError(
            f"Column {column!r} must be numeric; row {int(bad[0])} has {df[column].iloc[bad[0]]!r}."
        )
    return np.asarray(values, dtype=np.float64)


def _counts(df: pd.DataFrame, column: str) -> np.ndarray:
    values = _numeric(df, column)
    bad = np.flatnonzero(values < 0)
    if len(bad):
        raise DataError(f"Column {column!r} must be >= 0; row {int(bad[0])} has {values[bad[0]]!r}.")
    return values


def build_journeys(
    events: pd.DataFrame,
    *,
    conversion: str | Sequence[str] = "purchase",
    touchpoint: str = "channel",
    lookback: Any = "30D",
    value: str | None = "revenue",
    unit: str = "session",
    collapse_repeats: bool = False,
    missing: str = "label",
    drop_empty: bool = False,
    segments: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
) -> Journeys:
    """Cut each person's touches into journeys that end at a conversion.

    Parameters
    ----------
    events : DataFrame
        Canonical events with the ``touchpoint`` column (e.g. ``channel`` from
        :func:`journeyflow.assign_touchpoints`) and, for ``unit="session"``,
        ``session_id`` (sessionised with a 30-minute timeout when absent).
    conversion : str or list of str, default "purchase"
        Conversion event name(s), or the name of a boolean column of the events.
    touchpoint : str, default "channel"
        Column whose value is a touch: "channel", "touchpoint", "phase" or any
        categorical column. Missing values become the touch "(none)".
    lookback : duration or None, default "30D"
        Touches that started more than this before the conversion are left out.
        None keeps every touch.
    value : str or None, default "revenue"
        Column with each conversion's value (summed per journey); None or absent:
        the value is the number of conversions.
    unit : {"session", "event"}, default "session"
        One touch per session (the touchpoint of its first event) or per event.
    collapse_repeats : bool, default False
        Merge consecutive identical touches within a journey into one.
    missing : {"label", "drop"}, default "label"
        A touch whose ``touchpoint`` value is missing becomes the touch "(none)",
        or is left out of its journey.
    drop_empty : bool, default False
        Leave out journeys with no touch left (possible with ``missing="drop"``);
        a :class:`~journeyflow.DataQualityWarning` says how many conversions that
        removes. By default they stay, as empty paths.
    segments : list of str, optional
        Columns to carry per journey (the value at the journey's first touch).
    columns : dict, optional
        Canonical name -> your column name.

    Returns
    -------
    Journeys
        One path per journey, in order of (user, start). ``conversions`` is the
        number of conversion events in the journey's last session (0 for null
        journeys), ``value`` their summed value, ``times`` the touch start times,
        ``conversion_times`` the first conversion's time, ``user_ids`` the user.

    Notes
    -----
    Per DESIGN.md: a person's touches up to and including the session with a
    conversion form one journey; the next touch starts a new one; journeys with no
    conversion run to the end of the data and are the null paths. The total of
    ``conversions`` equals the number of conversion events in the input.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-05", "2026-01-02"], utc=True),
    ...     "event": ["view", "purchase", "view", "view"],
    ...     "channel": ["Email", "Direct", "Paid Search", "Display"]})
    >>> jr = jf.build_journeys(jf.sessionize(ev))
    >>> jr.to_paths(aggregate=False)
                 path  conversions  nulls  value
    0  Email > Direct          1.0    0.0    1.0
    1     Paid Search          0.0    1.0    0.0
    2         Display          0.0    1.0    0.0
    """
    return _build_journeys(
        events, conversion=conversion, touchpoint=touchpoint, lookback=lookback, value=value, unit=unit,
        collapse_repeats=collapse_repeats, missing=missing, drop_empty=drop_empty, segments=segments,
        columns=columns,
    )


def _build_journeys(
    events: pd.DataFrame,
    *,
    conversion: str | Sequence[str] = "purchase",
    touchpoint: str = "channel",
    lookback: Any = "30D",
    value: str | None = "revenue",
    unit: str = "session",
    collapse_repeats: bool = False,
    missing: str = "label",
    drop_empty: bool = False,
    segments: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    index: SessionIndex | None = None,
) -> Journeys:
    """:func:`build_journeys`; ``index``: the sessions' rows from ``sessions._sessionize``
    for these events (each session's first row not found again)."""
    from ._encode import factorize_sorted, first_rows, ordered_codes, sort_order, time_ns
    from ._validation import check_duration, check_option

    check_frame("events", events)
    check_option("unit", unit, ("session", "event"))
    check_option("missing", missing, ("label", "drop"))
    span = check_duration("lookback", lookback, allow_none=True)
    lookback_ns = None if span is None else int(span.value)
    optional = ["session_id", "revenue"]
    names = resolve_columns(events, columns, required=("user_id", "timestamp", "event"), optional=optional)
    if touchpoint not in events.columns:
        hint = " Run jf.assign_touchpoints(events) first." if touchpoint in ("channel", "touchpoint") else ""
        hint = " Run jf.assign_phases(events) first." if touchpoint == "phase" else hint
        raise SchemaError(
            f"Column {touchpoint!r} (touchpoint=) is not in the events. Columns present: "
            f"{[str(c) for c in events.columns]}.{hint}"
        )
    frame = events
    if unit == "session" and "session_id" not in names:
        from .sessions import sessionize

        frame = sessionize(events, columns=columns)
        names["session_id"] = "session_id"
        index = None  # (not these sessions')
    n = len(frame)
    times = time_ns(frame[names["timestamp"]])
    sess = ordered_codes(frame[names["session_id"]]) if unit == "session" else np.arange(n, dtype=np.int64)
    with ThreadPoolExecutor(1) as pool:
        # sessions: the first row (by time) gives user, start and touch; on a second thread for large logs
        known = index is not None and unit == "session"
        entries = pool.submit(first_rows, sess, times) if n >= _PARALLEL_ROWS and not known else None
        conv = _conversion_flags(frame, names, conversion)
        conv_rows = np.flatnonzero(conv)  # few: per-session sums only look at these
        del conv
        value_col = value if value is not None and value != "revenue" else names.get("revenue")
        if value is not None and value != "revenue" and value not in frame.columns:
            raise SchemaError(f"Column {value!r} (value=) is not in the events; pass value=None to count conversions.")
        if value_col is not None:
            vals = pd.to_numeric(frame[value_col].iloc[conv_rows], errors="coerce")
            conv_value = np.nan_to_num(vals.to_numpy(dtype=np.float64, na_value=np.nan), nan=0.0)
        else:
            conv_value = np.ones(len(conv_rows), dtype=np.float64)
        users, user_labels = factorize_sorted(frame[names["user_id"]])
        touch_raw = frame[touchpoint]
        touch_at, channels = _touch_codes(touch_raw)
        if known:
            assert index is not None
            rows0 = index.first
        else:
            rows0 = first_rows(sess, times) if entries is None else entries.result()
        # each session's user, start and touch: gathers at scattered rows, two on each thread
        far = pool.submit(lambda: (users[rows0], times[rows0])) if n >= _PARALLEL_ROWS else None
        s_touch, s_missing = touch_at(rows0)
        s_user, s_start = (users[rows0], times[rows0]) if far is None else far.result()
    n_codes = int(sess.max()) + 1 if n else 0
    # each entry's session code; None: entry i is session i (jf.sessionize numbers them 0, 1, ...)
    s_code = None if n_codes == len(rows0) else sess[rows0]
    c_sess = sess[conv_rows]
    del sess, touch_at  # the per-event arrays go as soon as they are used: peak memory
    # conversions per converting session (few), not per session
    conv_ids, inv = np.unique(c_sess, return_inverse=True)
    per_conv = np.bincount(inv, minlength=len(conv_ids)).astype(np.float64)
    per_value = np.bincount(inv, weights=conv_value, minlength=len(conv_ids))
    per_time = np.full(len(conv_ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(per_time, inv, times[conv_rows])
    del c_sess, inv
    if s_code is None:
        s_converts = np.zeros(len(rows0), dtype=bool)
        s_converts[conv_ids] = True
    else:
        s_converts = np.isin(s_code, conv_ids)
    # sessions in (user, start) order (already so for jf.sessionize's numbering: with its
    # index they are in order); a journey ends with each converting session
    so = None if known else sort_order(s_user, s_start)
    if so is not None and not _is_identity(so):
        s_user, s_start, s_touch, s_missing = s_user[so], s_start[so], s_touch[so], s_missing[so]
        s_converts, rows0 = s_converts[so], rows0[so]
        s_code = so if s_code is None else s_code[so]
    del so
    s_rows0 = rows0
    m = len(s_user)
    # a journey starts at each user's first session and after each converting session
    starts = np.ones(m, dtype=bool)
    np.not_equal(s_user[1:], s_user[:-1], out=starts[1:])
    starts[1:] |= s_converts[:-1]
    del s_converts
    jid = np.cumsum(starts, dtype=np.int32 if m < 2**31 - 1 else np.int64)  # (4 bytes a session)
    jid -= 1
    last = np.ones(m, dtype=bool)
    last[:-1] = starts[1:]
    first_of_j = np.flatnonzero(starts)
    del starts
    # a journey's conversions, value and first conversion time: its last session's
    j_code = np.flatnonzero(last) if s_code is None else s_code[last]
    at = np.searchsorted(conv_ids, j_code)
    found = at < len(conv_ids)
    found[found] = conv_ids[at[found]] == j_code[found]
    at[~found] = len(conv_ids)  # the entry after the converting sessions': no conversion
    j_conv = np.append(per_conv, 0.0)[at]
    j_value = np.append(per_value, 0.0)[at]
    j_conv_time = np.append(per_time, np.iinfo(np.int64).min)[at]
    del j_code, at, found, s_code, per_conv, per_value, per_time, conv_ids
    keep = np.ones(m, dtype=bool)
    if lookback_ns is not None:  # (per-session temporaries in place: peak memory)
        t_from = j_conv_time[jid]
        converted = t_from != np.iinfo(np.int64).min
        np.subtract(t_from, lookback_ns, out=t_from, where=converted)
        early = np.less(s_start, t_from, where=converted, out=np.zeros(m, dtype=bool))
        del t_from, converted
        early &= ~last
        keep &= ~early
        del early
    if missing == "drop":
        keep &= ~s_missing
    if collapse_repeats:
        idx = np.flatnonzero(keep)
        same = np.zeros(len(idx), dtype=bool)
        same[1:] = (s_touch[idx[1:]] == s_touch[idx[:-1]]) & (jid[idx[1:]] == jid[idx[:-1]])
        keep[idx[same]] = False
    del jid
    counts = np.add.reduceat(keep.view(np.uint8), first_of_j, dtype=np.int64) if m else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    seg = None
    if segments:
        seg = frame.iloc[s_rows0[first_of_j]][list(segments)].reset_index(drop=True)
    touches, touch_times = s_touch[keep], s_start[keep]
    user_ids = labels_from_codes(s_user[first_of_j], user_labels) if m else np.zeros(0, dtype=object)
    del s_touch, s_start, s_user, s_missing, keep, first_of_j  # before the journeys are packed: peak memory
    jr = Journeys(
        touches=touches,
        offsets=offsets,
        channels=channels,
        conversions=j_conv,
        nulls=(j_conv == 0).astype(np.float64),
        value=j_value,
        times=touch_times,
        conversion_times=j_conv_time,
        user_ids=user_ids,
        segments=seg,
    )
    empty = counts == 0
    if drop_empty and empty.any():
        import warnings

        from .exceptions import DataQualityWarning

        warnings.warn(
            f"{int(empty.sum()):,} journeys had no touch left (missing {touchpoint!r}) and were dropped, "
            f"with {float(j_conv[empty].sum()):,.0f} of {float(j_conv.sum()):,.0f} conversions.",
            DataQualityWarning,
            stacklevel=2,
        )
        jr = jr.take(~empty)
    return jr


#: From this many events on, build_journeys finds the sessions' first rows on a second thread.
_PARALLEL_ROWS = PARALLEL_ROWS  # (a module copy: tests set it per module)


def _is_identity(order: np.ndarray) -> bool:
    return bool(len(order) == 0 or (order[0] == 0 and order[-1] == len(order) - 1 and (np.diff(order) == 1).all()))


def _conversion_flags(frame: pd.DataFrame, names: Mapping[str, str], conversion: Any) -> np.ndarray:
    if isinstance(conversion, str) and conversion in frame.columns and pd.api.types.is_bool_dtype(frame[conversion].dtype):
        return np.asarray(frame[conversion].to_numpy(dtype=bool, na_value=False), dtype=bool)
    if isinstance(conversion, str):
        wanted = [conversion]
    elif isinstance(conversion, Sequence) and conversion and all(isinstance(c, str) for c in conversion):
        wanted = list(conversion)
    else:
        raise InputTypeError(
            f"conversion must be an event name, a list of event names or a boolean column; got {describe(conversion)}."
        )
    flags = frame[names["event"]].isin(wanted).to_numpy(dtype=bool)
    if not flags.any():
        raise DataError(
            f"No event is a conversion: {wanted} never occur in column {names['event']!r}. "
            "Pass conversion= with an event name that occurs, e.g. 'purchase'."
        )
    return np.asarray(flags, dtype=bool)


def _touch_codes(values: pd.Series) -> tuple[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], pd.Index]:
    """The touch labels (categories keep their order, others sort; missing ->
    '(none)'; labels that never occur are left out) and a function giving the codes
    and missing flags of the touches at some rows. A categorical's codes are read only
    at those rows: no per-event array is made."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        n_cats = len(values.cat.categories)
        small = np.int16 if n_cats < 2**15 - 1 else np.int32  # 2 bytes per touch, not 8
        raw = values.cat.codes.to_numpy()  # -1: missing; the column's own codes, not copied
        used = np.zeros(n_cats + 1, dtype=bool)  # channels that never occur are not touches
        used[raw] = True  # code -1 (missing) marks the last entry, "(none)"; numpy buffers the narrow index
        renumber = (np.cumsum(used) - 1).astype(small)
        cats = [str(c) for c in values.cat.categories[used[:n_cats]]] + (["(none)"] if used[n_cats] else [])

        def at(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            code = raw[rows].astype(small)
            missing = code < 0
            code[missing] = n_cats  # "(none)", after the categories
            return np.asarray(renumber[code]), missing

        return at, pd.Index(cats, dtype=object)
    text = values.astype(object).where(values.notna(), "(none)")
    codes, uniques = pd.factorize(text.astype(str), sort=True)
    missing = values.isna().to_numpy(dtype=bool)
    return (lambda rows: (codes[rows].astype(np.int64), missing[rows])), pd.Index(
        np.asarray(uniques, dtype=object), dtype=object
    )
