"""Spark sessions in UTC, reading tables, and Spark job errors as one line."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from cx_models.errors import CXDataError
from cx_models.threads import thread_count

__all__ = [
    "SparkRun",
    "TIME_ZONE",
    "METADATA_FILE",
    "EPOCH",
    "spark_session",
    "require_utc",
    "read_table",
    "job_errors",
]

#: The session time zone the functions here require (event days are UTC days).
TIME_ZONE = "UTC"
#: The metadata file written inside a scored Parquet dataset directory.
METADATA_FILE = "_cx_models.json"
#: Day 0 of Spark's and polars' day numbers.
EPOCH = dt.date(1970, 1, 1)


# --------------------------------------------------------------------------- session
@dataclass(frozen=True)
class SparkRun:
    """Where a Spark job runs and where it finds the model.

    Parameters
    ----------
    master : str
        Spark master URL (``local[*]`` by default), used when no ``session`` is given.
    tracking_uri : str, optional
        The MLflow tracking store the model URI is resolved in.
    progress : bool
        Show Spark's console progress bar.
    session : pyspark.sql.SparkSession, optional
        A running session to use instead of starting one.
    """

    master: str = "local[*]"
    tracking_uri: str | None = None
    progress: bool = False
    session: SparkSession | None = None

    def spark(self) -> SparkSession:
        """Return the given session, or start one (:func:`spark_session`)."""
        return self.session or spark_session(self.master, progress=self.progress)


def spark_session(master: str = "local[*]", *, app_name: str = "cx-models", progress=False):
    """Return a Spark session set up for cx-models (UTC time zone, Arrow, quiet logs).

    Parameters
    ----------
    master : str
        Spark master URL, ``local[*]`` by default (as many threads as
        :func:`cx_models.threads.thread_count`).
    app_name : str
        Application name shown by Spark.
    progress : bool
        Show Spark's console progress bar.

    Returns
    -------
    pyspark.sql.SparkSession
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master == "local[*]":  # the CPUs this process may use, or CX_MODELS_THREADS
        master = f"local[{thread_count()}]"
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # the JVM logs at WARN from its first line: errors only
    quiet_logs = tempfile.NamedTemporaryFile(
        "w", prefix="cx-log4j2-", suffix=".properties", delete=False
    )
    with quiet_logs:
        quiet_logs.write(_LOG4J2)
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", TIME_ZONE)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "true" if progress else "false")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile={quiet_logs.name}")
    )
    if master.startswith("local"):
        # one machine: a few shuffle partitions per core, not Spark's cluster default of 200
        builder = (
            builder.config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", str(4 * thread_count()))
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


def require_utc(spark) -> None:
    zone = spark.conf.get("spark.sql.session.timeZone")
    if zone not in ("UTC", "Etc/UTC", "Z", "+00:00", "GMT"):
        raise CXDataError(
            f"the Spark session time zone is {zone!r}; cx-models counts UTC calendar days: "
            "spark.conf.set('spark.sql.session.timeZone', 'UTC') (spark_session() sets it)"
        )


def read_table(spark, path, *, what: str) -> DataFrame:
    """Read a CSV (header, every cell as text) or Parquet input with Spark.

    CSV cells stay text so that validation, not the reader, decides what a value
    is, as on one machine. ``path`` may be any URI Spark reads (``s3a://``,
    ``hdfs://``, a directory of part files).
    """
    text = str(path)
    suffix = Path(text.rstrip("/")).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise CXDataError(f"{text}: cannot tell the {what} format; expected .csv or .parquet")
    if "://" not in text and not Path(text).exists():
        raise CXDataError(f"{text}: {what} file not found")
    try:
        if suffix == ".csv":
            return spark.read.option("header", True).option("inferSchema", False).csv(text)
        return spark.read.parquet(text)
    except Exception as exc:  # noqa: BLE001 - Spark raises its own AnalysisException family
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CXDataError(f"{text}: cannot read the {what} input ({first})") from None


@contextlib.contextmanager
def job_errors(what: str):
    """Report a failed Spark job in one line (its first), not as a JVM stack trace."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as exc:
        text = str(exc).strip()
        first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
        raise CXDataError(f"{what}: the Spark job failed: {first.strip()[:500]}") from None
