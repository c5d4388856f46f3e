"""The ``cx-models`` command line: one module per verb group.

Data goes to files; progress and summaries go to stderr. A problem with the
user's data or options — a usage error included — prints one ``error:`` line
(no traceback) and exits with status 2.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Annotated

import typer

from cx_models._version import __version__
from cx_models.cli import clv, data, demo, nco, score, train  # noqa: F401 - registers the verbs
from cx_models.cli._app import app, err

__all__ = ["app", "main"]


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cx-models {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_show_version,
            metavar="",
        ),
    ] = False,
) -> None:
    """Churn, CLV and Net Customer Outcome from transactions and surveys."""


@app.command()
def version() -> None:
    """Print the cx-models version (JSON)."""
    sys.stdout.write(json.dumps({"cx_models": __version__}) + "\n")


def _click_errors(name: str) -> tuple[type, ...]:
    """Click's exception class ``name``: click's own and the copy newer typers ship."""
    found = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


_USAGE, _ABORT, _CLICK = (_click_errors(n) for n in ("UsageError", "Abort", "ClickException"))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cx-models`` console script."""
    try:
        code = app(args=argv, prog_name="cx-models", standalone_mode=False)
    except _USAGE as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "cx-models"
        err.print(
            f"[bold red]error:[/] {exc.format_message()} (see {where} --help)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    except _ABORT:
        err.print("aborted")
        sys.exit(130)
    except _CLICK as exc:
        err.print(f"[bold red]error:[/] {exc.format_message()}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
