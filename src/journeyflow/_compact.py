"""Lossless compact storage for the arrays of a :class:`~journeyflow.Journeys`.

Each ``pack_*`` function takes a plain array and returns a small object that holds
the fewest bytes from which ``decode()`` gives back exactly the same values, bit for
bit (a layout is used only after checking that it round-trips; otherwise the plain
array is kept). ``nbytes`` counts everything the object holds.

- per-path numbers (conversions, nulls, value): only the entries that are not +0.0
  when that is smaller (a bit mask says which), each in the narrowest of
  uint8/16/32, float32, float64 that holds it exactly;
- times (int64 ns): uint32 steps of the coarsest exact unit (the gcd of the times'
  distances from the earliest one) from the earliest time, or from each path's first
  touch with the few touches too far from it kept whole; int64 when neither pays
  (nanosecond times spread over more than 4.3 s, unordered paths);
- labels (user ids): the distinct labels once (Arrow strings when they are all
  ``str``) and a code per path, or, when each label's paths are consecutive, one bit
  per path saying where a new label starts.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

NAT = np.iinfo(np.int64).min
_UINT32_MAX = 2**32 - 1
# times inside ±2**62 ns (years 1824–2116) have int64 distances between them
_SAFE_NS = 2**62
# per-path time layout: paths checked first, so a layout that cannot fit gives up early
_PREFIX_PATHS = 1024


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: writes into a decoded array raise instead of being lost."""
    view: np.ndarray = a.view()
    view.flags.writeable = False
    return view


def narrowest_unsigned(values: np.ndarray) -> np.ndarray:
    """Non-negative integers in the narrowest of uint8/16/32, or int64 as they are."""
    top = int(values.max()) if values.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.int64)


def positions(mask: np.ndarray, n: int) -> np.ndarray:
    """Indices of the set bits of a packbits mask of ``n`` entries."""
    # scattering by index is about 8x faster than by boolean mask; and flatnonzero of
    # bools is 4x faster than of the uint8 bits
    return np.flatnonzero(np.unpackbits(mask, count=n).view(bool))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two float64 (or int64) arrays hold the same bits (-0.0 differs from 0.0, NaN equals itself)."""
    return bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


def _narrowest_float(values: np.ndarray) -> np.ndarray:
    """float64 values in the narrowest dtype that gives them back bit for bit."""
    if values.size == 0:
        return values.astype(np.uint8)
    lo, hi = values.min(), values.max()
    if lo >= 0 and hi <= _UINT32_MAX:  # False for NaN
        ints = values.astype(np.uint8 if hi <= 255 else np.uint16 if hi <= 65535 else np.uint32)
        if same_bits(ints.astype(np.float64), values):  # whole numbers, and no -0.0
            return ints
    with np.errstate(over="ignore"):  # beyond float32's range: inf, caught by the bit check
        single = values.astype(np.float32)
    if same_bits(single.astype(np.float64), values):
        return single
    return np.array(values)


class PackedFloats:
    """A float64 array: its entries other than +0.0, and a bit mask of where they go."""

    __slots__ = ("mask", "n", "values")

    def __init__(self, n: int, values: np.ndarray, mask: np.ndarray | None) -> None:
        self.n = n
        self.values = values  # stored entries, narrow dtype
        self.mask = mask  # packbits of the stored positions; None: every entry is stored

    def decode(self) -> np.ndarray:
        if self.mask is None:
            return np.asarray(self.values, dtype=np.float64)  # no copy when stored as float64
        out = np.zeros(self.n, dtype=np.float64)
        out[positions(self.mask, self.n)] = self.values
        return out

    def whole_numbers(self) -> np.ndarray | None:
        """The values as unsigned integers when they are stored densely so, else None."""
        return self.values if self.mask is None and self.values.dtype.kind == "u" else None

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + (0 if self.mask is None else self.mask.nbytes))


def pack_floats(values: np.ndarray) -> PackedFloats:
    """Expects a 1-d float64 array; the result shares no memory with it."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    stored = values.view(np.int64) != 0  # +0.0 is the only float whose bits are all 0
    k = int(np.count_nonzero(stored))
    if 2 * k > n:  # mostly non-zero: dense
        return PackedFloats(n, _narrowest_float(values), None)
    idx = np.flatnonzero(stored)
    narrow = _narrowest_float(values[idx])
    # one-byte values stay dense: a mask saves little there, and they decode 5x faster
    if narrow.itemsize > 1 and (n + 7) // 8 + k * narrow.itemsize < n * narrow.itemsize:
        return PackedFloats(n, narrow, np.packbits(stored))
    # +0.0 is exact in every candidate dtype, so the dtype that holds the others holds all
    return PackedFloats(n, values.astype(narrow.dtype), None)


class PackedTimes:
    """int64 times: ``base + codes * unit``, where ``base`` is one time for all or one per
    path; the few times too far from their path's first touch are kept whole (patches)."""

    __slots__ = ("base", "codes", "patch_at", "patch_times", "unit")

    def __init__(self, codes: np.ndarray, unit: int, base: int | np.ndarray,
                 patch_at: np.ndarray | None = None, patch_times: np.ndarray | None = None) -> None:
        self.codes = codes  # uint32 steps, or the int64 times themselves (unit 1, base 0)
        self.unit = unit
        self.base = base  # int, or int64 per path (the path's first touch)
        self.patch_at = patch_at  # int64 positions whose code is a placeholder, or None
        self.patch_times = patch_times  # int64 times at those positions

    def decode(self, lengths: np.ndarray | None = None) -> np.ndarray:
        """The times; ``lengths`` (touches per path) is needed by the per-path layout."""
        if self.codes.dtype == np.int64:
            return self.codes  # shared: callers hand out read-only views only
        out = self.codes.astype(np.int64)
        if self.unit != 1:
            out *= self.unit
        if isinstance(self.base, np.ndarray):
            assert lengths is not None, "per-path times need the path lengths"
            out += np.repeat(self.base, lengths)
        elif self.base:
            out += self.base
        if self.patch_at is not None and self.patch_times is not None:
            out[self.patch_at] = self.patch_times
        return out

    @property
    def per_path(self) -> bool:
        return isinstance(self.base, np.ndarray)

    @property
    def nbytes(self) -> int:
        held = (self.codes, self.base, self.patch_at, self.patch_times)
        return int(sum(a.nbytes for a in held if isinstance(a, np.ndarray)))


def _unit(times: np.ndarray, lo: int) -> int:
    """The coarsest unit every ``time - lo`` (>= 0) is a whole multiple of (1 when all are 0)."""
    # a sample settles the common nanosecond case without the full (slow) gcd pass
    g = int(np.gcd.reduce(times[:1024] - lo))
    if g == 1:
        return 1
    g = int(np.gcd(g, np.gcd.reduce(times - lo)))
    return max(g, 1)


def pack_times(times: np.ndarray, offsets: np.ndarray | None = None) -> PackedTimes:
    """Expects int64 ns; ``offsets`` (int64 CSR offsets of the paths) allow the per-path
    layout. The result may hold ``times`` itself: pass an array that nothing else writes to."""
    times = np.ascontiguousarray(times, dtype=np.int64)
    raw = PackedTimes(times, 1, 0)
    if times.size == 0:
        return PackedTimes(np.zeros(0, dtype=np.uint32), 1, 0)
    lo, hi = int(times.min()), int(times.max())
    if lo < -_SAFE_NS or hi >= _SAFE_NS:  # NaT, or distances could overflow int64
        return raw
    unit = _unit(times, lo) if hi > lo else 1
    if (hi - lo) // unit <= _UINT32_MAX:
        return PackedTimes(((times - lo) // unit).astype(np.uint32), unit, lo)
    if offsets is None or 8 * (len(offsets) - 1) >= 4 * len(times):  # per-path bases would cost more
        return raw
    last = len(times) - 1
    for stop in (min(len(offsets) - 1, _PREFIX_PATHS), len(offsets) - 1):
        # a few paths first: most data that fails, fails there
        lengths = np.diff(offsets[: stop + 1])
        # each path's first touch (an empty path takes any touch: it repeats it 0 times)
        base = times[np.minimum(offsets[:stop], last)]
        end = int(offsets[stop])
        steps = (times[:end] - np.repeat(base, lengths)) // unit
        far = steps > _UINT32_MAX  # e.g. ms times of a null path that ran for months
        n_far = int(np.count_nonzero(far))
        # 4 bytes a touch, 8 a path and 16 a patch must beat 8 bytes a touch
        if end and (int(steps.min()) < 0 or 4 * end + 8 * stop + 16 * n_far >= 8 * end):
            return raw
    if not n_far:
        return PackedTimes(steps.astype(np.uint32), unit, base)
    patch_at = np.flatnonzero(far)
    steps[patch_at] = 0
    return PackedTimes(steps.astype(np.uint32), unit, base, patch_at, times[patch_at])


class PackedLabels:
    """Labels as distinct labels plus a code per entry, or plus run starts."""

    __slots__ = ("categories", "codes", "dtype", "n", "starts")

    def __init__(
        self, n: int, categories: pa.Array | np.ndarray, codes: np.ndarray | None,
        starts: np.ndarray | None, dtype: np.dtype[Any],
    ) -> None:
        self.n = n
        self.categories = categories  # distinct labels: Arrow strings, or a numpy array
        self.codes = codes  # narrow uint code per entry; None: runs (see starts)
        self.starts = starts  # packbits of "a new label starts here"; codes are its running count - 1
        self.dtype = dtype  # of the decoded array

    def labels(self) -> np.ndarray:
        """The distinct labels as a numpy array of the decoded dtype."""
        if isinstance(self.categories, pa.Array):
            cats = np.asarray(self.categories.to_numpy(zero_copy_only=False), dtype=object)
        else:
            cats = self.categories
        return cats if cats.dtype == self.dtype else cats.astype(self.dtype)

    def index(self) -> np.ndarray:
        """The label code of every entry, int64."""
        if self.codes is not None:
            return self.codes.astype(np.int64)
        assert self.starts is not None
        return np.cumsum(np.unpackbits(self.starts, count=self.n), dtype=np.int64) - 1

    def decode(self) -> np.ndarray:
        return np.asarray(self.labels()[self.index()])

    def __len__(self) -> int:
        return self.n

    def take(self, idx: np.ndarray) -> PackedLabels:
        return labels_from_codes(self.index()[idx], self.categories, self.dtype)

    @property
    def nbytes(self) -> int:
        total = sum(a.nbytes for a in (self.codes, self.starts) if a is not None)
        if isinstance(self.categories, pa.Array):
            total += self.categories.get_total_buffer_size()
        elif self.categories.dtype == object:  # the Python objects too
            total += int(pd.Series(self.categories, dtype=object).memory_usage(deep=True, index=False))
        else:
            total += self.categories.nbytes
        return int(total)


def _arrow_strings(values: Any) -> pa.Array | None:
    """The labels as Arrow strings (int32 offsets when they fit) when they are all str, else None."""
    to_arrow = getattr(getattr(values, "array", None), "__arrow_array__", None)
    try:
        if to_arrow is not None:  # Arrow-backed pandas strings: no Python objects made
            arr = to_arrow()
        else:
            plain = np.asarray(values)
            if plain.dtype != object:
                return None
            arr = pa.array(plain, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    if pa.types.is_large_string(arr.type):
        with contextlib.suppress(pa.ArrowInvalid):  # more than 2 GiB of text: keep 8-byte offsets
            arr = arr.cast(pa.string())  # 4-byte offsets
    return arr


def labels_from_codes(codes: np.ndarray, categories: Any, dtype: np.dtype[Any] | None = None) -> PackedLabels:
    """Labels ``categories[codes]`` (categories unique; codes int, in range). ``dtype``
    of the decoded array: by default that of ``np.asarray(categories)``."""
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes)
    arrow = categories if isinstance(categories, pa.Array) else _arrow_strings(categories)
    if arrow is not None:
        cats: pa.Array | np.ndarray = arrow
        decoded_dtype = np.dtype(object) if dtype is None else dtype
    else:
        cats = np.asarray(categories)
        decoded_dtype = cats.dtype if dtype is None else dtype
    used = np.bincount(codes, minlength=len(cats)) > 0
    if not used.all():  # drop labels no entry uses (after take, or unused categories)
        keep = np.flatnonzero(used)
        codes = (np.cumsum(used) - 1)[codes]
        cats = cats.take(pa.array(keep)) if isinstance(cats, pa.Array) else cats[keep]
    step = np.diff(codes)
    if n and (step >= 0).all():
        # every label used and codes non-decreasing: steps are 0 or 1 and codes start at 0
        starts = np.ones(n, dtype=bool)
        starts[1:] = step != 0
        return PackedLabels(n, cats, None, np.packbits(starts), decoded_dtype)
    return PackedLabels(n, cats, narrowest_unsigned(codes), None, decoded_dtype)


def pack_labels(values: Any) -> PackedLabels | np.ndarray:
    """Labels factorised (codes + distinct labels); kept as a plain array when that
    could lose something (floats, missing values, unhashable or mixed objects)."""
    if isinstance(values, PackedLabels):
        return values
    if isinstance(values, (pd.Categorical, pd.CategoricalIndex)) or (
        isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype)
    ):
        cat = pd.Categorical(values)
        if (cat.codes >= 0).all():
            return labels_from_codes(cat.codes, cat.categories, np.asarray(cat.categories[:0]).dtype)
    plain = np.asarray(values)
    if plain.ndim != 1 or plain.dtype.kind not in "iuOUS":  # floats: -0.0 and NaN payloads would merge
        return np.array(plain)
    try:
        codes, uniques = pd.factorize(plain, use_na_sentinel=False)
    except TypeError:  # unhashable labels
        return np.array(plain)
    if plain.dtype == object and pd.isna(uniques).any():  # None and NaN would merge
        return np.array(plain)
    return labels_from_codes(codes, np.asarray(uniques), plain.dtype)


def labels_nbytes(labels: PackedLabels | np.ndarray) -> int:
    if isinstance(labels, PackedLabels):
        return labels.nbytes
    if labels.dtype == object:
        return int(pd.Series(labels, dtype=object).memory_usage(deep=True, index=False))
    return int(labels.nbytes)


class PackedMaybeTimes:
    """int64 times some of which are NaT: the others packed, and a bit mask of where they go."""

    __slots__ = ("mask", "n", "times")

    def __init__(self, n: int, times: PackedTimes, mask: np.ndarray | None) -> None:
        self.n = n
        self.times = times
        self.mask = mask  # packbits of the entries that are not NaT; None: all are stored

    def decode(self) -> np.ndarray:
        if self.mask is None:
            return self.times.decode()
        out = np.full(self.n, NAT, dtype=np.int64)
        out[positions(self.mask, self.n)] = self.times.decode()
        return out

    @property
    def nbytes(self) -> int:
        return int(self.times.nbytes + (0 if self.mask is None else self.mask.nbytes))


def pack_maybe_times(values: np.ndarray) -> PackedMaybeTimes:
    """Expects int64 ns with NaT (int64 min) for missing times; may hold ``values`` itself."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    n = len(values)
    present = values != NAT
    if present.all():
        return PackedMaybeTimes(n, pack_times(values), None)
    sparse = PackedMaybeTimes(n, pack_times(values[np.flatnonzero(present)]), np.packbits(present))
    return sparse if sparse.nbytes < 8 * n else PackedMaybeTimes(n, PackedTimes(values, 1, 0), None)
