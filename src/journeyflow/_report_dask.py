"""``journeyflow report --engine dask``: the report's data stages on a Dask cluster.

The events never need to fit in the client's memory. Reading and validation run per
partition (rejects, small, come back to the client with global row numbers); the log
is then shuffled once by user (in :func:`journeyflow.dask.sessionize`) and kept on the
workers (``persist``: Dask spills partitions to disk when memory runs short). Every
later stage runs the single-machine code on partitions that hold whole people and
combines per-partition results that add up:

- funnels and phase funnels: one row per person (:func:`journeyflow.dask.funnel`);
- drop-off: people per (step, last touchpoint, last event);
- touchpoint priority: per touchpoint, people who met it / converted / left there,
  events, phases seen, plus the totals;
- journeys: distinct paths and converting journeys, joined in user order
  (:func:`journeyflow.dask.build_journeys`), so attribution and its bootstrap
  intervals are those of the pandas engine;
- the sessions table is written as a folder of Parquet parts.

Only the aggregated tables reach the client, so charts and HTML are the pandas
engine's. Tables equal the pandas engine's on the same input; a test runs both.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import dask.dataframe as dd
import pandas as pd
from dask.base import compute, persist
from dask.delayed import delayed

from . import dask as jfd
from . import funnels as _funnels
from . import report as _report
from ._validation import check_duration
from .exceptions import DataError, JourneyflowError, OptionError
from .io import _expand, validate_events
from .sessions import sessions as _sessions

__all__ = ["STAGES", "client"]

#: Target partition size on disk (about 1M events, a few hundred MB in memory), so workers with a few GB
#: can read, validate and shuffle several partitions at once.
_BLOCKSIZE = "16MiB"


@contextlib.contextmanager
def client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A Dask client for the run: to ``scheduler``, or to a local cluster of ``workers``
    processes (one thread each) that lives as long as the run."""
    from distributed import Client, LocalCluster

    # the shuffle's progress notes are not warnings for a report's reader
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    if scheduler is not None:
        with Client(scheduler) as c:
            yield c
        return
    n = workers or os.cpu_count() or 2
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as c:
        yield c


# ---------------------------------------------------------------------------
# Reading


def _raw(source: Any) -> tuple[list[tuple[Any, bool, str | None]], str]:
    """(dask frame, rows numbered by file position, file label) per source, and a label."""
    if source is None:
        return [(dd.from_pandas(_report._load_sample(), npartitions=4, sort=False), False, None)], (
            "the sample webshop log bundled with journeyflow"
        )
    if isinstance(source, pd.DataFrame):
        return [(dd.from_pandas(source, npartitions=max(1, min(64, len(source) // 250_000 + 1)), sort=False),
                 False, None)], _report._source_label(source)
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    if not sources:
        raise OptionError("events is an empty list; pass at least one file, or None for the sample.")
    out = []
    for src in sources:
        files = [str(f) for f in _expand(src)]
        kinds = {_kind(f) for f in files}
        if len(kinds) > 1:
            raise OptionError(f"{src}: mixes file types {sorted(kinds)}; give one type per source.")
        kind = kinds.pop()
        if kind == "parquet":
            frame = dd.read_parquet(files, blocksize=_BLOCKSIZE)
        elif kind == "csv":
            frame = dd.read_csv(files, blocksize=None, dtype=str, keep_default_na=False, na_values=[""])
        else:
            frame = dd.read_json(files, lines=True, blocksize=None)
        out.append((frame, True, str(src) if len(sources) > 1 else None))
    return out, ", ".join(_report._source_label(s) for s in sources)


def _kind(path: str) -> str:
    low = path.lower()
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if low.endswith((".jsonl", ".ndjson", ".json")):
        return "json"
    raise OptionError(f"{path}: --engine dask reads Parquet, CSV and JSON lines files.")


def _validate_part(part: pd.DataFrame, kwargs: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    result = validate_events(part, **kwargs)
    return result.events, result.rejects, len(part)


def _stage_read(run: _report._Run) -> str | None:
    cfg = run.config
    kwargs: dict[str, Any] = {}
    if run.source is not None:
        opts = cfg.input
        kwargs["columns"] = dict(opts.columns) or None
        if opts.timestamp_unit is not None:
            kwargs["timestamp_unit"] = opts.timestamp_unit
        if opts.timezone != "UTC":
            kwargs["timezone"] = opts.timezone
    frames, label = _raw(run.source)
    events, rejects, n_in = [], [], 0
    for frame, by_position, file_label in frames:
        results = [delayed(_validate_part)(d, kwargs) for d in frame.to_delayed()]
        try:
            results = list(persist(*results))
            small = compute(*[delayed(lambda r: (r[1], r[2], r[0].iloc[:0]))(r) for r in results])
        except JourneyflowError as exc:
            raise type(exc)(f"{label}: {exc}") from None
        offset = 0
        for rj, n, _ in small:
            if by_position and len(rj):
                rj = rj.assign(row=rj["row"].to_numpy() + offset)
            if file_label is not None:
                rj = rj.assign(file=file_label)
            rejects.append(rj)
            offset += n
        n_in += offset
        meta = small[0][2] if small else None
        events.append(dd.from_delayed([delayed(lambda r: r[0])(r) for r in results], meta=meta, verify_meta=False))
    run.rejects = pd.concat(rejects, ignore_index=True)
    run.n_in, run.source_label = n_in, label
    _report._write_csv(run, run.rejects, "rejects.csv")
    ev = events[0] if len(events) == 1 else dd.concat(events)
    n_used = int(compute(ev.map_partitions(len).sum())[0])
    if n_used == 0:
        if n_in == 0:
            raise DataError(f"{label}: no events to report on (the input has 0 rows).")
        raise DataError(
            f"{label}: all {n_in:,} rows were rejected (reasons: {_report._reason_counts(run.rejects)}); "
            "nothing is left to report on. Every rejected row is listed by jf.validate_events(...).rejects."
        )
    run.events = ev
    run.counts["events_used"] = n_used
    return None


def _ev(run: _report._Run) -> Any:
    """The run's events: a Dask DataFrame from the read stage on."""
    assert run.events is not None
    return run.events


# ---------------------------------------------------------------------------
# Per-person stages


def _stage_sessionize(run: _report._Run) -> str | None:
    s = run.config.sessions
    run.events = jfd.sessionize(_ev(run), timeout=s.timeout, max_duration=s.max_duration,
                                split_on_campaign=s.split_on_campaign)
    return None


def _stage_touchpoints(run: _report._Run) -> str | None:
    opts = run.config.touchpoints
    kwargs: dict[str, Any] = {}
    if opts.channel_rules is not None:
        kwargs["rules"] = _report._load_rules(run.config, opts.channel_rules, "ChannelRules", "touchpoints.channel_rules")
    if opts.touchpoint_rules is not None:
        kwargs["touchpoint_rules"] = _report._load_rules(
            run.config, opts.touchpoint_rules, "TouchpointRules", "touchpoints.touchpoint_rules"
        )
    run.events = jfd.assign_touchpoints(_ev(run), **kwargs)
    return None


def _stage_phases(run: _report._Run) -> str | None:
    run.events = jfd.assign_phases(_ev(run), model=_report._phase_model(run.config)).persist()
    return None


def _per_partition(run: _report._Run, func: Callable[[pd.DataFrame], Any]) -> list[Any]:
    """``func`` on every partition (whole people, default index), results on the client."""
    wrapped = delayed(lambda part: None if len(part) == 0 else func(part.reset_index(drop=True)))
    return [r for r in compute(*[wrapped(d) for d in _ev(run).to_delayed()]) if r is not None]


def _stage_sessions(run: _report._Run) -> str | None:
    conversion = list(run.config.conversion.events)
    head = _ev(run).head(500, npartitions=-1).reset_index(drop=True)  # to learn the output's columns
    meta = _sessions(head, conversion=conversion).iloc[:0]
    table = _ev(run).map_partitions(
        lambda part: _sessions(part.reset_index(drop=True), conversion=conversion) if len(part) else meta,
        meta=meta,
    )
    table.to_parquet(run.tmp / "sessions.parquet", write_index=False)
    run.files.append("sessions.parquet")
    counts = _per_partition(run, lambda p: (p["user_id"].nunique(), p["session_id"].nunique(),
                                            _conversion_counts(p, run)))
    run.counts["users"] = int(sum(c[0] for c in counts))
    run.counts["sessions"] = int(sum(c[1] for c in counts))
    run.counts["conversion_events"] = int(sum(c[2][0] for c in counts))
    values = [c[2][1] for c in counts]
    run.counts["conversion_value_events"] = None if any(v is None for v in values) else float(sum(values))
    return None


def _conversion_counts(part: pd.DataFrame, run: _report._Run) -> tuple[int, float | None]:
    cfg = run.config
    mask = part["event"].isin(list(cfg.conversion.events)).to_numpy(dtype=bool)
    col = cfg.conversion.value
    value = float(pd.to_numeric(part[col], errors="coerce").to_numpy()[mask].sum()) if col in part.columns else None
    return int(mask.sum()), value


def _present(run: _report._Run) -> set[str]:
    names = _per_partition(run, lambda p: set(pd.unique(p["event"].astype(str))))
    return set().union(*names) if names else set()


def _stage_funnel(run: _report._Run) -> str | None:
    steps = _report._funnel_steps(run, _present(run))
    if steps is None:
        return (
            "no [funnel] steps configured and fewer than two of the default webshop steps "
            f"({', '.join(_report.DEFAULT_FUNNEL_STEPS)}) occur in the data"
        )
    f = run.config.funnel
    run.notes["funnel_steps"] = " > ".join(steps)
    _report._write_table(run, jfd.funnel(_ev(run), steps, window=f.window, mode=f.mode), "funnel.csv")
    by = _report._by(run)
    if by:
        table = jfd.funnel(_ev(run), steps, window=f.window, mode=f.mode, by=by)
        _report._write_table(run, table, "funnel_by_segment.csv")
    return None


def _stage_phase_funnel(run: _report._Run) -> str | None:
    if "phase" not in _ev(run).columns:
        return "the events have no phase column (phases stage skipped)"
    model = _report._phase_model(run.config)
    _report._write_table(run, jfd.phase_funnel(_ev(run), model), "phase_funnel.csv")
    by = _report._by(run)
    if by:
        _report._write_table(run, jfd.phase_funnel(_ev(run), model, by=by), "phase_funnel_by_segment.csv")
    return None


def _stage_drop_off(run: _report._Run) -> str | None:
    steps = _report._funnel_steps(run, _present(run))
    f = run.config.funnel
    model = None if steps is not None else _report._phase_model(run.config)
    span = check_duration("funnel.window", f.window, allow_none=True) if steps is not None else None
    window_ns = None if span is None else int(span.value)

    def counts(part: pd.DataFrame) -> pd.DataFrame:
        names, _ = _funnels._prepare(part, None, None)
        return _funnels._drop_off_counts(part, names, steps, model, window_ns, f.mode, "touchpoint", strict=False)

    parts = _per_partition(run, counts)
    _report._write_table(run, _funnels._drop_off_table(pd.concat(parts, ignore_index=True)), "drop_off.csv")
    return None


def _stage_touchpoint_priority(run: _report._Run) -> str | None:
    if "touchpoint" not in _ev(run).columns:
        return "the events have no touchpoint column (touchpoints stage skipped)"
    wanted = list(run.config.conversion.events)

    def counts(part: pd.DataFrame) -> tuple[pd.DataFrame, int, int, list[str]]:
        names, _ = _funnels._prepare(part, None, None)
        return _funnels._priority_counts(part, names, wanted)

    parts = _per_partition(run, counts)
    phase_names = max((p[3] for p in parts), key=len)
    table = _funnels._priority_table(
        pd.concat([p[0] for p in parts], ignore_index=True), sum(p[1] for p in parts), sum(p[2] for p in parts),
        phase_names,
    )
    _report._write_table(run, table, "touchpoint_priority.csv")
    return None


def _stage_journeys(run: _report._Run) -> str | None:
    c = run.config.conversion
    if c.touchpoint not in _ev(run).columns:
        return f"the events have no {c.touchpoint!r} column to build journeys from ([conversion] touchpoint)"
    kwargs: dict[str, Any] = {"conversion": list(c.events), "touchpoint": c.touchpoint, "lookback": c.lookback}
    if c.value in _ev(run).columns:
        kwargs["value"] = c.value
    run.journeys = jfd.build_journeys(_ev(run), **kwargs)
    return None


def _stage_attribution(run: _report._Run) -> str | None:
    if run.journeys is None:
        return "no journeys (journeys stage skipped)"
    a = run.config.attribution
    ci = _report._public("Bootstrap")(n_resamples=a.n_resamples, seed=a.seed, level=a.level) \
        if a.n_resamples > 0 else None
    table = jfd.attribute(run.journeys, models=_report._models(run.config), ci=ci)
    run.attribution = table
    _report._write_table(run, table, "attribution.csv")
    return None


#: The pandas engine's stages with the data stages replaced; charts, summary and HTML
#: draw the aggregated tables and are shared.
_ON_DASK: dict[str, Callable[[_report._Run], str | None]] = {
    "read": _stage_read,
    "sessionize": _stage_sessionize,
    "touchpoints": _stage_touchpoints,
    "phases": _stage_phases,
    "sessions": _stage_sessions,
    "funnel": _stage_funnel,
    "phase_funnel": _stage_phase_funnel,
    "drop_off": _stage_drop_off,
    "touchpoint_priority": _stage_touchpoint_priority,
    "journeys": _stage_journeys,
    "attribution": _stage_attribution,
}
STAGES: tuple[tuple[str, Callable[[_report._Run], str | None]], ...] = tuple(
    (name, _ON_DASK.get(name, stage)) for name, stage in _report._STAGES
)
