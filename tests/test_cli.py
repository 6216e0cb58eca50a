"""The `journeyflow` command, run for real in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import journeyflow as jf


def run(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "journeyflow", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("r") / "report"
    cfg = out.parent / "fast.toml"
    cfg.write_text("[attribution]\nn_resamples = 20\n", encoding="utf-8")
    res = run("report", "--out", str(out), "--config", str(cfg), "--quiet")
    assert res.returncode == 0, res.stderr
    return out


def test_report_on_the_sample_writes_everything(report: Path) -> None:
    for name in ("sessions.parquet", "funnel.csv", "phase_funnel.csv", "drop_off.csv", "touchpoint_priority.csv",
                 "attribution.csv", "rejects.csv", "summary.json", "report.html"):
        assert (report / name).is_file(), name
    assert sorted(p.name for p in (report / "charts").iterdir()) == [
        "attribution.png", "drop_off.png", "funnel.png", "phase_funnel.png", "touchpoint_priority.png"
    ]
    leftovers = [p.name for p in report.parent.iterdir() if ".partial-" in p.name]
    assert leftovers == []


def test_summary_reconciles_with_the_tables_and_the_sample(report: Path) -> None:
    s = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    sample = jf.datasets.load_sample()
    assert s["events_in"] == len(sample) == s["events_used"] + s["events_rejected"]
    assert s["users"] == sample["user_id"].nunique()
    assert s["conversions"] == int((sample["event"] == "purchase").sum())
    assert s["conversion_value"] == pytest.approx(sample["revenue"].sum())
    at = pd.read_csv(report / "attribution.csv")
    for model, part in at.groupby("model"):
        assert part["conversions"].sum() == pytest.approx(s["conversions"]), model
        assert s["attribution"][model]["conversions"] == pytest.approx(s["conversions"])
    sessions = pd.read_parquet(report / "sessions.parquet")
    assert len(sessions) == s["sessions"]
    funnel = pd.read_csv(report / "funnel.csv")
    assert (funnel["users"].diff().dropna() <= 0).all()


def test_html_is_self_contained(report: Path) -> None:
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html
    assert 'src="http' not in html and "<link" not in html


def _events_csv(path: Path, **overrides: object) -> Path:
    ev = jf.datasets.simulate_webshop(60, seed=3)
    for k, v in overrides.items():
        ev[k] = v
    ev.to_csv(path, index=False)
    return path


def test_html_and_formula_injection_are_neutralised(tmp_path: Path) -> None:
    src = tmp_path / "ev.csv"
    ev = jf.datasets.simulate_webshop(60, seed=3)
    ev = ev.astype({"utm_source": object, "utm_medium": object})  # categoricals take no new values
    ev.loc[ev.index[:5], "utm_source"] = "<script>alert(1)</script>"
    ev.loc[ev.index[:5], "utm_medium"] = "=HYPERLINK(\"http://evil\")"
    ev.to_csv(src, index=False)
    out = tmp_path / "r"
    cfg = tmp_path / "c.toml"
    cfg.write_text("[attribution]\nn_resamples = 0\n[touchpoints]\n", encoding="utf-8")
    res = run("report", str(src), "--out", str(out), "--config", str(cfg), "--quiet")
    assert res.returncode == 0, res.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    text = "\n".join(p.read_text(encoding="utf-8") for p in out.glob("*.csv"))
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_bad_config_key_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[funnel]\nwindw = \"7D\"\n", encoding="utf-8")
    out = tmp_path / "r"
    res = run("report", "--out", str(out), "--config", str(cfg))
    assert res.returncode == 2
    assert "windw" in res.stderr and "window" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()


def test_missing_column_unreadable_and_empty_files(tmp_path: Path) -> None:
    src = _events_csv(tmp_path / "ev.csv")
    pd.read_csv(src).rename(columns={"user_id": "visitor"}).to_csv(src, index=False)
    res = run("report", str(src), "--out", str(tmp_path / "r1"))
    assert res.returncode == 2 and "user_id" in res.stderr and "visitor" in res.stderr
    res = run("report", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "r2"))
    assert res.returncode == 2 and "nope.parquet" in res.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("user_id,timestamp,event\n", encoding="utf-8")
    res = run("report", str(empty), "--out", str(tmp_path / "r3"))
    assert res.returncode == 2 and "no rows" in res.stderr
    for name in ("r1", "r2", "r3"):
        assert not (tmp_path / name).exists()


def test_existing_folder_needs_overwrite(report: Path) -> None:
    res = run("report", "--out", str(report))
    assert res.returncode == 2 and "--overwrite" in res.stderr


def test_interrupted_run_leaves_no_report_folder(tmp_path: Path) -> None:
    cfg = tmp_path / "slow.toml"
    cfg.write_text("[attribution]\nn_resamples = 200000\n", encoding="utf-8")  # minutes: it must still run at the signal
    out = tmp_path / "r"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "journeyflow", "report", "--out", str(out), "--config", str(cfg), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not any(".partial-" in p.name for p in tmp_path.iterdir()):
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []


def test_a_failed_background_write_fails_the_report(tmp_path: Path) -> None:
    """sessions.parquet is written while later stages run; its error still surfaces,
    and neither the report folder nor the temporary one is left."""
    from unittest import mock

    ev = jf.datasets.load_sample().head(3000)
    with mock.patch("pyarrow.parquet.ParquetWriter.write_table", side_effect=OSError("disk full")), \
            pytest.raises(OSError, match="disk full"):
        jf.run_report(ev, out_dir=tmp_path / "out", config=jf.ReportConfig.from_dict({"output": {"charts": False}}))
    assert list(tmp_path.iterdir()) == []


def test_sessions_parquet_written_in_slices_reads_back_the_same(tmp_path: Path) -> None:
    """The report builds and writes sessions.parquet a slice at a time: it reads back as jf.sessions."""
    from journeyflow.report import _write_parquet_parts
    from journeyflow.sessions import _session_parts

    ev = jf.sessionize(jf.assign_touchpoints(jf.datasets.simulate_webshop(600, seed=1)))
    table = jf.sessions(ev, conversion=["purchase"])
    parts = _session_parts(ev, conversion=["purchase"], rows=333)  # several slices, the last one short
    _write_parquet_parts(parts, tmp_path / "s.parquet")
    assert len(table) > 2 * 333
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), table)


def test_report_on_user_ids_in_several_arrow_chunks_writes_the_same_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text read from Parquet stays in Arrow chunks (one per batch of rows):
    sessions.parquet then gathers the user ids from the sessionize stage's cached
    sorted distinct ids, and equals jf.sessions of the same events."""
    import pyarrow as pa

    from journeyflow import _encode

    raw = jf.datasets.simulate_webshop(300, seed=12).sample(frac=1.0, random_state=3).reset_index(drop=True)
    ids = pa.array(raw["user_id"].astype(object).tolist(), pa.large_string())
    chunked = pa.chunked_array([ids.slice(0, 700), ids.slice(700, 900), ids.slice(1600)])
    raw["user_id"] = pd.Series(pd.array(chunked, dtype=raw["user_id"].dtype), index=raw.index)
    assert raw["user_id"].array.__arrow_array__().num_chunks == 3
    monkeypatch.setattr(_encode, "_CACHE_MIN_ROWS", 1)  # (the cache is for large logs)
    gathered: list[tuple[int, bool]] = []
    real = _encode.take_rows

    def spy(values: pd.Series, rows: object) -> pd.Series:
        gathered.append((values.array.__arrow_array__().num_chunks, _encode.is_cached(values)))
        return real(values, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(sys.modules["journeyflow.sessions"], "take_rows", spy)
    cfg = jf.ReportConfig.from_dict({"output": {"charts": False}, "attribution": {"n_resamples": 0}})
    jf.run_report(raw, out_dir=tmp_path / "r", config=cfg)
    assert gathered and all(chunks > 1 and cached for chunks, cached in gathered)
    plain = raw.assign(user_id=raw["user_id"].astype(object).astype(raw["user_id"].dtype))  # one chunk: iloc
    assert plain["user_id"].array.__arrow_array__().num_chunks == 1
    want = jf.sessions(jf.sessionize(jf.read_events(plain)), conversion=list(cfg.conversion.events))
    got = pd.read_parquet(tmp_path / "r" / "sessions.parquet")
    pd.testing.assert_frame_equal(got[want.columns], want)


def test_summary_counts_conversions_from_the_events_when_there_are_no_journeys(tmp_path: Path) -> None:
    """Journeys skipped (no touch column): the summary's conversions and value are the
    conversion events' own count and revenue sum."""
    raw = jf.datasets.simulate_webshop(150, seed=4)
    cfg = jf.ReportConfig.from_dict({"output": {"charts": False}, "attribution": {"n_resamples": 0},
                                     "conversion": {"touchpoint": "no_such_column"}})
    res = jf.run_report(raw, out_dir=tmp_path / "r", config=cfg)
    assert res.summary["journeys"] is None and res.summary["stages"]["journeys"].startswith("skipped")
    is_conv = raw["event"].isin(list(cfg.conversion.events))
    assert res.summary["conversions"] == int(is_conv.sum()) > 0
    assert res.summary["conversion_value"] == pytest.approx(float(raw.loc[is_conv, "revenue"].sum()))


def test_report_tables_equal_the_public_functions(tmp_path: Path) -> None:
    """The report counts the step funnel once for funnel.csv and drop_off.csv, the
    phase funnel without a sort, and passes the sessions' rows from sessionize on to
    the channels, sessions.parquet, the users' last rows (drop-off, priority) and the
    journeys: the tables equal jf.funnel, jf.drop_off, jf.phase_funnel,
    jf.touchpoint_priority, jf.sessions and jf.attribute of jf.build_journeys."""
    import io
    from types import SimpleNamespace

    from journeyflow.report import _funnel_steps

    raw = jf.datasets.simulate_webshop(400, seed=7)
    cfg = jf.ReportConfig.from_dict({"output": {"charts": False}, "attribution": {"n_resamples": 0}})
    out = tmp_path / "r"
    jf.run_report(raw, out_dir=out, config=cfg)
    ev = jf.assign_phases(jf.assign_touchpoints(jf.sessionize(raw)), model=cfg.phases.model)
    steps = _funnel_steps(SimpleNamespace(config=cfg, events=ev, event_names=None))  # type: ignore[arg-type]
    assert steps is not None and len(steps) >= 3
    f = cfg.funnel
    expected = {
        "funnel.csv": jf.funnel(ev, steps, window=f.window, mode=f.mode),
        "drop_off.csv": jf.drop_off(ev, steps, window=f.window, mode=f.mode),
        "phase_funnel.csv": jf.phase_funnel(ev, cfg.phases.model),
    }
    c = cfg.conversion
    expected["touchpoint_priority.csv"] = jf.touchpoint_priority(ev, conversion=list(c.events), model=cfg.phases.model)
    jr = jf.build_journeys(ev, conversion=list(c.events), touchpoint=c.touchpoint, lookback=c.lookback)
    from journeyflow.report import _models

    expected["attribution.csv"] = jf.attribute(jr, models=_models(cfg))
    for name, table in expected.items():
        assert len(table) > 0, name
        want = pd.read_csv(io.StringIO(table.to_csv(index=False)))
        pd.testing.assert_frame_equal(pd.read_csv(out / name), want, obj=name)
    # the sessions' rows found by the sessionize stage and passed on: the same table
    table = jf.sessions(ev, conversion=list(c.events))
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sessions.parquet"), table)
    # min/max statistics of the numbers and times (for readers that skip row groups)
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(out / "sessions.parquet").metadata
    stats = {meta.schema.column(i).name: meta.row_group(0).column(i).statistics for i in range(meta.num_columns)}
    assert stats["session_id"].min == 0 and stats["session_id"].max == table["session_id"].max()
    assert stats["n_events"].max == table["n_events"].max() and stats["start"].has_min_max


def test_subcommands_write_tables(tmp_path: Path) -> None:
    src = tmp_path / "ev.parquet"
    jf.datasets.simulate_webshop(80, seed=5).to_parquet(src)
    res = run("sessionize", str(src), "--out", str(tmp_path / "s.csv"))
    assert res.returncode == 0, res.stderr
    assert "session_id" in pd.read_csv(tmp_path / "s.csv").columns
    res = run("funnel", str(src), "--steps", "product_view,add_to_cart,purchase",
              "--out", str(tmp_path / "f.csv"))
    assert res.returncode == 0, res.stderr
    f = pd.read_csv(tmp_path / "f.csv")
    expected = jf.funnel(jf.read_events(src), ["product_view", "add_to_cart", "purchase"])
    assert f["users"].tolist() == expected["users"].tolist()


def test_attribute_reads_a_path_file(tmp_path: Path) -> None:
    ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(300, seed=6)))
    jr = jf.build_journeys(ev)
    jr.to_paths().to_csv(tmp_path / "paths.csv", index=False)
    res = run("attribute", str(tmp_path / "paths.csv"), "--bootstrap", "0", "-o", str(tmp_path / "at.csv"))
    assert res.returncode == 0, res.stderr
    got = pd.read_csv(tmp_path / "at.csv")
    assert "time_decay" not in set(got["model"])  # path files have no touch times
    want = jf.attribute(jr, models=["markov"]).set_index("channel")["conversions"]
    mk = got[got["model"] == "markov"].set_index("channel")["conversions"]
    pd.testing.assert_series_equal(mk.sort_index(), want.sort_index(), check_names=False, rtol=1e-9)


def test_engine_dask_writes_the_same_report(tmp_path: Path) -> None:
    """Users split over three Parquet files with bad rows: the Dask engine's tables, rejects
    (row numbers across files), summary and sessions equal the in-memory engine's."""
    import numpy as np

    ev = jf.datasets.simulate_webshop(500, seed=12).astype({"user_id": object})
    ev["timestamp"] = ev["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").astype(object)
    ev.loc[ev.index[[5, 700, 2_000]], "user_id"] = None
    ev.loc[ev.index[[9, 1_500]], "timestamp"] = "not a time"
    shuffled = ev.sample(frac=1, random_state=1).reset_index(drop=True)
    folder = tmp_path / "log"
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(shuffled)), 3)):
        shuffled.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[attribution]\nn_resamples = 25\n[segments]\nby = [\"device\"]\n", encoding="utf-8")
    a, b = tmp_path / "pandas", tmp_path / "dask"
    res = run("report", str(folder), "--out", str(a), "--config", str(cfg), "--quiet")
    assert res.returncode == 0, res.stderr
    res = run("report", str(folder), "--out", str(b), "--config", str(cfg), "--quiet", "--engine", "dask",
              "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # quiet means quiet, cluster included
    tables = sorted(p.name for p in a.glob("*.csv"))
    assert tables == sorted(p.name for p in b.glob("*.csv")) and "funnel_by_segment.csv" in tables
    for name in tables:
        x, y = pd.read_csv(a / name), pd.read_csv(b / name)
        assert list(x.columns) == list(y.columns), name
        text = [c for c in x.columns if x[c].dtype == object]
        assert x[text].equals(y[text]), name
        pd.testing.assert_frame_equal(x.drop(columns=text), y.drop(columns=text), rtol=1e-9, atol=1e-9)
    assert len(pd.read_csv(a / "rejects.csv")) == 5
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for key in ("events_in", "events_used", "events_rejected", "rejects_by_reason", "users", "sessions",
                "journeys", "conversions", "conversion_value", "attribution"):
        assert sa[key] == pytest.approx(sb[key]) if not isinstance(sa[key], dict) else sa[key] == sb[key], key
    x = pd.read_parquet(a / "sessions.parquet")
    y = pd.read_parquet(b / "sessions.parquet").sort_values("session_id").reset_index(drop=True)
    assert x.astype(str).equals(y[list(x.columns)].astype(str))


def test_engine_options_need_the_dask_engine(tmp_path: Path) -> None:
    res = run("report", "--out", str(tmp_path / "r"), "--workers", "2")
    assert res.returncode == 2 and "--engine dask" in res.stderr
    assert not (tmp_path / "r").exists()


def test_the_command_line_tunes_glibc_malloc(monkeypatch: pytest.MonkeyPatch) -> None:
    """One heap and large thresholds for the command's allocator (see cli._tune_heap):
    each option set unless the user chose its environment variable, nothing off Linux."""
    import platform

    from journeyflow import cli

    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert cli._glibc_mallopt() is not None
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(cli, "_glibc_mallopt", lambda: lambda option, value: calls.append((option, value)) or 1)
    for env in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert cli._tune_heap() == {
        "MALLOC_ARENA_MAX": 1, "MALLOC_MMAP_THRESHOLD_": 1 << 30, "MALLOC_TRIM_THRESHOLD_": 1 << 30}
    assert calls == [(-8, 1), (-3, 1 << 30), (-1, 1 << 30)]  # M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    calls.clear()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert cli._tune_heap() == {"MALLOC_MMAP_THRESHOLD_": 1 << 30}
    assert calls == [(-3, 1 << 30)]
    monkeypatch.setattr(cli, "_glibc_mallopt", lambda: lambda option, value: 0)  # refused
    assert cli._tune_heap() == {}
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cli._tune_heap() == {}


def test_the_command_line_gives_arrow_the_tuned_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow's buffers come from the system allocator (the heap cli._tune_heap tuned),
    unless the user chose Arrow's pool."""
    import pyarrow as pa

    from journeyflow import cli

    before = pa.default_memory_pool()
    try:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
        assert cli._arrow_on_heap() is False
        assert pa.default_memory_pool().backend_name == before.backend_name
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        assert cli._arrow_on_heap() is True
        assert pa.default_memory_pool().backend_name == "system"
        assert pa.array(["a", "b"]).to_pylist() == ["a", "b"]
    finally:
        pa.set_memory_pool(before)
