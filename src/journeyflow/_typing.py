"""Type aliases shared across journeyflow (private)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Union

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

#: A duration with a unit: ``"30min"``, ``"7D"`` or a :class:`pandas.Timedelta`.
DurationLike = Union[str, pd.Timedelta]  # noqa: UP007
#: Maps canonical column names (``"user_id"``) to the user's own (``"visitor"``).
ColumnMap = Mapping[str, str]
#: Anything :func:`journeyflow.read_events` accepts.
FrameOrPath = Union[pd.DataFrame, "pa.Table", str, os.PathLike]  # type: ignore[type-arg]
