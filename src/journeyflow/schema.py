"""Canonical column names, column-map resolution and reject reasons.

journeyflow works on canonical column names (``user_id``, ``timestamp``, ``event``,
...). Users keep their own names and pass ``columns={"user_id": "visitor"}``; every
public function resolves that map through :func:`resolve_columns`, so nobody has to
rename a frame by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

import pandas as pd

from ._validation import describe, require_columns
from .exceptions import InputTypeError, OptionError

__all__ = ["CANONICAL", "OPTIONAL", "REQUIRED", "RejectReason", "resolve_columns"]

#: Columns every event log must have.
REQUIRED: tuple[str, ...] = ("user_id", "timestamp", "event")
#: Columns used when present.
OPTIONAL: tuple[str, ...] = (
    "url",
    "page",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "channel",
    "revenue",
    "rating",
    "session_id",
)
CANONICAL: tuple[str, ...] = REQUIRED + OPTIONAL
#: The utm fields that identify a campaign, in this order.
CAMPAIGN_COLUMNS: tuple[str, ...] = ("utm_source", "utm_medium", "utm_campaign")


class RejectReason(str, Enum):
    """Why a row was rejected by :func:`journeyflow.validate_events` (a fixed set)."""

    NULL_USER_ID = "null_user_id"
    NULL_TIMESTAMP = "null_timestamp"
    UNPARSABLE_TIMESTAMP = "unparsable_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    NULL_EVENT = "null_event"
    INVALID_REVENUE = "invalid_revenue"

    def __str__(self) -> str:
        return self.value


def check_column_map(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a user's column map (canonical -> own name) and return it as a dict."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise InputTypeError(
            f"columns must be a dict mapping canonical names to your column names, such as "
            f"{{'user_id': 'visitor'}}; got {describe(columns)}."
        )
    out: dict[str, str] = {}
    for key, value in columns.items():
        if not isinstance(key, str):
            raise InputTypeError(f"columns keys must be strings; got {describe(key)}.")
        if key not in CANONICAL and key.lower() in CANONICAL:
            key = key.lower()
        out[key] = value
    reversed_keys = [k for k, v in out.items() if isinstance(v, str) and v in CANONICAL and k not in CANONICAL]
    if reversed_keys:
        k = reversed_keys[0]
        raise OptionError(
            f"columns maps canonical names to your names, but {{{k!r}: {out[k]!r}}} looks "
            f"reversed. Write columns={{{out[k]!r}: {k!r}}}."
        )
    return out


def resolve_columns(
    frame: pd.DataFrame,
    columns: Mapping[str, str] | None,
    *,
    required: Iterable[str] = REQUIRED,
    optional: Iterable[str] = (),
    what: str = "events",
) -> dict[str, str]:
    """Map canonical names to the frame's actual column names.

    Required names must be present (else :class:`SchemaError` naming the column, the
    columns present and the closest match); optional names are included only when
    present.
    """
    cmap = check_column_map(columns)
    req = {name: cmap.get(name, name) for name in required}
    require_columns(frame, req, what=what)
    out = dict(req)
    for name in optional:
        actual = cmap.get(name, name)
        if actual in frame.columns:
            out[name] = actual
    return out
