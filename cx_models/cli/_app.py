"""The Typer application, the console and what every verb shares.

Data goes to files; progress and summaries go to stderr. A problem with the
user's data or options prints one ``error:`` line (no traceback) and exits
with status 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cx_models.errors import CXDataError

__all__ = [
    "app",
    "chunked_gc",
    "err",
    "guard_paths",
    "print_json",
    "progress_bar",
    "read_frame",
    "renamed",
    "report_table",
    "resolve_weights",
    "say_quarantine",
    "user_errors",
]

app = typer.Typer(
    name="cx-models",
    help="Churn, CLV and Net Customer Outcome from transactions and surveys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_TTY = sys.stderr.isatty()
# A log file gets whole lines (paths never broken mid-line) and a table wide enough.
err = Console(stderr=True, width=None if _TTY else 120, soft_wrap=not _TTY)


#: Options that name what a verb writes; every other path option is an input.
OUTPUT_OPTIONS = ("out", "quarantine_out", "plots", "km_out")
#: Verbs whose --out is a folder (``score --engine spark`` writes one too).
FOLDER_OUTS = {"generate", "demo"}


def _label(name: str) -> str:
    return "--" + name.removesuffix("_path").replace("_", "-")


def guard_paths(verb: str, kwargs: dict) -> None:
    """Refuse, before any work, outputs that would destroy an input or cannot be written.

    See :mod:`cx_models.outputs` for the rules.
    """
    from cx_models.outputs import check_destination, check_distinct

    paths = {n: v for n, v in kwargs.items() if isinstance(v, Path)}
    outputs = {_label(n): paths[n] for n in OUTPUT_OPTIONS if n in paths}
    inputs = {_label(n): v for n, v in paths.items() if n not in OUTPUT_OPTIONS}
    check_distinct(inputs, outputs)
    folders = {"--plots"}
    if verb in FOLDER_OUTS or kwargs.get("engine") == "spark":
        folders.add("--out")
    for label, path in outputs.items():
        check_destination(label, path, directory=label in folders)


def user_errors(func):
    """Check the verb's paths, then turn :class:`CXDataError` into one ``error:`` line, exit 2.

    An operating-system failure to write (a full disk, say) is reported the same way.
    """
    from cx_models.outputs import write_errno, write_failure

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            guard_paths(func.__name__.removeprefix("clv_").removeprefix("nco_"), kwargs)
            return func(*args, **kwargs)
        except CXDataError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            if write_errno(exc) is None:
                raise
            failed = write_failure(getattr(exc, "filename", None) or "the output", exc)
            err.print(f"[bold red]error:[/] {failed}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def renamed(old: str, new: str, value, current):
    """Return the value of a renamed option, printing one deprecation line if the old was used."""
    if value is None:
        return current
    err.print(f"warning: {old} is deprecated; use {new}", highlight=False)
    return value


def report_table(summary: dict) -> Table:
    """Return the validation counts of each input as a table."""
    table = Table(title="Input validation", title_justify="left")
    for col in ("input", "rows in", "used", "quarantined", "after as_of", "duplicates", "reasons"):
        table.add_column(col, justify="right" if col not in {"input", "reasons"} else "left")
    for name in ("transactions", "surveys", "attributes", "subscriptions"):
        rep = summary.get(name)
        if not rep:
            continue
        reasons = ", ".join(f"{r}={n}" for r, n in rep["reasons"].items()) or "-"
        table.add_row(
            name,
            f"{rep['rows_in']:,}",
            f"{rep['rows_used']:,}",
            f"{rep['rows_quarantined']:,}",
            f"{rep['rows_after_as_of']:,}",
            f"{rep['duplicate_rows']:,}",
            reasons,
        )
    return table


def say_quarantine(path, *reports) -> None:
    """Write the quarantine file and say how many rows it holds (or that none were)."""
    from cx_models.schemas import write_quarantine

    if path is None:
        return
    from cx_models.sources import source_name

    write_quarantine(path, *reports)
    rows = sum(r.rows_quarantined for r in reports if r is not None)
    name = source_name(path)
    if rows:
        err.print(f"{rows:,} quarantined rows written to {name}")
    else:
        empty = "only the header" if isinstance(path, (str, Path)) else "no rows"
        err.print(f"no row was quarantined; {name} holds {empty}")


def print_json(data: dict) -> None:
    """Print a JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def resolve_weights(config: Path | None, text: str | None) -> dict:
    """Weights from the defaults, then a config file, then --nco-weights."""
    from cx_models.nco import load_weights, parse_weights

    return parse_weights(text or "", base=load_weights(config) if config is not None else None)


def read_frame(path: Path, what: str):
    """Read a CSV or Parquet table into pandas with a clear error."""
    import pandas as pd

    from cx_models.io import table_format

    fmt = table_format(path, what=what)
    if not path.exists():
        raise CXDataError(f"{path}: {what} file not found")
    try:
        return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise CXDataError(f"{path}: cannot read the {what} file ({exc})") from None


@contextlib.contextmanager
def chunked_gc():
    """Collect garbage after each scored chunk instead of whenever Python decides.

    A scoring process holds ~360k long-lived objects (MLflow, pandas, polars,
    the model) and each automatic full collection scans them all, holding the
    GIL that the pipeline's threads wait for. For the job, automatic collection
    is paused; ``freeze()`` (once the model is loaded) moves the objects alive
    then out of the collector's sight (they live until the process ends anyway),
    and ``collect_after(progress)`` wraps the progress callback so that a
    collection over the newer objects only follows each chunk: memory stays flat.
    """
    import gc

    enabled = gc.isenabled()
    gc.disable()

    def collect_after(progress):
        def advance(done: int, total: int) -> None:
            progress(done, total)
            gc.collect()

        return advance

    try:
        yield gc.freeze, collect_after
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


@contextlib.contextmanager
def progress_bar(quiet: bool):
    """Show a progress bar on stderr (customers done / total, rate); nothing with --quiet."""
    if quiet:
        yield lambda done, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    started = time.perf_counter()
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("customers"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task("score", total=None, rate="")

        def advance(done: int, total: int) -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}/s")

        yield advance
