"""journeyflow: customer journeys from clickstream logs.

Sessionise raw web/webshop events, assign touchpoints and journey phases, count
funnels and drop-off, and attribute conversions to channels with heuristic, Markov
and Shapley models.
"""

from ._version import __version__
from .exceptions import (
    DataError,
    DataQualityWarning,
    InputTypeError,
    JourneyflowError,
    JourneyflowWarning,
    NotFittedError,
    OptionError,
    ReadError,
    SchemaError,
    SparseChainWarning,
)
from .config import ReportConfig
from .journeys import Journeys
from .report import ReportResult, run_report
from .sessions import sessionize, sessions

__all__ = [
    "DataError",
    "DataQualityWarning",
    "InputTypeError",
    "JourneyflowError",
    "JourneyflowWarning",
    "Journeys",
    "NotFittedError",
    "OptionError",
    "ReadError",
    "ReportConfig",
    "ReportResult",
    "SchemaError",
    "SparseChainWarning",
    "__version__",
    "run_report",
    "sessionize",
    "sessions",
]
