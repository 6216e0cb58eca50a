"""Read and validate event logs: files or frames in, canonical events and rejects out.

Every row of the input ends up in exactly one of two places: the validated events
(canonical column names, ``timestamp`` as datetime64[ns, UTC]) or the rejects table
with the reason it was refused. Nothing is dropped silently, so
``rows_in == rows_used + rows_rejected`` always holds.
"""

from __future__ import annotations

import contextlib
import glob
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from ._encode import string_buffers
from ._validation import check_option, describe
from .exceptions import (
    DataError,
    DataQualityWarning,
    InputTypeError,
    OptionError,
    ReadError,
    SchemaError,
)
from .schema import OPTIONAL, REQUIRED, RejectReason, resolve_columns

__all__ = ["ValidationResult", "ValidationSummary", "read_events", "validate_events"]

#: File name endings read_events understands, and the reader each one uses.
SUFFIXES: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "csv",
    ".tsv.gz": "csv",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
    ".jsonl.gz": "json",
}
TIMESTAMP_UNITS = ("s", "ms", "us", "ns")
_NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
#: Timestamps outside [MIN_TIMESTAMP, MAX_TIMESTAMP) are rejected as out of range:
#: no web log predates 1990, and dates past 2100 are unit or typing mistakes.
MIN_TIMESTAMP = pd.Timestamp("1990-01-01", tz="UTC")
MAX_TIMESTAMP = pd.Timestamp("2100-01-01", tz="UTC")
_REASONS = [r.value for r in RejectReason]

Source = Any  # str | PathLike | DataFrame | pa.Table | Sequence of paths


@dataclass(frozen=True)
class ValidationSummary:
    """Row counts of a validation; ``rows_in == rows_used + rows_rejected``.

    Attributes
    ----------
    rows_in, rows_used, rows_rejected : int
        Rows read, rows kept as events, rows rejected.
    by_reason : dict of str to int
        Rejected rows per reason code (only reasons that occurred).
    """

    rows_in: int
    rows_used: int
    rows_rejected: int
    by_reason: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:  # the invariant this class exists for
        if self.rows_in != self.rows_used + self.rows_rejected or sum(self.by_reason.values()) != self.rows_rejected:
            raise AssertionError(f"validation counts do not reconcile: {self!r}")

    def to_dict(self) -> dict[str, Any]:
        """The counts as a plain dict (for JSON)."""
        return {
            "rows_in": self.rows_in,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected,
            "by_reason": dict(self.by_reason),
        }

    def describe_rejects(self) -> str:
        """'12 of 10,000 rows rejected (9 null_user_id, 3 unparsable_timestamp)'."""
        reasons = ", ".join(f"{n:,} {r}" for r, n in self.by_reason.items())
        text = f"{self.rows_rejected:,} of {self.rows_in:,} rows rejected"
        return f"{text} ({reasons})" if reasons else text

    def __repr__(self) -> str:
        return (
            f"ValidationSummary(rows_in={self.rows_in:,}, rows_used={self.rows_used:,}, "
            f"rows_rejected={self.rows_rejected:,}, by_reason={self.by_reason})"
        )


@dataclass(frozen=True)
class ValidationResult:
    """What :func:`validate_events` returns.

    Attributes
    ----------
    events : DataFrame
        The rows that passed, with canonical column names (see
        :func:`validate_events`).
    rejects : DataFrame
        One row per rejected input row: row (int64, 0-based position in the input,
        counted across files in read order), column (str, the input's column name),
        value (str, the offending value as text), reason (categorical of
        :class:`~journeyflow.schema.RejectReason` values).
    columns : dict of str to str
        Canonical name -> the input's column name, for the columns used.
    """

    events: pd.DataFrame
    rejects: pd.DataFrame
    columns: dict[str, str]

    def summary(self) -> ValidationSummary:
        """Counts that reconcile: rows in = rows used + rows rejected."""
        counts = self.rejects["reason"].value_counts(sort=False)
        by_reason = {str(r): int(counts[r]) for r in _REASONS if r in counts.index and counts[r] > 0}
        n_used, n_rej = len(self.events), len(self.rejects)
        return ValidationSummary(n_used + n_rej, n_used, n_rej, by_reason)

    def __repr__(self) -> str:
        s = self.summary()
        return f"ValidationResult(events: {s.rows_used:,} rows, rejects: {s.rows_rejected:,} rows)"


# ---------------------------------------------------------------------------
# Reading


def _kind(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIXES[suffix]
    raise OptionError(
        f"Cannot read {str(path)!r}: unknown file type. Supported endings: "
        f"{', '.join(SUFFIXES)}; or pass a pandas DataFrame or a pyarrow Table."
    )


def _expand(source: str | os.PathLike[str]) -> list[Path]:
    """Files named by a path, a glob pattern or a folder (of Parquet files)."""
    text = os.fspath(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise ReadError(f"No files match the pattern {text!r}.")
        return files
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith((".parquet", ".pq")))
        if not files:
            raise ReadError(f"The folder {text!r} holds no .parquet files.")
        return files
    if not path.exists():
        raise ReadError(f"No such file: {text!r}.")
    return [path]


def _read_file(path: Path, encoding: str) -> pa.Table:
    kind = _kind(path)
    with _reading(path, kind, encoding):
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if kind == "csv":
            import pyarrow.csv as pacsv

            delimiter = "\t" if ".tsv" in path.name.lower() else ","
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(encoding=encoding),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
            )
            # Arrow reads text that is not valid UTF-8 as binary instead of failing
            binary = [f.name for f in table.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
            if binary:
                raise ReadError(
                    f"{str(path)!r} is not valid {encoding} text (column {binary[0]!r} has bytes "
                    "that do not decode). Pass the file's encoding, e.g. encoding='latin-1'."
                )
            return table
        import pyarrow.json as pajson

        return pajson.read_json(path)


def _read_parquet_frame(path: Path) -> pd.DataFrame:
    """One Parquet file as a DataFrame, as ``pq.read_table(path).to_pandas()`` gives it
    (the index aside: files get positions), read and converted a few columns at a time.

    Arrow's table of the whole file is larger than the frame (a categorical's codes are
    int32 there, int8 in pandas): converting it at once held both. Reading the 10M-event
    sample (a 478 MB frame) peaked at 1,142-1,166 MB that way, at 946-961 MB two columns
    at a time (827-840 MB one at a time, but slower). Arrow and the conversion release
    the GIL. Text stays in Arrow's chunks (one per batch of rows): see
    :func:`journeyflow._encode.take_rows`. The readers do not pre-buffer: that holds a
    column's chunks in Arrow's default pool, whatever pool the caller set (at most
    102-105 MB there at 10M events, against 20-24 MB; as fast here)."""
    import pyarrow.parquet as pq

    with _reading(path, "parquet", "utf-8"):
        file = pq.ParquetFile(path)
        schema = file.schema_arrow
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        names = [name for name in schema.names if name not in index]
        if len(set(names)) != len(names) or not names:  # (duplicate names: Arrow selects them together)
            return file.read().to_pandas(split_blocks=True, self_destruct=True)

        def column(name: str) -> pd.Series:  # (a reader per column: one is not thread-safe)
            part = pq.ParquetFile(path, pre_buffer=False).read(columns=[name])  # text in its row groups' chunks: see _encode.take_rows
            return part.to_pandas(split_blocks=True, self_destruct=True).iloc[:, 0].reset_index(drop=True)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:  # (a file's columns, not rows)
            return pd.DataFrame(dict(zip(names, pool.map(column, names), strict=True)), copy=False)


@contextlib.contextmanager
def _reading(path: Path, kind: str, encoding: str) -> Iterator[None]:
    """Arrow's and the system's errors while reading ``path`` as the ReadError,
    DataError or OptionError a user can act on."""
    try:
        yield
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "UTF8" in msg or "utf-8" in msg.lower() or "unicode" in msg.lower():
            raise ReadError(
                f"{str(path)!r} is not valid {encoding}: {msg.splitlines()[0]}. "
                "Pass the file's encoding, e.g. encoding='latin-1'."
            ) from None
        if "Empty CSV file" in msg:
            raise DataError(f"{str(path)!r} is empty: it has no header and no rows.") from None
        raise ReadError(f"Cannot read {str(path)!r} as {kind}: {msg.splitlines()[0]}") from None
    except LookupError as exc:  # unknown codec name
        raise OptionError(f"encoding={encoding!r} is not a known text encoding ({exc}).") from None
    except OSError as exc:
        raise ReadError(f"Cannot read {str(path)!r}: {exc}") from None


def _load(source: Source, encoding: str) -> tuple[pd.DataFrame, bool]:
    """The input as a DataFrame, and whether it came from files (positional index)."""
    if isinstance(source, pd.DataFrame):
        return source, False
    if isinstance(source, pa.Table):
        return source.to_pandas(split_blocks=True), True
    if isinstance(source, (str, os.PathLike)):
        paths = _expand(source)
    elif isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)) and len(source) > 0:
        bad = [s for s in source if not isinstance(s, (str, os.PathLike))]
        if bad:
            raise InputTypeError(f"A list of sources must hold paths; got {describe(bad[0])} in it.")
        paths = [p for s in source for p in _expand(s)]
    else:
        raise InputTypeError(
            "events must be a path (Parquet, CSV, CSV.gz or JSON lines), a glob, a folder of "
            f"Parquet files, a list of paths, a pandas DataFrame or a pyarrow Table; got {describe(source)}."
        )
    if len(paths) == 1 and _kind(paths[0]) == "parquet":
        return _read_parquet_frame(paths[0]), True
    tables = [_read_file(p, encoding) for p in paths]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    del tables
    table = _one_chunk_text(table)
    # our own table: convert column by column and free each Arrow buffer as it goes
    return table.to_pandas(split_blocks=True, self_destruct=True), True


def _one_chunk_text(table: pa.Table) -> pa.Table:
    """``table`` with each text column in one chunk (pandas keeps text in Arrow).

    Arrow's ``take`` on a string column of several chunks joins all the chunks first,
    on every call: gathering 512k of 10M user ids (75 chunks, one per row group) held
    148 MB more for 0.23 s, against 0.02 s on one chunk. The rows are joined once
    here instead. A column too large for one chunk of its type stays as it is.
    """
    for i, spec in enumerate(table.schema):
        col = table.column(i)
        if col.num_chunks > 1 and (pa.types.is_string(spec.type) or pa.types.is_large_string(spec.type)):
            try:
                joined = pa.chunked_array([col.combine_chunks()], type=spec.type)
            except (pa.ArrowInvalid, pa.ArrowCapacityError):  # more than 2 GB of text in a 32-bit offset type
                continue
            del col
            table = table.set_column(i, spec, joined)
    return table


# ---------------------------------------------------------------------------
# Checks


def _blank(values: pd.Series) -> np.ndarray:
    """Null, or an empty/whitespace-only string."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # a check of the categories, not of every row
        cats = values.cat.categories
        codes = values.cat.codes.to_numpy()
        blank = np.zeros(len(cats) + 1, dtype=bool)
        if pd.api.types.is_string_dtype(cats.dtype) or cats.dtype == object:
            blank[:-1] = _blank_text(pd.Series(cats.astype(str)))
        if not blank.any():  # the usual case: only missing values (code -1), one comparison
            return np.asarray(codes < 0)
        blank[-1] = True  # the code -1 indexes the last entry
        return np.asarray(blank[codes])
    out: np.ndarray = values.isna().to_numpy(dtype=bool, copy=True)
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        out |= _blank_text(values)
    return out


def _blank_text(values: pd.Series) -> np.ndarray:
    """Empty or whitespace-only strings (Arrow kernels; non-strings are never blank)."""
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: compare their text
        text = values.astype("string").str.strip()
        return np.asarray((text == "").fillna(False).to_numpy(dtype=bool), dtype=bool)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return np.zeros(len(values), dtype=bool)
    import pyarrow.compute as pc

    # only the strings that may be blank are checked by the kernels (usually none): a
    # read of each string's first byte from the buffers (10M user ids: 0.10 -> 0.03 s)
    out = np.zeros(len(values), dtype=bool)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    start = 0
    for chunk in chunks:  # a loop over Arrow chunks
        maybe = np.flatnonzero(_may_be_blank(chunk))
        if len(maybe):
            part = chunk.take(pa.array(maybe))
            blank = pc.or_(pc.equal(pc.binary_length(part), 0), pc.utf8_is_space(part)).fill_null(False)
            out[maybe + start] = np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
        start += len(chunk)
    return out


#: Rows per block of the text checks.
_TEXT_BLOCK = 1 << 16


def _may_be_blank(chunk: pa.Array) -> np.ndarray:
    """Per string of an Arrow string array: empty, null, or starting with a byte that
    may begin whitespace: an ASCII control or space (0-32) or any non-ASCII byte (read
    from the buffers; a string starting otherwise is not blank)."""
    offsets, data = string_buffers(chunk)
    n = len(chunk)
    if data is None:  # (no bytes: every string is empty or null)
        return np.ones(n, dtype=bool)
    maybe = np.empty(n, dtype=bool)
    for start in range(0, n, _TEXT_BLOCK):  # a loop over blocks of rows: temporaries stay in the CPU caches
        stop = min(start + _TEXT_BLOCK, n)
        begin, end = offsets[start:stop], offsets[start + 1 : stop + 1]
        block = maybe[start:stop]
        first = data[np.minimum(begin, len(data) - 1)]
        np.less_equal(first, 32, out=block)  # ASCII controls and space (a superset of the spaces)
        block |= first >= 128  # any non-ASCII byte (Unicode spaces)
        block |= begin == end  # empty (a null's slot is empty or holds any bytes: checked below)
    if chunk.null_count:
        maybe |= np.asarray(chunk.is_null(), dtype=bool)
    return maybe


def _infer_unit(values: np.ndarray) -> str:
    """Unit of epoch numbers from their magnitude (see :func:`validate_events`)."""
    finite = np.abs(values[np.isfinite(values)]) if values.dtype.kind == "f" else np.abs(values)
    if finite.size == 0:
        return "s"
    m = float(np.median(finite))
    if m < 1e11:
        return "s"
    if m < 1e14:
        return "ms"
    if m < 1e17:
        return "us"
    return "ns"


def _parse_timestamps(
    raw: pd.Series, unit: str | None, timezone: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int64 ns UTC, null mask, unparsable mask); out-of-range is checked by the caller.

    Out-of-range values come back as int64 min with the unparsable mask clear, so the
    caller can tell them apart.
    """
    n = len(raw)
    null = raw.isna().to_numpy(dtype=bool, copy=True)
    bad = np.zeros(n, dtype=bool)
    oor = np.iinfo(np.int64).min
    dtype = raw.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        s = raw
        if getattr(s.dt, "tz", None) is None:
            s = s.dt.tz_localize(timezone or "UTC", ambiguous="NaT", nonexistent="NaT")
            bad |= s.isna().to_numpy(dtype=bool) & ~null
        s = s.dt.tz_convert("UTC")
        return _datetime_ns(s, null | bad), null, bad
    if pd.api.types.is_bool_dtype(dtype):
        return np.full(n, 0, dtype=np.int64), null, ~null
    if pd.api.types.is_numeric_dtype(dtype):
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan) if raw.dtype.kind == "f" or null.any() else raw.to_numpy()
        if unit is None:
            unit = _infer_unit(values[~null])
        if values.dtype.kind == "f":
            bad |= ~np.isfinite(values) & ~null
        return _scale(values, unit, null | bad), null, bad
    # text (or mixed objects): ISO-8601
    text = raw.astype("string")
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    if timezone is not None and timezone.upper() != "UTC":
        has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)\s*$", regex=True).fillna(False)
        naive = pd.to_datetime(text.where(~has_offset), errors="coerce", format="ISO8601")
        if getattr(naive.dt, "tz", None) is not None:  # all values carried offsets
            naive = naive.dt.tz_localize(None)
        local = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        parsed = parsed.where(has_offset.to_numpy(dtype=bool), local)
    unparsed = parsed.isna().to_numpy(dtype=bool) & ~null
    # pandas gives NaT both for text it cannot read and for dates out of its range:
    # those that look like ISO dates are out of range, not unparsable.
    looks_iso = text.str.match(r"^\s*[+-]?\d{4,}-\d\d-\d\d").fillna(False).to_numpy(dtype=bool)
    out_of_range = unparsed & looks_iso & _year_outside(text)
    bad |= unparsed & ~out_of_range
    ns = _datetime_ns(parsed, null | bad | out_of_range)
    if out_of_range.any():
        ns = ns.copy()
        ns[out_of_range] = oor
    return ns, null, bad


def _datetime_ns(stamps: pd.Series, skip: np.ndarray) -> np.ndarray:
    """tz-aware datetimes of any resolution as int64 ns UTC (exact integer scaling)."""
    if isinstance(stamps.dtype, pd.DatetimeTZDtype) and stamps.dtype.unit == "ns":
        return np.asarray(stamps.array.asi8)  # held as UTC ns already: no conversion pass, no copy
    naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    unit = np.datetime_data(naive.dtype)[0]
    if unit == "ns":  # no scaling: NaT is int64 min, which the caller rejects as null
        return np.asarray(naive.view(np.int64))
    return _scale(naive.view(np.int64), unit, skip)


def _year_outside(text: pd.Series) -> np.ndarray:
    """Year outside what datetime64[ns] holds (1678-2261), for ISO-looking text."""
    years = pd.to_numeric(text.str.extract(r"^\s*([+-]?\d{4,})-", expand=False), errors="coerce")
    y = np.nan_to_num(years.to_numpy(dtype=np.float64, na_value=np.nan), nan=2000.0)
    return np.asarray((y < 1678) | (y > 2261), dtype=bool)


def _scale(values: np.ndarray, unit: str, skip: np.ndarray) -> np.ndarray:
    """Epoch values in ``unit`` to int64 ns; overflow -> int64 min (out of range)."""
    factor = _NS_PER_UNIT[unit]
    out = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)
    ok = ~skip
    if values.dtype.kind == "f":
        v = values[ok] * factor
        fits = np.abs(v) < 9.2e18
        idx = np.flatnonzero(ok)
        out[idx[fits]] = np.round(v[fits]).astype(np.int64)
        return out
    v = values[ok].astype(np.int64, copy=False)
    limit = np.iinfo(np.int64).max // factor
    fits = np.abs(v) <= limit
    idx = np.flatnonzero(ok)
    out[idx[fits]] = v[fits] * factor
    return out


def _revenue(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, invalid mask): present but not a finite number."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        vals = np.full(len(raw), np.nan)
        return vals, raw.notna().to_numpy(dtype=bool)
    if raw.dtype == np.float64:  # NaN already stands for missing: no copy
        vals = raw.to_numpy()
        return vals, np.isinf(vals)
    if pd.api.types.is_numeric_dtype(raw.dtype):
        vals = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        return vals, np.isinf(vals)
    num = pd.to_numeric(raw.astype("string").str.strip().replace("", pd.NA), errors="coerce")
    vals = num.to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~_blank(raw)
    return vals, present & ~np.isfinite(vals)


def validate_events(
    source: Source,
    columns: Mapping[str, str] | None = None,
    *,
    timestamp_unit: Literal["s", "ms", "us", "ns"] | None = None,
    timezone: str | None = None,
    encoding: str = "utf-8",
) -> ValidationResult:
    """Read and check an event log; split it into valid events and rejected rows.

    Parameters
    ----------
    source : path, glob, folder, list of paths, DataFrame or pyarrow Table
        Files: Parquet (``.parquet``, ``.pq``), CSV (``.csv``, ``.csv.gz``, ``.tsv``),
        JSON lines (``.jsonl``, ``.ndjson``, ``.json``); a folder is read as all the
        Parquet files below it; several files are concatenated in sorted-name order.
    columns : dict, optional
        Canonical name -> your column name, e.g. ``{"user_id": "visitor", "timestamp":
        "ts"}``. Mapped columns are renamed to the canonical names in the output.
    timestamp_unit : {"s", "ms", "us", "ns"}, optional
        Unit of numeric (epoch) timestamps. When None it is inferred from the median
        magnitude: below 1e11 seconds, below 1e14 milliseconds, below 1e17
        microseconds, else nanoseconds.
    timezone : str, optional
        Time zone of naive timestamps (datetime64 without zone, or ISO strings
        without offset), e.g. ``"Europe/Amsterdam"``. Default: naive means UTC.
        Values with an offset or zone are always converted to UTC.
    encoding : str, default "utf-8"
        Text encoding of CSV files.

    Returns
    -------
    ValidationResult
        ``events``: the input's rows that passed, every column kept, mapped columns
        renamed to canonical names, ``timestamp`` as datetime64[ns, UTC], ``revenue``
        (when present) as float64. The index is the input's (a DataFrame's own
        index; row positions for files and Tables). ``rejects``: row, column,
        value, reason. ``summary()``: counts that reconcile.

    Raises
    ------
    SchemaError
        A required column (user_id, timestamp, event) is missing; the message names
        it, lists the columns present and suggests the closest one.
    ReadError
        A file does not exist, cannot be read, or is not valid ``encoding`` text.
    OptionError
        Unknown file type, timestamp unit or encoding.
    InputTypeError
        ``source`` is not one of the supported kinds.
    DataError
        The input has no rows.

    Notes
    -----
    Each rejected row appears once, with the first check it fails, in this order:
    ``null_user_id`` (null or blank), ``null_timestamp``, ``unparsable_timestamp``
    (not ISO-8601, not a number, not a datetime; or a local time that does not
    exist in ``timezone``), ``timestamp_out_of_range`` (before 1990-01-01 or from
    2100-01-01 on, or beyond what datetime64[ns] can hold: usually a wrong unit),
    ``null_event`` (null or blank), ``invalid_revenue`` (present but not a finite
    number). The caller's frame is never modified.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> raw = pd.DataFrame({"visitor": ["a", None, "b"],
    ...                     "ts": ["2026-01-01T10:00:00Z", "2026-01-01T10:05:00Z", "soon"],
    ...                     "event": ["view", "view", "buy"]})
    >>> chk = jf.validate_events(raw, columns={"user_id": "visitor", "timestamp": "ts"})
    >>> chk.summary()
    ValidationSummary(rows_in=3, rows_used=1, rows_rejected=2, by_reason={'null_user_id': 1, 'unparsable_timestamp': 1})
    >>> chk.rejects[["row", "column", "reason"]]
       row   column                reason
    0    1  visitor          null_user_id
    1    2       ts  unparsable_timestamp
    """
    if timestamp_unit is not None:
        check_option("timestamp_unit", timestamp_unit, TIMESTAMP_UNITS)
    if timezone is not None:
        _check_timezone(timezone)
    frame, from_files = _load(source, encoding)
    names = resolve_columns(frame, columns, required=REQUIRED, optional=OPTIONAL)
    if len(frame) == 0:
        raise DataError(
            f"The events have no rows (columns: {[str(c) for c in frame.columns]}); "
            "there is nothing to validate."
        )
    _check_no_clash(frame, names)
    n = len(frame)
    reason = np.full(n, -1, dtype=np.int8)  # index into _REASONS, -1 = kept
    column = np.full(n, -1, dtype=np.int8)  # index into the checked columns

    def mark(mask: np.ndarray, code: RejectReason, col: int) -> None:
        if not mask.any():  # the usual case: one pass that stops at the first hit, no temporaries
            return
        m = mask & (reason < 0)
        reason[m] = _REASONS.index(code.value)
        column[m] = col

    checked = ["user_id", "timestamp", "event", "revenue"]
    mark(_blank(frame[names["user_id"]]), RejectReason.NULL_USER_ID, 0)
    ns, null_ts, bad_ts = _parse_timestamps(frame[names["timestamp"]], timestamp_unit, timezone)
    mark(null_ts, RejectReason.NULL_TIMESTAMP, 1)
    mark(bad_ts, RejectReason.UNPARSABLE_TIMESTAMP, 1)
    if len(ns) and (int(ns.min()) < MIN_TIMESTAMP.value or int(ns.max()) >= MAX_TIMESTAMP.value):
        outside = (ns < MIN_TIMESTAMP.value) | (ns >= MAX_TIMESTAMP.value)  # (rows in range: two reductions only)
        mark(outside & ~null_ts & ~bad_ts, RejectReason.TIMESTAMP_OUT_OF_RANGE, 1)
    mark(_blank(frame[names["event"]]), RejectReason.NULL_EVENT, 2)
    revenue = None
    if "revenue" in names:
        revenue, bad_rev = _revenue(frame[names["revenue"]])
        mark(bad_rev, RejectReason.INVALID_REVENUE, 3)

    rejected = reason >= 0
    rows = np.flatnonzero(rejected)
    rejects = _rejects_table(frame, names, checked, rows, column[rows], reason[rows])

    out = frame.rename(columns={v: k for k, v in names.items() if v != k})
    if from_files:
        out.index = pd.RangeIndex(n)
    assign: dict[str, Any] = {}
    if str(out["timestamp"].dtype) != "datetime64[ns, UTC]":  # else it is already right
        stamps = pd.DatetimeIndex(np.where(rejected, 0, ns).view("datetime64[ns]")).tz_localize("UTC")
        assign["timestamp"] = pd.Series(stamps, index=out.index)
    if revenue is not None and out["revenue"].dtype != np.float64:  # (float64 is kept as it is)
        assign["revenue"] = pd.Series(revenue, index=out.index)
    if assign:
        out = out.assign(**assign)
    if rows.size:
        out = out.loc[~rejected]
    return ValidationResult(events=out, rejects=rejects, columns=names)


def _rejects_table(
    frame: pd.DataFrame,
    names: dict[str, str],
    checked: list[str],
    rows: np.ndarray,
    column: np.ndarray,
    reason: np.ndarray,
) -> pd.DataFrame:
    values = np.empty(len(rows), dtype=object)
    cols = np.empty(len(rows), dtype=object)
    for i, canonical in enumerate(checked):  # a loop over the four checked columns
        sel = column == i
        if not sel.any():
            continue
        actual = names[canonical]
        cols[sel] = str(actual)
        raw = frame[actual].iloc[rows[sel]]
        values[sel] = raw.astype("string").fillna("").to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "row": rows.astype(np.int64),
            "column": pd.array(cols, dtype=object),
            "value": pd.array(values, dtype=object),
            "reason": pd.Categorical.from_codes(reason.astype(np.int64), categories=_REASONS),
        }
    )


def _check_no_clash(frame: pd.DataFrame, names: dict[str, str]) -> None:
    for canonical, actual in names.items():
        if actual != canonical and canonical in frame.columns:
            raise SchemaError(
                f"columns maps {canonical!r} to {actual!r}, but the events also have a column "
                f"named {canonical!r}. Rename or drop that column, or map {canonical!r} to it."
            )


def _check_timezone(timezone: str) -> None:
    try:
        pd.Timestamp("2026-01-01").tz_localize(timezone)
    except Exception as exc:  # pytz/zoneinfo raise different types
        raise OptionError(
            f"timezone={timezone!r} is not a known time zone ({type(exc).__name__}); "
            "use an IANA name such as 'Europe/Amsterdam' or 'UTC'."
        ) from None


def read_events(
    source: Source,
    columns: Mapping[str, str] | None = None,
    *,
    timestamp_unit: Literal["s", "ms", "us", "ns"] | None = None,
    timezone: str | None = None,
    encoding: str = "utf-8",
    on_reject: Literal["warn", "raise", "ignore"] = "warn",
) -> pd.DataFrame:
    """Read an event log into a validated DataFrame (the notebook shortcut).

    Same reading and checks as :func:`validate_events`; returns only the events.

    Parameters
    ----------
    source, columns, timestamp_unit, timezone, encoding
        As in :func:`validate_events`.
    on_reject : {"warn", "raise", "ignore"}, default "warn"
        When rows are rejected: warn with a :class:`DataQualityWarning` that gives
        the counts by reason, raise :class:`DataError` with the same text, or say
        nothing.

    Returns
    -------
    DataFrame
        The validated events (see :func:`validate_events`).

    Raises
    ------
    DataError
        ``on_reject="raise"`` and some rows were rejected; or no rows at all.
    SchemaError, ReadError, OptionError, InputTypeError
        As in :func:`validate_events`.

    Examples
    --------
    >>> import pandas as pd, journeyflow as jf
    >>> raw = pd.DataFrame({"user_id": [1, 1], "timestamp": [1767225600, 1767225660],
    ...                     "event": ["view", "buy"]})
    >>> jf.read_events(raw)["timestamp"].tolist()
    [Timestamp('2026-01-01 00:00:00+0000', tz='UTC'), Timestamp('2026-01-01 00:01:00+0000', tz='UTC')]
    """
    check_option("on_reject", on_reject, ("warn", "raise", "ignore"))
    result = validate_events(
        source, columns, timestamp_unit=timestamp_unit, timezone=timezone, encoding=encoding
    )
    if len(result.rejects) and on_reject != "ignore":
        text = f"{result.summary().describe_rejects()}; call jf.validate_events(...) to inspect them"
        if on_reject == "raise":
            raise DataError(text + ".")
        warnings.warn(text, DataQualityWarning, stacklevel=2)
    return result.events
