"""Render one PNG per chart into docs/images/ from the bundled sample.

    python docs/make_images.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import journeyflow as jf

OUT = Path(__file__).resolve().parent / "images"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    plt = jf.plot.pyplot()
    ev = jf.assign_phases(jf.assign_touchpoints(jf.sessionize(jf.datasets.load_sample())), model="aacra")
    steps = ["product_view", "add_to_cart", "checkout_start", "purchase"]
    sim = jf.datasets.simulate_webshop(4_000, seed=2026, return_truth=True)
    jr = jf.build_journeys(ev)
    at = jf.attribute(jr, models=["first_touch", "last_touch", "linear", "markov", "shapley"])
    charts = {
        "funnel": lambda: jf.plot.funnel(jf.funnel(ev, steps, window="7D")),
        "funnel_by_device": lambda: jf.plot.funnel(jf.funnel(ev, steps, window="7D", by="device")),
        "phase_funnel": lambda: jf.plot.funnel(jf.phase_funnel(ev, "aacra")),
        "drop_off": lambda: jf.plot.drop_off(jf.drop_off(ev, steps)),
        "time_to_convert": lambda: jf.plot.time_to_convert(jf.time_to_convert(ev, ["product_view", "purchase"])),
        "touchpoint_priority": lambda: jf.plot.touchpoint_priority(jf.touchpoint_priority(ev)),
        "attribution": lambda: jf.plot.attribution(at, truth=sim.truth),
        "transition_matrix": lambda: jf.plot.transition_matrix(jf.MarkovAttribution().fit(jr)),
        "journey_flow": lambda: jf.plot.journey_flow(ev, by="channel", max_steps=5),
        "journey_map": lambda: jf.plot.journey_map(ev),
    }
    for name, draw in charts.items():
        ax = draw()
        ax.figure.savefig(OUT / f"{name}.png", dpi=90, bbox_inches="tight")
        plt.close(ax.figure)
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
