"""journeyflow: customer journeys from clickstream logs.

Sessionise raw web/webshop events, assign touchpoints and journey phases, count
funnels and drop-off, and attribute conversions to channels with heuristic, Markov
and Shapley models.
"""

from ._version import __version__
from .attribution import (
    Bootstrap,
    FirstTouch,
    LastTouch,
    Linear,
    MarkovAttribution,
    PositionBased,
    ShapleyAttribution,
    TimeDecay,
    attribute,
    evaluate_attribution,
)
from .config import ReportConfig
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
from .funnels import (
    compare_segments,
    drop_off,
    funnel,
    phase_funnel,
    time_to_convert,
    touchpoint_priority,
)
from .io import ValidationResult, ValidationSummary, read_events, validate_events
from .journeys import Journeys, build_journeys
from .phases import PhaseModel, assign_phases, get_model
from .report import ReportResult, run_report
from .sessions import sessionize, sessions
from .touchpoints import assign_touchpoints

__all__ = [
    "Bootstrap",
    "DataError",
    "DataQualityWarning",
    "FirstTouch",
    "InputTypeError",
    "JourneyflowError",
    "JourneyflowWarning",
    "Journeys",
    "LastTouch",
    "Linear",
    "MarkovAttribution",
    "NotFittedError",
    "OptionError",
    "PhaseModel",
    "PositionBased",
    "ReadError",
    "ReportConfig",
    "ReportResult",
    "SchemaError",
    "ShapleyAttribution",
    "SparseChainWarning",
    "TimeDecay",
    "ValidationResult",
    "ValidationSummary",
    "__version__",
    "assign_phases",
    "assign_touchpoints",
    "attribute",
    "build_journeys",
    "compare_segments",
    "drop_off",
    "evaluate_attribution",
    "funnel",
    "get_model",
    "phase_funnel",
    "read_events",
    "run_report",
    "sessionize",
    "sessions",
    "time_to_convert",
    "touchpoint_priority",
    "validate_events",
]

#: Sub-packages loaded on first use, so ``import journeyflow`` stays light:
#: ``jf.plot`` imports matplotlib, ``jf.datasets`` holds the simulator and sample.
_LAZY_SUBMODULES = ("datasets", "plot")


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'journeyflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_SUBMODULES])
