"""Write ChannelAttribution's results on the sample's journeys, for tests/test_reference.py.

Needs the `bench` extra (ChannelAttribution). Run from the repository root:

    python tests/reference/make_reference.py

Inputs: the bundled sample, sessionised (30 min), default channel grouping,
journeys with a 30-day lookback, aggregated into ChannelAttribution's path format
(written to sample_paths.csv). Outputs: ca_heuristic.csv (first/last/linear touch)
and ca_markov_order{1,2,3}.csv (removal effects and attributed conversions, at
1e7 simulated walks), plus
VERSION.txt with the tool version and the parameters used.
"""

from __future__ import annotations

import contextlib
import io
from importlib import metadata
from pathlib import Path

import journeyflow as jf

HERE = Path(__file__).resolve().parent
NSIM = 10_000_000  # simulated walks: at ChannelAttribution's default (1e5) it is off by several %


def main() -> None:
    import ChannelAttribution as ca

    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.load_sample()))
    paths = jf.build_journeys(ev, lookback="30D").to_paths(sep=" > ")
    paths.to_csv(HERE / "sample_paths.csv", index=False)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        heur = ca.heuristic_models(paths, "path", "conversions", var_value="value", sep=">")
    heur.to_csv(HERE / "ca_heuristic.csv", index=False)
    for order in (1, 2, 3):
        with contextlib.redirect_stdout(io.StringIO()):
            res = ca.markov_model(paths, "path", "conversions", var_value="value", var_null="nulls", order=order,
                                  sep=">", seed=0, out_more=True, verbose=0, nsim_start=NSIM, conv_par=0.005,
                                  ncore=2)
        res["result"].to_csv(HERE / f"ca_markov_order{order}.csv", index=False)
        res["removal_effects"].to_csv(HERE / f"ca_removal_effects_order{order}.csv", index=False)
    (HERE / "VERSION.txt").write_text(
        f"ChannelAttribution {metadata.version('channelattribution')}\n"
        "heuristic_models(paths, 'path', 'conversions', var_value='value', sep='>')\n"
        "markov_model(paths, 'path', 'conversions', var_value='value', var_null='nulls', order=k, sep='>', seed=0, "
        f"nsim_start={NSIM:.0e}, conv_par=0.005, ncore=2) for k = 1, 2, 3\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
