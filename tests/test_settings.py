"""The one vocabulary: settings objects, the trained feature definition everywhere, horizon 0."""

import dataclasses
import datetime as dt
import math
import warnings

import pandas as pd
import polars as pl
import pytest
from cx_models.serving.batch import score_events, score_features, score_files
from cx_models.training.pipeline import TrainingConfig, train_scorer

from cx_models.churn_eval import evaluate_churn
from cx_models.errors import CXDataError
from cx_models.features import build_customer_features, build_features
from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.scoring import CXScorer
from cx_models.settings import (
    EventFormat,
    FeatureSpec,
    ScoreParams,
    SnapshotPlan,
    check_time_format,
)
from cx_models.sources import EventInputs
from cx_models.synthetic import generate_customer_base, write_customer_base

AS_OF = "2025-12-31"
SHORT = FeatureSpec(lookback_days=45)


@pytest.fixture(scope="module")
def trained():
    """A scorer trained with a 45-day survey look-back (the default is 365)."""
    base = generate_customer_base(3_000, seed=41)
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    config = TrainingConfig(as_of=AS_OF, max_snapshots=2, lookback_days=45)
    return base, train_scorer(tx, sv, config)


def _by_id(frame):
    return frame.sort_values("customer_id").reset_index(drop=True)


def test_the_trained_look_back_travels_with_the_scorer(trained, tmp_path):
    _, result = trained
    assert result.scorer.feature_spec == SHORT
    assert result.features.attrs["lookback_days"] == 45
    saved = CXScorer.load(result.scorer.save(tmp_path / "scorer"))
    assert saved.feature_spec == SHORT


def test_every_scoring_path_builds_features_the_trained_way(trained, tmp_path):
    base, result = trained
    scorer = result.scorer
    short = build_features(base.transactions, base.surveys, as_of=AS_OF, spec=SHORT).features
    long = build_features(base.transactions, base.surveys, as_of=AS_OF).features
    # the look-back matters on this base: some answers are older than 45 days
    assert (short["nps_count"] < long["nps_count"]).any()
    expected = _by_id(score_features(scorer, short))
    events = _by_id(score_events(scorer, base.transactions, base.surveys, as_of=AS_OF).scored)
    pd.testing.assert_frame_equal(events, expected)
    write_customer_base(base, tmp_path)
    out = tmp_path / "scored.parquet"
    tx_file, sv_file = tmp_path / "transactions.parquet", tmp_path / "surveys.parquet"
    score_files(scorer, EventInputs(tx_file, sv_file), as_of=AS_OF, out=out)
    files = _by_id(pd.read_parquet(out))
    pd.testing.assert_series_equal(files["nco"], expected["nco"])
    pd.testing.assert_series_equal(files["churn_risk"], expected["churn_risk"])


def test_a_table_built_with_another_look_back_is_refused(trained):
    base, result = trained
    long = build_features(base.transactions, base.surveys, as_of=AS_OF).features
    with pytest.raises(CXDataError, match="look-back of 365 days but the model was trained on 45"):
        result.scorer.score(long)
    with pytest.raises(CXDataError, match="lookback_days=365 differs from the 45 days"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            score_events(
                result.scorer, base.transactions, base.surveys, as_of=AS_OF, lookback_days=365
            )


def test_the_api_history_endpoint_uses_the_trained_look_back(trained):
    from cx_models.serving.api import create_app
    from fastapi.testclient import TestClient

    base, result = trained
    ids = base.surveys["customer_id"].unique().head(40)
    tx = base.transactions.filter(pl.col("customer_id").is_in(ids.implode()))
    sv = base.surveys.filter(pl.col("customer_id").is_in(ids.implode()))
    body = {
        "as_of": AS_OF,
        "transactions": [
            {"customer_id": int(c), "timestamp": t.isoformat(), "amount": float(a)}
            for c, t, a in tx.select("customer_id", "timestamp", "amount").iter_rows()
        ],
        "surveys": [
            {"customer_id": int(c), "timestamp": t.isoformat(), "survey": s, "score": float(v)}
            for c, t, s, v in sv.select("customer_id", "timestamp", "survey", "score").iter_rows()
        ],
    }
    app = create_app(loader=lambda: (result.scorer, {}))
    with TestClient(app) as client:
        while client.get("/readyz").status_code != 200:
            pass
        res = client.post("/score/history", json=body)
    assert res.status_code == 200, res.text
    got = pd.DataFrame(res.json()["scores"]).sort_values("customer_id")
    features = build_customer_features(tx, sv, as_of=AS_OF, spec=SHORT)
    want = _by_id(result.scorer.score(features))
    assert got["nco"].round(9).tolist() == want["nco"].round(9).tolist()


def test_forward_evaluation_uses_the_given_feature_definition(trained):
    base, _ = trained
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    plan = SnapshotPlan(horizon_days=90, max_snapshots=2)
    short_plan = SnapshotPlan(horizon_days=90, max_snapshots=2, spec=FeatureSpec(lookback_days=1))
    short = evaluate_churn(tx, sv, as_of=AS_OF, plan=short_plan)
    default = evaluate_churn(tx, sv, as_of=AS_OF, plan=plan)
    # a one-day look-back leaves almost no survey answer: the model sees other features
    assert short["metrics"]["model"]["roc_auc"] != default["metrics"]["model"]["roc_auc"]


@pytest.mark.parametrize("value", [0, -1, 0.0, 10**6, math.inf, math.nan, "x", True])
def test_horizon_outside_its_range_is_rejected_with_its_name(value):
    with pytest.raises(CXDataError, match="horizon_days"):
        ScoreParams(horizon_days=value)


def test_horizon_zero_is_rejected_by_the_pyfunc_params_too(trained):
    _, result = trained
    with pytest.raises(CXDataError, match="horizon_days must be > 0"):
        ScoreParams.from_pyfunc({"horizon_days": 0.0})
    feats = result.features.head(5)
    with pytest.raises(CXDataError, match="horizon_days must be > 0"):
        result.scorer.score(feats, horizon_days=0)


def test_score_params_round_trip_and_bounds():
    params = ScoreParams(horizon_days=30, clv_months=24, discount_rate=0.05, explain=False)
    assert ScoreParams.from_pyfunc(params.to_pyfunc()) == params
    assert ScoreParams().to_pyfunc() == {"explain": True}
    with pytest.raises(CXDataError, match="clv_months must be from 0 to 600"):
        ScoreParams(clv_months=100_000)
    with pytest.raises(CXDataError, match="discount_rate is an annual rate"):
        ScoreParams(discount_rate=5)
    with pytest.raises(CXDataError, match="unknown scoring parameter"):
        ScoreParams.from_pyfunc({"horizon": 3})
    resolved = ScoreParams(clv_months=6).resolved(horizon_days=90, clv_months=12, discount_rate=0.1)
    assert (resolved.horizon_days, resolved.clv_months, resolved.discount_rate) == (90, 6, 0.1)


def test_feature_spec_and_event_format_validate_once():
    assert FeatureSpec(time_unit="w").time_unit == "W"
    with pytest.raises(CXDataError, match="time_unit 'fortnight' is not supported"):
        FeatureSpec(time_unit="fortnight")
    with pytest.raises(CXDataError, match="lookback_days must be a whole number"):
        FeatureSpec(lookback_days=0)
    with pytest.raises(CXDataError, match="unknown directive %Q"):
        EventFormat(time_format="%Y%Q")
    with pytest.raises(CXDataError, match="survey_time_format"):
        EventFormat(survey_time_format="%s")
    assert check_time_format("%d/%m/%Y %H:%M") == "%d/%m/%Y %H:%M"
    with pytest.raises(dataclasses.FrozenInstanceError):
        FeatureSpec().lookback_days = 3


def test_earlier_keywords_still_work_with_a_deprecation_warning():
    tx = pd.DataFrame(
        {"customer_id": [1, 1], "timestamp": ["2024-01-01", "2024-01-15"], "amount": [1.0, 2.0]}
    )
    with pytest.warns(DeprecationWarning, match="time_unit now go in spec=FeatureSpec"):
        old = build_customer_features(tx, as_of=dt.date(2024, 1, 29), time_unit="W")
    new = build_customer_features(tx, as_of="2024-01-29", spec=FeatureSpec(time_unit="W"))
    pd.testing.assert_frame_equal(old, new)
    with pytest.raises(TypeError, match="not both"):
        build_customer_features(tx, as_of="2024-01-29", spec=FeatureSpec(), time_unit="W")
    with pytest.raises(TypeError, match="unexpected keyword"):
        build_customer_features(tx, as_of="2024-01-29", lookback=3)
