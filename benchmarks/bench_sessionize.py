"""Benchmark: jf.sessionize against DuckDB and Polars on the same in-memory data.

Usage::

    python benchmarks/bench_sessionize.py            # 1M and 10M events
    python benchmarks/bench_sessionize.py --sizes 1e6

Two logs per size, generated with numpy into a temporary folder (never committed):

- ``int-sorted``: integer user ids, rows in time order (a typical exported log);
- ``str-shuffled``: 16-character string user ids, rows in random order.

Each (log, implementation) runs in a fresh subprocess: it loads the Parquet file,
then times the operation (median of 3) and samples peak RSS above the loaded data.
The reference engines get the timestamp as int64 nanoseconds and may return rows in
any order; journeyflow returns every row and column in input order.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_table, machine, measure

TIMEOUT_NS = 30 * 60 * 10**9


def generate(n: int, kind: str, path: Path, seed: int = 0) -> None:
    """Sessions of a few events each, for about n / 6 sessions and n / 15 users."""
    rng = np.random.default_rng(seed)
    n_sessions = max(n // 6, 1)
    n_users = max(n // 15, 1)
    per = rng.geometric(1 / 6, n_sessions)
    per = per[np.cumsum(per) <= n]
    per = np.append(per, n - per.sum()) if per.sum() < n else per
    per = per[per > 0]
    sess_user = rng.integers(0, n_users, len(per))
    sess_start = rng.integers(0, 60 * 86400, len(per)).astype(np.int64) * 10**9
    user = np.repeat(sess_user, per)
    first = np.cumsum(per) - per
    # offsets inside a session: 0 for the first event, then exponential gaps (mean 90 s)
    offset = np.cumsum(rng.exponential(90.0, per.sum()) * 1e9)
    offset -= np.repeat(offset[first], per)
    ts = np.repeat(sess_start, per) + offset.astype(np.int64) + 1_767_225_600 * 10**9
    if kind == "int-sorted":
        order = np.argsort(ts, kind="stable")
        uid = user[order]
    else:
        order = rng.permutation(len(ts))
        ids = np.array([f"{x:016x}" for x in rng.integers(0, 2**63, n_users)], dtype=object)
        uid = ids[user[order]]
    df = pd.DataFrame(
        {
            "user_id": uid,
            "timestamp": pd.to_datetime(ts[order], unit="ns", utc=True),
            "event": np.array(["view", "cart", "purchase"])[rng.integers(0, 3, len(ts))],
        }
    )
    df.to_parquet(path, index=False)


def run_one(path: str, impl: str) -> dict[str, float]:
    """Load the file and time one implementation; runs inside a subprocess."""
    df = pd.read_parquet(path)
    if impl == "journeyflow":
        import journeyflow as jf

        def fn():
            return jf.sessionize(df, timeout="30min")

        secs, peak, out = measure(fn)
        n_sessions = int(out["session_id"].max()) + 1
    elif impl == "duckdb":
        import duckdb

        ts = df["timestamp"].dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view("int64")
        ev = pd.DataFrame({"user_id": df["user_id"], "ts": ts, "event": df["event"]})
        con = duckdb.connect()
        con.register("ev", ev)
        sql = f"""
            SELECT user_id, ts, event,
                   SUM(new) OVER (PARTITION BY user_id ORDER BY ts, rn
                                  ROWS UNBOUNDED PRECEDING) AS session_no
            FROM (
              SELECT *, CASE WHEN ts - LAG(ts) OVER w > {TIMEOUT_NS} OR LAG(ts) OVER w IS NULL
                             THEN 1 ELSE 0 END AS new
              FROM (SELECT *, row_number() OVER () AS rn FROM ev)
              WINDOW w AS (PARTITION BY user_id ORDER BY ts, rn)
            )"""

        def fn():
            return con.sql(sql).to_arrow_table()

        secs, peak, out = measure(fn)
        n_sessions = int(
            con.execute(f"SELECT COUNT(*) FROM (SELECT DISTINCT user_id, session_no FROM ({sql}))").fetchone()[0]
        )
    elif impl == "polars":
        import polars as pl

        ts = df["timestamp"].dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view("int64")
        pdf = pl.DataFrame({"user_id": df["user_id"].to_numpy(), "ts": ts, "event": df["event"].to_numpy()})

        def fn():
            return (
                pdf.lazy()
                .with_row_index("rn")
                .sort(["user_id", "ts", "rn"])
                .with_columns(
                    new=(pl.col("user_id") != pl.col("user_id").shift(1)).fill_null(True)
                    | ((pl.col("ts") - pl.col("ts").shift(1)) > TIMEOUT_NS).fill_null(True)
                )
                .with_columns(session_id=pl.col("new").cum_sum() - 1)
                .collect()
            )

        secs, peak, out = measure(fn)
        n_sessions = int(out["session_id"].max()) + 1
    else:
        raise SystemExit(f"unknown implementation {impl!r}")
    loaded = int(df.memory_usage(deep=True).sum())
    return {"seconds": secs, "peak_bytes": peak, "n_sessions": n_sessions, "loaded_bytes": loaded}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            n = int(size)
            for kind in ("int-sorted", "str-shuffled"):
                path = Path(tmp) / f"{kind}-{n}.parquet"
                generate(n, kind, path)
                results = {}
                for impl in ("journeyflow", "duckdb", "polars"):
                    proc = subprocess.run(
                        [sys.executable, __file__, "--one", str(path), impl],
                        capture_output=True, text=True, check=True,
                    )
                    results[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
                best_ref = min(results["duckdb"]["seconds"], results["polars"]["seconds"])
                counts = {r["n_sessions"] for r in results.values()}
                for impl, r in results.items():
                    rows.append({
                        "events": f"{n:,}",
                        "log": kind,
                        "implementation": impl,
                        "median s": f"{r['seconds']:.3f}",
                        "events/s": f"{n / r['seconds'] / 1e6:.1f}M",
                        "peak MB above loaded": f"{r['peak_bytes'] / 2**20:.0f}",
                        "bytes/event": f"{r['peak_bytes'] / n:.0f}",
                        "ratio vs faster ref": f"{r['seconds'] / best_ref:.2f}",
                        "sessions agree": "yes" if len(counts) == 1 else f"NO {counts}",
                    })
                print(fmt_table(rows[-3:], list(rows[-1])), flush=True)
    print()
    print(fmt_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
