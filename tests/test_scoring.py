import numpy as np
import pandas as pd
import pytest
from cx_models.training.pipeline import TrainingConfig, train_scorer

from cx_models.features import build_customer_features
from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.scoring import SCORE_COLUMNS, CXScorer
from cx_models.synthetic import generate_customer_base

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def trained():
    base = generate_customer_base(8_000, seed=21)
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    config = TrainingConfig(as_of=AS_OF, horizon_days=90, max_snapshots=4)
    return base, train_scorer(tx, sv, config, truth=base.truth.to_pandas())


def test_scoring_contract(trained):
    base, result = trained
    scored = result.scorer.score(result.features)
    assert list(scored.columns) == list(SCORE_COLUMNS)
    assert len(scored) == len(result.features)
    assert scored["customer_id"].tolist() == result.features["customer_id"].tolist()
    assert str(scored["customer_id"].dtype) == "Int64"
    assert sorted(scored["priority_rank"]) == list(range(1, len(scored) + 1))
    assert scored["churn_risk"].between(0, 1).all()
    assert (scored["clv"] >= 0).all() and scored["p_alive"].between(0, 1).all()
    np.testing.assert_allclose(scored["value_at_risk"], scored["clv"] * scored["churn_risk"])
    assert scored["drivers"].str.len().gt(0).mean() > 0.99
    # customers without any survey still get an NCO, with coverage 0.5
    no_survey = (
        scored["csat_score"].isna() & scored["nps_score"].isna() & scored["ces_score"].isna()
    )
    assert no_survey.any()
    assert np.allclose(scored.loc[no_survey, "nco_coverage"], 0.5)
    assert scored.loc[no_survey, "nco"].notna().all()


def test_one_customer_at_a_time_equals_the_whole_table(trained):
    """The API's path (a few rows: single-threaded booster) gives the batch path's scores."""
    _, result = trained
    features = result.features
    whole = result.scorer.score(features).set_index("customer_id")
    picks = list(range(0, len(features), len(features) // 25))[:25]
    for i in picks:
        row = features.iloc[[i]]
        row.attrs = dict(features.attrs)
        one = result.scorer.score(row).iloc[0]
        expected = whole.loc[one["customer_id"]]
        assert one["priority_rank"] == 1
        assert one["drivers"] == expected["drivers"]
        for col in SCORE_COLUMNS[1:16]:
            if np.isnan(expected[col]):
                assert np.isnan(one[col]), col
            else:
                assert one[col] == pytest.approx(expected[col], rel=1e-12, abs=1e-12), col
    # a small batch (under the single-thread threshold) equals its rows of the whole table
    small = features.iloc[:200].copy()
    small.attrs = dict(features.attrs)
    part = result.scorer.score(small).set_index("customer_id")
    cols = list(SCORE_COLUMNS[1:16])
    np.testing.assert_allclose(
        part[cols].to_numpy(dtype=float),
        whole.loc[part.index, cols].to_numpy(dtype=float),
        rtol=1e-12,
        atol=1e-12,
    )


def test_other_clv_settings_leave_value_score_alone(trained):
    _, result = trained
    a = result.scorer.score(result.features.head(300))
    b = result.scorer.score(
        result.features.head(300), horizon_days=30, clv_months=36, discount_rate=0.2, explain=False
    )
    pd.testing.assert_series_equal(a["value_score"], b["value_score"])
    pd.testing.assert_series_equal(a["churn_risk"], b["churn_risk"])
    assert (b["clv"] > a["clv"]).mean() > 0.9  # three years instead of one
    assert (b["expected_purchases"] < a["expected_purchases"]).mean() > 0.9  # 30 vs 90 days
    assert (b["drivers"] == "").all()


def test_save_load_gives_identical_scores(tmp_path, trained):
    _, result = trained
    path = result.scorer.save(tmp_path / "scorer")
    names = sorted(p.name for p in path.rglob("*") if p.is_file())
    assert names == ["booster.ubj", "churn.json", "clv.json", "scorer.json"]
    back = CXScorer.load(path)
    pd.testing.assert_frame_equal(back.score(result.features), result.scorer.score(result.features))


def test_scoring_a_days_table_with_a_weeks_model_is_consistent(trained):
    base, result = trained
    weeks = build_customer_features(base.transactions, base.surveys, as_of=AS_OF, time_unit="W")
    days = result.features
    a = result.scorer.score(days.head(500), explain=False)
    b = result.scorer.score(weeks.head(500), explain=False)
    np.testing.assert_allclose(a["clv"], b["clv"], rtol=1e-9)
    np.testing.assert_allclose(a["churn_risk"], b["churn_risk"], rtol=1e-6)


def test_training_records_evaluation_and_snapshots(trained):
    _, result = trained
    ev = result.evaluation
    assert ev["evaluation_day"] == "2025-10-02"
    assert set(ev["metrics"]) >= {
        "model",
        "bgnbd_prob_no_purchase",
        "days_since_last_purchase",
        "logistic_regression",
        "ceiling_true_parameters",
    }
    assert len(result.snapshot_counts) == 4
    assert max(result.snapshot_counts) == "2025-10-02"
    assert result.scorer.reference.settings == {"clv_months": 12, "discount_rate": 0.1}


def test_value_score_uses_the_trained_clv_settings():
    base = generate_customer_base(4_000, seed=22)
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    config = TrainingConfig(as_of=AS_OF, max_snapshots=3, clv_months=24, discount_rate=0.05)
    result = train_scorer(tx, sv, config)
    scorer = result.scorer
    assert scorer.reference.settings == {"clv_months": 24, "discount_rate": 0.05}
    features = result.features.head(400)
    clv24 = scorer.clv.predict(features, horizon_days=90, clv_months=24, discount_rate=0.05)
    expected = scorer.reference.score(clv24["clv"].to_numpy())
    for kwargs in ({}, {"clv_months": 6, "discount_rate": 0.2}, {"clv_months": 12}):
        scored = scorer.score(features, explain=False, **kwargs)
        np.testing.assert_allclose(scored["value_score"], expected)
    # the clv column follows the request; the default is the trained 24 months
    np.testing.assert_allclose(scorer.score(features, explain=False)["clv"], clv24["clv"])


def test_a_table_with_an_infinite_value_names_the_customers(trained):
    from cx_models.errors import CXDataError

    _, result = trained
    features = result.features.head(50).copy()
    features.loc[features.index[7], "monetary_value"] = np.inf
    features.loc[features.index[9], "total_spend"] = 1e39
    with pytest.raises(CXDataError) as caught:
        result.scorer.score(features)
    message = str(caught.value)
    assert message.startswith("2 customer(s) have infinite or huge feature values")
    assert "'monetary_value', 'total_spend'" in message
    ids = features["customer_id"].iloc[[7, 9]].tolist()
    assert f"customer_id {ids[0]}, {ids[1]}" in message


def test_intervals_come_after_the_contract_and_match_the_clv_models(trained):
    from cx_models.errors import CXDataError
    from cx_models.settings import ScoreParams

    _, result = trained
    few = result.features.head(300)
    params = ScoreParams(horizon_days=60, intervals=0.8, explain=False)
    scored = result.scorer.score(few, params)
    extra = ["purchases_lower", "purchases_upper", "purchases_interval_mass", "clv_lower",
             "clv_upper"]
    assert list(scored.columns) == list(SCORE_COLUMNS) + extra
    direct = result.scorer.clv.predict(few, horizon_days=60, intervals=0.8)
    for col in extra:
        np.testing.assert_array_equal(scored[col].to_numpy(), direct[col].to_numpy())
    assert ScoreParams.from_pyfunc(params.to_pyfunc()) == params
    with pytest.raises(CXDataError, match="central level between 0 and 1"):
        ScoreParams(intervals=1.0)


def test_score_columns_are_the_scored_table_and_json_rows(trained):
    """The API's frame-free path gives the scored table's values, intervals after it."""
    from cx_models.serving.api_models import column_records, json_records

    _, result = trained
    head = result.features.head(40)
    columns, drivers = result.scorer.score_columns(head, intervals=0.9)
    columns["drivers"] = drivers().to_pylist()
    names = list(columns)
    assert names[: len(SCORE_COLUMNS)] == list(SCORE_COLUMNS)
    assert {"purchases_lower", "purchases_upper", "clv_lower", "clv_upper"} <= set(
        names[len(SCORE_COLUMNS):]
    )
    scored = result.scorer.score(head, intervals=0.9)
    assert list(scored.columns) == names
    assert column_records(columns) == json_records(scored)
