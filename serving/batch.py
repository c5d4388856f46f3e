"""Batch scoring: whole customer bases in chunks of whole customers.

The job reads like a story: read and validate the events (same contracts,
quarantine and counts as everywhere) -> split the customers into chunks (a
customer's events never split across chunks) -> per chunk: features, then the
model -> one global priority rank -> an atomic write with metadata.

``model`` is anything with ``predict(frame, params=dict)`` returning the scoring
contract: an MLflow pyfunc CX scorer (:func:`cx_models.training.tracking.load_model`)
or a :class:`cx_models.scoring.CXScorer` (wrapped by :func:`as_predictor`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from cx_models.errors import CXDataError
from cx_models.features import features_from_validated, to_pandas_features
from cx_models.nco import priority_rank
from cx_models.schemas import (
    SurveyColumns,
    TransactionColumns,
    ValidationReport,
    validate_surveys,
    validate_transactions,
)
from cx_models.scoring import SCORE_COLUMNS, CXScorer
from cx_models.timeutil import parse_as_of

__all__ = ["BatchResult", "as_predictor", "score_events", "score_features"]

#: Raw survey answers appended after the contract's columns, for reports and summaries.
EXTRA_COLUMNS = ("nps_latest", "csat_latest", "ces_latest")


class _ScorerPredictor:
    def __init__(self, scorer: CXScorer):
        self.scorer = scorer

    def predict(self, frame, params=None):
        params = dict(params or {})
        return self.scorer.score(
            frame,
            horizon_days=params.get("horizon_days"),
            clv_months=params.get("clv_months"),
            discount_rate=params.get("discount_rate"),
            explain=bool(params.get("explain", True)),
        )


def as_predictor(model):
    """Return an object with ``predict(frame, params)`` for a pyfunc model or a CXScorer."""
    if isinstance(model, CXScorer):
        return _ScorerPredictor(model)
    if not hasattr(model, "predict"):
        raise CXDataError(f"cannot score with {type(model).__name__}: it has no predict()")
    return model


@dataclass
class BatchResult:
    """Scored customers plus what validation did to the inputs."""

    scored: pd.DataFrame
    transactions: ValidationReport | None = None
    surveys: ValidationReport | None = None
    survey_customers_without_purchase: int = 0
    chunks: int = 1


def _params(horizon_days, clv_months, discount_rate, explain) -> dict:
    params = {"explain": bool(explain)}
    if horizon_days is not None:
        params["horizon_days"] = float(horizon_days)
    if clv_months is not None:
        params["clv_months"] = int(clv_months)
    if discount_rate is not None:
        params["discount_rate"] = float(discount_rate)
    return params


def _finish(parts: list[pd.DataFrame], features_parts: list[pd.DataFrame]) -> pd.DataFrame:
    scored = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(SCORE_COLUMNS))
    )
    extras = pd.concat(features_parts, ignore_index=True) if features_parts else None
    if extras is not None:
        for col in EXTRA_COLUMNS:
            scored[col] = extras[col].to_numpy()
    # one global ranking 1..n over every chunk
    scored["priority_rank"] = priority_rank(scored)
    return scored


def score_features(
    model,
    features: pd.DataFrame,
    *,
    chunk_customers: int = 200_000,
    horizon_days: float | None = None,
    clv_months: int | None = None,
    discount_rate: float | None = None,
    explain: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Score a customer feature table in memory, ``chunk_customers`` rows at a time.

    Returns the scoring contract's columns (then the raw survey answers), in the
    table's row order, with one priority rank over the whole table.
    """
    if chunk_customers < 1:
        raise CXDataError(f"chunk_customers must be at least 1, got {chunk_customers}")
    predictor = as_predictor(model)
    params = _params(horizon_days, clv_months, discount_rate, explain)
    parts, extras = [], []
    total = len(features)
    for start in range(0, total, chunk_customers):
        chunk = features.iloc[start : start + chunk_customers]
        chunk.attrs = dict(features.attrs)
        parts.append(pd.DataFrame(predictor.predict(chunk, params=params)))
        extras.append(_extras(chunk))
        if progress is not None:
            progress(min(start + chunk_customers, total), total)
    return _finish(parts, extras)


def _extras(features: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {c: features[c].to_numpy() if c in features.columns else np.nan for c in EXTRA_COLUMNS}
    )


def score_events(
    model,
    transactions,
    surveys=None,
    *,
    as_of,
    chunk_customers: int = 200_000,
    horizon_days: float | None = None,
    clv_months: int | None = None,
    discount_rate: float | None = None,
    explain: bool = True,
    time_unit: str = "D",
    lookback_days: int = 365,
    transaction_columns: TransactionColumns | None = None,
    survey_columns: SurveyColumns | None = None,
    time_format: str | None = None,
    survey_time_format: str | None = None,
    strict: bool = False,
    drop_duplicates: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Validate raw events and score every customer with a purchase by ``as_of``.

    Customers are split into chunks of ``chunk_customers`` whole customers;
    features and scores are computed chunk by chunk, so the working set of the
    feature builder and the model stays the size of one chunk.
    """
    if chunk_customers < 1:
        raise CXDataError(f"chunk_customers must be at least 1, got {chunk_customers}")
    as_of = parse_as_of(as_of)
    tx = validate_transactions(
        transactions,
        as_of=as_of,
        columns=transaction_columns,
        time_format=time_format,
        strict=strict,
        drop_duplicates=drop_duplicates,
    )
    sv = None
    if surveys is not None:
        sv = validate_surveys(
            surveys,
            as_of=as_of,
            columns=survey_columns,
            time_format=survey_time_format or time_format,
            strict=strict,
            drop_duplicates=drop_duplicates,
        )
    predictor = as_predictor(model)
    params = _params(horizon_days, clv_months, discount_rate, explain)
    ids = tx.data["customer_id"].unique().sort()
    total = ids.len()
    n_chunks = max(1, -(-total // chunk_customers))
    chunk_of = pl.DataFrame(
        {"customer_id": ids, "_chunk": (np.arange(total) // chunk_customers).astype(np.int32)}
    )
    tx_parts = tx.data.join(chunk_of, on="customer_id").partition_by(
        "_chunk", as_dict=True, include_key=False
    )
    sv_parts = {}
    orphans = 0
    if sv is not None and sv.data.height:
        survey_ids = sv.data.with_columns(pl.col("customer_id").cast(ids.dtype, strict=False))
        joined = survey_ids.join(chunk_of, on="customer_id", how="left")
        orphans = joined.filter(pl.col("_chunk").is_null())["customer_id"].n_unique()
        sv_parts = joined.filter(pl.col("_chunk").is_not_null()).partition_by(
            "_chunk", as_dict=True, include_key=False
        )
    parts, extras = [], []
    done = 0
    empty_sv = None if sv is None else sv.data.clear()
    for k in range(n_chunks):
        tx_chunk = tx_parts[(k,)]
        sv_chunk = sv_parts.get((k,), empty_sv)
        feats, _ = features_from_validated(
            tx_chunk, sv_chunk, as_of=as_of, time_unit=time_unit, lookback_days=lookback_days
        )
        frame = to_pandas_features(feats, as_of=as_of, time_unit=time_unit)
        parts.append(pd.DataFrame(predictor.predict(frame, params=params)))
        extras.append(_extras(frame))
        done += len(frame)
        if progress is not None:
            progress(done, total)
    scored = _finish(parts, extras)
    return BatchResult(
        scored=scored,
        transactions=tx.report,
        surveys=None if sv is None else sv.report,
        survey_customers_without_purchase=int(orphans),
        chunks=n_chunks,
    )
