"""Example data: a simulated webshop with a known truth, and the bundled sample log.

``simulate_webshop`` generates event logs of any size (vectorised numpy; about a
million events per second) whose channels have a known causal effect on conversion,
so attribution models can be scored against the truth. ``load_sample`` returns the
small log shipped inside the package (made by ``data/samples/make_sample.py``), the
one ``journeyflow report`` runs on when given no events.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from ._simulate import CHANNELS, EVENTS, PERSONAS, SimulationResult, simulate_webshop

__all__ = [
    "CHANNELS",
    "EVENTS",
    "PERSONAS",
    "SAMPLE_FILE",
    "SimulationResult",
    "load_sample",
    "simulate_webshop",
]

#: File name of the bundled sample inside ``journeyflow/datasets/data``.
SAMPLE_FILE = "webshop_sample.parquet"


def load_sample() -> pd.DataFrame:
    """The sample webshop event log bundled with journeyflow.

    ``simulate_webshop(4_000, seed=2026, start="2026-01-01", days=60)`` written to
    Parquet (see ``data/samples/README.md`` for every column). It ships inside the
    package, so it works after a plain ``pip install``.

    Returns
    -------
    DataFrame
        The columns of :func:`simulate_webshop`: user_id, timestamp
        (datetime64[ns, UTC]), event, page, url, referrer, utm_source, utm_medium,
        utm_campaign, revenue, rating, device, persona, country.

    Examples
    --------
    >>> import journeyflow as jf
    >>> ev = jf.datasets.load_sample()
    >>> list(ev.columns[:3])
    ['user_id', 'timestamp', 'event']
    >>> str(ev["timestamp"].dtype)
    'datetime64[ns, UTC]'
    """
    ref = resources.files(__name__) / "data" / SAMPLE_FILE
    with resources.as_file(ref) as path:
        frame = pd.read_parquet(path)
    ts = frame["timestamp"]
    if str(ts.dtype) != "datetime64[ns, UTC]":
        frame["timestamp"] = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    return frame
