"""Benchmark: jf.read_events on a Parquet file against a plain pyarrow read.

Usage::

    python benchmarks/bench_read.py              # 1M and 10M events
    python benchmarks/bench_read.py --sizes 1e6

The log (columns like the bundled sample: user_id str, timestamp, event, page,
utm_*, referrer, revenue, device) is generated with numpy into a temporary folder.
The reference is ``pyarrow.parquet.read_table(path).to_pandas()``: what a careful
user would write without validation. journeyflow adds the checks (blank ids and
events, timestamp range, revenue) and the rejects table. Reading a gigabyte into
fresh memory is noisy (page faults, the allocator), so the implementations run
interleaved, ``--repeat`` rounds, and the ratio is the median of the per-round
ratios against the reference of the same round.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_table, machine

import journeyflow as jf


def generate(n: int, path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    users = np.char.add("u", rng.integers(0, n // 12 + 1, n).astype(str))
    events = np.array(jf.datasets.EVENTS)[rng.integers(0, len(jf.datasets.EVENTS), n)]
    ts = np.sort(rng.integers(0, 60 * 86400 * 10**9, n)) + 1_767_225_600 * 10**9
    pages = np.array(["/", "/blog/a", "/reviews", "/product/1", "/cart", "/checkout"])[rng.integers(0, 6, n)]
    tagged = rng.random(n) < 0.15
    src = np.where(tagged, np.array(["google", "facebook", "newsletter"])[rng.integers(0, 3, n)], None)
    revenue = np.where(events == "purchase", rng.lognormal(4, 0.5, n), np.nan)
    table = pa.table(
        {
            "user_id": users,
            "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "event": events,
            "page": pages,
            "utm_source": pa.array(src, pa.string()),
            "utm_medium": pa.array(np.where(tagged, "cpc", None), pa.string()),
            "utm_campaign": pa.array(np.where(tagged, "spring", None), pa.string()),
            "referrer": pa.array(np.where(tagged, "https://www.google.com/", None), pa.string()),
            "revenue": revenue,
            "device": np.array(["mobile", "desktop", "tablet"])[rng.integers(0, 3, n)],
        }
    )
    pq.write_table(table, path, compression="zstd")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            n = int(size)
            path = Path(tmp) / f"events_{n}.parquet"
            generate(n, path)
            impls = {
                "pyarrow read + to_pandas": lambda path=path: pq.read_table(path).to_pandas(),
                "pd.read_parquet": lambda path=path: pd.read_parquet(path),
                "jf.read_events": lambda path=path: jf.read_events(path),
            }
            secs: dict[str, list[float]] = {name: [] for name in impls}
            for _ in range(args.repeat):
                for name, fn in impls.items():
                    gc.collect()
                    t0 = time.perf_counter()
                    out = fn()
                    secs[name].append(time.perf_counter() - t0)
                    assert len(out) == n
                    del out
            ref = secs["pyarrow read + to_pandas"]
            for name, values in secs.items():
                ratios = [v / r for v, r in zip(values, ref)]
                rows.append(
                    {
                        "events": f"{n:,}",
                        "implementation": name,
                        "median s": f"{statistics.median(values):.3f}",
                        "min s": f"{min(values):.3f}",
                        "median ratio vs pyarrow": f"{statistics.median(ratios):.2f}",
                    }
                )
    print(machine())
    print(fmt_table(rows, ["events", "implementation", "median s", "min s", "median ratio vs pyarrow"]))


if __name__ == "__main__":
    main()
