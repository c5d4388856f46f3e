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

__all__ = ["EventInputs", "is_database_uri", "redacted", "source_name", "table_clash"]

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
        return {k: v for k, v in self.sources().items() if isinstance(v, (str, os.PathLike))}

    def sources(self) -> dict[str, object]:
        """Return every input given, by name: paths and database sources."""
        attributes = getattr(self.attributes, "source", self.attributes)
        named = {"transactions": self.transactions, "surveys": self.surveys,
                 "attributes": attributes}
        return {k: v for k, v in named.items() if v is not None}


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


def _database_key(uri: str) -> tuple:
    """Return the database a URI names, whoever connects: scheme, host, port, database."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "duckdb":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        return ("duckdb", os.path.realpath(path) if path else "")
    host = (parts.hostname or "localhost").lower()
    if host in ("127.0.0.1", "::1"):
        host = "localhost"
    return ("postgresql", host, parts.port or 5432, parts.path.strip("/") or parts.username)


def _bare(table: str, kind: str) -> str:
    """Return a table name as the database resolves it unquoted (default schema dropped)."""
    schema, _, name = table.lower().rpartition(".")
    default = "main" if kind == "duckdb" else "public"
    return name if schema in ("", default) else f"{schema}.{name}"


def table_clash(target, other) -> bool:
    """Whether writing ``target`` (a ``DatabaseTarget``) would touch ``other``.

    ``target`` writes its table and ``<table>_meta``. ``other`` is a
    ``DatabaseSource`` — its table, or any table its query names — or another
    ``DatabaseTarget`` (its table and ``_meta``). Names compare as the database
    resolves them unquoted: case-insensitive, the default schema implied.

    Examples
    --------
    >>> from cx_models.database import DatabaseSource, DatabaseTarget
    >>> out = DatabaseTarget("duckdb:///tmp/shop.duckdb", "Orders")
    >>> table_clash(out, DatabaseSource("duckdb:///tmp/./shop.duckdb", table="main.orders"))
    True
    >>> meta = DatabaseSource("duckdb:///tmp/shop.duckdb", query="SELECT * FROM orders_meta")
    >>> table_clash(out, meta)
    True
    >>> table_clash(out, DatabaseSource("duckdb:///tmp/other.duckdb", table="orders"))
    False
    """
    key = _database_key(target.uri)
    if key != _database_key(other.uri):
        return False
    return bool(_tables(target, key[0]) & _tables(other, key[0]))


def _tables(source, kind: str) -> set[str]:
    """Return the tables a source reads or a target writes."""
    query = getattr(source, "query", None)
    if query is not None:
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?", query)
        return {_bare(word, kind) for word in words}
    table = _bare(source.table, kind)
    return {table} if hasattr(source, "query") else {table, f"{table}_meta"}
