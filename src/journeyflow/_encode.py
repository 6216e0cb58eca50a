"""Encode once: factorise ids to integer codes, times to int64, one stable sort (private).

Every per-user computation in journeyflow runs on the arrays these helpers return:
integer codes (deterministic: numbered in sorted order of the values, so they do not
depend on input row order), timestamps as int64 nanoseconds since the epoch (UTC),
and one stable sort order by (code, time, input position).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .exceptions import DataError, InputTypeError

__all__ = ["boundaries", "factorize_sorted", "sort_order", "time_ns"]


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
        try:
            rank = np.argsort(np.argsort(np.asarray(cats), kind="stable"), kind="stable")
            uniques = pd.Index(np.asarray(cats)[np.argsort(np.asarray(cats), kind="stable")])
            return rank[codes].astype(np.int64), uniques
        except TypeError:
            return codes, pd.Index(cats)
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
    try:
        codes, uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
    except TypeError as exc:  # unhashable
        raise InputTypeError(f"Values must be hashable to be used as ids: {exc}") from None
    if codes.size and codes.min() < 0:
        raise DataError("Cannot encode missing values; validate the events first.")
    try:
        order = np.argsort(np.asarray(uniques, dtype=object) if uniques.dtype == object else np.asarray(uniques), kind="stable")
    except TypeError:  # mixed types that do not sort: order by their string form
        order = np.argsort(np.asarray([str(u) for u in uniques], dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[codes], pd.Index(uniques).take(order)


def time_ns(values: Any) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (UTC); requires datetime64 input."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
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
    if out.size and (out == np.iinfo(np.int64).min).any():
        raise DataError("timestamps contain missing values (NaT); validate the events first.")
    return out


def sort_order(codes: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    """Row order sorted by (code, time, input position): stable, ties keep input order.

    Uses one sort of a packed int64 key ``code * n + time_rank`` instead of a lexsort:
    integer sorts of packed keys are several times faster than multi-key sorts.
    """
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    n_codes = int(codes.max()) + 1
    if times is None or n < 2:
        rank = np.arange(n, dtype=np.int64)
    elif bool(np.all(times[1:] >= times[:-1])):
        rank = np.arange(n, dtype=np.int64)  # already in time order: rank = position
    else:
        by_time = np.argsort(times, kind="stable")
        if n_codes * n >= 2**62:
            return by_time[np.argsort(codes[by_time], kind="stable")]
        key = codes[by_time] * n + np.arange(n, dtype=np.int64)
        key.sort()
        return by_time[key % n]
    if n_codes * n >= 2**62:
        return np.lexsort((rank, codes)).astype(np.int64)
    key = codes.astype(np.int64) * n + rank
    key.sort()
    return key % n


def boundaries(sorted_codes: np.ndarray) -> np.ndarray:
    """Boolean mask, True where a new group starts in an array sorted by group."""
    out = np.empty(len(sorted_codes), dtype=bool)
    if len(out):
        out[0] = True
        np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=out[1:])
    return out
