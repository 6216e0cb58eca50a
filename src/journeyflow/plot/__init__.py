"""Charts of journeyflow's tables (matplotlib, imported only when you draw).

Every function takes the public table (or the events it needs), draws on ``ax=``
when given, returns the matplotlib Axes, never calls ``show()`` and never changes
global style. Models, channels and phases keep their colours across charts.
"""

from __future__ import annotations

from ._axes import pyplot
from .attribution import attribution, transition_matrix
from .flow import journey_flow, journey_map
from .funnel import drop_off, funnel, time_to_convert, touchpoint_priority

__all__ = [
    "attribution",
    "drop_off",
    "funnel",
    "journey_flow",
    "journey_map",
    "pyplot",
    "time_to_convert",
    "touchpoint_priority",
    "transition_matrix",
]
