"""Where a run's events come from: :class:`EventInputs`, one object for every input.

A job reads a transactions export, optionally a survey export, both read as one
:class:`~cx_models.settings.EventFormat` says. The batch scorer
(:func:`cx_models.serving.batch.score_files`) and Spark
(:func:`cx_models.serving.spark.score_files`) take them as one value, so a new
kind of input is a new field here, not a new keyword in every signature.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from cx_models.errors import CXDataError
from cx_models.settings import EventFormat

__all__ = ["EventInputs", "is_database_uri", "redacted", "source_name"]

_URI = re.compile(r"(?i)^(postgresql|postgres|duckdb)://")


@dataclass(frozen=True)
class EventInputs:
    """The event files of a job and how to read them.

    Parameters
    ----------
    transactions : str, path-like or DatabaseSource
        The transactions export (CSV or Parquet), or a table or query of a
        database (:class:`cx_models.io.DatabaseSource`).
    surveys : str, path-like or DatabaseSource, optional
        The survey answers, likewise.
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
    #: Customer attributes (a path, database source or ``AttributeInput``), optional.
    attributes: object | None = None

    def __post_init__(self):
        if self.transactions is None:
            raise CXDataError("EventInputs needs a transactions file")
        if not isinstance(self.fmt, EventFormat):
            raise CXDataError(f"fmt must be an EventFormat, got {type(self.fmt).__name__}")

    @classmethod
    def of(cls, inputs, fmt: EventFormat | None = None) -> EventInputs:
        """Return ``inputs`` as :class:`EventInputs` (a single path is the transactions)."""
        if isinstance(inputs, EventInputs):
            if fmt is None:
                return inputs
            return cls(inputs.transactions, inputs.surveys, fmt, inputs.attributes)
        return cls(inputs, None, fmt or EventFormat())

    def named(self) -> dict[str, str]:
        """Return each given input by name, as text (for messages and overlap checks)."""
        named = {"transactions": source_name(self.transactions)}
        if self.surveys is not None:
            named["surveys"] = source_name(self.surveys)
        return named

    def files(self) -> dict[str, str | os.PathLike]:
        """Return the inputs that are files, by name (databases are not files)."""
        attributes = getattr(self.attributes, "source", self.attributes)
        named = {"transactions": self.transactions, "surveys": self.surveys,
                 "attributes": attributes}
        return {k: v for k, v in named.items() if isinstance(v, (str, os.PathLike))}


def source_name(source) -> str:
    """Return an input as messages name it: a path, or a database source without password."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", type(source).__name__)


def is_database_uri(text) -> bool:
    """Whether ``text`` is a database URI (``postgresql://…``, ``duckdb:///…``), not a path.

    Examples
    --------
    >>> is_database_uri("postgresql://ann@127.0.0.1/shop"), is_database_uri("tx.parquet")
    (True, False)
    """
    return isinstance(text, str) and _URI.match(text) is not None


def redacted(uri: str) -> str:
    """Return ``uri`` without its password, for messages and logs.

    Examples
    --------
    >>> redacted("postgresql://ann:secret@127.0.0.1:5432/shop")
    'postgresql://ann@127.0.0.1:5432/shop'
    """
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, ""))
