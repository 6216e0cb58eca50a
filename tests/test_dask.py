"""journeyflow.dask on a real LocalCluster equals the single-machine functions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import journeyflow as jf
import journeyflow.dask as jfd

STEPS = ["product_view", "add_to_cart", "checkout_start", "purchase"]
KEY = ["user_id", "timestamp", "event", "page"]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return jf.datasets.simulate_webshop(400, seed=21)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reset_index(drop=True).sort_values(KEY, kind="stable").reset_index(drop=True)


@pytest.mark.filterwarnings("ignore::journeyflow.exceptions.SparseChainWarning")  # order 2 on 400 people
@pytest.mark.parametrize("npartitions", [1, 3, 7])
def test_pipeline_matches_single_machine(client: Client, events: pd.DataFrame, npartitions: int) -> None:
    del client
    shuffled = events.sample(frac=1, random_state=npartitions).reset_index(drop=True)
    ddf = dd.from_pandas(shuffled, npartitions=npartitions, sort=False)
    ses = jfd.sessionize(ddf)
    tp = jfd.assign_touchpoints(ses)
    ph = jfd.assign_phases(tp, model="aacra")
    got = _sorted(ph.compute())
    want = _sorted(jf.assign_phases(jf.assign_touchpoints(jf.sessionize(events)), model="aacra"))
    pd.testing.assert_series_equal(got["session_id"], want["session_id"])
    for col in ("channel", "touchpoint", "kind", "ownership"):
        assert got[col].tolist() == want[col].tolist()
    assert got["phase"].astype(str).tolist() == want["phase"].astype(str).tolist()

    single = jf.assign_phases(jf.assign_touchpoints(jf.sessionize(events)))
    pd.testing.assert_frame_equal(jfd.funnel(ph, STEPS, window="7D"), jf.funnel(single, STEPS, window="7D"))
    pd.testing.assert_frame_equal(
        jfd.funnel(ph, STEPS, window="7D", mode="unordered", by="device"),
        jf.funnel(single, STEPS, window="7D", mode="unordered", by="device"),
    )
    pd.testing.assert_frame_equal(jfd.phase_funnel(ph, "aacra"), jf.phase_funnel(single, "aacra"))

    jr = jfd.build_journeys(ph, lookback="30D")
    ref = jf.build_journeys(single, lookback="30D")
    assert jr.total_conversions == ref.total_conversions
    assert jr.total_nulls == ref.total_nulls
    assert len(jr) == len(ref)
    models = ["first_touch", "last_touch", "linear", "time_decay", "position_based", "markov",
              jf.MarkovAttribution(order=2), "shapley"]
    boot = jf.Bootstrap(n_resamples=30, seed=4)
    a = jfd.attribute(jr, models=models, ci=boot)
    b = jf.attribute(ref, models=models, ci=boot)
    assert a[["model", "channel"]].equals(b[["model", "channel"]])  # same rows in the same order
    cols = ["conversions", "value", "share", "ci_low", "ci_high"]  # the same resamples too
    np.testing.assert_allclose(a[cols], b[cols], rtol=1e-9, atol=1e-9)


def test_users_split_across_parquet_files(client: Client, events: pd.DataFrame, tmp_path: Path) -> None:
    del client
    folder = tmp_path / "logs"
    folder.mkdir()
    shuffled = events.sample(frac=1, random_state=0)
    for i, rows in enumerate(np.array_split(np.arange(len(shuffled)), 4)):
        shuffled.iloc[rows].to_parquet(folder / f"part-{i}.parquet")
    ddf = jfd.read_events(str(folder))
    assert int(ddf.shape[0].compute()) == len(events)
    got = _sorted(jfd.sessionize(ddf).compute())
    want = _sorted(jf.sessionize(events))
    assert got["session_id"].tolist() == want["session_id"].tolist()


def _die_once(part: pd.DataFrame, marker: str) -> pd.DataFrame:
    """Kill the worker process running this the first time any worker gets here."""
    import os

    path = Path(marker)
    if len(part) and not path.exists():
        path.touch()
        os._exit(1)  # the worker dies mid-run; its nanny starts a new one
    return part


def test_a_worker_killed_mid_run_is_retried_and_the_result_is_identical(
    client: Client, events: pd.DataFrame, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    ddf = dd.from_pandas(events.sample(frac=1, random_state=5).reset_index(drop=True), npartitions=4, sort=False)
    ses = jfd.sessionize(ddf)  # persisted on the workers: the dead worker's share is recomputed
    doomed = ses.map_partitions(_die_once, str(marker), meta=ses._meta)
    jr = jfd.build_journeys(jfd.assign_touchpoints(doomed), lookback="30D")
    assert marker.exists()  # a worker really died during the run
    ref = jf.build_journeys(jf.assign_touchpoints(jf.sessionize(events)), lookback="30D")
    a = jfd.attribute(jr, models=["linear", "markov"]).sort_values(["model", "channel"]).reset_index(drop=True)
    b = jf.attribute(ref, models=["linear", "markov"]).sort_values(["model", "channel"]).reset_index(drop=True)
    assert a[["model", "channel"]].equals(b[["model", "channel"]])
    np.testing.assert_allclose(a[["conversions", "value"]], b[["conversions", "value"]], rtol=1e-9, atol=1e-9)
    client.wait_for_workers(2, timeout=60)  # the nanny brought the worker back


def test_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['dask.dataframe'] = None\n"
        "try:\n    import journeyflow.dask\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "journeyflow[dask]"' in out.stdout
