"""Scale-out on Spark: validation, customer features, CLV fitting and scoring where the data lives.

The one package of cx-models that imports pyspark (a module per step, as on one
machine: ``_validation``, ``_features``, ``_clv``, ``_scoring``, ``_session``) (install the extra:
``pip install 'cx-models[spark]'``). It mirrors the single-machine path step by
step, with Spark doing the work:

* :func:`validate_transactions` / :func:`validate_surveys` — the same data
  contracts and quarantine reasons as :mod:`cx_models.schemas`, as Spark
  expressions; ``rows_in = rows_used + rows_quarantined + rows_after_as_of``.
* :func:`build_features` — the feature table of :mod:`cx_models.features`
  (same columns, types and values), grouped by customer in Spark.
* :func:`fit_clv` — BG/NBD + Gamma-Gamma from the unique
  (frequency, recency, T) and (frequency, monetary_value) counts Spark
  aggregates; only those few rows reach the driver.
* :func:`score_features` — the logged CX scorer as a Spark UDF
  (:func:`mlflow.pyfunc.spark_udf`), then one global ``priority_rank``
  computed without moving the table to one partition.
* :func:`score_files` — all of it from files, for ``cx-models score --engine spark``.

Time
----
Event days are UTC calendar days, as on one machine: text timestamps without
an offset are UTC, offsets are honoured. Spark reads text and wall-clock
timestamps in the session time zone, so these functions require
``spark.sql.session.timeZone = UTC`` (:func:`spark_session` sets it) and say
so otherwise.

Executors
---------
The UDF runs the model in each executor's own Python. The logged model carries
the ``cx_models`` package itself (in its ``code_paths``), so executors need
only its Python requirements (numpy, pandas, polars, scipy, xgboost, mlflow,
...; the model's ``requirements.txt`` lists them). Either install
``cx-models`` on the cluster's Python (image or init script), or ship a packed
virtual environment with the job (``venv-pack -o env.tar.gz``, then
``--archives env.tar.gz#env`` and ``PYSPARK_PYTHON=./env/bin/python``).
In local mode the executors are this interpreter: :func:`spark_session` sets
``PYSPARK_PYTHON`` to it unless it is set.
"""

import warnings

from cx_models.serving.spark._clv import fit_clv
from cx_models.serving.spark._features import (
    SparkFeatureBuild,
    build_features,
    features_from_validated,
)
from cx_models.serving.spark._scoring import (
    score_feature_file,
    score_features,
    score_files,
    with_priority_rank,
    write_quarantine,
    write_scored,
)
from cx_models.serving.spark._session import (
    METADATA_FILE,
    TIME_ZONE,
    SparkRun,
    read_table,
    spark_session,
)
from cx_models.serving.spark._validation import (
    SparkValidated,
    spark_time_format,
    validate_surveys,
    validate_transactions,
)

# pyspark 4 warns at each pandas conversion that it does not yet fully support pandas 3;
# the spark tests check the conversions cx-models makes
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")

__all__ = [
    "METADATA_FILE",
    "SparkFeatureBuild",
    "SparkRun",
    "SparkValidated",
    "TIME_ZONE",
    "build_features",
    "features_from_validated",
    "fit_clv",
    "read_table",
    "score_feature_file",
    "score_features",
    "score_files",
    "spark_session",
    "spark_time_format",
    "validate_surveys",
    "validate_transactions",
    "with_priority_rank",
    "write_quarantine",
    "write_scored",
]
