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
    from cx_models.contract_inputs import validate_contract_inputs
    from cx_models.settings import EventFormat
    from cx_models.subscriptions import SubscriptionSpec

    scorer = contract_scorer(model)
    spec = spec or SubscriptionSpec()
    _check_spec(scorer, spec)
    fmt = fmt or EventFormat(ces_higher_is_better=scorer.ces_higher_is_better)
    inputs = validate_contract_inputs(subscriptions, as_of=as_of, spec=spec, surveys=surveys,
                                      transactions=transactions, attributes=attributes, fmt=fmt)
    features = scorer.features(inputs.subscriptions.data, day=as_of, **inputs.frames())
    scored = scorer.score(features, params)
    extra = [c for c in scorer.attribute_columns if c in features.columns]
    if extra:
        scored = pd.concat([scored, features[extra].reset_index(drop=True)], axis=1)
    return ContractBatchResult(scored=scored, reports=inputs.reports(),
                               unseen_levels=scorer.churn.unseen_levels(features))
