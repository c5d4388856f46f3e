"""``POST /score/subscriptions`` without the web framework: a request body → scores or errors.

The records were typed by :class:`~cx_models.serving.api_models.SubscriptionRequest`;
here they go through the same validators as files (a row they would quarantine is
an error naming the row), the scorer builds the features of the relationships
active on ``as_of`` with its own definition, and scores them.
"""

from __future__ import annotations

import pandas as pd
import polars as pl

from cx_models.errors import CXDataError

__all__ = ["score_subscription_request"]

_SCHEMA = {"start": pl.Date, "end": pl.Date, "plan": pl.String, "price": pl.Float64,
           "cancelled_at": pl.Date}


def _ids(values: list) -> pl.Series:
    if any(isinstance(v, str) for v in values):
        return pl.Series("customer_id", [str(v) for v in values], dtype=pl.String)
    return pl.Series("customer_id", values, dtype=pl.Int64)


def _frame(records, columns: dict) -> pl.DataFrame:
    rows = [r.model_dump() for r in records]
    data = {"customer_id": _ids([r["customer_id"] for r in rows])}
    for name, dtype in columns.items():
        data[name] = pl.Series(name, [r[name] for r in rows], dtype=dtype)
    return pl.DataFrame(data)


def _quarantined(report, where: str) -> list[dict]:
    from cx_models.subscriptions import SUBSCRIPTION_REASONS

    return [
        {"field": f"{where}.{row}", "message": SUBSCRIPTION_REASONS.get(reason, reason),
         "type": reason}
        for row, reason in report.quarantine.select("row", "reason").iter_rows()
    ]


def score_subscription_request(scorer, body) -> tuple[pd.DataFrame | None, list[dict]]:
    """Return ``(scored, [])``, or ``(None, errors)`` with one entry per problem."""
    from cx_models.schemas import validate_surveys
    from cx_models.settings import ScoreParams
    from cx_models.subscriptions import validate_subscriptions

    if getattr(scorer, "kind", None) != "subscriptions":
        return None, [{"field": "body", "message": "the served model scores customers from "
                       "transactions: POST /score or /score/history"}]
    subs = _frame(body.subscriptions, _SCHEMA)
    try:
        validated = validate_subscriptions(subs, as_of=body.as_of)
    except CXDataError as exc:
        return None, [{"field": "subscriptions", "message": str(exc)}]
    errors = _quarantined(validated.report, "subscriptions")
    surveys = None
    if body.surveys:
        raw = _frame(body.surveys, {"timestamp": pl.Datetime("us"), "survey": pl.String,
                                    "score": pl.Float64})
        checked = validate_surveys(raw, as_of=body.as_of,
                                   id_dtype=validated.data["customer_id"].dtype)
        errors += [{"field": f"surveys.{row}", "message": reason, "type": reason}
                   for row, reason in checked.report.quarantine.select("row", "reason")
                   .iter_rows()]
        surveys = checked.data
    attributes = None
    if body.attributes:
        from cx_models.serving.api_models import attribute_errors

        categories = getattr(scorer.churn, "categories_", None) or {}
        errors += attribute_errors(body.attributes, categories, scorer.attribute_columns,
                                   "attributes")
        frame = pd.DataFrame([a.model_dump() for a in body.attributes])
        attributes = pl.from_pandas(frame).with_columns(
            pl.col("customer_id").cast(validated.data["customer_id"].dtype, strict=False))
    if errors:
        return None, errors
    try:
        features = scorer.features(validated.data, day=body.as_of, surveys=surveys,
                                   attributes=attributes)
        scored = scorer.score(features, ScoreParams(explain=body.explain))
    except CXDataError as exc:
        return None, [{"field": "subscriptions", "message": str(exc)}]
    return scored, []
