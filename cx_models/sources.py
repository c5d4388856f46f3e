"""Where a run's events come from: :class:`EventInputs`, one object for every input.

A job reads a transactions export, optionally a survey export, both read as one
:class:`~cx_models.settings.EventFormat` says. The batch scorer
(:func:`cx_models.serving.batch.score_files`) and Spark
(:func:`cx_models.serving.spark.score_files`) take them as one value, so a new
kind of input is a new field here, not a new keyword in every signature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cx_models.errors import CXDataError
from cx_models.settings import EventFormat

__all__ = ["EventInputs"]


@dataclass(frozen=True)
class EventInputs:
    """The event files of a job and how to read them.

    Parameters
    ----------
    transactions : str or path-like
        The transactions export (CSV or Parquet).
    surveys : str or path-like, optional
        The survey export.
    fmt : EventFormat
        Column names, time formats, strictness and CES direction of both.

    Examples
    --------
    >>> inputs = EventInputs("tx.parquet", "surveys.csv")
    >>> inputs.named()
    {'transactions': 'tx.parquet', 'surveys': 'surveys.csv'}
    >>> EventInputs.of("tx.parquet").surveys is None
    True
    """

    transactions: str | os.PathLike
    surveys: str | os.PathLike | None = None
    fmt: EventFormat = field(default_factory=EventFormat)

    def __post_init__(self):
        if self.transactions is None:
            raise CXDataError("EventInputs needs a transactions file")
        if not isinstance(self.fmt, EventFormat):
            raise CXDataError(f"fmt must be an EventFormat, got {type(self.fmt).__name__}")

    @classmethod
    def of(cls, inputs, fmt: EventFormat | None = None) -> EventInputs:
        """Return ``inputs`` as :class:`EventInputs` (a single path is the transactions)."""
        if isinstance(inputs, EventInputs):
            return inputs if fmt is None else cls(inputs.transactions, inputs.surveys, fmt)
        return cls(inputs, None, fmt or EventFormat())

    def named(self) -> dict[str, str]:
        """Return each given input by name, as text (for messages and overlap checks)."""
        named = {"transactions": os.fspath(self.transactions)}
        if self.surveys is not None:
            named["surveys"] = os.fspath(self.surveys)
        return named
