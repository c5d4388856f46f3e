"""Reading inputs (CSV, Parquet, pandas, polars) and writing tables with metadata.

Every reader returns a polars DataFrame plus a human-readable *source name*
(the file path or "transactions DataFrame") used in every error message.
Tables written by cx-models carry their ``as_of`` and ``time_unit`` as
Parquet key-value metadata (for CSV, in a ``<file>.meta.json`` sidecar) and
as ``DataFrame.attrs`` when read back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cx_models.contract import atomic_output
from cx_models.errors import CXDataError

__all__ = [
    "check_csv_header",
    "METADATA_KEY",
    "read_config",
    "read_input",
    "read_table_metadata",
    "read_features",
    "table_format",
    "write_table",
    "write_text_atomic",
]

#: Parquet key-value metadata key under which cx-models stores its JSON metadata.
METADATA_KEY = "cx_models"

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path, *, what: str = "file") -> str:
    """Return ``"csv"`` or ``"parquet"`` from a path's extension.

    Examples
    --------
    >>> table_format("scores.parquet")
    'parquet'

    A database table (:class:`~cx_models.database.DatabaseTarget`) is ``"database"``.
    """
    if type(path).__name__ in ("DatabaseTarget", "DatabaseSource"):
        return "database"
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise CXDataError(
            f"{path}: cannot tell the {what} format from the extension {suffix!r}; "
            "use .csv or .parquet"
        )
    return _FORMATS[suffix]


def _pandas_to_polars(frame: pd.DataFrame) -> pl.DataFrame:
    """Convert a pandas frame without losing values of mixed-type columns."""
    frame = frame.reset_index(drop=True)
    columns = {}
    for name in frame.columns:
        series = frame[name]
        kind = series.dtype.kind
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            # Aware timestamps become naive UTC, the contract for every input.
            columns[str(name)] = pl.from_pandas(series.dt.tz_convert(None))
        elif kind in "biufM":
            columns[str(name)] = pl.from_pandas(series)
        elif isinstance(series.dtype, pd.BooleanDtype) or str(series.dtype) in {
            "Int8",
            "Int16",
            "Int32",
            "Int64",
            "UInt8",
            "UInt16",
            "UInt32",
            "UInt64",
            "Float32",
            "Float64",
        }:
            columns[str(name)] = pl.from_pandas(series)
        else:
            # Objects, strings, categoricals, dates: keep each value's text so
            # that nothing is coerced before validation decides what it is.
            values = [None if _is_missing(v) else _as_text(v) for v in series.tolist()]
            columns[str(name)] = pl.Series(str(name), values, dtype=pl.String)
    return pl.DataFrame(columns)


def _is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _as_text(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def check_csv_header(path, *, what: str) -> None:
    """Refuse a CSV whose header names a column twice (readers would silently pick one).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("customer_id,timestamp,amount,amount")
    >>> try:
    ...     check_csv_header(p, what="transactions")
    ... except CXDataError as exc:
    ...     print(str(exc).replace(p, "t.csv").split(";")[0])
    t.csv: the header names column 'amount' twice (columns 3 and 4)
    """
    import csv

    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle), [])
    except OSError as exc:
        raise CXDataError(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    seen: dict[str, int] = {}
    for position, name in enumerate((h.strip().lstrip("\ufeff") for h in header), start=1):
        if name in seen:
            raise CXDataError(
                f"{path}: the header names column {name!r} twice (columns {seen[name]} and "
                f"{position}); each column name must appear once"
            )
        seen[name] = position


def read_input(data, *, what: str) -> tuple[pl.DataFrame, str]:
    """Read a transactions or surveys input into a polars DataFrame.

    Parameters
    ----------
    data : str, os.PathLike, DatabaseSource, pandas.DataFrame or polars.DataFrame
        A ``.csv`` or ``.parquet`` file, a table or query of a database
        (:class:`cx_models.database.DatabaseSource`), or a frame already in
        memory. CSV cells are read as text so that validation, not the reader,
        decides what a value is (and quarantines what it cannot use).
    what : str
        ``"transactions"`` or ``"surveys"``, for messages.

    Returns
    -------
    frame : polars.DataFrame
    source : str
        The name used in messages: the path, or ``"<what> DataFrame"``.

    Examples
    --------
    >>> frame, source = read_input(pd.DataFrame({"customer_id": [1]}), what="transactions")
    >>> source, frame.height
    ('transactions DataFrame', 1)
    """
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    if isinstance(data, pl.DataFrame):
        return data, f"{what} DataFrame"
    if isinstance(data, pd.DataFrame):
        return _pandas_to_polars(data), f"{what} DataFrame"
    if type(data).__name__ == "DatabaseSource":
        from cx_models.database import read_source

        return read_source(data, what=what)
    if not isinstance(data, (str, os.PathLike)):
        raise CXDataError(
            f"{what}: expected a CSV or Parquet path, a DatabaseSource, a pandas or a polars "
            "DataFrame, "
            f"got {type(data).__name__}"
        )
    path = Path(data)
    source = str(path)
    fmt = table_format(path, what=what)
    if not path.exists():
        raise CXDataError(f"{source}: {what} file not found")
    if path.is_dir():
        raise CXDataError(f"{source}: is a directory, expected a {what} file")
    if path.stat().st_size == 0:
        raise CXDataError(f"{source}: {what} file is empty (no header, no rows)")
    if fmt == "csv":
        check_csv_header(path, what=what)
    try:
        if fmt == "csv":
            frame = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
        else:
            frame = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - reader errors vary by engine and version
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CXDataError(
            f"{source}: cannot read the {what} file as {fmt.upper()} ({first_line})"
        ) from None
    return frame, source


def _json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_table(frame, path, *, metadata: dict | None = None) -> Path:
    """Write a table to CSV or Parquet atomically, with cx-models metadata.

    The file is written under a temporary name in the same directory and
    renamed at the end, so a failed write leaves nothing at ``path``.

    Parameters
    ----------
    frame : pandas.DataFrame or polars.DataFrame
    path : str, os.PathLike or DatabaseTarget
        ``.csv`` or ``.parquet`` (or a database table, below).
    metadata : dict, optional
        JSON-serialisable metadata (``as_of``, ``time_unit``, ...). Stored as
        Parquet key-value metadata under :data:`METADATA_KEY`, or for CSV in a
        ``<path>.meta.json`` sidecar file.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "t.parquet")
    >>> _ = write_table(pd.DataFrame({"a": [1]}), out, metadata={"time_unit": "W"})
    >>> read_table_metadata(out)["time_unit"]
    'W'

    A :class:`~cx_models.database.DatabaseTarget` instead of a path replaces
    that table's rows in one transaction, the metadata going to ``<table>_meta``.
    """
    if type(path).__name__ == "DatabaseTarget":
        from cx_models.database import write_target

        write_target(frame, path, metadata=json.loads(
            json.dumps(metadata or {}, default=_json_default)))
        return path
    path = Path(path)
    fmt = table_format(path, what="output")
    meta_text = json.dumps(metadata or {}, default=_json_default, sort_keys=True)
    with atomic_output(path) as tmp:
        if fmt == "parquet":
            if isinstance(frame, pl.DataFrame):
                table = frame.to_arrow()
            else:
                table = pa.Table.from_pandas(frame, preserve_index=False)
            existing = dict(table.schema.metadata or {})
            existing[METADATA_KEY.encode()] = meta_text.encode()
            pq.write_table(table.replace_schema_metadata(existing), tmp)
        elif isinstance(frame, pl.DataFrame):
            frame.write_csv(tmp)
        else:
            frame.to_csv(tmp, index=False)
    sidecar = Path(str(path) + ".meta.json")
    if fmt == "csv" and metadata:
        sidecar.write_text(meta_text + "\n")
    elif fmt == "csv":
        sidecar.unlink(missing_ok=True)
    return path


def read_config(path) -> dict:
    """Read a TOML or JSON configuration file into a dict, with clear errors.

    Examples
    --------
    >>> import tempfile, os
    >>> cfg = os.path.join(tempfile.mkdtemp(), "cx.toml")
    >>> _ = open(cfg, "w").write(chr(10).join(["[nco.weights]", "value = 0.5", ""]))
    >>> read_config(cfg)
    {'nco': {'weights': {'value': 0.5}}}
    """
    import tomllib

    path = Path(path)
    if not path.exists():
        raise CXDataError(f"{path}: config file not found")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(path.read_text())
        elif path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
        else:
            raise CXDataError(f"{path}: config must be .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise CXDataError(f"{path}: cannot parse the config ({exc})") from None
    if not isinstance(data, dict):
        raise CXDataError(f"{path}: expected a table of settings at the top level")
    return data


def write_text_atomic(path, text: str) -> Path:
    """Write text under a temporary name beside ``path``, then rename it into place.

    Examples
    --------
    >>> import tempfile, os
    >>> out = write_text_atomic(os.path.join(tempfile.mkdtemp(), "r.html"), "<p>hi</p>")
    >>> out.read_text()
    '<p>hi</p>'
    """
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_table_metadata(path) -> dict:
    """Return the cx-models metadata of a table file (empty when it has none).

    Examples
    --------
    >>> read_table_metadata("missing-file-is-not-read.csv")
    {}
    """
    path = Path(path)
    if table_format(path) == "parquet":
        if path.is_dir():  # a Parquet dataset written by Spark (cx_models.serving.spark)
            sidecar = path / "_cx_models.json"
            return json.loads(sidecar.read_text()) if sidecar.exists() else {}
        if not path.exists():
            return {}
        raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY.encode())
        return json.loads(raw) if raw else {}
    sidecar = Path(str(path) + ".meta.json")
    return json.loads(sidecar.read_text()) if sidecar.exists() else {}


def read_features(path) -> pd.DataFrame:
    """Read a customer feature table written by ``cx-models features``.

    ``as_of`` and ``time_unit`` come back in ``DataFrame.attrs``; a table
    without metadata is taken to be in days.

    Examples
    --------
    >>> import tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "f.parquet")
    >>> _ = write_table(pd.DataFrame({"customer_id": [1]}), out, metadata={"time_unit": "W"})
    >>> read_features(out).attrs["time_unit"]
    'W'
    """
    path = Path(path)
    fmt = table_format(path, what="features")
    if not path.exists():
        raise CXDataError(f"{path}: features file not found")
    try:
        frame = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise CXDataError(f"{path}: cannot read the features file ({exc})") from None
    meta = read_table_metadata(path)
    frame.attrs = {}
    frame.attrs["time_unit"] = meta.get("time_unit", "D")
    if "as_of" in meta:
        frame.attrs["as_of"] = meta["as_of"]
    if "lookback_days" in meta:
        frame.attrs["lookback_days"] = int(meta["lookback_days"])
    if isinstance(meta.get("attributes"), dict):
        frame.attrs["attributes"] = dict(meta["attributes"])
    return frame


def __getattr__(name):  # DatabaseSource / DatabaseTarget here too, without importing drivers
    if name in ("DatabaseSource", "DatabaseTarget"):
        from cx_models import database

        return getattr(database, name)
    raise AttributeError(name)
