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

import numpy as np
import pandas as pd
import polars as pl
from cx_models.serving.batch_files import score_files
from cx_models.serving.predictors import (
    BatchResult,
    as_predictor,
    count_unseen,
    feature_spec_of,
    prepare_attributes,
)
from cx_models.serving.predictors import extras as _extras
from cx_models.serving.predictors import settings_for as _settings
from cx_models.serving.predictors import trained_spec as _trained_spec

from cx_models.contract import EXTRA_COLUMNS, SCORE_COLUMNS
from cx_models.errors import CXDataError
from cx_models.features import features_from_validated, to_pandas_features
from cx_models.nco import priority_rank
from cx_models.schemas import (
    validate_events,
)
from cx_models.settings import EventFormat, ScoreParams
from cx_models.timeutil import parse_as_of

__all__ = [
    "BatchResult",
    "EXTRA_COLUMNS",
    "as_predictor",
    "feature_spec_of",
    "score_events",
    "score_features",
    "score_files",
]



def _finish(parts: list[pd.DataFrame], features_parts: list[pd.DataFrame]) -> pd.DataFrame:
    scored = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(SCORE_COLUMNS))
    )
    extras = pd.concat(features_parts, ignore_index=True) if features_parts else None
    if extras is not None:
        for col in extras.columns:  # the raw survey answers, then any attributes
            scored[col] = extras[col].to_numpy()
    # one global ranking 1..n over every chunk
    scored["priority_rank"] = priority_rank(scored)
    return scored


def score_features(
    model,
    features: pd.DataFrame,
    *,
    params: ScoreParams | None = None,
    chunk_customers: int = 200_000,
    progress: Callable[[int, int], None] | None = None,
    **keywords,
) -> pd.DataFrame:
    """Score a customer feature table in memory, ``chunk_customers`` rows at a time.

    ``params`` (or its fields as keywords) override the trained settings. Returns
    the scoring contract's columns (then the raw survey answers), in the table's
    row order, with one priority rank over the whole table.
    """
    if chunk_customers < 1:
        raise CXDataError(f"chunk_customers must be at least 1, got {chunk_customers}")
    params, _, _ = _settings("score_features", params, None, keywords)
    predictor = as_predictor(model)
    params = params.to_pyfunc()
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


def score_events(
    model,
    transactions,
    surveys=None,
    *,
    as_of,
    params: ScoreParams | None = None,
    fmt: EventFormat | None = None,
    chunk_customers: int = 200_000,
    progress: Callable[[int, int], None] | None = None,
    attributes=None,
    **keywords,
) -> BatchResult:
    """Validate raw events and score every customer with a purchase by ``as_of``.

    ``attributes`` (a customer attributes input, see :mod:`cx_models.attributes`)
    join the features; a model trained with attributes needs them. Their columns
    follow the scoring contract's in the result; values the model never saw are
    scored as missing and counted in ``unseen_levels``.

    The inputs are read as ``fmt`` says; the features are built the way the model
    was trained (its :class:`~cx_models.settings.FeatureSpec`). Customers are split
    into chunks of ``chunk_customers`` whole customers; features and scores are
    computed chunk by chunk, so the working set of the feature builder and the
    model stays the size of one chunk.
    """
    if chunk_customers < 1:
        raise CXDataError(f"chunk_customers must be at least 1, got {chunk_customers}")
    params, fmt, asked = _settings("score_events", params, fmt, keywords)
    as_of = parse_as_of(as_of)
    spec = _trained_spec(model, asked)
    tx, sv = validate_events(transactions, surveys, as_of=as_of, fmt=fmt, extras=spec.extras)
    attrs = (
        None if attributes is None
        else prepare_attributes(model, attributes, tx.data["customer_id"].dtype)
    )
    unseen: dict = {}
    predictor = as_predictor(model)
    params = params.to_pyfunc()
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
            tx_chunk, sv_chunk, as_of=as_of, spec=spec,
            attributes=None if attrs is None else attrs.data,
        )
        frame = to_pandas_features(feats, as_of=as_of, spec=spec)
        if attrs is not None:
            frame.attrs["attributes"] = dict(attrs.kinds)
            count_unseen(model, frame, unseen)
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
        customers=len(scored),
        attributes=None if attrs is None else attrs.report,
        unseen_levels=unseen,
    )
