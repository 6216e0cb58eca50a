"""validate_events / read_events: every source kind, every reject reason, every error."""

from __future__ import annotations

import gzip
import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import journeyflow as jf
from journeyflow.exceptions import (
    DataError,
    DataQualityWarning,
    InputTypeError,
    OptionError,
    ReadError,
    SchemaError,
)

T0 = pd.Timestamp("2026-01-01T10:00:00Z")


def _raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "c"],
            "timestamp": ["2026-01-01T10:00:00Z", "2026-01-01T10:05:00Z", "2026-01-02T08:00:00+01:00", "2026-01-03"],
            "event": ["view", "buy", "view", "view"],
            "device": ["mobile", "mobile", "desktop", "tablet"],
        }
    )


def _expected_ts() -> list[pd.Timestamp]:
    return [
        T0,
        T0 + pd.Timedelta("5min"),
        pd.Timestamp("2026-01-02T07:00:00Z"),
        pd.Timestamp("2026-01-03T00:00:00Z"),
    ]


# ---------------------------------------------------------------- sources


def test_dataframe_source_keeps_index_and_extra_columns_and_does_not_mutate() -> None:
    raw = _raw().set_index(pd.Index([10, 11, 12, 13]))
    before = raw.copy()
    res = jf.validate_events(raw)
    pd.testing.assert_frame_equal(raw, before)
    ev = res.events
    assert list(ev.index) == [10, 11, 12, 13]
    assert list(ev.columns) == ["user_id", "timestamp", "event", "device"]
    assert str(ev["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert ev["timestamp"].tolist() == _expected_ts()
    assert ev["device"].tolist() == ["mobile", "mobile", "desktop", "tablet"]
    assert len(res.rejects) == 0


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz", ".jsonl", ".tsv"])
def test_file_sources(tmp_path: Path, suffix: str) -> None:
    raw = _raw()
    path = tmp_path / f"events{suffix}"
    if suffix == ".parquet":
        raw.to_parquet(path)
    elif suffix == ".csv":
        raw.to_csv(path, index=False)
    elif suffix == ".tsv":
        raw.to_csv(path, index=False, sep="\t")
    elif suffix == ".csv.gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            raw.to_csv(fh, index=False)
    else:
        raw.to_json(path, orient="records", lines=True)
    ev = jf.read_events(path)
    assert ev["timestamp"].tolist() == _expected_ts()
    assert ev["user_id"].tolist() == ["a", "a", "b", "c"]
    assert ev["device"].tolist() == ["mobile", "mobile", "desktop", "tablet"]
    assert list(ev.index) == [0, 1, 2, 3]


def test_folder_glob_and_list_read_in_name_order_with_rows_counted_across_files(tmp_path: Path) -> None:
    raw = _raw().assign(user_id=["a", None, "b", "c"])
    (tmp_path / "logs").mkdir()
    raw.iloc[:2].to_parquet(tmp_path / "logs" / "part-0.parquet")
    raw.iloc[2:].to_parquet(tmp_path / "logs" / "part-1.parquet")
    for source in (
        tmp_path / "logs",
        str(tmp_path / "logs" / "*.parquet"),
        [tmp_path / "logs" / "part-0.parquet", tmp_path / "logs" / "part-1.parquet"],
    ):
        res = jf.validate_events(source)
        assert res.events["user_id"].tolist() == ["a", "b", "c"]
        assert res.rejects["row"].tolist() == [1]
        assert list(res.events.index) == [0, 2, 3]


def test_pyarrow_table_source() -> None:
    table = pa.Table.from_pandas(_raw(), preserve_index=False)
    ev = jf.read_events(table)
    assert ev["timestamp"].tolist() == _expected_ts()


# ---------------------------------------------------------------- timestamps


def test_tz_aware_naive_and_timezone_option() -> None:
    naive = pd.DataFrame(
        {"user_id": ["a"], "timestamp": [pd.Timestamp("2026-07-01 12:00")], "event": ["x"]}
    )
    assert jf.read_events(naive)["timestamp"].iloc[0] == pd.Timestamp("2026-07-01 12:00", tz="UTC")
    local = jf.read_events(naive, timezone="Europe/Amsterdam")["timestamp"].iloc[0]
    assert local == pd.Timestamp("2026-07-01 10:00", tz="UTC")  # CEST = UTC+2
    aware = naive.assign(timestamp=naive["timestamp"].dt.tz_localize("America/New_York"))
    assert jf.read_events(aware)["timestamp"].iloc[0] == pd.Timestamp("2026-07-01 16:00", tz="UTC")


def test_iso_strings_with_and_without_offsets_under_a_timezone() -> None:
    raw = pd.DataFrame(
        {
            "user_id": ["a", "a"],
            "timestamp": ["2026-01-15T12:00:00", "2026-01-15T12:00:00+00:00"],
            "event": ["x", "y"],
        }
    )
    ts = jf.read_events(raw, timezone="Europe/Amsterdam")["timestamp"].tolist()
    assert ts == [pd.Timestamp("2026-01-15 11:00", tz="UTC"), pd.Timestamp("2026-01-15 12:00", tz="UTC")]


@pytest.mark.parametrize(
    ("values", "unit"),
    [
        ([1_767_225_600, 1_767_225_660], None),
        ([1_767_225_600_000, 1_767_225_660_000], None),
        ([1_767_225_600_000_000, 1_767_225_660_000_000], None),
        ([1_767_225_600.5, 1_767_225_660.5], None),
        ([1_767_225_600, 1_767_225_660], "s"),
        ([1_767_225_600_000, 1_767_225_660_000], "ms"),
    ],
)
def test_epoch_numbers(values: list[float], unit: str | None) -> None:
    raw = pd.DataFrame({"user_id": [1, 1], "timestamp": values, "event": ["x", "y"]})
    ts = jf.read_events(raw, timestamp_unit=unit)["timestamp"]  # type: ignore[arg-type]
    start = pd.Timestamp("2026-01-01", tz="UTC")
    frac = pd.Timedelta("500ms") if isinstance(values[0], float) else pd.Timedelta(0)
    assert ts.tolist() == [start + frac, start + pd.Timedelta("1min") + frac]


def test_datetime_of_other_resolution_is_exact() -> None:
    stamps = pd.Series(pd.to_datetime(["2026-01-01 00:00:00.123456"])).astype("datetime64[us]")
    raw = pd.DataFrame({"user_id": ["a"], "timestamp": stamps, "event": ["x"]})
    got = jf.read_events(raw)["timestamp"].iloc[0]
    assert got == pd.Timestamp("2026-01-01 00:00:00.123456", tz="UTC")


# ---------------------------------------------------------------- rejects


def test_each_reject_reason_with_row_column_value() -> None:
    raw = pd.DataFrame(
        {
            "visitor": ["a", None, " ", "b", "c", "d", "e", "f", "g", "h"],
            "ts": [
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
                None,
                "next tuesday",
                "1969-07-20T20:17:00Z",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
                "2300-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
            ],
            "what": ["v", "v", "v", "v", "v", "v", None, "buy", "v", "buy"],
            "amount": [None, None, None, None, None, None, None, "12.50", None, "lots"],
        }
    )
    res = jf.validate_events(
        raw, columns={"user_id": "visitor", "timestamp": "ts", "event": "what", "revenue": "amount"}
    )
    rj = res.rejects
    assert rj["row"].tolist() == [1, 2, 3, 4, 5, 6, 8, 9]
    assert rj["column"].tolist() == ["visitor", "visitor", "ts", "ts", "ts", "what", "ts", "amount"]
    assert rj["reason"].astype(str).tolist() == [
        "null_user_id",
        "null_user_id",
        "null_timestamp",
        "unparsable_timestamp",
        "timestamp_out_of_range",
        "null_event",
        "timestamp_out_of_range",
        "invalid_revenue",
    ]
    assert rj["value"].tolist()[3] == "next tuesday"
    assert rj["value"].tolist()[7] == "lots"
    assert set(rj["reason"].cat.categories) == {r.value for r in jf.schema.RejectReason}
    assert res.events.index.tolist() == [0, 7]
    assert res.events["revenue"].tolist()[1] == 12.5
    s = res.summary()
    assert (s.rows_in, s.rows_used, s.rows_rejected) == (10, 2, 8)
    assert s.by_reason == {
        "null_user_id": 2,
        "null_timestamp": 1,
        "unparsable_timestamp": 1,
        "timestamp_out_of_range": 2,
        "null_event": 1,
        "invalid_revenue": 1,
    }
    assert "rows_rejected=8" in repr(s)


def test_epoch_in_wrong_unit_is_out_of_range_not_a_crash() -> None:
    raw = pd.DataFrame({"user_id": ["a", "b"], "timestamp": [1_767_225_600, 1_767_225_660], "event": ["x", "y"]})
    res = jf.validate_events(raw, timestamp_unit="ns")  # 1.7 s after 1970
    assert res.rejects["reason"].astype(str).tolist() == ["timestamp_out_of_range"] * 2
    huge = raw.assign(timestamp=[9e30, 1_767_225_600])
    res = jf.validate_events(huge, timestamp_unit="s")
    assert res.rejects["row"].tolist() == [0]
    assert res.rejects["reason"].astype(str).tolist() == ["timestamp_out_of_range"]


def test_read_events_warns_raises_or_ignores() -> None:
    raw = _raw().assign(user_id=["a", None, None, "c"])
    with pytest.warns(DataQualityWarning, match=r"2 of 4 rows rejected \(2 null_user_id\); call jf.validate_events"):
        ev = jf.read_events(raw)
    assert len(ev) == 2
    with pytest.raises(DataError, match="2 of 4 rows rejected"):
        jf.read_events(raw, on_reject="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(jf.read_events(raw, on_reject="ignore")) == 2
    with pytest.raises(OptionError, match="on_reject"):
        jf.read_events(raw, on_reject="drop")  # type: ignore[arg-type]


def test_all_null_column_rejects_every_row_and_single_event_works() -> None:
    raw = _raw().assign(event=None)
    res = jf.validate_events(raw)
    assert len(res.events) == 0 and len(res.rejects) == 4
    assert set(res.rejects["reason"].astype(str)) == {"null_event"}
    one = jf.read_events(_raw().iloc[:1])
    assert len(one) == 1


def test_categorical_user_ids_with_a_blank_category() -> None:
    raw = _raw().assign(user_id=pd.Categorical(["a", "", "b", "a"]))
    res = jf.validate_events(raw)
    assert res.rejects["row"].tolist() == [1]
    assert isinstance(res.events["user_id"].dtype, pd.CategoricalDtype)


# ---------------------------------------------------------------- errors


def test_missing_column_names_it_lists_present_and_suggests() -> None:
    raw = _raw().rename(columns={"user_id": "userid"})
    with pytest.raises(SchemaError, match=r"'user_id'.*Columns present.*'userid'.*Did you mean columns=\{'user_id': 'userid'\}"):
        jf.validate_events(raw)


def test_mapping_that_clashes_with_an_existing_column() -> None:
    raw = _raw().assign(visitor=["x", "y", "z", "w"])
    with pytest.raises(SchemaError, match="also have a column named 'user_id'"):
        jf.validate_events(raw, columns={"user_id": "visitor"})


def test_missing_file_unknown_type_wrong_source_empty_input(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="No such file"):
        jf.read_events(tmp_path / "nope.parquet")
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(OptionError, match=r"unknown file type.*\.parquet"):
        jf.read_events(tmp_path / "x.xlsx")
    with pytest.raises(InputTypeError, match="must be a path"):
        jf.read_events(42)
    with pytest.raises(ReadError, match="No files match"):
        jf.read_events(str(tmp_path / "*.parquet"))
    with pytest.raises(DataError, match="no rows"):
        jf.read_events(_raw().iloc[:0])
    (tmp_path / "empty.csv").write_text("user_id,timestamp,event\n", encoding="utf-8")
    with pytest.raises(DataError, match="no rows"):
        jf.read_events(tmp_path / "empty.csv")
    (tmp_path / "blank.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        jf.read_events(tmp_path / "blank.csv")


def test_non_utf8_csv_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("user_id,timestamp,event\nJosé,2026-01-01T00:00:00Z,view\n".encode("latin-1"))
    with pytest.raises(ReadError, match=r"latin\.csv.*encoding='latin-1'"):
        jf.read_events(path)
    ev = jf.read_events(path, encoding="latin-1")
    assert ev["user_id"].tolist() == ["José"]


def test_bad_options_are_named() -> None:
    with pytest.raises(OptionError, match="timestamp_unit"):
        jf.read_events(_raw(), timestamp_unit="minutes")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="Mars/Olympus"):
        jf.read_events(_raw(), timezone="Mars/Olympus")


def test_parquet_with_timestamp_column_round_trips(tmp_path: Path) -> None:
    ev = jf.datasets.simulate_webshop(50, seed=2)
    pq.write_table(pa.Table.from_pandas(ev, preserve_index=False), tmp_path / "e.parquet")
    back = jf.read_events(tmp_path / "e.parquet")
    pd.testing.assert_series_equal(back["timestamp"], ev["timestamp"], check_names=False)
    assert back["revenue"].equals(ev["revenue"])


@pytest.mark.parametrize("index", [False, True])
def test_a_parquet_file_read_a_column_at_a_time_equals_arrows_whole_read(tmp_path: Path, index: bool) -> None:
    """A single Parquet file is read column by column on two threads (io._read_parquet_frame):
    the frame equals pyarrow's whole-table conversion, dtypes included (categoricals,
    zone-aware times, Arrow text with nulls and several row groups); a stored index
    is not taken for a column."""
    from journeyflow.io import _read_parquet_frame

    ev = jf.datasets.simulate_webshop(120, seed=3)
    ev.loc[ev.index[::7], "utm_campaign"] = None
    ev["note"] = pd.Series(np.where(np.arange(len(ev)) % 5 == 0, None, "x"), dtype="str")
    if index:
        ev.index = pd.Index([f"r{i}" for i in range(len(ev))], name="row_name")
    path = tmp_path / "e.parquet"
    pq.write_table(pa.Table.from_pandas(ev, preserve_index=index), path, row_group_size=97)
    assert pq.ParquetFile(path).num_row_groups > 1
    got = _read_parquet_frame(path)
    want = pq.read_table(path).to_pandas().reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert list(got.columns) == [c for c in ev.columns]
    assert got["note"].isna().sum() == ev["note"].isna().sum()


def test_a_damaged_parquet_file_is_a_read_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    jf.datasets.simulate_webshop(20, seed=1).to_parquet(path)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # cut in half
    with pytest.raises(ReadError, match=r"broken\.parquet"):
        jf.read_events(path)


# ---------------------------------------------------------------- properties

_user = st.one_of(st.none(), st.just(""), st.sampled_from(["a", "b", "ç", "用户"]))
_ts = st.one_of(
    st.none(),
    st.just("garbage"),
    st.just("1800-01-01T00:00:00Z"),
    st.integers(0, 10**6).map(lambda s: (T0 + pd.Timedelta(seconds=s)).isoformat()),
)
_event = st.one_of(st.none(), st.just("  "), st.sampled_from(["view", "buy"]))
_rev = st.one_of(st.none(), st.just("n/a"), st.floats(0, 1000, allow_nan=False).map(str))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_user, _ts, _event, _rev), min_size=1, max_size=40))
def test_rows_reconcile_and_kept_rows_are_the_input_rows(rows: list[tuple[object, ...]]) -> None:
    raw = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "revenue"], dtype=object)
    res = jf.validate_events(raw)
    s = res.summary()
    assert s.rows_in == len(raw) == s.rows_used + s.rows_rejected
    assert sorted([*res.events.index, *res.rejects["row"]]) == list(range(len(raw)))
    # an independent reading of each row, in the documented order of checks
    for i, (u, t, e, r) in enumerate(rows):
        if u is None or str(u).strip() == "":
            want = "null_user_id"
        elif t is None:
            want = "null_timestamp"
        elif t == "garbage":
            want = "unparsable_timestamp"
        elif str(t).startswith("1800"):
            want = "timestamp_out_of_range"
        elif e is None or str(e).strip() == "":
            want = "null_event"
        elif r == "n/a":
            want = "invalid_revenue"
        else:
            want = None
        got = res.rejects.loc[res.rejects["row"] == i, "reason"].astype(str).tolist()
        assert got == ([want] if want else [])
        if want is None:
            assert res.events.loc[i, "user_id"] == u
            assert res.events.loc[i, "timestamp"] == pd.Timestamp(str(t))
            expected_rev = np.nan if r is None else float(str(r))
            np.testing.assert_equal(res.events.loc[i, "revenue"], expected_rev)


_SPACES = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u1680", "\u2003", "\u2028", "\u3000"]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.lists(st.sampled_from(_SPACES), max_size=3).map("".join),  # blank (or empty)
            st.text(alphabet=st.sampled_from(["a", "é", "中", *_SPACES]), max_size=4),
        ),
        min_size=1, max_size=40,
    ),
    st.integers(1, 4),
    st.sampled_from([pa.string(), pa.large_string()]),
)
def test_blank_text_reads_only_likely_strings_and_agrees_with_the_kernels(
    values: list[str | None], n_chunks: int, kind: pa.DataType
) -> None:
    """The blank check runs Arrow's kernels only on strings whose first byte may begin
    whitespace: the same answer as the kernels on every string, over chunks and slices."""
    import pyarrow.compute as pc

    from journeyflow.io import _blank_text

    cut = np.linspace(0, len(values), n_chunks + 1).astype(int)
    chunks = [pa.array(values[a:b], type=kind) for a, b in itertools.pairwise(cut)]
    arr = pa.chunked_array([c.slice(0) for c in chunks], type=kind)
    series = pd.Series(pd.arrays.ArrowExtensionArray(arr))
    flat = pa.array(values, type=kind)
    expected = pc.or_(pc.equal(pc.binary_length(flat), 0), pc.utf8_is_space(flat)).fill_null(False)
    np.testing.assert_array_equal(_blank_text(series), np.asarray(expected.to_numpy(zero_copy_only=False), dtype=bool))
    sliced = pd.Series(pd.arrays.ArrowExtensionArray(flat.slice(1)))  # an offset into the buffers
    np.testing.assert_array_equal(_blank_text(sliced), np.asarray(expected.to_numpy(zero_copy_only=False)[1:], dtype=bool))
