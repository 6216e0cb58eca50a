"""Argument checks with one wording for every message (private).

Each message says what is wrong, what is allowed, what was received and how to fix it.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Collection, Iterable, Mapping
from typing import Any, TypeVar

import pandas as pd

from .exceptions import InputTypeError, NotFittedError, OptionError, SchemaError

T = TypeVar("T")


def describe(value: Any) -> str:
    """``repr`` of a value with its type name, for error messages."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (a {type(value).__name__})"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name`` (case-insensitive), or None if none is close."""
    candidates = [str(c) for c in candidates]
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


def check_option(name: str, value: Any, allowed: Collection[T]) -> T:
    """Return ``value`` if it is one of ``allowed``; else raise OptionError naming them."""
    if value in allowed:
        return value  # type: ignore[no-any-return]
    choices = ", ".join(repr(a) for a in allowed)
    hint = ""
    if isinstance(value, str):
        near = closest(value, [str(a) for a in allowed])
        if near is not None:
            hint = f" Did you mean {near!r}?"
    raise OptionError(f"{name} must be one of {choices}; got {describe(value)}.{hint}")


def check_duration(
    name: str, value: Any, *, allow_none: bool = False, allow_zero: bool = False
) -> pd.Timedelta | None:
    """Parse a duration such as ``"30min"`` or ``pd.Timedelta``; bare numbers are refused."""
    if value is None and allow_none:
        return None
    fix = 'Pass a string with a unit such as "30min" or "7D", or a pd.Timedelta.'
    if isinstance(value, bool) or not isinstance(value, (str, pd.Timedelta)):
        import datetime as _dt

        if isinstance(value, _dt.timedelta):
            value = pd.Timedelta(value)
        else:
            kind = "a positive duration" if not allow_zero else "a non-negative duration"
            raise OptionError(f"{name} must be {kind} such as \"30min\"; got {describe(value)}. {fix}")
    try:
        td = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise OptionError(
            f"{name} must be a duration such as \"30min\"; got {describe(value)}, which pandas "
            f"cannot parse ({exc}). {fix}"
        ) from None
    if pd.isna(td) or td < pd.Timedelta(0) or (td == pd.Timedelta(0) and not allow_zero):
        kind = "positive" if not allow_zero else "non-negative"
        raise OptionError(f"{name} must be a {kind} duration such as \"30min\"; got {describe(value)}. {fix}")
    return td


def check_fraction(name: str, value: Any, *, inclusive: bool = True) -> float:
    """Return ``value`` as a float in [0, 1] (or (0, 1) when not inclusive)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputTypeError(f"{name} must be a number between 0 and 1; got {describe(value)}.")
    v = float(value)
    ok = 0.0 <= v <= 1.0 if inclusive else 0.0 < v < 1.0
    if not ok:
        bounds = "[0, 1]" if inclusive else "(0, 1)"
        raise OptionError(f"{name} must lie in {bounds}; got {v!r}.")
    return v


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be an integer >= {minimum}; got {describe(value)}.")
    v = int(value)
    if v < minimum:
        raise OptionError(f"{name} must be an integer >= {minimum}; got {v!r}.")
    return v


def check_frame(name: str, value: Any) -> pd.DataFrame:
    """Return ``value`` if it is a pandas DataFrame, else raise InputTypeError."""
    if not isinstance(value, pd.DataFrame):
        raise InputTypeError(
            f"{name} must be a pandas DataFrame; got {describe(value)}. "
            "Read files with jf.read_events(path) first."
        )
    return value


def require_columns(frame: pd.DataFrame, names: dict[str, str], *, what: str = "events") -> None:
    """Raise SchemaError if a column is missing; ``names`` maps canonical -> actual name."""
    present = [str(c) for c in frame.columns]
    for canonical, actual in names.items():
        if actual in frame.columns:
            continue
        near = closest(actual, present)
        mapped = actual != canonical
        via = f" (columns={{{canonical!r}: {actual!r}}})" if mapped else ""
        hint = ""
        if near is not None:
            hint = f" Did you mean columns={{{canonical!r}: {near!r}}}?"
        else:
            hint = f" Pass columns={{{canonical!r}: '<your column>'}} to name it."
        raise SchemaError(
            f"Column {actual!r}{via} is required but is not in the {what}. "
            f"Columns present: {present}.{hint}"
        )


def check_fitted(model: Any, attribute: str) -> None:
    """Raise NotFittedError if ``model`` has no ``attribute`` yet."""
    if getattr(model, attribute, None) is None:
        raise NotFittedError(
            f"This {type(model).__name__} is not fitted yet. Call .fit(journeys) before "
            f"using {attribute}."
        )


def lookup(what: str, name: str, registry: Mapping[str, T], *, instead: str) -> T:
    """``registry[name]``, or an OptionError listing the names, a close match and ``instead``."""
    if name in registry:
        return registry[name]
    near = closest(name, registry)
    hint = f" Did you mean {near!r}?" if near else ""
    raise OptionError(f"Unknown {what} {name!r}. Choose one of: {', '.join(registry)}; or {instead}.{hint}")
