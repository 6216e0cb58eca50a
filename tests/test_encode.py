"""The private encoding helpers every step shares: codes must stand for the values."""

from __future__ import annotations

import gc
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeyflow import _encode


def _same(a: object, b: object) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b  # type: ignore[return-value]


def _big_strings(n: int = 70_000, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(np.char.add("u", rng.integers(0, 5_000, n).astype(str)).astype(object), dtype="str")


def test_factorize_sorted_codes_follow_value_order_and_are_cached() -> None:
    s = _big_strings()
    assert len(s) >= _encode._CACHE_MIN_ROWS
    codes, labels = _encode.factorize_sorted(s)
    expected_labels = sorted(set(s))
    assert list(labels) == expected_labels
    # the Index pandas makes of the same Python strings (dtype included), built from Arrow
    pd.testing.assert_index_equal(labels, pd.Index(np.array(expected_labels, dtype=object)), exact=True)
    rank = {v: i for i, v in enumerate(expected_labels)}
    assert codes.tolist() == [rank[v] for v in s]
    again, _ = _encode.factorize_sorted(s.copy(deep=False))  # same Arrow data: served from the cache
    assert again is codes
    assert not codes.flags.writeable  # shared, so nobody may change it
    with pytest.raises(ValueError):
        codes[0] = 1


def test_cache_is_per_array_and_forgets_freed_arrays() -> None:
    s = _big_strings(seed=1)
    other = _big_strings(seed=2)  # other data: its own codes
    a, _ = _encode.factorize_sorted(s)
    b, labels_b = _encode.factorize_sorted(other)
    assert a is not b
    assert [labels_b[i] for i in b[:50]] == list(other[:50])
    key = (id(other.array.__arrow_array__()), "sorted")
    assert key in _encode._cache
    del other, b, labels_b
    gc.collect()
    assert key not in _encode._cache


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["b", None, "a", "b", "c", None], dtype="str"),
        pd.Series(pd.Categorical(["x", None, "y", "x"], categories=["z", "y", "x"])),
        pd.Series([3, 1, 3, 2]),
        pd.Series(["p", 1, None, "p"], dtype=object),
    ],
)
def test_value_codes_stand_for_the_values(values: pd.Series) -> None:
    codes, uniques = _encode.value_codes(values)
    assert len(codes) == len(values)
    for code, value in zip(codes, values, strict=True):
        assert _same(uniques[code], value)
    rows = np.array([3, 0, 2])
    sub, uniques_sub = _encode.value_codes(values, rows)
    for code, value in zip(sub, values.iloc[rows], strict=True):
        assert _same(uniques_sub[code], value)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 3), st.sampled_from(["x", "y"])),
        min_size=1,
        max_size=40,
    ),
    categorical=st.booleans(),
    block=st.sampled_from([1 << 20, 3]),
)
def test_factorize_rows_codes_identify_combinations(data: list[tuple[object, int, str]], categorical: bool,
                                                     block: int) -> None:
    """(codes are looked up a block of rows at a time: blocks of 3 rows change nothing)"""
    frame = pd.DataFrame(data, columns=["s", "i", "c"]).astype({"s": "str"})
    if categorical:
        frame["c"] = pd.Categorical(frame["c"], categories=["y", "x", "unused"])
    with mock.patch.object(_encode, "_ROW_BLOCK", block):
        codes, distinct = _encode.factorize_rows(frame)
    # same code <=> same combination of values (missing equal to missing)
    keys = [tuple("<NA>" if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]
    for i in range(len(keys)):
        for j in range(len(keys)):
            assert (codes[i] == codes[j]) == (keys[i] == keys[j])
    assert len(distinct) == len(set(keys))
    for code, key in zip(codes, keys, strict=True):  # each distinct row decodes to its combination
        row = distinct.iloc[code]
        assert tuple("<NA>" if pd.isna(v) else v for v in row) == key


def test_factorize_rows_compacts_wide_keys_and_takes_rows() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame({f"c{k}": rng.integers(0, 300, n).astype(str) for k in range(4)}).astype("str")
    # 300**4 combinations exceed the lookup-table limit: the key is compacted on the way
    codes, distinct = _encode.factorize_rows(frame)
    tuples = list(frame.itertuples(index=False, name=None))
    assert len(distinct) == len(set(tuples))
    assert [tuple(distinct.iloc[c]) for c in codes[:200]] == tuples[:200]
    rows = rng.permutation(n)[:700]
    sub, sub_distinct = _encode.factorize_rows(frame, rows)
    assert [tuple(sub_distinct.iloc[c]) for c in sub] == [tuples[r] for r in rows]


def test_factorize_rows_widens_the_key_when_a_column_has_many_values() -> None:
    """After a compaction, 50,000 combinations times a column of 50,000 values pass 2**31:
    the key must not wrap around in int32."""
    n = 50_000
    frame = pd.DataFrame({"a": np.arange(n), "b": np.arange(n)[::-1] * 7})
    codes, distinct = _encode.factorize_rows(frame)
    assert len(distinct) == n and len(np.unique(codes)) == n
    back = distinct.iloc[codes].reset_index(drop=True)
    assert (back["a"].to_numpy() == frame["a"].to_numpy()).all()
    assert (back["b"].to_numpy() == frame["b"].to_numpy()).all()


@pytest.mark.parametrize("threshold", [1, 10**9])  # the two-thread and the one-pass encoder
def test_dictionary_encode_both_ways(monkeypatch: pytest.MonkeyPatch, threshold: int) -> None:
    monkeypatch.setattr(_encode, "_PARALLEL_MIN_ROWS", threshold)
    values = pd.Series(["b", None, "a", "b", "c", None, "a", "d", "b"], dtype="str")
    arr = values.array.__arrow_array__()
    codes, dictionary = _encode._dictionary_encode(arr)
    words = [*dictionary.to_pylist(), None]
    assert [words[c] for c in codes] == [None if pd.isna(v) else v for v in values]
    assert len(set(dictionary.to_pylist())) == len(dictionary) == 4


@settings(max_examples=80, deadline=None)
@given(
    words=st.lists(st.text(alphabet="ab\u00e9\u4e2d\x00 ", max_size=10), min_size=1, max_size=60),
    chunk=st.integers(1, 7),
    large=st.booleans(),
)
def test_factorize_sorted_in_halves_gives_the_ranks_of_the_values(words: list[str], chunk: int, large: bool) -> None:
    """Large text columns are coded in two halves on two threads (the second half's new
    values appended to the first's, the union sorted once): the codes are the ranks of
    the values in code point order (numpy's unique), whatever the chunks; the labels
    are the sorted distinct values. Values may sit in one half only, or in both."""
    import pyarrow as pa

    kind = pa.large_string() if large else pa.string()
    arrow = pa.chunked_array([pa.array(words[i : i + chunk], kind) for i in range(0, len(words), chunk)], kind)
    codes, labels = _encode._factorize_halves_sorted(arrow)
    distinct, expected = np.unique(np.array(words, dtype=object), return_inverse=True)
    assert codes.tolist() == expected.tolist()
    assert list(labels) == distinct.tolist()


@pytest.mark.parametrize("cached", [False, True])
def test_take_rows_of_a_chunked_text_column_equals_iloc(cached: bool) -> None:
    """take_rows gathers Arrow text of several chunks (a Parquet file's row groups) from
    the cached sorted distinct values when there are any: the same values and dtype."""
    import pyarrow as pa

    words = [f"user-{i % 37:03d}" for i in range(_encode._CACHE_MIN_ROWS + 100)]
    arrow = pa.chunked_array([pa.array(words[:1000], pa.large_string()), pa.array(words[1000:], pa.large_string())])
    values = pd.Series(pd.array(arrow, dtype=pd.StringDtype("pyarrow", na_value=np.nan)), name="user_id")
    assert values.array.__arrow_array__().num_chunks == 2
    if cached:
        _encode.factorize_sorted(values)
        assert _encode.is_cached(values)
    rows = np.array([5, 0, len(words) - 1, 999, 1000, 5])
    got = _encode.take_rows(values, rows)
    pd.testing.assert_series_equal(got, values.iloc[rows].reset_index(drop=True))


@pytest.mark.parametrize("categorical", [False, True])
def test_present_codes_equal_a_sorted_factorize_of_the_values_present(categorical: bool) -> None:
    values = pd.Series(["web", None, "app", "web", "chat", None], dtype="str")
    if categorical:
        values = values.astype(pd.CategoricalDtype(["zzz unused", "web", "chat", "app"]))
    codes, labels = _encode.present_codes(values, missing="(none)")
    want_codes, want_labels = pd.factorize(values.astype(object).where(values.notna(), "(none)"), sort=True)
    assert labels == list(want_labels)  # unused categories are not labels
    assert codes.tolist() == want_codes.tolist()
    dropped, kept = _encode.present_codes(values)  # missing values: code -1
    assert kept == ["app", "chat", "web"] and dropped.tolist() == [2, -1, 0, 2, 1, -1]
    assert _encode.present_values(values) == sorted(set(values.dropna()))  # the labels alone


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4)), min_size=0, max_size=60), st.booleans(),
       st.booleans())
def test_sort_groups_is_a_stable_sort_by_code_then_time(rows: list[tuple[int, int]], presorted: bool,
                                                         with_times: bool) -> None:
    """Against sorted() on (code, time, position), and the group starts against the
    first row of each code in that order; already sorted input takes the fast path."""
    if presorted:
        rows = sorted(rows)
    codes = np.array([c for c, _ in rows], dtype=np.int64)
    times = np.array([t for _, t in rows], dtype=np.int64) if with_times else None
    order, starts = _encode.sort_groups(codes, times)
    key = [(c, t if with_times else 0, i) for i, (c, t) in enumerate(rows)]
    expected = [i for _, _, i in sorted(key)]
    assert order.tolist() == expected
    sorted_codes = codes[order]
    assert starts.tolist() == [i == 0 or sorted_codes[i] != sorted_codes[i - 1] for i in range(len(rows))]
    assert _encode.sort_order(codes, times).tolist() == expected


def _string_columns() -> dict[str, pd.Series]:
    """String id columns of several layouts: one chunk, a slice, many chunks, 32-bit
    offsets, empty strings and missing values, e-mail addresses (all ending alike)."""
    import pyarrow as pa

    rng = np.random.default_rng(3)
    ids = np.char.add("u", rng.integers(0, 300, 2_000).astype(str)).astype(object)
    ids[rng.random(len(ids)) < 0.05] = ""
    mails = np.char.add(np.char.add("p", rng.integers(0, 300, 2_000).astype(str)), "@shop.nl").astype(object)
    missing = ids.copy()
    missing[::97] = None
    large = pa.array(ids, type=pa.large_string())
    return {
        "one chunk": pd.Series(ids, dtype="str"),
        "slice": pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([large.slice(7)]))),
        "chunks": pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([large[:500], large[500:501], large[501:]]))),
        "32-bit offsets": pd.Series(pd.arrays.ArrowStringArray(pa.array(ids, type=pa.string()))),
        "missing": pd.Series(missing, dtype="str"),
        "e-mail": pd.Series(mails, dtype="str"),
        "integers": pd.Series(rng.integers(0, 300, 2_000)),
        "categorical": pd.Series(pd.Categorical(ids)),
    }


@pytest.mark.parametrize("name", list(_string_columns()))
@pytest.mark.parametrize("take", [False, True])
@pytest.mark.parametrize("n_parts", [2, 5])
def test_split_by_value_keeps_each_value_in_one_set(
    monkeypatch: pytest.MonkeyPatch, name: str, take: bool, n_parts: int
) -> None:
    monkeypatch.setattr(_encode, "_SPLIT_MIN_ROWS", 0)
    values = _string_columns()[name]
    rows = np.flatnonzero(np.arange(len(values)) % 3 != 1) if take else None
    split = _encode.split_by_value(values, rows, n_parts)
    assert split is not None  # every layout here splits into near equal parts
    assert len(split.ends) == n_parts and split.ends[-1] == len(split.order)
    assert (np.diff(split.ends) > 0).all() and split.ends[0] > 0
    wanted = np.arange(len(values)) if rows is None else rows
    assert sorted(split.order.tolist()) == list(range(len(wanted)))
    expected = values.iloc[wanted].astype(object).where(values.iloc[wanted].notna(), None).tolist()
    got = split.values.astype(object).where(split.values.notna(), None).tolist()
    assert got == expected  # the values at the rows, in row order
    parts = np.split(split.order, split.ends[:-1])
    assert all((np.diff(p) > 0).all() for p in parts)  # ascending in each part
    seen = [set(values.iloc[wanted[p]].astype(object).where(values.iloc[wanted[p]].notna(), None)) for p in parts]
    assert sum(map(len, seen)) == len(set().union(*seen))  # no value in two parts


def test_split_by_value_declines_small_lopsided_or_unsupported_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _encode.split_by_value(pd.Series(["a", "b"] * 100, dtype="str")) is None  # small
    monkeypatch.setattr(_encode, "_SPLIT_MIN_ROWS", 0)
    assert _encode.split_by_value(pd.Series(["a", "b"] * 100, dtype="str")) is not None
    # the same last two bytes and the same bytes in all: one key
    assert _encode.split_by_value(pd.Series(["abcz", "bacz"] * 100, dtype="str")) is None
    assert _encode.split_by_value(pd.Series([("a", 1), ("b", 2)] * 100, dtype=object)) is None  # no cheap key


@pytest.mark.parametrize("name", list(_string_columns()))
@pytest.mark.parametrize("threshold", [1, 10**9])  # the two-thread and the one-pass encoder
def test_row_codes_identify_the_values_at_rows(monkeypatch: pytest.MonkeyPatch, name: str, threshold: int) -> None:
    monkeypatch.setattr(_encode, "_PARALLEL_MIN_ROWS", threshold)
    values = _string_columns()[name]
    rows = np.flatnonzero(np.arange(len(values)) % 4 != 0)
    for at in (None, rows):
        codes, n_codes = _encode.row_codes(values, at)
        part = values if at is None else values.iloc[at]
        assert len(codes) == len(part)
        missing = part.isna().to_numpy()
        assert ((codes < 0) == missing).all()
        kept = part[~missing].astype(object).to_numpy()
        pairs = set(zip(codes[~missing].tolist(), kept.tolist()))
        assert len(pairs) == len({c for c, _ in pairs}) == len(set(kept.tolist()))  # one code per value
        assert codes.max(initial=-1) < n_codes


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=0, max_size=40), st.booleans())
def test_first_last_rows_and_counts(rows: list[tuple[int, int]], time_sorted: bool) -> None:
    """First and last row of each code by (time, position), and its row count, against a
    slow scan; both ways (rows in time order: one pass; else the sort)."""
    if time_sorted:
        rows = sorted(rows, key=lambda r: r[1])
    codes = np.array([c for c, _ in rows], dtype=np.int64)
    times = np.array([t for _, t in rows], dtype=np.int64)
    present = sorted({c for c, _ in rows})
    keyed = [[(t, i) for i, (c2, t) in enumerate(rows) if c2 == c] for c in present]
    first, last, counts = _encode.first_last_rows(codes, times)
    assert first.tolist() == [min(k)[1] for k in keyed]
    assert last is not None and last.tolist() == [max(k)[1] for k in keyed]
    assert _encode.first_rows(codes, times).tolist() == first.tolist()
    assert counts is not None and counts.tolist() == [len(k) for k in keyed]


_texts = st.lists(
    st.lists(st.sampled_from(["a", "b", "z", "\x00", "é", "€", "😀", "aaaaaaaa", "ab"]), max_size=6).map("".join),
    unique=True, max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_texts, st.booleans(), st.integers(0, 2))
def test_argsort_text_is_code_point_order(values: list[str], large: bool, skip: int) -> None:
    """Strings sorted by 8-byte words of their UTF-8 bytes (NUL bytes, shared prefixes
    longer than a word, multi-byte characters, a sliced array) in Python's order."""
    import pyarrow as pa

    arr = pa.array(["-"] * skip + values, type=pa.large_string() if large else pa.string()).slice(skip)
    order = _encode._argsort_text(arr)
    assert order.dtype == np.int64
    assert [values[i] for i in order] == sorted(values)
    assert _encode._argsort_values(np.array(values, dtype=object)).tolist() == order.tolist()


@given(st.integers(0, 10_000), st.integers(1, 600))
def test_block_half_splits_at_a_block_boundary_near_the_middle(n: int, block: int) -> None:
    from journeyflow._encode import block_half

    half = block_half(n, block)
    assert 0 <= half <= n
    assert half == n or half % block == 0
    assert half >= n // 2  # the first half holds at least half the rows
    assert half == n or half < n // 2 + block  # and less than a block more


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Amsterdam"])
def test_time_ns_gives_utc_nanoseconds_and_refuses_missing_times(tz: str | None) -> None:
    """int64 nanoseconds since the epoch in UTC (naive times taken as UTC), and a clear
    error for a missing time (NaT), wherever it is."""
    from journeyflow.exceptions import DataError

    stamps = pd.Series(pd.to_datetime(["2026-01-01 10:00", "2026-03-29 01:30", "1969-12-31 23:59:59.5"], format="ISO8601"))
    expected = [1767261600000000000, 1774747800000000000, -500000000]
    if tz is not None:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(tz)
    assert _encode.time_ns(stamps).tolist() == expected
    for at in range(3):
        gap = stamps.copy()
        gap.iloc[at] = pd.NaT
        with pytest.raises(DataError, match="NaT"):
            _encode.time_ns(gap)
