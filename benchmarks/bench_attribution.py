"""Benchmark: attribution on aggregated path files, journeyflow vs ChannelAttribution.

Usage::

    python benchmarks/bench_attribution.py                 # 100k and 1M journeys
    python benchmarks/bench_attribution.py --sizes 1e5 --bootstrap 20

Journeys are simulated with numpy (9 channels, 1 + geometric(1/3) touches capped at
20, conversion probability rising with each channel's lift), aggregated into the
path format (path, conversions, nulls, value), written to a temporary CSV and read
back with pandas. Both tools start from that DataFrame: each journeyflow timing
includes parsing the path strings (``Journeys.from_paths``), as ChannelAttribution
parses them inside each call; the row "read paths only" times ``from_paths`` alone
(against ChannelAttribution's Markov order 1: the floor under every journeyflow
row). Medians of ``--repeat`` runs. Peak memory: the RSS peak above the loaded
DataFrame during one run, in a fresh subprocess per row,
after a warm-up run on 200 journeys (so lazy imports are not counted).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, fmt_table, machine

import journeyflow as jf

CHANNELS = np.array(["Direct", "Organic Search", "Paid Search", "Organic Social", "Paid Social", "Email",
                     "Referral", "Affiliates", "Display"])
LIFT = np.array([0.35, 0.55, 0.75, 0.25, 0.45, 0.6, 0.7, 0.5, 0.15])


def simulate_paths(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    length = np.minimum(1 + rng.geometric(1 / 3, n) - 1, 20)
    offsets = np.concatenate([[0], np.cumsum(length)])
    touches = rng.choice(len(CHANNELS), size=int(offsets[-1]), p=np.full(len(CHANNELS), 1 / len(CHANNELS)))
    lift = np.add.reduceat(LIFT[touches], offsets[:-1])
    p = 1 / (1 + np.exp(-(-3.0 + lift)))
    conv = (rng.random(n) < p).astype(float)
    value = conv * np.round(rng.lognormal(4, 0.5, n), 2)
    jr = jf.Journeys(touches, offsets, list(CHANNELS), conv, 1 - conv, value)
    return jr.to_paths(sep=" > ")


def timed(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def cases(paths: pd.DataFrame, n_boot: int) -> dict[tuple[str, str], Callable[[], object]]:
    import ChannelAttribution as ca

    def load() -> jf.Journeys:
        return jf.Journeys.from_paths(paths, conversions="conversions", nulls="nulls", value="value")

    def ca_markov(order: int) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            ca.markov_model(paths, "path", "conversions", var_value="value", var_null="nulls",
                            order=order, sep=">", verbose=0)

    def ca_heur() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            ca.heuristic_models(paths, "path", "conversions", var_value="value", sep=">")

    return {
        ("read paths only", "journeyflow"): load,  # the floor of every row below: from_paths alone
        ("markov order 1", "journeyflow"): lambda: jf.MarkovAttribution(order=1).fit(load()),
        ("markov order 1", "ChannelAttribution"): lambda: ca_markov(1),
        ("markov order 3", "journeyflow"): lambda: jf.MarkovAttribution(order=3).fit(load()),
        ("markov order 3", "ChannelAttribution"): lambda: ca_markov(3),
        ("heuristics", "journeyflow"): lambda: jf.attribute(
            load(), models=["first_touch", "last_touch", "linear", "position_based"]),
        ("heuristics", "ChannelAttribution"): ca_heur,
        ("shapley", "journeyflow"): lambda: jf.ShapleyAttribution().fit(load()),
        (f"markov + bootstrap({n_boot})", "journeyflow"): lambda: jf.attribute(
            load(), models=["markov"], ci=jf.Bootstrap(n_resamples=n_boot, seed=0)),
    }


def peak_of(csv: Path, task: str, impl: str, n_boot: int) -> int:
    """Peak RSS above the loaded paths during one run, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, __file__, "--peak-of", str(csv), task, impl, "--bootstrap", str(n_boot)],
        check=True, capture_output=True, text=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--peak-of", nargs=3, metavar=("CSV", "TASK", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peak_of:
        csv, task, impl = args.peak_of
        cases(simulate_paths(200, seed=1), args.bootstrap)[(task, impl)]()  # warm-up: lazy imports are not the data's cost
        paths = pd.read_csv(csv)
        fn = cases(paths, args.bootstrap)[(task, impl)]
        with PeakRSS() as mem:
            fn()
        print(mem.peak_above)
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            n = int(size)
            csv = Path(tmp) / f"paths_{n}.csv"
            simulate_paths(n).to_csv(csv, index=False)
            paths = pd.read_csv(csv)
            todo = cases(paths, args.bootstrap)
            times: dict[tuple[str, str], list[float]] = {k: [] for k in todo}
            for rep in range(args.repeat):  # engines interleaved run by run: the machine's noise hits all alike
                for key, fn in todo.items():
                    if "bootstrap" in key[0] and rep > 0:
                        continue
                    t0 = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - t0)
            medians = {k: statistics.median(v) for k, v in times.items()}
            ref_markov1 = medians[("markov order 1", "ChannelAttribution")]
            for (task, impl), sec in medians.items():
                own_ref = "bootstrap" in task or task == "read paths only"  # against CA's Markov order 1
                ref = medians.get((task, "ChannelAttribution"), ref_markov1 if own_ref else np.nan)
                peak = np.nan if args.no_memory else peak_of(csv, task, impl, args.bootstrap) / 2**20
                rows.append({"journeys": f"{n:,}", "distinct paths": f"{len(paths):,}", "task": task,
                             "implementation": impl, "median s": f"{sec:.3f}",
                             "ratio vs CA": "" if np.isnan(ref) else f"{sec / ref:.3f}",
                             "speed-up": "" if np.isnan(ref) else f"{ref / sec:.1f}x",
                             "peak MB": "" if np.isnan(peak) else f"{peak:.0f}"})
    print(machine())
    print(fmt_table(rows, ["journeys", "distinct paths", "task", "implementation", "median s", "ratio vs CA",
                           "speed-up", "peak MB"]))


if __name__ == "__main__":
    main()
