"""Inputs and outputs that may be database tables: ``--transactions URI --transactions-table``.

An input option (``--transactions``, ``--surveys``) takes a file path or a
database URI (``postgresql://…``, ``duckdb:///path``); a URI needs the table or
the query beside it (``--transactions-table orders`` or ``--transactions-query
"SELECT …"``). :func:`database_sources` adds those two options for each input
named and hands the verb a :class:`~cx_models.database.DatabaseSource` in
place of the URI; :func:`database_targets` does the same for outputs
(``--out URI --out-table cx_scores``, ``--quarantine-out URI
--quarantine-table NAME``) with a :class:`~cx_models.database.DatabaseTarget`.
Paths stay :class:`pathlib.Path`, so the output checks of files apply as before.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated

import typer

from cx_models.errors import CXDataError
from cx_models.sources import is_database_uri

__all__ = ["database_sources", "database_targets", "location"]


def location(text: str) -> Path | str:
    """Parse an input or output option: a database URI stays text, anything else is a path.

    Examples
    --------
    >>> location("duckdb:///tmp/shop.duckdb"), location("tx.csv")
    ('duckdb:///tmp/shop.duckdb', PosixPath('tx.csv'))
    """
    return text if is_database_uri(text) else Path(text)


def _flag(name: str) -> str:
    return "--" + name.removesuffix("_path").replace("_", "-")


def _option(name: str, text: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[str | None, typer.Option(_flag(name), help=text)],
        default=None,
    )


def source_for(flag: str, value, table: str | None, query: str | None):
    """Return the input an option names: its path, or a ``DatabaseSource``."""
    from cx_models.database import DatabaseSource, redacted

    given = [f for f, v in ((f"{flag}-table", table), (f"{flag}-query", query)) if v is not None]
    if value is None or not is_database_uri(value):
        if given:
            what = "nothing" if value is None else f"the file {value}"
            raise CXDataError(
                f"{given[0]} needs a database URI as {flag} (postgresql://… or duckdb:///…); "
                f"got {what}"
            )
        return value
    if len(given) != 1:
        raise CXDataError(
            f"{flag} {redacted(value)} is a database: give {flag}-table or {flag}-query "
            "(one of them)"
        )
    return DatabaseSource(value, table=table, query=query)


def target_for(flag: str, value, table: str | None):
    """Return the output an option names: its path, or a ``DatabaseTarget``."""
    from cx_models.database import DatabaseTarget, redacted

    if value is None or not is_database_uri(value):
        if table is not None:
            what = "nothing" if value is None else f"the file {value}"
            raise CXDataError(
                f"{flag}-table needs a database URI as {flag} (postgresql://… or duckdb:///…); "
                f"got {what}"
            )
        return value
    if table is None:
        raise CXDataError(f"{flag} {redacted(value)} is a database: give {flag}-table")
    return DatabaseTarget(value, table)


def _with_options(func, added: list[inspect.Parameter], resolve):
    signature = inspect.signature(func, eval_str=True)

    @functools.wraps(func)
    def verb(**kwargs):
        resolve(kwargs)
        return func(**kwargs)

    params = list(signature.parameters.values())
    keyword = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    others = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    verb.__signature__ = signature.replace(parameters=[*others, *added, *keyword])
    verb.__annotations__ = {}
    return verb


def database_sources(*names: str):
    """Let each named input option be a database table or query (see the module docstring)."""

    def decorate(func):
        added = []
        for name in names:
            flag = _flag(name)
            added.append(_option(f"{name}_table", f"With a database URI as {flag}: its table."))
            added.append(_option(f"{name}_query", f"With a database URI as {flag}: a SELECT."))

        def resolve(kwargs):
            for name in names:
                table, query = kwargs.pop(f"{name}_table"), kwargs.pop(f"{name}_query")
                kwargs[name] = source_for(_flag(name), kwargs.get(name), table, query)

        return _with_options(func, added, resolve)

    return decorate


def database_targets(*names: str):
    """Let each named output option be a database table (see the module docstring)."""

    def decorate(func):
        added = []
        for name in names:
            flag = _flag(name)
            table = f"{name.removesuffix('_out')}_table"
            added.append(_option(table, f"With a database URI as {flag}: the table to write."))

        def resolve(kwargs):
            from cx_models.outputs import check_distinct

            for name in names:
                table = kwargs.pop(f"{name.removesuffix('_out')}_table")
                kwargs[name] = target_for(_flag(name), kwargs.get(name), table)
            # the inputs are resolved first (database_sources wraps this verb); files are
            # checked against files before any of this (guard_paths)
            flags = {_flag(name): kwargs[name] for name in names}
            tables = {_flag(k): v for k, v in kwargs.items()
                      if k not in names and type(v).__name__ == "DatabaseSource"}
            check_distinct(tables, flags)

        return _with_options(func, added, resolve)

    return decorate
