"""Encode once: factorise ids to integer codes, times to int64, one stable sort (private).

Every per-user computation in journeyflow runs on the arrays these helpers return:
integer codes (deterministic: numbered in sorted order of the values, so they do not
depend on input row order), timestamps as int64 nanoseconds since the epoch (UTC),
and one stable sort order by (code, time, input position).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .exceptions import DataError, InputTypeError

__all__ = [
    "ValueSplit",
    "boundaries",
    "counting_argsort",
    "factorize_rows",
    "factorize_sorted",
    "first_last_rows",
    "first_rows",
    "group_starts",
    "is_cached",
    "last_rows",
    "narrow_codes",
    "ordered_codes",
    "present_codes",
    "present_values",
    "row_codes",
    "small_int",
    "sort_groups",
    "sort_order",
    "split_by_value",
    "take_rows",
    "time_argsort",
    "time_ns",
    "value_codes",
]


def factorize_sorted(values: pd.Series | np.ndarray) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (int64) numbered in sorted order of the distinct values.

    Integer ids are not hashed: codes are ``value - min`` when that range is small
    enough, so the code order is the value order. Strings and other objects are
    factorised and then renumbered by the sorted uniques (the sort costs only the
    number of distinct values). Categoricals are renumbered by their categories'
    sorted order. Nulls must have been removed before.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        codes = s.cat.codes.to_numpy().astype(np.int64)
        if codes.size and codes.min() < 0:
            raise DataError("Cannot encode missing values; validate the events first.")
        order = _argsort_values(cats)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order), dtype=np.int64)
        return rank[codes], pd.Index(cats).take(order)
    if dtype.kind in "iu":
        arr = s.to_numpy()
        if arr.size == 0:
            return np.zeros(0, np.int64), pd.Index(arr)
        lo, hi = int(arr.min()), int(arr.max())
        span = hi - lo + 1
        if span <= max(4 * arr.size, 1 << 20):
            # dense range: codes are offsets from the minimum, then compacted
            shifted = (arr.astype(np.int64) - lo)
            present = np.zeros(span, dtype=bool)
            present[shifted] = True
            compact = np.cumsum(present, dtype=np.int64) - 1
            return compact[shifted], pd.Index(np.flatnonzero(present) + lo)
        codes, uniques = pd.factorize(arr, sort=True)
        return codes.astype(np.int64), pd.Index(uniques)
    arrow = _arrow_strings(s)
    if arrow is not None and len(arrow) >= _CACHE_MIN_ROWS:
        return _cached(arrow, lambda: _factorize_arrow_sorted(arrow))  # type: ignore[no-any-return]
    try:
        codes, uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
    except TypeError as exc:  # unhashable
        raise InputTypeError(f"Values must be hashable to be used as ids: {exc}") from None
    if codes.size and codes.min() < 0:
        raise DataError("Cannot encode missing values; validate the events first.")
    order = _argsort_values(uniques)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[codes], pd.Index(uniques).take(order)


#: From this many events on, the pipeline steps (touchpoints, phases, journeys) split
#: their work over two threads: measured at 10M, 1M and 600k events it paid, at 300k
#: and 100k it did not (thread start and the worker's own heap cost more).
PARALLEL_ROWS = 1 << 19

_A = TypeVar("_A")
_B = TypeVar("_B")


def both(here: Callable[[], _A], beside: Callable[[], _B], threads: bool) -> tuple[_A, _B]:
    """``(here(), beside())``; with ``threads``, ``beside`` runs on a second thread
    while ``here`` runs on this one (numpy and Arrow release the GIL). Put the work
    that allocates less on ``beside``: memory a worker thread frees goes back to the
    system, and the next call faults it in again."""
    if not threads:
        return here(), beside()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(beside)
        return here(), pending.result()


# Arrow arrays are immutable, so the codes of one are valid for as long as it lives.
# Pipelines pass the same user id column (shared by pandas' copy-on-write frames)
# through sessionize, assign_phases, build_journeys, funnels ...: it is hashed once.
_CACHE_MIN_ROWS = 1 << 16
_PARALLEL_MIN_ROWS = 4_000_000
_CACHE_MAX = 8
_cache: dict[tuple[int, str], tuple[weakref.ref[Any], np.ndarray, Any]] = {}
_cache_lock = threading.Lock()


def _cached(key_obj: Any, compute: Any, tag: str = "sorted") -> Any:
    """``compute()`` -> (codes, extra), memoised on the identity of the immutable
    ``key_obj`` and ``tag`` (a few entries; dropped when ``key_obj`` is freed)."""
    key = (id(key_obj), tag)
    hit = _lookup(key_obj, tag)
    if hit is not None:
        return hit
    codes, uniques = compute()
    codes.flags.writeable = False  # shared between callers: nobody may change it

    def forget(_ref: Any, key: tuple[int, str] = key) -> None:
        _cache.pop(key, None)

    ref = weakref.ref(key_obj, forget)
    with _cache_lock:
        while len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = (ref, codes, uniques)
    return codes, uniques


def _lookup(key_obj: Any, tag: str) -> tuple[np.ndarray, Any] | None:
    """The cached result for ``key_obj`` (the same live object) and ``tag``, else None."""
    with _cache_lock:
        hit = _cache.get((id(key_obj), tag))
    return (hit[1], hit[2]) if hit is not None and hit[0]() is key_obj else None


def is_cached(values: pd.Series) -> bool:
    """Whether :func:`factorize_sorted` would serve ``values`` from the cache."""
    arrow = _arrow_strings(values) if not isinstance(values.dtype, pd.CategoricalDtype) else None
    return arrow is not None and _lookup(arrow, "sorted") is not None


def _factorize_arrow_sorted(arrow: pa.ChunkedArray) -> tuple[np.ndarray, pd.Index]:
    if len(arrow) >= _PARALLEL_MIN_ROWS and not arrow.null_count:
        return _factorize_halves_sorted(arrow)
    codes, uniques = _dictionary_encode(arrow, wide=False)  # ranks gathered straight from Arrow's int32 codes
    order = _argsort_values(uniques)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[codes], _text_index(uniques.take(pa.array(order)))


def _factorize_halves_sorted(arrow: pa.ChunkedArray) -> tuple[np.ndarray, pd.Index]:
    """:func:`_factorize_arrow_sorted` of a large column without nulls: each half of
    the rows hashed on its own thread; the second half's distinct values looked up
    among the first's (those not there appended), the union sorted once, and each
    half's codes turned into ranks on its thread, straight into the result. At 10M
    user ids 0.68-0.79 s, against 0.80-1.07 s for Arrow's unification of the two
    dictionaries (which rewrites every code), their concatenation and one gather."""
    from concurrent.futures import ThreadPoolExecutor

    n = len(arrow)
    half = -(-n // 2)
    with ThreadPoolExecutor(2) as pool:
        parts = list(pool.map(lambda i: pc.dictionary_encode(arrow.slice(i * half, half)).combine_chunks(), (0, 1)))
        first, second = parts[0].dictionary, parts[1].dictionary
        found = pc.index_in(second, value_set=first)  # null where a value is new in the second half
        new = np.flatnonzero(found.is_null().to_numpy(zero_copy_only=False))
        where = np.asarray(found.fill_null(-1).to_numpy(), dtype=np.int64)  # second's entries in the union
        where[new] = len(first) + np.arange(len(new))
        union = pa.concat_arrays([first, second.take(pa.array(new))])
        order = _argsort_values(union)
        rank = np.empty(len(order), dtype=np.int32 if len(order) < 2**31 else np.int64)
        rank[order] = np.arange(len(order))
        ranks = (rank[: len(first)], rank[where])
        codes = np.empty(n, dtype=np.int64)

        def to_ranks(i: int) -> None:
            idx = parts[i].indices.to_numpy(zero_copy_only=False)
            codes[i * half : i * half + len(idx)] = ranks[i][idx]

        list(pool.map(to_ranks, (0, 1)))
    return codes, _text_index(union.take(pa.array(order)))


#: The dtype pandas gives an Index of Python strings (pandas 3: the Arrow-backed "str").
_TEXT_DTYPE = pd.Index(np.array(["a"], dtype=object)).dtype


def _text_index(arr: pa.Array) -> pd.Index:
    """``pd.Index`` of Arrow strings, as pandas makes it from the same Python strings,
    without making them (885k user ids: 0.03 s instead of 0.23 s)."""
    if isinstance(_TEXT_DTYPE, pd.StringDtype):
        return pd.Index(pd.array(arr, dtype=_TEXT_DTYPE))
    return pd.Index(arr.to_numpy(zero_copy_only=False))


def ordered_codes(values: pd.Series) -> np.ndarray:
    """Codes in value order, not necessarily consecutive: ``value - min`` for integer
    ids whose range is small (no hashing, no gather; int64 ids from 0 are not copied:
    the result is then a read-only view of the column), else :func:`factorize_sorted`."""
    if values.dtype.kind in "iu" and len(values):
        arr = values.to_numpy()
        lo = int(arr.min())
        if int(arr.max()) - lo < max(4 * len(arr), 1 << 20):
            if lo == 0 and arr.dtype == np.int64:  # e.g. jf.sessionize's ids: the column itself, read-only
                view: np.ndarray = arr.view()
                view.flags.writeable = False
                return view
            return np.asarray(np.subtract(arr, lo, dtype=np.int64))
    return factorize_sorted(values)[0]


def take_rows(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """``values.iloc[rows]`` with an index from 0, the dtype kept. A text column of
    several Arrow chunks (as read from Parquet: one per row group) is gathered from its
    sorted distinct values when :func:`factorize_sorted` has them cached: Arrow's
    ``take`` would first join all the chunks, on every call (10M user ids: 0.2-0.4 s
    and 140 MB each time)."""
    to_arrow = getattr(values.array, "__arrow_array__", None)
    arrow = to_arrow() if to_arrow is not None else None
    if isinstance(arrow, pa.ChunkedArray) and arrow.num_chunks > 1:
        hit = _lookup(arrow, "sorted")  # (only text columns are cached)
        if hit is not None:
            codes, labels = hit
            return pd.Series(labels.take(codes[rows]), name=values.name).astype(values.dtype)
    return values.iloc[rows].reset_index(drop=True)


def _arrow_strings(s: pd.Series) -> pa.ChunkedArray | None:
    """The column's Arrow string data when it is Arrow-backed (no copy), else None."""
    to_arrow = getattr(s.array, "__arrow_array__", None)
    if to_arrow is None:
        return None
    arr = to_arrow()
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    if arr.null_count:
        raise DataError("Cannot encode missing values; validate the events first.")
    return arr


def _dictionary_encode(arr: pa.ChunkedArray, *, wide: bool = True) -> tuple[np.ndarray, pa.Array]:
    """Dictionary-encode an Arrow string column: (codes in order of first appearance,
    the dictionary); missing values get the code ``len(dictionary)``. Codes are int64,
    or Arrow's own integer type with ``wide=False``.

    Large columns are hashed in two halves on two threads (Arrow releases the GIL),
    then the halves' dictionaries are unified: 0.78 s instead of 1.17 s for 10M
    user ids here. Below a few million rows one pass is faster (unifying two
    dictionaries of high-cardinality ids costs about as much as hashing them).
    """
    n = len(arr)
    if n >= _PARALLEL_MIN_ROWS:
        from concurrent.futures import ThreadPoolExecutor

        half = -(-n // 2)
        with ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(lambda i: pc.dictionary_encode(arr.slice(i * half, half)).combine_chunks(), (0, 1)))
        chunks = pa.chunked_array(parts).unify_dictionaries().chunks
    else:
        chunks = [pc.dictionary_encode(arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0))]
    dictionary = chunks[0].dictionary
    indices = [c.indices for c in chunks]
    if arr.null_count:
        indices = [pc.fill_null(i, pa.scalar(len(dictionary), i.type)) for i in indices]
    codes = np.concatenate([i.to_numpy(zero_copy_only=False) for i in indices])
    return (codes.astype(np.int64, copy=False) if wide else codes), dictionary


def value_codes(
    values: pd.Series, rows: np.ndarray | None = None, *, cache: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes for a column's values and the values they stand for; fast, unordered.

    Returns ``(codes, uniques)`` with ``uniques[codes]`` equal to the values (as
    objects; missing values have a code of their own, standing for None/NaN).
    Categoricals use their codes (no hashing), Arrow strings are dictionary-encoded
    once per array (see :func:`_cached`), anything else is
    hash-factorised. ``uniques`` may hold values that do not occur (unused
    categories). With ``rows``, only those positions are coded. ``cache=False`` for
    a temporary column that will not be seen again.
    """
    codes, uniques, shift = _raw_codes(values, rows, cache)
    return codes.astype(np.int64) + shift, uniques


def narrow_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`value_codes`, with the codes in their narrowest integer type (a
    categorical's own codes, not even copied): ``uniques[codes]`` are the values, where
    the code -1 (a categorical's missing value) indexes the last entry of ``uniques``."""
    codes, uniques, shift = _raw_codes(values, None)
    if shift:  # uniques[0] stands for the code -1: move it to the end, where -1 indexes
        uniques = np.roll(uniques, -shift)
    return codes, uniques


def _raw_codes(values: pd.Series, rows: np.ndarray | None, cache: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """``(codes, uniques, shift)`` with ``uniques[codes + shift]`` the values; codes in
    their narrowest integer type (a categorical's own codes are not even copied)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        raw = values.cat.codes.to_numpy()  # -1 for missing
        if rows is not None:
            raw = raw[rows]
        cats = np.asarray(dtype.categories, dtype=object)
        return raw, np.concatenate([np.array([None], dtype=object), cats]), 1
    to_arrow = getattr(values.array, "__arrow_array__", None)
    if to_arrow is not None:
        arr = to_arrow()
        if isinstance(arr, pa.Array):
            arr = pa.chunked_array([arr])
        if (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) and len(arr):

            def encode() -> tuple[np.ndarray, np.ndarray]:
                codes, dictionary = _dictionary_encode(arr)
                uniques = np.concatenate([dictionary.to_numpy(zero_copy_only=False).astype(object), [None]])
                return codes, uniques

            codes, uniques = _cached(arr, encode, "values") if cache and len(arr) >= _CACHE_MIN_ROWS else encode()
            return (codes if rows is None else codes[rows]), uniques, 0
    part = values if rows is None else values.iloc[rows]
    codes, found = pd.factorize(part, use_na_sentinel=False)
    return codes, np.asarray(found, dtype=object), 0


def row_codes(values: pd.Series, rows: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Integer codes for the values at ``rows`` (positions; all rows when None) and how
    many distinct values there are: equal values, equal codes, numbered in any order.

    For when only "who is who" matters: no labels are built and nothing is cached, so
    Arrow strings are gathered (as strings, one copy) and dictionary-encoded (on two
    threads for millions of rows, see :func:`_dictionary_encode`), and the codes stay
    in Arrow's int32 when they can. Missing values get the code -1. The codes are an
    integer array of any width.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        raw = values.cat.codes.to_numpy()
        return (raw if rows is None else raw[rows]), len(dtype.categories)
    to_arrow = getattr(values.array, "__arrow_array__", None)
    arrow = None if to_arrow is None else to_arrow()
    if isinstance(arrow, pa.Array):
        arrow = pa.chunked_array([arrow])
    if arrow is not None and (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        part = arrow if rows is None else arrow.take(pa.array(np.asarray(rows, dtype=np.int64)))
        if len(part) >= _PARALLEL_MIN_ROWS:  # two threads (see _dictionary_encode)
            codes, dictionary = _dictionary_encode(part)
            if part.null_count:
                codes[codes == len(dictionary)] = -1
            return codes, len(dictionary)
        encoded = pc.dictionary_encode(part.combine_chunks() if part.num_chunks != 1 else part.chunk(0))
        indices = encoded.indices
        if indices.null_count:
            indices = pc.fill_null(indices, pa.scalar(-1, indices.type))
        return indices.to_numpy(zero_copy_only=False), len(encoded.dictionary)
    part_values = values if rows is None else values.iloc[rows]
    codes, uniques = pd.factorize(part_values, use_na_sentinel=True)
    return codes, len(uniques)


#: Below this many rows a column is not split (the gathers cost more than the parts
#: save).
_SPLIT_MIN_ROWS = 1 << 20
#: ... nor when its largest part would hold more than this many times an equal share.
_SPLIT_SLACK = 1.5
_KEYS = 1 << 16  # split keys are in [0, _KEYS)


class ValueSplit(NamedTuple):
    """Rows grouped in parts by value (see :func:`split_by_value`)."""

    order: np.ndarray  # positions into the rows split, part after part, ascending in each part
    ends: np.ndarray  # (n_parts,) int64: where each part ends in ``order``
    values: pd.Series  # the values at the rows split, in their order (gathered once; the
    # column itself when all rows are split): a part's values are ``values`` at its positions


def split_by_value(values: pd.Series, rows: np.ndarray | None = None, n_parts: int = 2) -> ValueSplit | None:
    """The rows (``rows``, ascending positions, or all rows) grouped in ``n_parts``
    parts of about equal size, all rows of one value in the same part; None when that
    is not cheap or not worth it.

    Parts are chosen from a 16-bit key read off the value, without hashing it: for
    Arrow strings the last two bytes, or when those are too alike (e-mail addresses)
    the XOR of all bytes and the last one, read from the Arrow buffers; for integers
    and categoricals the low 16 bits of the value or code. Keys are cut into ranges of
    about equal rows. None for other dtypes, fewer than ``_SPLIT_MIN_ROWS`` rows, or
    when the largest part would exceed ``_SPLIT_SLACK`` equal shares. The values at
    ``rows`` are gathered once, in row order (one pass through memory), so that each
    part then gathers from a smaller array: a per-value computation can run on small
    parts, on several threads.
    """
    n = len(values) if rows is None else len(rows)
    if n < max(_SPLIT_MIN_ROWS, 1) or n_parts < 2 or not _has_key(values):
        return None
    from concurrent.futures import ThreadPoolExecutor

    # two halves of the rows, each gathered, keyed and grouped on its own thread
    halves = [slice(0, n // 2), slice(n // 2, n)]
    with ThreadPoolExecutor(2) as pool:
        compacts = list(pool.map(_gathered, [values] * 2, [rows] * 2, halves))
        for how in ("last", "all"):  # the last bytes split most ids cheaply, not e-mail addresses
            keys = list(pool.map(_split_key, compacts, [how] * 2))
            counts = np.bincount(keys[0], minlength=_KEYS) + np.bincount(keys[1], minlength=_KEYS)
            # each key goes to the part where its first row would fall in key order
            part_of_key = np.minimum((np.cumsum(counts) - counts) * n_parts // n, n_parts - 1).astype(small_int(n_parts))
            sizes = np.bincount(part_of_key, weights=counts, minlength=n_parts)
            if sizes.max() <= _SPLIT_SLACK * n / n_parts:
                break
        else:
            return None

        def group(key: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
            part = part_of_key[key]
            order = counting_argsort(part, n_parts)  # stable: positions stay ascending in each part
            order += start
            return order, np.cumsum(np.bincount(part, minlength=n_parts))

        grouped = list(pool.map(group, keys, [0, n // 2]))
    pieces = []
    for p in range(n_parts):  # a loop over parts: each part's positions from both halves
        for order, ends in grouped:
            pieces.append(order[(ends[p - 1] if p else 0) : ends[p]])
    ends = np.cumsum(sizes.astype(np.int64))  # rows per part: the counts of its keys
    return ValueSplit(np.concatenate(pieces), ends, _joined(values, rows, compacts))


def _has_key(values: pd.Series) -> bool:
    """Whether :func:`_split_key` has a key for the column's dtype."""
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) or dtype.kind in "iu" or _arrow_array(values) is not None


def _joined(values: pd.Series, rows: np.ndarray | None, halves: list[pd.Series]) -> pd.Series:
    """The two halves from :func:`_gathered` as one column (no copy of Arrow strings;
    the column itself when all rows were taken)."""
    if rows is None:
        return values
    arrow = [_arrow_array(h) for h in halves]
    if arrow[0] is not None and arrow[1] is not None:
        chunks = [c for a in arrow if a is not None for c in a.chunks]
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(chunks, type=arrow[0].type)), copy=False)
    return pd.concat(halves, ignore_index=True)


def _arrow_array(values: pd.Series) -> pa.ChunkedArray | None:
    """The column's Arrow string data (no copy; missing values allowed), else None."""
    to_arrow = getattr(values.array, "__arrow_array__", None)
    arrow = None if to_arrow is None else to_arrow()
    if isinstance(arrow, pa.Array):
        arrow = pa.chunked_array([arrow])
    if arrow is None or not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        return None
    return arrow


def _gathered(values: pd.Series, rows: np.ndarray | None, part: slice = slice(None)) -> pd.Series:
    """The values at ``rows[part]`` (at positions ``part`` when ``rows`` is None), in
    row order; Arrow strings are gathered by Arrow. The dtype is one :func:`_has_key`
    accepts."""
    at = None if rows is None else np.asarray(rows[part], dtype=np.int64)
    arrow = _arrow_array(values)
    if arrow is None:  # integers, categoricals
        return values.iloc[part if at is None else at].reset_index(drop=True)
    taken = arrow[part] if at is None else arrow.take(pa.array(at))
    return pd.Series(pd.arrays.ArrowExtensionArray(taken), copy=False)


def _split_key(values: pd.Series, how: str = "last") -> np.ndarray:
    """Per row: a key in [0, _KEYS) that depends on the value only (see
    :func:`split_by_value`; ``how`` as in :func:`_string_key`); the dtype is one
    :func:`_has_key` accepts."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return np.asarray(values.cat.codes.to_numpy().astype(np.int64) & (_KEYS - 1))
    arrow = _arrow_array(values)
    if arrow is None:  # integers
        return np.asarray(values.to_numpy().astype(np.int64) & (_KEYS - 1))
    keys = []
    for chunk in arrow.chunks:  # a loop over Arrow chunks
        key = _string_key(chunk, how)
        if chunk.null_count:  # a missing value's slot may hold any bytes
            key[np.asarray(chunk.is_null(), dtype=bool)] = 0
        keys.append(key)
    return np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)


def _string_key(chunk: pa.Array, how: str) -> np.ndarray:
    """A 16-bit key of each string of an Arrow string array, from its buffers: its
    last two bytes (``how="last"``; missing bytes of short strings count as 0), or the
    XOR of all its bytes and its last byte (``how="all"``)."""
    offsets, data = string_buffers(chunk)
    n = len(chunk)
    if data is None:
        return np.zeros(n, dtype=np.int64)
    start, end = offsets[:-1], offsets[1:]
    length = end - start
    short = np.flatnonzero(length < 2)  # usually none: then no masking at all
    if how == "last":
        pos = end - 1
        if len(short):
            np.maximum(pos, 0, out=pos)
        key: np.ndarray = data[pos].astype(np.uint16)
        pos -= 1
        if len(short):
            np.maximum(pos, 0, out=pos)
        key |= data[pos].astype(np.uint16) << 8
        key[short] = np.where(length[short] == 1, key[short] & 0xFF, 0)  # missing bytes count as 0
        return key
    nonempty = length > 0
    key = np.zeros(n, dtype=np.int64)  # XOR of each string's bytes
    if nonempty.any():
        # each non-empty string runs up to the next non-empty one's start
        key[nonempty] = np.bitwise_xor.reduceat(data[offsets[0] : offsets[-1]], start[nonempty] - offsets[0])
    key |= data[np.maximum(end - 1, 0)].astype(np.int64) << 8
    key[length == 0] = 0
    return key


def string_buffers(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """An Arrow string array's offsets (``len + 1`` of them, from the array's own
    offset) and its bytes, as numpy views of its buffers (no copy); the bytes are None
    when there are none."""
    _, off_buf, data_buf = chunk.buffers()
    wide = pa.types.is_large_string(chunk.type)
    offsets = np.frombuffer(off_buf, dtype=np.int64 if wide else np.int32, count=chunk.offset + len(chunk) + 1)
    data = None if data_buf is None or data_buf.size == 0 else np.frombuffer(data_buf, dtype=np.uint8)
    return offsets[chunk.offset :], data


def block_half(n: int, block: int) -> int:
    """Where the second of two halves of ``n`` rows starts, at a multiple of ``block``
    (``n`` when the first half fits in one block): rows split for two threads that each
    work a block at a time."""
    return min(-(-(n // 2) // block) * block, n)


def small_int(n_values: int) -> type[np.signedinteger[Any]]:
    """The narrowest signed integer type holding codes -1 .. n_values (less memory traffic)."""
    for t in (np.int8, np.int16, np.int32):
        if n_values < np.iinfo(t).max:
            return t
    return np.int64


def present_codes(values: pd.Series, missing: str | None = None) -> tuple[np.ndarray, list[Any]]:
    """Codes numbered in sorted order of the values that occur, and those values.

    Like ``pd.factorize(values, sort=True)`` but from :func:`value_codes` (no hashing
    of categoricals or of an already encoded Arrow column). Missing values get the
    label ``missing`` (sorted with the rest), or the code -1 when ``missing`` is None.
    The codes are of the narrowest signed type that holds them (a byte a row for a few
    labels, not eight).
    """
    raw, uniques, shift = _raw_codes(values, None)  # narrow codes: no full-length int64 temporaries
    keep, names = _present(raw, uniques, shift, missing)
    rank = np.full(len(uniques), -1, dtype=small_int(len(keep) + 1))
    rank[keep] = np.arange(len(keep))
    return np.roll(rank, -shift)[raw], names


def present_values(values: pd.Series) -> list[Any]:
    """The distinct values that occur (missing values left out), sorted: the labels of
    :func:`present_codes` without a full-length array of codes."""
    return _present(*_raw_codes(values, None), None)[1]


def _present(raw: np.ndarray, uniques: np.ndarray, shift: int, missing: str | None) -> tuple[np.ndarray, list[Any]]:
    """Positions in ``uniques`` of the values that occur in ``raw`` (codes shifted by
    ``shift``), in sorted order of the values, and those values (see :func:`present_codes`)."""
    used = np.zeros(len(uniques), dtype=bool)
    used[raw] = True  # code -1 (missing, shift 1) marks the last entry: rolled back below
    used = np.roll(used, shift)
    labels = [None if pd.isna(u) else u for u in uniques]
    keep = [i for i in np.flatnonzero(used) if labels[i] is not None or missing is not None]
    names = [labels[i] if labels[i] is not None else missing for i in keep]
    order = sorted(range(len(keep)), key=lambda j: str(names[j]))  # a sort of the distinct values
    return np.asarray(keep, dtype=np.int64)[order], [names[j] for j in order]


def _compact(key: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, distinct)`` with ``distinct[codes] == key``: a lookup table over the
    key range when it is small (no hashing, distinct keys in order), else a hash.
    ``key`` is the caller's own: the codes may be written into it."""
    if span <= max(4 * len(key), 1 << 20):
        present = np.zeros(span, dtype=bool)
        present[key] = True
        distinct = np.flatnonzero(present)
        table = np.cumsum(present, dtype=np.int32 if span < 2**31 else np.int64)  # codes: 4 bytes a row when they fit
        table -= 1
        if table.dtype != key.dtype:
            return table[key], distinct
        for start in range(0, len(key), _ROW_BLOCK):  # a loop over blocks of rows: codes in place of the keys
            key[start : start + _ROW_BLOCK] = table[key[start : start + _ROW_BLOCK]]
        return key, distinct
    codes, distinct = pd.factorize(key, sort=False)
    return codes.astype(np.int64, copy=False), np.asarray(distinct, dtype=np.int64)


def factorize_rows(frame: pd.DataFrame, rows: np.ndarray | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer code per row for its combination of values, and the distinct rows.

    Codes every column (see :func:`value_codes`) and packs the codes into one
    int64 key, compacting it (:func:`_compact`) whenever its range would grow past
    a few times the number of rows; the distinct rows are decoded from the distinct
    keys, so no row of the frame is gathered. Missing values are values like any
    other (None in the distinct rows). With ``rows`` (positions), only those rows are
    coded: the integer codes, not the values, are gathered.
    """
    n = len(frame) if rows is None else len(rows)
    limit = max(4 * n, 1 << 20)
    # int32 while the key range stays below ``limit`` < 2**31 (half the memory traffic);
    # past it the key is compacted into int64 codes first
    key = np.zeros(n, dtype=np.int32 if limit < 2**31 else np.int64)
    span = 1
    steps: list[tuple[str, Any]] = []  # ("col", (name, k, uniques)) or ("compact", distinct keys)
    offset = 0  # the codes' shifts, added once instead of per row and column
    for col in frame.columns:
        c, uniques, shift = _raw_codes(frame[col], rows)
        k = max(len(uniques), 1)
        if span * k > limit:
            key += offset
            offset = 0
            key, distinct = _compact(key, span)
            span = max(len(distinct), 1)
            steps.append(("compact", distinct))
        if span * k >= 2**31 and key.dtype != np.int64:  # (after a compaction: the next column has many values)
            key = key.astype(np.int64)
        key *= k
        key += c
        offset = offset * k + shift
        span *= k
        steps.append(("col", (col, k, uniques)))
    key += offset
    codes, distinct = _compact(key, span)
    out: dict[Any, np.ndarray] = {}
    dk = distinct
    for kind, info in reversed(steps):  # a loop over columns, on the distinct keys only
        if kind == "compact":
            dk = info[dk]
        else:
            col, k, uniques = info
            out[col] = uniques[dk % k]
            dk = dk // k
    table = pd.DataFrame({col: out[col] for col in frame.columns}, index=pd.RangeIndex(len(distinct)))
    return codes, table


def _argsort_values(uniques: Any) -> np.ndarray:
    """Stable argsort of distinct values; strings by :func:`_argsort_text`, several
    times faster than sorting Python strings (an Arrow array is sorted as it is)."""
    if isinstance(uniques, (pa.Array, pa.ChunkedArray)) and (
        pa.types.is_string(uniques.type) or pa.types.is_large_string(uniques.type)
    ) and uniques.null_count == 0:
        return _argsort_text(uniques)
    values = np.asarray(uniques, dtype=object) if not isinstance(uniques, np.ndarray) else uniques
    try:
        arr = pa.array(values, from_pandas=True)
        if (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) and arr.null_count == 0:
            return _argsort_text(arr)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return np.asarray(pc.sort_indices(arr).to_numpy(), dtype=np.int64)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        pass
    try:
        return np.argsort(values, kind="stable").astype(np.int64)
    except TypeError:  # mixed types that do not compare: order by type name, then text
        keys = np.array([f"{type(v).__name__}\x00{v}" for v in values], dtype=object)
        return np.argsort(keys, kind="stable").astype(np.int64)


def _argsort_text(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Argsort (int64) of Arrow strings without nulls, in byte order (which is code point
    order, Python's): equal strings come in any order, so it is stable for distinct values.

    The first 8 bytes of each string, read from the Arrow buffers as one big-endian
    integer, are sorted as integers; rows still tied are then ordered by their next 8
    bytes within their tie, and so on, and finally by length (a prefix sorts first).
    For 885k user ids: 0.07 s, against 0.22 s for Arrow's own sort of the strings."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    n = len(arr)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    view, bytes_ = string_buffers(arr)
    offsets = view.astype(np.int64)
    data = np.zeros(0, np.uint8) if bytes_ is None else bytes_
    starts, lengths = offsets[:-1], np.diff(offsets)
    key = _text_word(data, starts, lengths, 0)
    order = np.argsort(key).astype(np.int64)  # (not stable: ties are ordered below)
    key = key[order]
    pos = np.arange(n, dtype=np.int64)  # sorted positions still tied with a neighbour
    tie = np.zeros(n, dtype=np.int64)  # per position in pos: which tie (ascending)
    depth = 0
    while True:  # a loop over 8-byte words: a few rounds, ties are rare past the first words
        new_tie = np.empty(len(pos), dtype=bool)
        new_tie[0] = True
        new_tie[1:] = (key[1:] != key[:-1]) | (tie[1:] != tie[:-1])
        tie = np.cumsum(new_tie) - 1
        tied = np.bincount(tie)[tie] > 1
        if not tied.any():
            return order
        pos, tie = pos[tied], tie[tied]
        rows = order[pos]
        depth += 8
        if depth >= int(lengths[rows].max()):  # every byte compared: shorter first, and done
            order[pos] = rows[np.lexsort((lengths[rows], tie))]
            return order
        key = _text_word(data, starts[rows], lengths[rows], depth)
        within = np.lexsort((key, tie))  # by tie, then the next word: ties stay where they were
        order[pos], key = rows[within], key[within]


def _text_word(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, depth: int) -> np.ndarray:
    """Bytes ``depth .. depth + 7`` of each string (0 past its end) as one uint64, the
    first byte most significant: integer order is byte order."""
    out = np.zeros(len(starts), dtype=np.uint64)
    last = max(len(data) - 1, 0)
    for i in range(8):  # a loop over the 8 bytes of a word
        at = starts + (depth + i)
        byte = data[np.minimum(at, last)] if len(data) else np.zeros(len(starts), dtype=np.uint8)
        byte = np.where(depth + i < lengths, byte, 0).astype(np.uint64)
        out <<= np.uint64(8)
        out |= byte
    return out


def time_ns(values: Any) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (UTC); requires datetime64 input."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype) and s.dtype.unit == "ns":
        out = s.array.asi8  # tz-aware values are held as UTC: no conversion, no copy
    else:
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        if s.dtype.kind != "M":
            raise InputTypeError(
                f"timestamps must be datetime64; got dtype {s.dtype}. Parse them with "
                "jf.validate_events(...) or pd.to_datetime(..., utc=True) first."
            )
        arr = s.to_numpy()
        if arr.dtype != np.dtype("datetime64[ns]"):
            arr = arr.astype("datetime64[ns]")
        out = arr.view(np.int64)
    if out.size and int(out.min()) == np.iinfo(np.int64).min:  # NaT (a minimum: no temporary mask)
        raise DataError("timestamps contain missing values (NaT); validate the events first.")
    return np.asarray(out, dtype=np.int64)


def counting_argsort(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Stable argsort of integer codes in [0, n_codes): a counting sort, O(n + n_codes)."""
    return _counting_sort(codes, n_codes)[0]


def _counting_sort(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(stable argsort, count of each code) by pandas' group sorter (the C counting
    sort ``groupby`` uses); numpy's stable sort and no counts where that private
    helper is unavailable."""
    try:
        from pandas._libs.algos import groupsort_indexer
    except ImportError:  # pragma: no cover - depends on the pandas version
        return np.argsort(codes, kind="stable").astype(np.int64, copy=False), None
    order, counts = groupsort_indexer(np.asarray(codes, dtype=np.intp), int(n_codes))
    return np.asarray(order, dtype=np.int64), np.asarray(counts[1:], dtype=np.int64)  # counts[0]: code -1


def time_argsort(times: np.ndarray) -> np.ndarray | None:
    """Stable argsort of int64 times, or None when they are already non-decreasing.

    A counting sort on the top ~20 bits of the time range puts rows into buckets,
    then numpy's stable sort (timsort) finishes the nearly sorted array: about 3x
    faster than a plain stable argsort of random times, and exact.
    """
    n = len(times)
    if n < 2 or bool(np.all(times[1:] >= times[:-1])):
        return None
    lo = int(times.min())
    span = int(times.max()) - lo + 1
    n_buckets_bits = min(20, max(n.bit_length() - 2, 1))
    shift = max(span.bit_length() - n_buckets_bits, 0)
    bucket = (times - lo) >> shift
    by_bucket = counting_argsort(bucket, int(bucket.max()) + 1)
    del bucket
    return by_bucket[np.argsort(times[by_bucket], kind="stable")]


def sort_order(codes: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    """Row order sorted by (code, time, input position): stable, ties keep input order.

    ``codes`` are int64 in [0, n_codes) (see :func:`factorize_sorted`). Two stable
    passes: by time (skipped when rows are already in time order), then a counting
    sort by code, so the cost is O(n + n_codes) plus the time sort.
    """
    return sort_groups(codes, times)[0]


def sort_groups(codes: np.ndarray, times: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sort_order` and :func:`group_starts` of the codes, the second from the
    counts the counting sort finds anyway (no second pass over the codes)."""
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    head = slice(0, 4096)  # a cheap look first: most unsorted logs show it at once
    if _is_sorted(codes[head], None if times is None else times[head]) and _is_sorted(codes, times):
        return np.arange(n, dtype=np.int64), boundaries(codes)  # e.g. a log kept in (user, time) order
    n_codes = int(codes.max()) + 1
    by_time = None if times is None else time_argsort(times)
    order, counts = _counting_sort(codes if by_time is None else codes[by_time], n_codes)
    if by_time is not None:
        order = by_time[order]
    return np.asarray(order, dtype=np.int64), group_starts(codes) if counts is None else _starts(counts, n)


#: Rows per block where a running minimum or maximum of row numbers is taken per code.
_ROW_BLOCK = 1 << 20


def first_rows(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The first row of each code present by (time, input position), in code order:
    ``order[starts]`` of :func:`sort_groups`. When the rows are in time order already
    (logs usually are) that is each code's first row, found in one pass without a sort."""
    return first_last_rows(codes, times, last=False, count=False)[0]


def first_last_rows(
    codes: np.ndarray, times: np.ndarray, *, last: bool = True, count: bool = True
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(first rows, last rows, row counts) of each code present, in code order, by
    (time, input position); see :func:`first_rows`. ``last``/``count`` False: None there."""
    n = len(codes)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, (empty if last else None), empty
    if bool(np.all(times[1:] >= times[:-1])):  # in time order: each code's first and last row
        first = np.full(int(codes.max()) + 1, n, dtype=np.int64)
        ends = np.full(len(first), -1, dtype=np.int64) if last else None
        for start in range(0, n, _ROW_BLOCK):  # a loop over blocks of rows (no full-length row numbers)
            stop = min(start + _ROW_BLOCK, n)
            rows = np.arange(start, stop, dtype=np.int64)
            np.minimum.at(first, codes[start:stop], rows)
            if ends is not None:
                np.maximum.at(ends, codes[start:stop], rows)
        present = first < n
        if ends is not None:
            ends = np.asarray(ends[present])
        counts = np.bincount(codes, minlength=len(first))[present] if count else None
        return np.asarray(first[present]), ends, counts
    order, starts = sort_groups(codes, times)
    at = np.flatnonzero(starts)
    counts = np.diff(np.append(at, n))
    ends = np.asarray(order[at + counts - 1]) if last else None
    return np.asarray(order[at]), ends, counts


def last_rows(codes: np.ndarray, times: np.ndarray, n_codes: int) -> np.ndarray:
    """Per code in [0, n_codes): its last row by (time, input position), -1 for codes
    that do not occur. A log in time order needs no sort: a running maximum of the
    row numbers per code, a block of rows at a time (no full-length temporaries)."""
    n = len(codes)
    out = np.full(n_codes, -1, dtype=np.int64)
    if n == 0:
        return out
    if bool(np.all(times[1:] >= times[:-1])):
        for start in range(0, n, _ROW_BLOCK):  # a loop over blocks of rows
            stop = min(start + _ROW_BLOCK, n)
            np.maximum.at(out, codes[start:stop], np.arange(start, stop, dtype=np.int64))
        return out
    order, starts = sort_groups(codes, times)
    at = np.flatnonzero(starts)
    ends = np.append(at[1:], n) - 1
    out[codes[order[at]]] = order[ends]
    return out


def _starts(counts: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask over n rows sorted by code: True at the first row of each code present."""
    out = np.zeros(n, dtype=bool)
    starts = np.cumsum(counts) - counts
    out[starts[counts > 0]] = True
    return out


def _is_sorted(codes: np.ndarray, times: np.ndarray | None) -> bool:
    """Whether rows are already in (code, time) order (ties in input order trivially)."""
    step = np.diff(codes)
    if not (step >= 0).all():
        return False
    return times is None or bool(((step > 0) | (np.diff(times) >= 0)).all())


def group_starts(codes: np.ndarray, n_rows: int | None = None) -> np.ndarray:
    """Boolean mask over rows sorted by code: True at the first row of each code.

    Computed from the code counts, so the sorted codes need not be materialised.
    """
    n = len(codes) if n_rows is None else n_rows
    return _starts(np.bincount(codes), n) if n else np.zeros(0, dtype=bool)


def boundaries(sorted_codes: np.ndarray) -> np.ndarray:
    """Boolean mask, True where a new group starts in an array sorted by group."""
    out = np.empty(len(sorted_codes), dtype=bool)
    if len(out):
        out[0] = True
        np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=out[1:])
    return out
