"""Benchmark: attribution on aggregated path files, journeyflow vs ChannelAttribution.

Usage::

    python benchmarks/bench_attribution.py                 # 100k and 1M journeys
    python benchmarks/bench_attribution.py --sizes 1e5 --bootstrap 20

Journeys are simulated with numpy (9 channels, 1 + geometric(1/3) touches capped at
20, conversion probability rising with each channel's lift), aggregated into the
path format (path, conversions, nulls, value) and written to a temporary CSV.
Each journeyflow timing includes reading the CSV and parsing the paths
(``Journeys.from_paths``); ChannelAttribution gets the same DataFrame (reading
excluded, in its favour). Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_table, machine

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    import ChannelAttribution as ca

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            n = int(size)
            paths = simulate_paths(n)
            csv = Path(tmp) / f"paths_{n}.csv"
            paths.to_csv(csv, index=False)

            def load(csv: Path = csv) -> jf.Journeys:
                df = pd.read_csv(csv)
                return jf.Journeys.from_paths(df, conversions="conversions", nulls="nulls", value="value")

            def ca_markov(order: int, paths: pd.DataFrame = paths) -> None:
                with contextlib.redirect_stdout(io.StringIO()):
                    ca.markov_model(paths, "path", "conversions", var_value="value", var_null="nulls",
                                    order=order, sep=">", verbose=0)

            def ca_heur(paths: pd.DataFrame = paths) -> None:
                with contextlib.redirect_stdout(io.StringIO()):
                    ca.heuristic_models(paths, "path", "conversions", var_value="value", sep=">")

            cases = {
                ("markov order 1", "journeyflow"): lambda: jf.MarkovAttribution(order=1).fit(load()),
                ("markov order 1", "ChannelAttribution"): lambda: ca_markov(1),
                ("markov order 3", "journeyflow"): lambda: jf.MarkovAttribution(order=3).fit(load()),
                ("markov order 3", "ChannelAttribution"): lambda: ca_markov(3),
                ("heuristics", "journeyflow"): lambda: jf.attribute(
                    load(), models=["first_touch", "last_touch", "linear", "position_based"]),
                ("heuristics", "ChannelAttribution"): ca_heur,
                ("shapley", "journeyflow"): lambda: jf.ShapleyAttribution().fit(load()),
                (f"markov + bootstrap({args.bootstrap})", "journeyflow"): lambda: jf.attribute(
                    load(), models=["markov"], ci=jf.Bootstrap(n_resamples=args.bootstrap, seed=0)),
            }
            times = {k: timed(fn, args.repeat if "bootstrap" not in k[0] else 1) for k, fn in cases.items()}
            ref_markov1 = times[("markov order 1", "ChannelAttribution")]
            for (task, impl), sec in times.items():
                ref = times.get((task, "ChannelAttribution"), ref_markov1 if "bootstrap" in task else np.nan)
                rows.append({"journeys": f"{n:,}", "distinct paths": f"{len(paths):,}", "task": task,
                             "implementation": impl, "median s": f"{sec:.3f}",
                             "ratio vs CA": "" if np.isnan(ref) else f"{sec / ref:.3f}"})
    print(machine())
    print(fmt_table(rows, ["journeys", "distinct paths", "task", "implementation", "median s", "ratio vs CA"]))


if __name__ == "__main__":
    main()
