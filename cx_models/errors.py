"""Errors raised for problems in the user's data or options.

The command line prints these without a traceback and exits with status 2;
anything else is a bug in cx-models and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["CXDataError", "ConvergenceError", "NotFittedError"]


class CXDataError(ValueError):
    """A structural problem with an input: file, column, option value.

    The message names the input (file or frame), the column or option, what
    was found and what was expected.

    Examples
    --------
    >>> err = CXDataError("transactions.csv: required column 'amount' is missing")
    >>> str(err)
    "transactions.csv: required column 'amount' is missing"
    """


class NotFittedError(RuntimeError):
    """A model was used before ``fit`` was called."""


class ConvergenceError(CXDataError):
    """A model's optimiser did not converge on the given data."""
