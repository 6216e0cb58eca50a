"""The same pipeline on Dask, for logs that outgrow one machine (``pip install "journeyflow[dask]"``).

Per-person work needs all of a person's events in one partition, so the first step
sorts the log by user id across partitions (``set_index``: one shuffle, range
partitioned, so partition i holds users that sort before those of partition
i + 1). Every later step keeps that layout and runs the single-machine function on
each partition (``map_partitions``). Results are identical to the single-machine
functions, whatever the input partitioning:

- ``sessionize``: partitions are numbered in user order, so the global session id
  is the partition's offset (sessions in earlier partitions) plus the local id;
- ``funnel``/``phase_funnel``: each partition returns one row per person (furthest
  step, gaps between steps); the client concatenates them and builds the table;
- ``build_journeys``: each partition returns its distinct paths (with summed
  counts) and its converting journeys; the client joins them in partition order,
  which is the single-machine order, so :func:`attribute` gives the same table,
  bootstrap intervals included (to floating-point summation order).

Only this module imports dask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import funnels as _funnels
from . import io as _io
from . import journeys as _journeys
from . import phases as _phases
from . import touchpoints as _touchpoints
from .attribution import DEFAULT_MODELS, AttributionModel, Bootstrap, _resolve, attribute_parts
from .attribution import attribute as _attribute
from .exceptions import DataError
from .journeys import Journeys
from .sessions import sessionize as _sessionize

try:
    import dask.dataframe as dd
    from dask.base import compute
    from dask.delayed import delayed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'journeyflow.dask needs Dask. Install it with: pip install "journeyflow[dask]"'
    ) from exc

__all__ = [
    "JourneyParts",
    "assign_phases",
    "assign_touchpoints",
    "attribute",
    "build_journeys",
    "funnel",
    "phase_funnel",
    "read_events",
    "sessionize",
]

_KEY = "_jf_user"


def read_events(
    source: Any,
    columns: Mapping[str, str] | None = None,
    *,
    timestamp_unit: str | None = None,
    timezone: str | None = None,
    blocksize: str | int | None = "16MB",
) -> dd.DataFrame:
    """Read Parquet (files, globs, folders) or CSV into a validated Dask DataFrame.

    Each partition is validated with :func:`journeyflow.validate_events`; rejected
    rows are left out of the result (inspect them with
    ``jf.validate_events`` on the partitions, or run the report).

    Examples
    --------
    >>> import tempfile, pathlib, journeyflow as jf, journeyflow.dask as jfd
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "e.parquet"
    >>> jf.datasets.simulate_webshop(20, seed=1).to_parquet(p)
    >>> int(jfd.read_events(p).shape[0].compute()) == len(jf.datasets.simulate_webshop(20, seed=1))
    True
    """
    text = str(source)
    if text.endswith((".csv", ".csv.gz")):
        raw = dd.read_csv(text, blocksize=None if text.endswith(".gz") else blocksize)
    else:
        raw = dd.read_parquet(text, blocksize=blocksize)  # about 1M events a partition: workers stay small
    kwargs: dict[str, Any] = {"timestamp_unit": timestamp_unit, "timezone": timezone}
    sample = raw.head(200, npartitions=-1)
    meta = _io.validate_events(sample, columns, **kwargs).events.iloc[:0]

    def validate(part: pd.DataFrame) -> pd.DataFrame:
        if len(part) == 0:
            return meta
        return _io.validate_events(part, columns, **kwargs).events.reset_index(drop=True)

    return raw.map_partitions(validate, meta=meta)


def _by_user(events: dd.DataFrame, columns: Mapping[str, str] | None) -> dd.DataFrame:
    """The log range-partitioned and sorted by user id (once; later steps keep it)."""
    if events.index.name == _KEY and events.known_divisions:
        return events
    user = dict(columns or {}).get("user_id", "user_id")
    return events.assign(**{_KEY: events[user]}).set_index(_KEY, sort=True)


def _keep_index(func: Any) -> Any:
    """Run a frame -> frame function on a partition, keeping its user-key index."""

    def run(part: pd.DataFrame, *args: Any, **kwargs: Any) -> pd.DataFrame:
        index = part.index
        out = func(part.reset_index(drop=True), *args, **kwargs)
        out.index = index
        return out

    return run


def sessionize(
    events: dd.DataFrame,
    *,
    timeout: Any = "30min",
    max_duration: Any = None,
    split_on_campaign: bool = False,
    columns: Mapping[str, str] | None = None,
) -> dd.DataFrame:
    """:func:`journeyflow.sessionize` on Dask, with the same session ids.

    Examples
    --------
    >>> import dask.dataframe as dd, journeyflow as jf, journeyflow.dask as jfd
    >>> ev = jf.datasets.simulate_webshop(30, seed=2)
    >>> got = jfd.sessionize(dd.from_pandas(ev, npartitions=3)).compute()
    >>> want = jf.sessionize(ev)
    >>> key = ["user_id", "timestamp", "event"]
    >>> bool((got.sort_values(key)["session_id"].to_numpy() == want.sort_values(key)["session_id"].to_numpy()).all())
    True
    """
    kw = {"timeout": timeout, "max_duration": max_duration, "split_on_campaign": split_on_campaign, "columns": columns}
    parts = _by_user(events, columns)
    meta = _keep_index(_sessionize)(parts._meta, **kw)
    local = parts.map_partitions(_keep_index(_sessionize), meta=meta, **kw).persist()
    counts = local.map_partitions(
        lambda d: pd.Series([int(d["session_id"].max()) + 1 if len(d) else 0], dtype=np.int64),
        meta=pd.Series([], dtype=np.int64),
    ).compute()
    offsets = np.concatenate([[0], np.cumsum(counts.to_numpy())[:-1]]).astype(np.int64)

    def shift(part: pd.DataFrame, partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
        number = 0 if partition_info is None else int(partition_info["number"])
        return part.assign(session_id=part["session_id"] + offsets[number])

    return local.map_partitions(shift, meta=meta)


def assign_touchpoints(events: dd.DataFrame, rules: Any = None, **kwargs: Any) -> dd.DataFrame:
    """:func:`journeyflow.assign_touchpoints` per user partition (sessionises first if needed)."""
    if "session_id" not in events.columns:
        events = sessionize(events, columns=kwargs.get("columns"))
    parts = _by_user(events, kwargs.get("columns"))
    func = _keep_index(_touchpoints.assign_touchpoints)
    meta = func(parts._meta, rules, **kwargs)
    return parts.map_partitions(func, rules, meta=meta, **kwargs)


def assign_phases(events: dd.DataFrame, model: Any = "aacra", **kwargs: Any) -> dd.DataFrame:
    """:func:`journeyflow.assign_phases` per user partition (the rule needs whole people)."""
    parts = _by_user(events, kwargs.get("columns"))
    func = _keep_index(_phases.assign_phases)
    meta = func(parts._meta, model, **kwargs)
    return parts.map_partitions(func, model, meta=meta, **kwargs)


def _per_user_meta(by: list[str], k: int) -> pd.DataFrame:
    cols: dict[str, Any] = {c: pd.Series([], dtype=object) for c in by}
    cols["reached"] = pd.Series([], dtype=np.int64)
    for j in range(1, k):
        cols[f"gap_{j}"] = pd.Series([], dtype=np.float64)
    return pd.DataFrame(cols)


def funnel(
    events: dd.DataFrame,
    steps: Sequence[Any],
    *,
    window: Any = "7D",
    mode: str = "ordered",
    by: str | Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """:func:`journeyflow.funnel` on Dask: the same table (a pandas DataFrame).

    Examples
    --------
    >>> import dask.dataframe as dd, journeyflow as jf, journeyflow.dask as jfd
    >>> ev = jf.datasets.simulate_webshop(60, seed=2)
    >>> steps = ["product_view", "add_to_cart", "purchase"]
    >>> jfd.funnel(dd.from_pandas(ev, npartitions=4), steps).equals(jf.funnel(ev, steps))
    True
    """
    by_list = [] if by is None else [by] if isinstance(by, str) else list(by)
    parts = _by_user(events, columns)
    labels = _funnels._step_masks(events._meta, {"event": dict(columns or {}).get("event", "event")}, steps,
                                  strict=False)[1]

    def per_user(part: pd.DataFrame) -> pd.DataFrame:
        if len(part) == 0:
            return _per_user_meta(by_list, len(labels))
        table, _, _ = _funnels._funnel_per_user(part.reset_index(drop=True), steps, window=window, mode=mode,
                                                 by=by, columns=columns, strict=False)
        return table

    rows = parts.map_partitions(per_user, meta=_per_user_meta(by_list, len(labels))).compute()
    return _funnels._table_from_users(rows.reset_index(drop=True), labels, by_list, "step")


def phase_funnel(
    events: dd.DataFrame,
    model: Any = "aacra",
    *,
    by: str | Sequence[str] | None = None,
    window: Any = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """:func:`journeyflow.phase_funnel` on Dask (events need ``phase``)."""
    m = _phases.get_model(model)
    masks_cols = {f"_jf_phase_{i}": p for i, p in enumerate(m.phases)}
    flagged = events.assign(**{c: events["phase"].astype(object) == p for c, p in masks_cols.items()})
    table = funnel(flagged, list(masks_cols), window=window, mode="ordered", by=by, columns=columns)
    table = table.rename(columns={"step": "phase", "step_index": "phase_index"})
    table["phase"] = table["phase"].map(masks_cols)
    return table


@dataclass
class JourneyParts:
    """The journeys of a Dask log, as attribution needs them (see :func:`build_journeys`).

    ``paths``: the distinct paths with their summed conversions, nulls and value, in
    the order the single-machine ``Journeys.distinct()`` gives; ``converting``: every
    converting journey with its touch times (for time decay); ``n_journeys``: all
    journeys, null ones included.
    """

    paths: Journeys
    converting: Journeys
    n_journeys: int

    @property
    def total_conversions(self) -> float:
        return self.paths.total_conversions

    @property
    def total_nulls(self) -> float:
        return self.paths.total_nulls

    @property
    def total_value(self) -> float:
        return self.paths.total_value

    def __len__(self) -> int:
        return self.n_journeys


def _journey_part(part: pd.DataFrame, kwargs: dict[str, Any]) -> tuple[Journeys, Journeys, int] | None:
    if len(part) == 0:
        return None
    jr = _journeys.build_journeys(part.reset_index(drop=True), conversion="_jf_conv", **kwargs)
    merged, _ = jr.distinct()
    converting = jr.take(jr.conversions > 0)
    return merged, converting, jr.n_paths


def build_journeys(events: dd.DataFrame, **kwargs: Any) -> JourneyParts:
    """:func:`journeyflow.build_journeys` on Dask: each partition builds its people's
    journeys and returns its distinct paths and its converting journeys; the client
    joins them in partition (user) order.

    The result feeds :func:`attribute` and gives the same attribution as the
    single-machine journeys, time decay and bootstrap intervals included (the
    resamples are drawn over the same distinct paths and converting journeys, in the
    same order). Keyword arguments are those of :func:`journeyflow.build_journeys`.

    Examples
    --------
    >>> import dask.dataframe as dd, journeyflow as jf, journeyflow.dask as jfd
    >>> ev = jf.assign_touchpoints(jf.sessionize(jf.datasets.simulate_webshop(60, seed=3)))
    >>> parts = jfd.build_journeys(dd.from_pandas(ev, npartitions=3))
    >>> len(parts) == len(jf.build_journeys(ev))
    True
    """
    conversion = kwargs.pop("conversion", "purchase")
    wanted = [conversion] if isinstance(conversion, str) else list(conversion)
    parts = _by_user(events, kwargs.get("columns"))
    event_col = dict(kwargs.get("columns") or {}).get("event", "event")
    flagged = parts.assign(_jf_conv=parts[event_col].isin(wanted))
    touch = kwargs.get("touchpoint", "channel")
    tasks = [delayed(_journey_part)(d, kwargs) for d in flagged.to_delayed()]
    results = [r for r in compute(*tasks) if r is not None]
    if not results or sum(r[0].total_conversions for r in results) == 0:
        raise DataError(
            f"No event is a conversion: {wanted} never occur in column {event_col!r}. "
            "Pass conversion= with an event name that occurs, e.g. 'purchase'."
        )
    used = {str(c) for r in results for c in r[0].channels}
    dtype = events._meta[touch].dtype if touch in events._meta.columns else None
    if isinstance(dtype, pd.CategoricalDtype):  # the single-machine order: categories, then "(none)"
        order = [str(c) for c in dtype.categories if str(c) in used] + (["(none)"] if "(none)" in used else [])
    else:
        order = sorted(used)
    paths = Journeys.concat([r[0] for r in results], channels=order).distinct()[0]
    converting = Journeys.concat([r[1] for r in results], channels=order)
    return JourneyParts(paths, converting, int(sum(r[2] for r in results)))


def attribute(
    journeys: JourneyParts | Journeys, models: Sequence[Any] = DEFAULT_MODELS, *, ci: Bootstrap | None = None
) -> pd.DataFrame:
    """:func:`journeyflow.attribute` on the result of :func:`build_journeys` (or on
    any :class:`~journeyflow.Journeys`): the same table as on one machine."""
    if isinstance(journeys, JourneyParts):
        models = [models] if isinstance(models, (str, AttributionModel)) else models
        fitted = [_resolve(m) for m in models]
        return attribute_parts(journeys.paths, journeys.converting, fitted, ci=ci)
    return _attribute(journeys, models, ci=ci)
