"""The ``journeyflow`` command line (also ``python -m journeyflow``).

Commands::

    journeyflow report [EVENTS ...] [--config report.toml] [--out DIR] [--overwrite]
    journeyflow sessionize EVENTS ... OUT [--timeout 30min] [--sessions]
    journeyflow funnel EVENTS ... --steps a,b,c [--window 7D] [--out FILE]
    journeyflow attribute EVENTS_OR_PATHS ... [--models markov,shapley,linear] [--out FILE]

Exit codes: 0 success; 2 usage, configuration, schema or data error (one line on
stderr naming the file, column, row or key; ``--debug`` adds the traceback); 1 an
unexpected failure; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM). Progress goes
to stderr, only when stderr is a terminal and ``--quiet`` is not given.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import traceback
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd
import pyarrow as pa

from ._progress import TerminalProgress
from ._version import __version__
from .config import ATTRIBUTION_MODELS, FUNNEL_MODES, ReportConfig
from .exceptions import InputTypeError, JourneyflowError, NotFittedError, OptionError, ReadError

__all__ = ["main"]

log = logging.getLogger("journeyflow")

FORMATS = ("csv", "parquet", "json")
EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2


class _Terminated(BaseException):
    """Raised by the SIGTERM handler so that cleanup (``finally``) runs."""


# ---------------------------------------------------------------------------
# Parser


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("output and logging")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress, warnings or messages")
    g.add_argument("-v", "--verbose", action="count", default=0, help="log each step (-vv: debug)")
    g.add_argument("--debug", action="store_true", help="show the traceback of errors")

    parser = argparse.ArgumentParser(
        prog="journeyflow",
        description="Customer journeys from clickstream logs: sessions, funnels, attribution.",
        epilog="Exit codes: 0 ok, 2 usage/config/schema/data error, 1 unexpected error.",
    )
    parser.add_argument("--version", action="version", version=f"journeyflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    events_help = (
        "event files: Parquet, CSV, CSV.gz or JSON lines; globs and folders of Parquet "
        "files work too"
    )

    rp = sub.add_parser(
        "report",
        parents=[common],
        help="run the whole pipeline and write a report folder",
        description="Run validate > sessionise > touchpoints > phases > funnels > journeys > "
        "attribution > charts and write tables, charts, summary.json and report.html to --out. "
        "With no EVENTS, runs on the sample webshop log bundled with journeyflow.",
    )
    rp.add_argument("events", nargs="*", metavar="EVENTS", help=events_help + " (default: bundled sample)")
    rp.add_argument("--config", metavar="FILE", help="report.toml with the report's options")
    rp.add_argument("--out", default="journeyflow-report", metavar="DIR", help="report folder (default: %(default)s)")
    rp.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    rp.add_argument("--profile", action="store_true", help="print wall time and peak memory per stage")
    eg = rp.add_argument_group("engine")
    eg.add_argument("--engine", choices=("pandas", "dask"), default="pandas",
                    help='where the data stages run: in memory (default) or on Dask (pip install "journeyflow[dask]")')
    where = eg.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="with --engine dask: a running Dask scheduler")
    where.add_argument("--workers", type=int, metavar="N", help="with --engine dask: local worker processes")
    rp.add_argument(
        "--no-neutralize",
        action="store_true",
        help="do not prefix CSV cells starting with = + - @ with a quote",
    )
    rp.set_defaults(func=_cmd_report)

    def add_input(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE", help="read [input] and other options from report.toml")
        p.add_argument(
            "--columns",
            metavar="MAP",
            help="column names: canonical=yours, comma separated, e.g. user_id=visitor,timestamp=ts",
        )
        p.add_argument("--timestamp-unit", choices=("s", "ms", "us", "ns"), help="unit of epoch timestamps")

    def add_output(p: argparse.ArgumentParser) -> None:
        p.add_argument("-o", "--out", default="-", metavar="FILE", help="output file ('-': stdout, the default)")
        p.add_argument("--format", choices=FORMATS, help="output format (default: from the file suffix, else csv)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
        p.add_argument("--no-neutralize", action="store_true", help="do not neutralise CSV formula cells")

    sp = sub.add_parser("sessionize", parents=[common], help="add session_id to events (or list sessions)")
    sp.add_argument("events", nargs="+", metavar="EVENTS", help=events_help)
    add_input(sp)
    sp.add_argument("--timeout", help='inactivity that ends a session (default "30min")')
    sp.add_argument("--max-duration", help="longest session, e.g. 12h")
    sp.add_argument("--split-on-campaign", action="store_true", help="new session when the utm campaign changes")
    sp.add_argument("--sessions", action="store_true", help="write one row per session instead of the events")
    sp.add_argument("--conversion", help="with --sessions: conversion event names, comma separated")
    add_output(sp)
    sp.set_defaults(func=_cmd_sessionize)

    fp = sub.add_parser("funnel", parents=[common], help="step funnel over event names")
    fp.add_argument("events", nargs="+", metavar="EVENTS", help=events_help)
    add_input(fp)
    fp.add_argument("--steps", help="event names of the steps, comma separated (e.g. view,cart,purchase)")
    fp.add_argument("--window", help='time allowed from step 1 (default "7D")')
    fp.add_argument("--mode", choices=FUNNEL_MODES, help="ordered (default), strict or unordered")
    fp.add_argument("--by", help="segment columns, comma separated")
    add_output(fp)
    fp.set_defaults(func=_cmd_funnel)

    ap = sub.add_parser(
        "attribute",
        parents=[common],
        help="attribution model comparison from events or a path file",
        description="Attribute conversions to channels. IN is raw events, or a ChannelAttribution-"
        "style path file (columns path, total_conversions, total_null[, total_conversion_value]).",
    )
    ap.add_argument("events", nargs="+", metavar="IN", help="event files, or one path file")
    add_input(ap)
    ap.add_argument("--models", help=f"comma separated, from: {','.join(ATTRIBUTION_MODELS)} (default: all)")
    ap.add_argument("--markov-order", type=int, help="order of the Markov chain (default 1)")
    ap.add_argument("--half-life", help='half-life of time decay (default "7D")')
    ap.add_argument("--bootstrap", type=int, metavar="N", help="bootstrap resamples for intervals (0: none)")
    ap.add_argument("--seed", type=int, help="bootstrap seed")
    ap.add_argument("--level", type=float, help="interval level (default 0.9)")
    ap.add_argument("--conversion", help="conversion event names, comma separated (default purchase)")
    ap.add_argument("--lookback", help='journey lookback (default "30D")')
    ap.add_argument("--touchpoint", help="what a touch is: channel (default), touchpoint, phase or a column")
    ap.add_argument("--timeout", help='session timeout (default "30min")')
    pg = ap.add_argument_group("path files")
    pg.add_argument("--paths", action="store_true", help="IN is a path file (detected from its columns otherwise)")
    pg.add_argument("--path-column", default="path", help="default: %(default)s")
    pg.add_argument("--conversions-column", default="total_conversions", help="default: %(default)s")
    pg.add_argument("--nulls-column", default="total_null", help="default: %(default)s")
    pg.add_argument("--value-column", default=None, help="default: total_conversion_value when present")
    pg.add_argument("--sep", default=">", help="separator between touches (default: %(default)s)")
    add_output(ap)
    ap.set_defaults(func=_cmd_attribute)
    return parser


# ---------------------------------------------------------------------------
# Entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 usage/data error, 1 unexpected).

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code.
    """
    if _tune_heap().get("MALLOC_ARENA_MAX"):
        _arrow_on_heap()
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    handler = _configure_logging(args)
    previous = _install_sigterm()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if args.quiet else "default")
            warnings.showwarning = _show_warning
            code: int = args.func(args)
            return code
    except (JourneyflowError, _CommandError) as exc:
        if isinstance(exc, NotFittedError):  # a bug, not a user error
            return _fail(args, exc, EXIT_UNEXPECTED)
        return _fail(args, exc, EXIT_USAGE)
    except KeyboardInterrupt:
        _message("interrupted; no output was left behind")
        return 130
    except _Terminated:
        _message("terminated; no output was left behind")
        return 143
    except Exception as exc:
        return _fail(args, exc, EXIT_UNEXPECTED)
    finally:
        _restore_sigterm(previous)
        log.removeHandler(handler)


class _CommandError(Exception):
    """A usage problem found by the command line itself (exit code 2)."""


def _tune_heap() -> dict[str, int]:
    """Tune glibc's allocator for this batch process; returns the options set.

    - One heap ("arena") for all threads: glibc gives threads that allocate their own
      heaps, and memory freed on one is not reused by another. With the report's
      background writer and two-thread steps, 10M events peaked at 1,386-1,454 MB
      instead of 1,319-1,380 MB, and building journeys took 0.73-1.1 s instead of
      0.51-0.61 s.
    - Large blocks from the heap, and freed memory kept for reuse (mmap and trim
      thresholds of 1 GiB): by default every array over 32 MB (4M int64 values) is
      mapped fresh and unmapped when freed, so the kernel zeroes its pages again on
      each use. That zeroing was a fifth of the report's CPU samples at 10M events;
      with the thresholds raised the data stages took 7.0-7.3 s instead of 8.0-9.1 s
      and the peak went from 1,313-1,326 MB to 1,351-1,375 MB (2.8-2.9x the events).

    Done for the command line only (its process is ours; a library call does not
    change a notebook's allocator), only on glibc, and each option only when the user
    has not set its environment variable (``MALLOC_ARENA_MAX``,
    ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``).
    """
    if not sys.platform.startswith("linux"):
        return {}
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return {}
    return {env: value for env, option, value in _HEAP_OPTIONS if env not in os.environ and mallopt(option, value)}


def _arrow_on_heap() -> bool:
    """Give Arrow's buffers to the same (tuned) glibc heap as numpy's arrays; whether
    that was done (not when the user set ``ARROW_DEFAULT_MEMORY_POOL``).

    Arrow's default pool (mimalloc) keeps its own memory: what the read frees there is
    not reused by the arrays of the later steps, which take fresh pages from the heap.
    With this and the Parquet columns read without pre-buffering (a pre-buffered reader
    allocates from mimalloc whatever pool is set; see ``io._read_parquet_frame``) the
    10M-event report peaked at 1,309-1,312 MB instead of 1,360-1,378 MB, at the same
    speed; this alone changed nothing measurable.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return False
    pa.set_memory_pool(pa.system_memory_pool())
    return True


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None elsewhere (e.g. musl)."""
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return None


#: (environment variable that overrides it, mallopt option from glibc's malloc.h, value)
_HEAP_OPTIONS = (
    ("MALLOC_ARENA_MAX", -8, 1),
    ("MALLOC_MMAP_THRESHOLD_", -3, 1 << 30),
    ("MALLOC_TRIM_THRESHOLD_", -1, 1 << 30),
)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _message(text: str) -> None:
    print(f"journeyflow: {text}", file=sys.stderr)


def _fail(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    if getattr(args, "debug", False):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    if code == EXIT_USAGE:
        _message(f"error: {_one_line(str(exc))}")
    else:
        hint = "" if getattr(args, "debug", False) else " (run with --debug for the traceback)"
        _message(f"unexpected error: {type(exc).__name__}: {_one_line(str(exc))}{hint}")
    return code


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    log.warning("%s: %s", category.__name__, _one_line(str(message)))


def _configure_logging(args: argparse.Namespace) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("journeyflow: %(levelname)s: %(message)s"))
    if args.quiet:
        level = logging.ERROR
    elif args.verbose >= 2:
        level = logging.DEBUG
    elif args.verbose == 1:
        level = logging.INFO
    else:
        level = logging.WARNING
    log.setLevel(level)
    log.propagate = False
    log.addHandler(handler)
    return handler


def _install_sigterm() -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, AttributeError, OSError):  # not the main thread, or no SIGTERM
        return None


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------
# Helpers shared by the commands


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _load_config(args: argparse.Namespace) -> ReportConfig:
    path = getattr(args, "config", None)
    cfg = ReportConfig() if path is None else ReportConfig.from_toml(path)
    overrides: dict[str, Any] = {}
    if getattr(args, "columns", None):
        mapping: dict[str, str] = {}
        for item in _split(args.columns) or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise _CommandError(
                    f"--columns must look like user_id=visitor,timestamp=ts; got the item {item!r}."
                )
            mapping[key.strip()] = value.strip()
        overrides["columns"] = {**cfg.input.columns, **mapping}
    if getattr(args, "timestamp_unit", None):
        overrides["timestamp_unit"] = args.timestamp_unit
    if overrides:
        cfg = dataclasses.replace(cfg, input=dataclasses.replace(cfg.input, **overrides))
    return cfg


def _override(cfg: ReportConfig, section: str, flags: dict[str, tuple[str, Any]]) -> ReportConfig:
    """Replace section options by command-line flags; errors name the flag."""
    current = getattr(cfg, section)
    for key, (flag, value) in flags.items():
        if value is None:
            continue
        try:
            current = dataclasses.replace(current, **{key: value})
        except (OptionError, InputTypeError) as exc:
            raise _CommandError(f"{flag}: {exc}") from None
    return dataclasses.replace(cfg, **{section: current})


def _load(args: argparse.Namespace, cfg: ReportConfig) -> pd.DataFrame:
    from .report import load_events

    events, rejects, n_in, label = load_events(list(args.events), cfg)
    if len(rejects):
        log.warning(
            "%s of %s rows rejected (%s); `journeyflow report` writes them to rejects.csv",
            f"{len(rejects):,}",
            f"{n_in:,}",
            ", ".join(f"{v:,} {k}" for k, v in rejects["reason"].astype(str).value_counts().items()),
        )
    log.info("read %s events from %s", f"{len(events):,}", label)
    return events


def _format(out: str, fmt: str | None) -> str:
    if fmt:
        return str(fmt)
    name = out.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return "json"
    return "csv"


def _emit(frame: pd.DataFrame, args: argparse.Namespace, out: str) -> None:
    """Write ``frame`` to ``out`` ('-' = stdout) atomically, in the chosen format."""
    from .report import neutralize_formulas

    fmt = _format(out, args.format)
    if fmt == "csv" and not args.no_neutralize:
        frame = neutralize_formulas(frame)
    if out == "-":
        if fmt == "parquet":
            raise _CommandError("--format parquet cannot go to stdout; pass --out FILE.parquet.")
        text = frame.to_csv(index=False) if fmt == "csv" else _to_json(frame)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(out)
    if target.exists() and not args.overwrite:
        raise _CommandError(f"Output file {out!r} already exists. Pass --overwrite to replace it.")
    if target.exists() and target.is_dir():
        raise _CommandError(f"Output {out!r} is a folder; pass a file name.")
    if not target.parent.is_dir():
        raise _CommandError(f"Cannot write {out!r}: folder {str(target.parent)!r} does not exist.")
    tmp = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            tmp.write_text(_to_json(frame), encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("wrote %s rows to %s", f"{len(frame):,}", out)


def _to_json(frame: pd.DataFrame) -> str:
    """Records as a JSON array; times and durations in ISO 8601."""
    text: str = frame.to_json(orient="records", date_format="iso", force_ascii=False, indent=1)
    return text + "\n"


def _need(name: str, command: str) -> Any:
    import journeyflow

    func = getattr(journeyflow, name, None)
    if func is None:
        raise _CommandError(f"`journeyflow {command}` needs jf.{name}, which this version does not have yet.")
    return func


# ---------------------------------------------------------------------------
# Commands


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import run_report

    cfg = _load_config(args)
    if args.no_neutralize:
        cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, neutralize_formulas=False))
    os.environ.setdefault("MPLBACKEND", "Agg")  # headless: this process only draws to files
    show = not args.quiet and not args.verbose and sys.stderr.isatty()
    progress = TerminalProgress(sys.stderr) if show else None
    events = list(args.events) or None
    if args.engine != "dask" and (args.scheduler or args.workers):
        raise _CommandError("--scheduler and --workers need --engine dask.")
    result = run_report(
        events, cfg, args.out, overwrite=args.overwrite, progress=progress, profile=args.profile,
        engine=args.engine, scheduler=args.scheduler, workers=args.workers,
    )
    if args.profile:
        _print_profile(result.stages, result.summary)
    if not args.quiet:
        s = result.summary
        print(
            f"journeyflow: wrote {len(result.files)} files to {result.out_dir} "
            f"({s['events_used']:,} events, {s['users']:,} users, {s['sessions'] or 0:,} sessions, "
            f"{s['conversions'] or 0:,} conversions)"
        )
    return EXIT_OK


def _print_profile(stages: Sequence[Any], summary: dict[str, Any]) -> None:
    mb = 2**20
    lines = [f"{'stage':<22}{'seconds':>9}{'peak MB':>10}{'+MB':>8}  status"]
    for r in stages:
        lines.append(
            f"{r.stage:<22}{r.seconds:>9.3f}{r.peak_rss / mb:>10.0f}"
            f"{(r.peak_rss - r.start_rss) / mb:>8.0f}  {r.status}"
        )
    total = sum(r.seconds for r in stages)
    peak = max((r.peak_rss for r in stages), default=0)
    lines.append(f"{'total':<22}{total:>9.3f}{peak / mb:>10.0f}")
    print("\n".join(lines), file=sys.stderr)


def _cmd_sessionize(args: argparse.Namespace) -> int:
    import journeyflow as jf

    cfg = _load_config(args)
    cfg = _override(
        cfg,
        "sessions",
        {
            "timeout": ("--timeout", args.timeout),
            "max_duration": ("--max-duration", args.max_duration),
            "split_on_campaign": ("--split-on-campaign", True if args.split_on_campaign else None),
        },
    )
    conversion = _split(args.conversion)
    if conversion is not None:
        cfg = _override(cfg, "conversion", {"events": ("--conversion", conversion)})
    events = _load(args, cfg)
    s = cfg.sessions
    events = jf.sessionize(events, timeout=s.timeout, max_duration=s.max_duration, split_on_campaign=s.split_on_campaign)
    if args.sessions:
        events = jf.sessions(events, conversion=list(cfg.conversion.events))
    _emit(events, args, args.out)
    return EXIT_OK


def _cmd_funnel(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    steps = _split(args.steps)
    cfg = _override(
        cfg,
        "funnel",
        {"steps": ("--steps", steps), "window": ("--window", args.window), "mode": ("--mode", args.mode)},
    )
    if cfg.funnel.steps is None:
        raise _CommandError("`journeyflow funnel` needs --steps a,b,c (or [funnel] steps in --config).")
    funnel = _need("funnel", "funnel")
    events = _load(args, cfg)
    by = _split(args.by) or list(cfg.segments.by) or None
    f = cfg.funnel
    kwargs: dict[str, Any] = {"steps": list(f.steps or ()), "window": f.window, "mode": f.mode}
    if by:
        kwargs["by"] = by
    _emit(funnel(events, **kwargs), args, args.out)
    return EXIT_OK


def _is_path_file(args: argparse.Namespace) -> bool:
    if args.paths:
        return True
    if len(args.events) != 1:
        return False
    file = Path(args.events[0])
    if not file.is_file():
        return False
    try:
        columns = _columns_of(file)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return args.path_column in columns and (args.conversions_column in columns or "conversions" in columns)


def _columns_of(file: Path) -> list[str]:
    name = file.name.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        return list(pq.read_schema(file).names)
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return list(pd.read_json(file, lines=True, nrows=1).columns)
    return list(pd.read_csv(file, nrows=0).columns)


def _read_path_file(args: argparse.Namespace) -> Any:
    import journeyflow as jf

    file = Path(args.events[0])
    if len(args.events) != 1:
        raise _CommandError("--paths takes exactly one path file.")
    name = file.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(file)
        elif name.endswith((".jsonl", ".json", ".ndjson")):
            frame = pd.read_json(file, lines=True)
        else:
            frame = pd.read_csv(file)
    except FileNotFoundError:
        raise ReadError(f"{file}: no such file.") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ReadError(f"{file}: cannot read it as a path file ({_one_line(str(exc))}).") from None
    value = args.value_column
    for fallback in ("total_conversion_value", "value"):  # ChannelAttribution's name, then journeyflow's
        if value is None and fallback in frame.columns:
            value = fallback
    conversions = args.conversions_column
    if conversions not in frame.columns and "conversions" in frame.columns:
        conversions = "conversions"  # the to_paths() format
    nulls = args.nulls_column if args.nulls_column in frame.columns else None
    if nulls is None and "nulls" in frame.columns:
        nulls = "nulls"
    try:
        return jf.Journeys.from_paths(
            frame, path=args.path_column, conversions=conversions, nulls=nulls, value=value, sep=args.sep
        )
    except JourneyflowError as exc:
        raise type(exc)(f"{file}: {exc}") from None


def _cmd_attribute(args: argparse.Namespace) -> int:
    import journeyflow as jf

    from .report import _models

    cfg = _load_config(args)
    cfg = _override(
        cfg,
        "attribution",
        {
            "models": ("--models", _split(args.models)),
            "markov_order": ("--markov-order", args.markov_order),
            "half_life": ("--half-life", args.half_life),
            "n_resamples": ("--bootstrap", args.bootstrap),
            "seed": ("--seed", args.seed),
            "level": ("--level", args.level),
        },
    )
    cfg = _override(
        cfg,
        "conversion",
        {
            "events": ("--conversion", _split(args.conversion)),
            "lookback": ("--lookback", args.lookback),
            "touchpoint": ("--touchpoint", args.touchpoint),
        },
    )
    cfg = _override(cfg, "sessions", {"timeout": ("--timeout", args.timeout)})
    attribute = _need("attribute", "attribute")
    if _is_path_file(args):
        journeys = _read_path_file(args)
    else:
        build = _need("build_journeys", "attribute")
        events = _load(args, cfg)
        s, c = cfg.sessions, cfg.conversion
        events = jf.sessionize(events, timeout=s.timeout, max_duration=s.max_duration, split_on_campaign=s.split_on_campaign)
        if c.touchpoint not in events.columns and hasattr(jf, "assign_touchpoints"):
            events = jf.assign_touchpoints(events)
        if c.touchpoint == "phase" and "phase" not in events.columns and hasattr(jf, "assign_phases"):
            events = jf.assign_phases(events, model=cfg.phases.model)
        kwargs: dict[str, Any] = {"conversion": list(c.events), "touchpoint": c.touchpoint, "lookback": c.lookback}
        if c.value in events.columns:
            kwargs["value"] = c.value
        journeys = build(events, **kwargs)
    a = cfg.attribution
    ci = None
    if a.n_resamples > 0 and hasattr(jf, "Bootstrap"):
        ci = jf.Bootstrap(n_resamples=a.n_resamples, seed=a.seed, level=a.level)
    models = _models(cfg)
    if journeys.times is None and args.models is None:  # path files carry no touch times
        models = [m for m in models if m != "time_decay" and type(m).__name__ != "TimeDecay"]
    table = attribute(journeys, models=models, ci=ci)
    _emit(table, args, args.out)
    return EXIT_OK
