"""The ``cx-models`` command line: one module per verb group.

Data goes to files; progress and summaries go to stderr. A problem with the
user's data or options — a usage error included — prints one ``error:`` line
(no traceback) and exits with status 2.
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import sys
import threading
from typing import Annotated

import typer

from cx_models._version import __version__
from cx_models.cli import (  # noqa: F401 - each module adds its verbs
    churn,
    clv,
    data,
    demo,
    monitor,
    nco,
    promote,
    report,
    score,
    serve,
    subscriptions,
    target,
    train,
)
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


_TERMINATED: list[int] = []


def _on_sigterm(signum, frame) -> None:
    """Unwind like Ctrl-C (every temporary file is removed on the way out)."""
    _TERMINATED.append(signum)
    raise KeyboardInterrupt


class _NoteHandler(logging.Handler):
    """Print the library's notices (stale temporary files removed, ...) as one line each."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"{self.prefix}: {record.getMessage()}", highlight=False, soft_wrap=True,
                  markup=False)


#: The library's loggers whose messages the command line prints, and their prefix.
_NOTICES = {"cx_models.outputs": "note", "cx_models.registry": "warning"}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cx-models`` console script.

    SIGTERM (what schedulers send first) is handled like SIGINT: the job unwinds,
    removing its temporary files, and exits with 143 after one line.
    """
    for name, prefix in _NOTICES.items():
        notes = logging.getLogger(name)
        if not any(isinstance(h, _NoteHandler) for h in notes.handlers):
            notes.addHandler(_NoteHandler(prefix))
            notes.propagate = False
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
    try:
        _run(argv)
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
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
    except (*_ABORT, KeyboardInterrupt):
        code = 130
    except _CLICK as exc:
        err.print(f"[bold red]error:[/] {exc.format_message()}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    if _TERMINATED:  # typer turns the interrupt into exit status 130
        err.print("error: terminated (SIGTERM); temporary files removed", highlight=False)
        sys.exit(143)
    if code == 130:
        err.print("aborted (SIGINT); temporary files removed", highlight=False)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
