"""CLV on Spark: BG/NBD + Gamma-Gamma from the pattern counts Spark aggregates."""

from __future__ import annotations

from cx_models.serving.spark._features import SparkFeatureBuild
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cx_models.errors import CXDataError
from cx_models.models.clv import CLVModel

__all__ = ["fit_clv"]


# --------------------------------------------------------------------------- CLV
def fit_clv(
    features: DataFrame | SparkFeatureBuild,
    *,
    time_unit: str | None = None,
    model: CLVModel | None = None,
) -> CLVModel:
    """Fit BG/NBD + Gamma-Gamma on a Spark feature table from its unique patterns.

    Spark counts the unique (frequency, recency, T) triples and the repeat
    customers' (frequency, monetary_value) pairs; only those counts reach the
    driver, where :meth:`cx_models.models.clv.CLVModel.fit_patterns` fits them. The
    estimates equal those of :meth:`~cx_models.models.clv.CLVModel.fit` on the same
    table collected to one machine.

    Parameters
    ----------
    features : pyspark.sql.DataFrame or SparkFeatureBuild
        One row per customer with ``frequency``, ``recency``, ``T`` and
        ``monetary_value``.
    time_unit : {"D", "W"}, optional
        The unit of ``recency`` and ``T`` (default: the build's, else days).
    model : CLVModel, optional
        An unfitted model carrying the settings (model, penalizers, tol).
    """
    if isinstance(features, SparkFeatureBuild):
        time_unit = time_unit or features.time_unit
        features = features.features
    missing = [
        c for c in ("frequency", "recency", "T", "monetary_value") if c not in features.columns
    ]
    if missing:
        raise CXDataError(
            f"features Spark DataFrame: required column(s) {', '.join(map(repr, missing))} missing"
        )
    patterns = features.groupBy("frequency", "recency", "T").count().toPandas()
    spend = (
        features.filter((F.col("frequency") > 0) & (F.col("monetary_value") > 0))
        .groupBy("frequency", "monetary_value")
        .count()
        .toPandas()
    )
    model = model or CLVModel()
    return model.fit_patterns(
        patterns,
        spend,
        time_unit=time_unit or "D",
        source="features Spark DataFrame",
    )
