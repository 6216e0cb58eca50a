"""Exceptions and warnings raised by journeyflow.

Every error derives from :class:`JourneyflowError`, and each subclass also derives
from the matching built-in exception, so ordinary ``except ValueError`` clauses keep
working::

    Exception
    ├── JourneyflowError
    │   ├── SchemaError(JourneyflowError, KeyError)      a required column is missing
    │   ├── OptionError(JourneyflowError, ValueError)    an option has a wrong value
    │   ├── InputTypeError(JourneyflowError, TypeError)  an argument has a wrong type
    │   ├── DataError(JourneyflowError, ValueError)      the data cannot be used as given
    │   ├── ReadError(JourneyflowError, OSError)         a file cannot be read or decoded
    │   └── NotFittedError(JourneyflowError, AttributeError)  a model is used before fit
    └── Warning
        └── JourneyflowWarning
            ├── DataQualityWarning   rows were rejected, or a result rests on little data
            └── SparseChainWarning   a higher-order Markov chain has too few paths per state
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DataQualityWarning",
    "InputTypeError",
    "JourneyflowError",
    "JourneyflowWarning",
    "NotFittedError",
    "OptionError",
    "ReadError",
    "SchemaError",
    "SparseChainWarning",
]


class JourneyflowError(Exception):
    """Base class of every error journeyflow raises on purpose."""


class SchemaError(JourneyflowError, KeyError):
    """A required column is missing from the input."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OptionError(JourneyflowError, ValueError):
    """An option has a value outside the allowed set or range."""


class InputTypeError(JourneyflowError, TypeError):
    """An argument has a type journeyflow cannot use."""


class DataError(JourneyflowError, ValueError):
    """The data cannot be used as given (e.g. null user ids passed to sessionize)."""


class ReadError(JourneyflowError, OSError):
    """A file cannot be found, read or decoded."""


class NotFittedError(JourneyflowError, AttributeError):
    """A fitted attribute of a model was used before ``fit``."""


class JourneyflowWarning(UserWarning):
    """Base class of journeyflow's warnings, so users can filter them at once."""


class DataQualityWarning(JourneyflowWarning):
    """Rows were rejected, or a result rests on very little data."""


class SparseChainWarning(JourneyflowWarning):
    """A higher-order Markov chain has too few observations per state to trust."""
