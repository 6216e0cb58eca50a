"""Write the sample webshop log bundled with journeyflow.

Run from the repository root after changing the simulator::

    python data/samples/make_sample.py

It writes ``src/journeyflow/datasets/data/webshop_sample.parquet`` (the one copy:
the package ships it, ``jf.datasets.load_sample()`` reads it) and its ground truth
``webshop_sample_truth.csv`` next to it.
"""

from __future__ import annotations

from pathlib import Path

import journeyflow as jf

N_USERS, SEED, START, DAYS = 4_000, 2026, "2026-01-01", 60
OUT = Path(__file__).resolve().parents[2] / "src" / "journeyflow" / "datasets" / "data"


def main() -> None:
    sim = jf.datasets.simulate_webshop(N_USERS, seed=SEED, start=START, days=DAYS, return_truth=True)
    OUT.mkdir(parents=True, exist_ok=True)
    sim.events.to_parquet(OUT / "webshop_sample.parquet", index=False, compression="zstd")
    sim.truth.to_csv(OUT / "webshop_sample_truth.csv", index=False)
    size = (OUT / "webshop_sample.parquet").stat().st_size
    print(f"{len(sim.events):,} events, {N_USERS:,} users, {size / 1e6:.2f} MB -> {OUT}")


if __name__ == "__main__":
    main()
