"""Benchmark: touchpoints + phases + journeys vs sessionize (issue 3), and a 5-step
ordered funnel with a 7-day window vs DuckDB and Polars (issue 4).

Usage::

    python benchmarks/bench_pipeline.py            # 1M and 10M simulated events
    python benchmarks/bench_pipeline.py --sizes 1e6
    python benchmarks/bench_pipeline.py --sizes 1e7 --only funnel --repeat 7

Events come from ``jf.datasets.simulate_webshop`` (about 11 events per person; user
ids are strings, the other text columns categoricals), held in memory; each timing
is the median of ``--repeat`` runs in this process. Before each run the encoding
cache is cleared, so every run encodes the user ids once, as a fresh pipeline does.
The reference engines do the same count: for each step-1 event, the first step-2
event at or after it (ASOF join per user), then step 3 after that, and so on;
a person reaches step k when some attempt reaches it within the window.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, fmt_table, machine

import journeyflow as jf
from journeyflow import _encode

STEPS = ["landing_page_view", "product_view", "add_to_cart", "checkout_start", "purchase"]
WINDOW = "7D"


def timed(fn, repeat: int) -> tuple[float, object]:
    out, result = [], None
    for _ in range(repeat):
        _encode._cache.clear()  # every run pays for encoding the user ids once, as a fresh pipeline does
        t0 = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), result


def duckdb_funnel(ev: pd.DataFrame) -> list[int]:
    import duckdb

    con = duckdb.connect()
    small = ev.loc[ev["event"].isin(STEPS), ["user_id", "timestamp", "event"]]
    con.register("ev", small)
    parts = [f"s{i} AS (SELECT user_id, timestamp AS t FROM ev WHERE event = '{s}')" for i, s in enumerate(STEPS)]
    joins = ["c0 AS (SELECT user_id, t AS t0, t AS t_last FROM s0)"]
    for i in range(1, len(STEPS)):
        joins.append(
            f"c{i} AS (SELECT c.user_id, c.t0, s.t AS t_last FROM c{i - 1} c ASOF JOIN s{i} s "
            f"ON c.user_id = s.user_id AND s.t >= c.t_last WHERE s.t - c.t0 <= INTERVAL 7 DAY)"
        )
    counts = " UNION ALL ".join(f"SELECT {i + 1} AS k, COUNT(DISTINCT user_id) AS n FROM c{i}" for i in range(len(STEPS)))
    sql = "WITH " + ", ".join(parts + joins) + " " + counts
    res = con.sql(sql).df().sort_values("k")
    return res["n"].astype(int).tolist()


def polars_funnel(ev: pd.DataFrame) -> list[int]:
    import polars as pl

    small = pl.from_pandas(ev.loc[ev["event"].isin(STEPS), ["user_id", "timestamp", "event"]])
    steps = [small.filter(pl.col("event") == s).select("user_id", pl.col("timestamp").alias("t")).sort("t") for s in STEPS]
    cur = steps[0].with_columns(t0=pl.col("t"), t_last=pl.col("t")).select("user_id", "t0", "t_last")
    counts = [cur["user_id"].n_unique()]
    week = pd.Timedelta(WINDOW).to_pytimedelta()
    for s in steps[1:]:
        cur = cur.sort("t_last").join_asof(s, left_on="t_last", right_on="t", by="user_id", strategy="forward")
        cur = cur.filter(pl.col("t").is_not_null() & ((pl.col("t") - pl.col("t0")) <= week))
        cur = cur.select("user_id", "t0", pl.col("t").alias("t_last"))
        counts.append(cur["user_id"].n_unique())
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["all", "funnel"], default="all",
                    help="'funnel': only the funnel rows (issue 4), no sessionize/journeys")
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        n_users = max(int(size / 11.3), 10)
        ev = jf.datasets.simulate_webshop(n_users, seed=0)
        n = len(ev)
        label = f"{n:,}"
        # sessionize, then the downstream steps on its output, in the same run: the
        # downstream steps reuse the user codes sessionize computed (cached per Arrow array)
        t_ses_runs, t_down_runs = [], []
        peak_down, jr_bytes = 0, 0.0
        for i in range(args.repeat if args.only == "all" else 0):
            _encode._cache.clear()
            t0 = time.perf_counter()
            ses = jf.sessionize(ev)
            t1 = time.perf_counter()
            # memory sampled in the first run only: the sampling thread would take the GIL
            # from the steps' own threads in the timed runs (sessionize runs without it)
            with PeakRSS() if i == 0 else contextlib.nullcontext() as mem:
                jr = jf.build_journeys(jf.assign_phases(jf.assign_touchpoints(ses), model="aacra"))
            t2 = time.perf_counter()
            if i == 0:
                assert mem is not None
                peak_down, jr_bytes = mem.peak_above, jr.nbytes / max(jr.n_touches, 1)
            t_ses_runs.append(t1 - t0)
            t_down_runs.append(t2 - t1)
            del ses, jr
        if args.only == "all":
            t_ses, t_down = statistics.median(t_ses_runs), statistics.median(t_down_runs)
            rows.append({"events": label, "task": "sessionize", "implementation": "journeyflow", "median s": t_ses,
                         "ratio": 1.0})
            rows.append({"events": label, "task": "touchpoints + phases + journeys", "implementation": "journeyflow",
                         "median s": t_down, "ratio": t_down / t_ses, "peak B/event": f"{peak_down / n:.0f}",
                         "note": f"Journeys {jr_bytes:.1f} B/touch"})
        # the three engines and journeyflow's other modes interleaved, run by run, so that
        # load on the machine (shared, 2 cores) hits them alike
        engines = {
            "journeyflow": lambda ev=ev: jf.funnel(ev, STEPS, window=WINDOW),
            "duckdb": lambda ev=ev: duckdb_funnel(ev),
            "polars": lambda ev=ev: polars_funnel(ev),
            "strict": lambda ev=ev: jf.funnel(ev, STEPS, window=WINDOW, mode="strict"),
            "unordered": lambda ev=ev: jf.funnel(ev, STEPS, window=WINDOW, mode="unordered"),
            "by=device": lambda ev=ev: jf.funnel(ev, STEPS, window=WINDOW, by="device"),
        }
        # peak memory of a first, cold funnel (the allocator has not grown for it yet)
        _encode._cache.clear()
        with PeakRSS() as mem:
            jf.funnel(ev, STEPS, window=WINDOW)
        peak_funnel = mem.peak_above
        runs: dict[str, list[float]] = {k: [] for k in engines}
        results: dict[str, object] = {}
        for _ in range(args.repeat):
            for name, fn in engines.items():
                t, results[name] = timed(fn, 1)
                runs[name].append(t)
        med = {k: statistics.median(v) for k, v in runs.items()}
        counts = results["journeyflow"]["users"].tolist()
        assert counts == results["duckdb"] == results["polars"], (counts, results["duckdb"], results["polars"])
        ref = min(med["duckdb"], med["polars"])
        for impl in ("journeyflow", "duckdb", "polars"):
            rows.append({"events": label, "task": "funnel ordered 5 steps 7D", "implementation": impl,
                         "median s": med[impl], "ratio": med[impl] / ref,
                         "peak B/event": f"{peak_funnel / n:.0f}" if impl == "journeyflow" else ""})
        for name, task in (("strict", "funnel strict"), ("unordered", "funnel unordered"),
                           ("by=device", "funnel ordered by=device")):
            rows.append({"events": label, "task": task, "implementation": "journeyflow",
                         "median s": med[name], "ratio": med[name] / med["journeyflow"]})
    for r in rows:
        r["median s"] = f"{r['median s']:.3f}"
        r["ratio"] = f"{r['ratio']:.2f}"
    print(machine())
    print("ratio: touchpoints row vs sessionize; reference rows vs the faster of DuckDB/Polars;")
    print("strict/unordered/by rows vs journeyflow's ordered funnel")
    print("peak B/event: resident memory above the loaded events at the peak, per event")
    print(fmt_table(rows, ["events", "task", "implementation", "median s", "ratio", "peak B/event", "note"]))
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
