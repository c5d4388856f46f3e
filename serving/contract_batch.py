"""Batch scoring of a subscription base: raw subscriptions (+ surveys, activity) → scores.

:func:`score_subscriptions` validates the inputs with their contracts as seen on
``as_of``, builds the contractual features of every relationship active that day
with the scorer's own definition (billing period, grace days, survey look-back,
the retention models fitted at training) and scores them in one pass: one row per
active relationship, columns :data:`cx_models.contract_scoring.SUBSCRIPTION_SCORE_COLUMNS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from cx_models.serving.predictors import contract_scorer

from cx_models.errors import CXDataError
from cx_models.quarantine import ValidationReport

__all__ = ["ContractBatchResult", "score_subscriptions"]


@dataclass
class ContractBatchResult:
    """The scored relationships and what validation did with each input."""

    scored: pd.DataFrame
    reports: dict[str, ValidationReport | None]
    unseen_levels: dict


def _check_spec(scorer, spec) -> None:
    if spec is None or spec.period is None:
        return
    if spec.period != scorer.period:
        raise CXDataError(
            f"the model counts {scorer.period.label} billing periods; --period-days / "
            f"--period say {spec.period.label}: leave them out to use the model's"
        )


def score_subscriptions(model, subscriptions, *, as_of, surveys=None, transactions=None,
                        attributes=None, spec=None, fmt=None, params=None) -> ContractBatchResult:
    """Score every relationship active on ``as_of`` with a subscription scorer.

    Parameters
    ----------
    model : pyfunc model or ContractScorer
        A logged subscription scorer.
    subscriptions, surveys, transactions : path, DatabaseSource or DataFrame
        Raw inputs (surveys and activity events optional).
    as_of : str or date
        The scoring day.
    attributes : AttributeInput, path or frame, optional
        Customer attributes, when the model was trained with them.
    spec : SubscriptionSpec, optional
        The subscription columns and date format (the billing period is the model's).
    fmt : EventFormat, optional
        How to read the surveys and activity events.
    params : ScoreParams, optional
        ``clv_months``, ``discount_rate``, ``explain``.
    """
    from cx_models.schemas import validate_surveys, validate_transactions
    from cx_models.settings import EventFormat
    from cx_models.subscriptions import SubscriptionSpec, validate_subscriptions

    scorer = contract_scorer(model)
    spec = spec or SubscriptionSpec()
    _check_spec(scorer, spec)
    fmt = fmt or EventFormat(ces_higher_is_better=scorer.ces_higher_is_better)
    subs = validate_subscriptions(subscriptions, as_of=as_of, columns=spec.columns,
                                  time_format=spec.time_format)
    ids = subs.data["customer_id"].dtype
    sv = None if surveys is None else validate_surveys(surveys, as_of=as_of, fmt=fmt,
                                                       id_dtype=ids)
    tx = None if transactions is None else validate_transactions(
        transactions, as_of=as_of, fmt=fmt, id_dtype=ids)
    attrs = None
    if attributes is not None:
        from cx_models.attributes import AttributeInput

        attrs = AttributeInput.of(attributes).validate(id_dtype=ids)
    features = scorer.features(
        subs.data, day=as_of, surveys=None if sv is None else sv.data,
        transactions=None if tx is None else tx.data,
        attributes=None if attrs is None else attrs.data,
    )
    scored = scorer.score(features, params)
    extra = [c for c in scorer.attribute_columns if c in features.columns]
    if extra:
        scored = pd.concat([scored, features[extra].reset_index(drop=True)], axis=1)
    reports = {"subscriptions": subs.report, "surveys": None if sv is None else sv.report,
               "transactions": None if tx is None else tx.report,
               "attributes": None if attrs is None else attrs.report}
    return ContractBatchResult(scored=scored, reports=reports,
                               unseen_levels=scorer.churn.unseen_levels(features))
