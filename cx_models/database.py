"""Reading inputs from and writing results to PostgreSQL (ADBC) and DuckDB databases.

A :class:`DatabaseSource` is a URI plus a table or a query; it is read into the
same polars frame a file gives, so validation and quarantine are those of files
(:func:`cx_models.io.read_input` accepts it wherever a path is accepted). A
:class:`DatabaseTarget` is a URI plus a table; :func:`write_target` replaces the
table's rows in one transaction — readers see the old rows or the new ones,
never part — keeping the table itself, so its grants and the views on it
survive, and writes the run's metadata to ``<table>_meta`` (``key, value``) in
the same transaction. A failed or killed write changes nothing.

URIs: ``postgresql://user@host:port/db`` (credentials from the URI or libpq's
usual sources: ``PGPASSWORD``, ``PGSERVICE``, ``~/.pgpass``) and
``duckdb:///path/to/file.duckdb``. Messages name the URI without its password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import polars as pl
import pyarrow as pa

from cx_models.errors import CXDataError

__all__ = ["DatabaseSource", "DatabaseTarget", "read_source", "redacted", "write_target"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
#: Polars types that cannot hold an id, a time, an amount or a score.
_UNUSABLE = (pl.Boolean, pl.Binary, pl.List, pl.Array, pl.Struct, pl.Object)


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


def _kind(uri: str) -> str:
    scheme = urlsplit(str(uri)).scheme.lower()
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    if scheme == "duckdb":
        return "duckdb"
    raise CXDataError(
        f"{redacted(str(uri))}: not a database URI; expected postgresql://… or duckdb:///path"
    )


def _table_name(table: str, what: str) -> str:
    if not isinstance(table, str) or not _IDENTIFIER.match(table):
        raise CXDataError(
            f"{what}: {table!r} is not a table name (letters, digits and _, optionally "
            "schema.table)"
        )
    return ".".join(f'"{part}"' for part in table.split("."))


@dataclass(frozen=True)
class DatabaseSource:
    """A table or a query of a database, as an input.

    Parameters
    ----------
    uri : str
        ``postgresql://…`` or ``duckdb:///path/file.duckdb``.
    table : str, optional
        A table (``schema.table`` allowed), read in the order of its primary key
        when it has one.
    query : str, optional
        A ``SELECT`` instead of a table.

    Examples
    --------
    >>> DatabaseSource("duckdb:///tmp/shop.duckdb", table="orders").name
    'duckdb:///tmp/shop.duckdb (table orders)'
    """

    uri: str
    table: str | None = None
    query: str | None = None

    def __post_init__(self):
        _kind(self.uri)
        if (self.table is None) == (self.query is None):
            raise CXDataError(f"{self.name}: give a table or a query (one of them)")
        if self.table is not None:
            _table_name(self.table, self.name)

    @property
    def name(self) -> str:
        """The source as messages name it (no password)."""
        what = f"table {self.table}" if self.table is not None else "query"
        return f"{redacted(self.uri)} ({what})"


@dataclass(frozen=True)
class DatabaseTarget:
    """A database table to write a result to (see :func:`write_target`)."""

    uri: str
    table: str

    def __post_init__(self):
        _kind(self.uri)
        _table_name(self.table, redacted(self.uri))

    @property
    def name(self) -> str:
        """The target as messages name it (no password)."""
        return f"{redacted(self.uri)} (table {self.table})"


def _duckdb_path(uri: str) -> str:
    parts = urlsplit(uri)
    path = (parts.netloc + parts.path) if parts.netloc else parts.path
    if not path:
        raise CXDataError(f"{uri}: no database file in the URI (duckdb:///path/file.duckdb)")
    return path


def _connect(uri: str, *, read_only: bool, name: str):
    """Return a DB-API connection (autocommit off) for ``uri``, or a clear error."""
    kind = _kind(uri)
    try:
        if kind == "duckdb":
            import duckdb

            path = _duckdb_path(uri)
            if read_only and not Path(path).exists():
                raise CXDataError(f"{name}: database file not found")
            return kind, duckdb.connect(path, read_only=read_only)
        from adbc_driver_postgresql import dbapi

        return kind, dbapi.connect(uri)
    except CXDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - drivers raise their own hierarchies
        raise CXDataError(f"{name}: cannot connect ({_first_line(exc, uri)})") from None


def _first_line(exc: Exception, uri: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    parts = urlsplit(uri)
    return text.replace(parts.password, "***") if parts.password else text


def _primary_key(kind: str, con, table: str) -> list[str]:
    schema, _, name = table.rpartition(".")
    if kind == "duckdb":
        rows = con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() WHERE "
            "constraint_type = 'PRIMARY KEY' AND table_name = $1 AND ($2 = '' OR schema_name = $2)",
            [name, schema],
        ).fetchall()
        return list(rows[0][0]) if rows else []
    with con.cursor() as cur:
        cur.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            (table,),
        )
        return [row[0] for row in cur.fetchall()]


def read_source(source: DatabaseSource, *, what: str) -> tuple[pl.DataFrame, str]:
    """Read a table or query into a polars frame; return it and the source's name.

    Database types arrive as Arrow types (numeric/decimal amounts, timestamps
    with and without time zone, text or integer ids) and go through the same
    validation as a file's columns; a column of a type that cannot hold a field
    (boolean, bytes, arrays, composites) is an error naming the column and its type.
    """
    kind, con = _connect(source.uri, read_only=True, name=source.name)
    try:
        if source.table is not None:
            quoted = _table_name(source.table, source.name)
            try:
                key = _primary_key(kind, con, source.table)
            except Exception:  # noqa: BLE001 - a missing table is reported by the read below
                key = []
            order = f" ORDER BY {', '.join(f'{chr(34)}{k}{chr(34)}' for k in key)}" if key else ""
            query = f"SELECT * FROM {quoted}{order}"
        else:
            query = source.query
        try:
            table = _fetch(kind, con, query)
        except Exception as exc:  # noqa: BLE001 - unknown table, syntax, permissions
            raise CXDataError(
                f"{source.name}: cannot read the {what} ({_first_line(exc, source.uri)})"
            ) from None
    finally:
        con.close()
    frame = pl.from_arrow(_plain(table))
    if isinstance(frame, pl.Series):  # a single column
        frame = frame.to_frame()
    return frame, source.name


def _plain(table: pa.Table) -> pa.Table:
    """Replace extension-typed columns by their storage.

    PostgreSQL's ``numeric`` arrives from ADBC as an opaque extension type over
    text: as text, the validation parses it cell by cell as it parses CSV cells
    (exactly: no float rounding on the way).
    """
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if isinstance(field.type, pa.BaseExtensionType):
            column = pa.chunked_array([c.storage for c in column.chunks],
                                      type=field.type.storage_type)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _fetch(kind: str, con, query: str) -> pa.Table:
    if kind == "duckdb":
        return con.sql(query).to_arrow_table()
    with con.cursor() as cur:
        cur.execute(query)
        return cur.fetch_arrow_table()


def check_column_types(frame: pl.DataFrame, columns, *, source: str) -> None:
    """Raise naming a column whose database type cannot hold its field."""
    for col in columns:
        if col in frame.columns and isinstance(frame.schema[col], _UNUSABLE):
            raise CXDataError(
                f"{source}: column {col!r} has type {frame.schema[col]} in the database, which "
                "cannot hold this field; cast it in a query (e.g. to text or numeric)"
            )


def write_target(frame, target: DatabaseTarget, *, metadata: dict | None = None) -> None:
    """Replace the rows of ``target`` with ``frame`` and its metadata, in one transaction.

    The table is created on first use; afterwards it must have the same columns
    (an error names the difference). Its rows are deleted and the new ones
    inserted in one transaction with the metadata rows of ``<table>_meta``, so
    the table object — grants, views on it — stays.
    """
    import json

    arrow = frame.to_arrow() if isinstance(frame, pl.DataFrame) else pa.Table.from_pandas(
        frame, preserve_index=False)
    meta = pa.table({
        "key": [str(k) for k in (metadata or {})],
        "value": [v if isinstance(v, str) else json.dumps(v, default=str)
                  for v in (metadata or {}).values()],
    })
    kind, con = _connect(target.uri, read_only=False, name=target.name)
    try:
        _swap(kind, con, target, arrow, meta)
    except CXDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - the driver's own errors
        raise CXDataError(
            f"{target.name}: cannot write the table ({_first_line(exc, target.uri)}); it is "
            "unchanged"
        ) from None
    finally:
        con.close()


def _columns(kind: str, con, table: str) -> list[str] | None:
    schema, _, name = table.rpartition(".")
    sql = ("SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND "
           "($2 = '' OR table_schema = $2) ORDER BY ordinal_position")
    if kind == "duckdb":
        rows = con.execute(sql, [name, schema]).fetchall()
    else:
        with con.cursor() as cur:
            cur.execute(sql, (name, schema))
            rows = cur.fetchall()
    return [r[0] for r in rows] or None


def _swap(kind: str, con, target: DatabaseTarget, arrow: pa.Table, meta: pa.Table) -> None:
    quoted = _table_name(target.table, target.name)
    meta_name = f"{target.table}_meta"
    meta_quoted = _table_name(meta_name, target.name)
    existing = _columns(kind, con, target.table)
    if existing is not None and existing != arrow.column_names:
        raise CXDataError(
            f"{target.name}: the table has columns {existing}, the result has "
            f"{arrow.column_names}; write to a new table or drop this one"
        )
    if kind == "duckdb":
        con.begin()
        try:
            con.register("cx_rows", arrow)
            con.register("cx_meta", meta)
            if existing is None:
                con.execute(f"CREATE TABLE {quoted} AS SELECT * FROM cx_rows")
            else:
                con.execute(f"DELETE FROM {quoted}")
                con.execute(f"INSERT INTO {quoted} SELECT * FROM cx_rows")
            con.execute(f"CREATE TABLE IF NOT EXISTS {meta_quoted} (key VARCHAR, value VARCHAR)")
            con.execute(f"DELETE FROM {meta_quoted}")
            con.execute(f"INSERT INTO {meta_quoted} SELECT * FROM cx_meta")
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return
    staging = f"{target.table.rpartition('.')[2]}__cx_staging"
    with con.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{staging}"')  # a stale one from a killed run
        con.commit()
        try:
            # the rows go to a staging table first; the swap itself is short
            cur.adbc_ingest(staging, arrow, mode="create", temporary=True)
            if existing is None:
                cur.execute(f'CREATE TABLE {quoted} AS SELECT * FROM "{staging}" WITH NO DATA')
            cur.execute(f"CREATE TABLE IF NOT EXISTS {meta_quoted} (key text, value text)")
            cur.execute(f"TRUNCATE {quoted}")
            cur.execute(f'INSERT INTO {quoted} SELECT * FROM "{staging}"')
            cur.execute(f"TRUNCATE {meta_quoted}")
            cur.adbc_ingest(meta_name.rpartition(".")[2], meta, mode="append",
                            db_schema_name=target.table.rpartition(".")[0] or None)
            cur.execute(f'DROP TABLE IF EXISTS "{staging}"')
            con.commit()
        except BaseException:
            con.rollback()
            raise
