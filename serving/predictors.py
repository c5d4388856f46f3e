"""What every scoring job shares: a predictor for any model, the trained feature definition.

``model`` is anything with ``predict(frame, params=dict)`` returning the scoring
contract: an MLflow pyfunc CX scorer (:func:`cx_models.training.tracking.load_model`)
or a :class:`cx_models.scoring.CXScorer` (wrapped by :func:`as_predictor`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cx_models.contract import EXTRA_COLUMNS
from cx_models.errors import CXDataError
from cx_models.legacy_keywords import from_keywords
from cx_models.schemas import (
    ValidationReport,
)
from cx_models.scoring import CXScorer
from cx_models.settings import FeatureSpec, ScoreParams

__all__ = [
    "BatchResult",
    "as_predictor",
    "contract_scorer",
    "extras",
    "feature_spec_of",
    "settings_for",
    "trained_spec",
]

_SCORE_KEYWORDS = ("horizon_days", "clv_months", "discount_rate", "explain")


class _ScorerPredictor:
    def __init__(self, scorer: CXScorer):
        self.scorer = scorer

    def predict_deferred(self, frame, params=None):
        return self.scorer.score_deferred(frame, ScoreParams.from_pyfunc(params))

    def predict(self, frame, params=None):
        return self.scorer.score(frame, ScoreParams.from_pyfunc(params))


def feature_spec_of(model) -> FeatureSpec:
    """Return the feature definition a model (CXScorer or logged CX scorer) was trained on.

    Other predictors are taken to use the defaults.
    """
    predictor = as_predictor(model)
    scorer = getattr(predictor, "scorer", None)
    return scorer.feature_spec if isinstance(scorer, CXScorer) else FeatureSpec()


def settings_for(where: str, params, fmt, keywords: dict):
    """Split a call's keywords into ScoreParams, EventFormat and an asked FeatureSpec."""
    score_kw = {k: keywords.pop(k) for k in _SCORE_KEYWORDS if k in keywords}
    if score_kw and params is not None:
        raise TypeError(f"{where}(): give params=ScoreParams(...) or its keywords, not both")
    asked = "lookback_days" in keywords
    fmt, spec = from_keywords(where, keywords, fmt=fmt)
    return params or ScoreParams(**score_kw), fmt, spec if asked else None


def trained_spec(model, asked: FeatureSpec | None) -> FeatureSpec:
    """Return the model's feature definition; an asked look-back that differs is an error."""
    spec = feature_spec_of(model)
    if asked is not None and asked.lookback_days != spec.lookback_days:
        raise CXDataError(
            f"lookback_days={asked.lookback_days} differs from the {spec.lookback_days} days the "
            "model was trained with; scoring builds features the trained way (leave it out)"
        )
    return spec


def contract_scorer(model):
    """Return the :class:`~cx_models.contract_scoring.ContractScorer` inside a model, or raise."""
    from cx_models.contract_scoring import ContractScorer

    if isinstance(model, ContractScorer):
        return model
    unwrap = getattr(model, "unwrap_python_model", None)
    inner = getattr(unwrap(), "scorer", None) if unwrap is not None else None
    if isinstance(inner, ContractScorer):
        return inner
    raise CXDataError(
        "this model scores customers from transactions (a non-contractual scorer): give "
        "--transactions or --features, or train a model with --subscriptions"
    )


def as_predictor(model):
    """Return an object with ``predict(frame, params)`` for a pyfunc model or a CXScorer."""
    if isinstance(model, CXScorer):
        return _ScorerPredictor(model)
    # a logged CX scorer: call it directly. MLflow's input-schema enforcement re-checks
    # every column of every chunk of a table built here.
    unwrap = getattr(model, "unwrap_python_model", None)
    if unwrap is not None:
        inner = getattr(unwrap(), "scorer", None)
        if isinstance(inner, CXScorer):
            return _ScorerPredictor(inner)
        if getattr(inner, "kind", None) == "subscriptions":
            raise CXDataError(
                "this model is a subscription scorer (trained with --subscriptions): score "
                "relationships with --subscriptions (Python: serving.contract_batch)"
            )
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
    customers: int = 0
    attributes: ValidationReport | None = None
    unseen_levels: dict = field(default_factory=dict)


def extras(features: pd.DataFrame) -> pd.DataFrame:
    """Return the columns appended after the scoring contract's: raw survey answers, attributes.

    The customer attributes are those the table records in ``attrs["attributes"]``.
    """
    columns = {
        c: features[c].to_numpy() if c in features.columns else np.nan for c in EXTRA_COLUMNS
    }
    for c in features.attrs.get("attributes", {}):
        if c in features.columns and c not in columns:
            columns[c] = features[c].to_numpy()
    return pd.DataFrame(columns, index=range(len(features)))


def model_categories(model) -> dict[str, list[str]]:
    """Return the categorical attributes of a model and their trained levels ({} if none)."""
    scorer = getattr(as_predictor(model), "scorer", None)
    if not isinstance(scorer, CXScorer):
        return {}
    return dict(getattr(scorer.churn, "categories_", None) or {})


def prepare_attributes(model, attributes, id_dtype):
    """Validate an attributes input for scoring with ``model``.

    The model's categorical attributes are read as categorical whatever the
    cells look like, so scoring sees the levels training saw.
    """
    from dataclasses import replace

    from cx_models.attributes import AttributeInput
    from cx_models.contract import feature_columns

    given = AttributeInput.of(attributes)
    trained = model_categories(model)
    spec = replace(given.spec, categorical=tuple(dict.fromkeys(
        [*given.spec.categorical, *trained])))
    present = given.validate(id_dtype=id_dtype, reserved=feature_columns())
    spec = replace(spec, categorical=tuple(c for c in spec.categorical if c in present.kinds))
    if spec.categorical != given.spec.categorical:
        present = AttributeInput(given.source, spec).validate(
            id_dtype=id_dtype, reserved=feature_columns()
        )
    return present


def count_unseen(model, frame: pd.DataFrame, into: dict) -> None:
    """Add, per categorical attribute, the values of ``frame`` the model never saw."""
    from cx_models.models._booster import unseen_levels

    for column, levels in model_categories(model).items():
        if column in frame.columns:
            into[column] = into.get(column, 0) + unseen_levels(frame[column], levels)
