"""Write the example notebooks (without outputs). Run: python notebooks/make_notebooks.py"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_quickstart.ipynb": [
        ("md", "# journeyflow quick start\n\nThe bundled sample webshop log → sessions → touchpoints and phases → "
               "funnel → attribution → charts."),
        ("code", "import journeyflow as jf\n\nchk = jf.validate_events(jf.datasets.load_sample())\nchk.summary()"),
        ("code", "ev = jf.sessionize(chk.events, timeout=\"30min\")\nev = jf.assign_touchpoints(ev)\n"
                 "ev = jf.assign_phases(ev, model=\"aacra\")\nev[[\"user_id\", \"timestamp\", \"event\", \"session_id\", "
                 "\"channel\", \"touchpoint\", \"phase\"]].head()"),
        ("code", "jf.sessions(ev).head()"),
        ("code", "fn = jf.funnel(ev, [\"product_view\", \"add_to_cart\", \"checkout_start\", \"purchase\"], window=\"7D\")\n"
                 "jf.plot.funnel(fn);\nfn"),
        ("code", "pf = jf.phase_funnel(ev, \"aacra\")\njf.plot.funnel(pf);"),
        ("code", "jr = jf.build_journeys(ev, conversion=\"purchase\", touchpoint=\"channel\", lookback=\"30D\")\njr"),
        ("code", "at = jf.attribute(jr, models=[\"first_touch\", \"last_touch\", \"linear\", \"position_based\", "
                 "\"markov\", \"shapley\"])\njf.plot.attribution(at);\nat.pivot(index=\"channel\", columns=\"model\", "
                 "values=\"share\").round(3)"),
        ("code", "jf.plot.journey_flow(ev, by=\"channel\", max_steps=4);"),
        ("code", "assert abs(at.groupby(\"model\")[\"conversions\"].sum() - jr.total_conversions).max() < 1e-6"),
    ],
    "02_attribution_vs_truth.ipynb": [
        ("md", "# Comparing attribution models against a known truth\n\nThe simulator knows how many purchases each "
               "channel causes (re-simulating without it on the same random draws). Which model comes closest?"),
        ("code", "import numpy as np\nimport journeyflow as jf\n\n"
                 "sim = jf.datasets.simulate_webshop(3_000, seed=7, return_truth=True)\nsim.truth"),
        ("code", "ev = jf.assign_touchpoints(jf.sessionize(sim.events))\njr = jf.build_journeys(ev, lookback=None)\n"
                 "models = [\"first_touch\", \"last_touch\", \"linear\", \"position_based\", \"markov\", "
                 "jf.MarkovAttribution(order=2), \"shapley\"]\n"
                 "at = jf.attribute(jr, models=models, ci=jf.Bootstrap(n_resamples=30, seed=0))\nat.head()"),
        ("code", "truth = sim.truth.set_index(\"channel\")[\"share\"]\n"
                 "err = at.assign(truth=at[\"channel\"].map(truth)).assign(abs_error=lambda d: (d[\"share\"] - d[\"truth\"]).abs())\n"
                 "err.groupby(\"model\")[\"abs_error\"].mean().sort_values()"),
        ("code", "jf.plot.attribution(at[at[\"model\"].isin([\"last_touch\", \"markov\", \"shapley\"])], truth=sim.truth);"),
        ("code", "mm = jf.MarkovAttribution().fit(jr)\nprint(mm)\njf.plot.transition_matrix(mm);"),
    ],
    "03_funnels_and_personas.ipynb": [
        ("md", "# Funnels, drop-off and personas\n\nWhere do people leave, and do personas and devices differ?"),
        ("code", "import journeyflow as jf\n\nev = jf.assign_phases(jf.assign_touchpoints(jf.sessionize("
                 "jf.datasets.load_sample())), model=\"see-think-do-experience-care\")"),
        ("code", "steps = [\"product_view\", \"add_to_cart\", \"checkout_start\", \"purchase\"]\n"
                 "by_persona = jf.funnel(ev, steps, window=\"7D\", by=\"persona\")\njf.plot.funnel(by_persona);\n"
                 "by_persona.pivot(index=\"step\", columns=\"persona\", values=\"conversion_from_start\").round(3)"),
        ("code", "for mode in (\"ordered\", \"strict\", \"unordered\"):\n"
                 "    print(mode, jf.funnel(ev, steps, mode=mode)[\"users\"].tolist())"),
        ("code", "jf.plot.drop_off(jf.drop_off(ev, steps));"),
        ("code", "ttc = jf.time_to_convert(ev, [\"product_view\", \"purchase\"])\nprint(ttc.attrs[\"quantiles\"])\n"
                 "jf.plot.time_to_convert(ttc);"),
        ("code", "tp = jf.touchpoint_priority(ev)\njf.plot.touchpoint_priority(tp);\ntp.head(8)"),
        ("code", "jf.plot.journey_map(ev);"),
    ],
    "04_bring_your_own_log.ipynb": [
        ("md", "# Bring your own log\n\nYour column names, epoch timestamps, a custom touchpoint rule and your own "
               "phase model."),
        ("code", "import pandas as pd\nimport journeyflow as jf\nfrom journeyflow.rules import Rule\n\n"
                 "raw = pd.DataFrame({\n"
                 "    \"visitor\": [\"v1\", \"v1\", \"v1\", \"v2\", \"v2\", None],\n"
                 "    \"ts\": [1767261600, 1767261720, 1767348000, 1767265200, 1767265300, 1767265400],\n"
                 "    \"action\": [\"showroom_visit\", \"quote_request\", \"order\", \"webinar_signup\", \"quote_request\", \"order\"],\n"
                 "    \"source\": [None, None, None, \"linkedin\", None, None],\n"
                 "    \"medium\": [None, None, None, \"paid_social\", None, None],\n"
                 "})\n"
                 "chk = jf.validate_events(raw, columns={\"user_id\": \"visitor\", \"timestamp\": \"ts\", \"event\": \"action\",\n"
                 "                                       \"utm_source\": \"source\", \"utm_medium\": \"medium\"})\n"
                 "print(chk.summary())\nchk.rejects"),
        ("code", "rules = jf.touchpoints.touchpoint_rules([\n"
                 "    {\"value\": \"showroom\", \"event\": \"showroom_visit\", \"kind\": \"physical\"},\n"
                 "    {\"value\": \"sales\", \"event\": [\"quote_request\", \"order\"]},\n"
                 "], mode=\"prepend\")\n"
                 "ev = jf.assign_touchpoints(jf.sessionize(chk.events), touchpoint_rules=rules)\n"
                 "ev[[\"user_id\", \"event\", \"channel\", \"touchpoint\", \"kind\"]]"),
        ("code", "b2b = jf.PhaseModel(\"b2b\", (\"aware\", \"evaluate\", \"buy\"),\n"
                 "                     touchpoints={\"webinar\": (\"aware\", \"evaluate\"), \"showroom\": (\"aware\",), \"sales\": (\"evaluate\",)},\n"
                 "                     events={\"order\": (\"buy\",)})\n"
                 "ev = jf.assign_phases(ev, model=b2b)\njf.phase_funnel(ev, b2b)"),
        ("code", "print(jf.touchpoints.unmatched(ev))\njr = jf.build_journeys(ev, conversion=\"order\", value=None)\n"
                 "jf.attribute(jr, models=[\"linear\", \"markov\"])"),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = nbf.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in cells]
        nbf.write(nb, HERE / name)
        print(HERE / name)


if __name__ == "__main__":
    main()
