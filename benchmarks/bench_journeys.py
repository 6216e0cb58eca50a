"""Benchmark: the Journeys container's size per touch, and the time of the steps that
build and read it (issue 3 memory target).

Usage::

    python benchmarks/bench_journeys.py                      # this checkout
    python benchmarks/bench_journeys.py --compare OTHER/src  # alternate with another tree

Bytes per touch are ``Journeys.nbytes / n_touches`` on the journeys of
``simulate_webshop(90_000, seed=0)`` (sessionize, touchpoints, phases, journeys), with
what each stored part takes. Timings are on about 1M simulated events (88,500
people): ``build_journeys``, ``MarkovAttribution().fit`` and the five heuristics
through ``attribute``, each the median of ``--repeat`` runs in one process.
``--compare`` runs the timings on the other source tree and on this one in turn,
``--rounds`` times each in fresh processes (so load on a shared machine hits both
alike), and prints the medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_table, machine

TASKS = ("build_journeys", "markov_fit", "heuristics")


def one_round(repeat: int) -> dict[str, float]:
    import journeyflow as jf

    ev = jf.datasets.simulate_webshop(88_500, seed=0)
    ev = jf.assign_phases(jf.assign_touchpoints(jf.sessionize(ev)))

    def median(fn):
        runs, result = [], None
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = fn()
            runs.append(time.perf_counter() - t0)
        return statistics.median(runs), result

    out: dict[str, float] = {"events": len(ev)}
    out["build_journeys"], jr = median(lambda: jf.build_journeys(ev))
    out["markov_fit"], _ = median(lambda: jf.MarkovAttribution().fit(jr))
    heuristics = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
    out["heuristics"], _ = median(lambda: jf.attribute(jr, models=heuristics))
    return out


def sizes() -> tuple[int, dict[str, int]]:
    import pandas as pd

    import journeyflow as jf

    ev = jf.datasets.simulate_webshop(90_000, seed=0)
    jr = jf.build_journeys(jf.assign_phases(jf.assign_touchpoints(jf.sessionize(ev))))
    parts: dict[str, int] = {}
    for name in ("touches", "offsets", "conversions", "nulls", "value", "times", "conversion_times", "user_ids"):
        held = getattr(jr, "_" + name, None)
        if held is not None or hasattr(jr, "_" + name):  # compact storage
            parts[name] = 0 if held is None else int(held.nbytes)
        else:  # plain arrays (before compact storage), user ids deep as its nbytes counted them
            arr = getattr(jr, name)
            deep = arr is not None and arr.dtype == object
            parts[name] = 0 if arr is None else int(pd.Series(arr).memory_usage(deep=True, index=False)) if deep \
                else int(arr.nbytes)
    return jr.n_touches, parts | {"total (nbytes)": jr.nbytes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compare", help="another tree's src directory to alternate with")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one round, for --compare
    args = ap.parse_args()
    if args.json:
        print(json.dumps(one_round(args.repeat)))
        return
    print(machine())
    n_touches, parts = sizes()
    table = [{"part": k, "bytes": f"{v:,}", "B/touch": f"{v / n_touches:.2f}"} for k, v in parts.items()]
    print(fmt_table(table, ["part", "bytes", "B/touch"]))
    here = str(Path(__file__).resolve().parents[1] / "src")
    trees = {"other": args.compare, "this": here} if args.compare else {"this": ""}
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for _ in range(args.rounds if args.compare else 1):
        for label, src in trees.items():
            if not src:  # no comparison: the journeyflow this process imports
                runs[label].append(one_round(args.repeat))
                continue
            env = dict(os.environ, PYTHONPATH=src)
            res = subprocess.run([sys.executable, __file__, "--json", "--repeat", str(args.repeat)],
                                 env=env, capture_output=True, text=True, check=True)
            runs[label].append(json.loads(res.stdout.strip().splitlines()[-1]))
    rows = []
    for task in TASKS:
        row = {"task": task}
        for label in trees:
            row[f"{label} s"] = f"{statistics.median(r[task] for r in runs[label]):.4f}"
        if args.compare:
            row["this / other"] = f"{float(row['this s']) / float(row['other s']):.3f}"
        rows.append(row)
    print(f"{int(runs['this'][0]['events']):,} events, median of {args.repeat} per round")
    print(fmt_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
