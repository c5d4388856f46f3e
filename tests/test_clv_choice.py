"""Choosing the transaction model on a holdout inside the training data."""

import pytest
from cx_models.training.pipeline import TrainingConfig, train_scorer

from cx_models.clv_choice import MIN_HOLDOUT_DAYS, choose_clv_model, pick_model
from cx_models.datasets import load_cdnow
from cx_models.schemas import validate_transactions
from cx_models.synthetic import generate_customer_base


@pytest.fixture(scope="module")
def synthetic():
    base = generate_customer_base(6_000, seed=21)
    return validate_transactions(base.transactions, as_of="2025-12-31").data


def test_the_generators_bgnbd_wins_on_its_own_data(synthetic):
    choice = choose_clv_model(synthetic, as_of="2025-12-31")
    assert set(choice["candidates"]) == {"bgnbd", "mbgnbd", "pnbd"}
    maes = {k: v["purchases_mae"] for k, v in choice["candidates"].items()}
    assert choice["chosen"] in pick_model(choice["candidates"])[1]
    assert maes[choice["chosen"]] <= min(maes.values()) * 1.01
    assert choice["chosen"] == "bgnbd"  # the base is BG/NBD by construction
    for figures in choice["candidates"].values():
        assert figures["purchases_actual"] > 0 and 0 < figures["purchases_corr"] <= 1


def test_holdout_is_the_last_third_and_short_histories_keep_bgnbd():
    tx = validate_transactions(load_cdnow("sample"), as_of="1998-06-30").data
    choice = choose_clv_model(tx, as_of="1998-06-30")
    assert (choice["calibration_end"], choice["holdout_days"]) == ("1997-12-31", 181)
    first = tx["timestamp"].min().date().isoformat()
    assert first == "1997-01-01"  # 545 days of history: a third is 181
    short = choose_clv_model(tx, as_of="1997-03-31")  # 89 days: a third is 29 < 56
    assert short["chosen"] == "bgnbd" and short["candidates"] == {}
    assert f"under the {MIN_HOLDOUT_DAYS}" in short["reason"]


def test_the_tie_rule_by_hand():
    figures = {"bgnbd": {"purchases_mae": 1.000, "purchases_total_error": 0.05},
               "mbgnbd": {"purchases_mae": 1.009, "purchases_total_error": -0.02},
               "pnbd": {"purchases_mae": 1.011, "purchases_total_error": 0.0}}
    assert pick_model(figures) == ("mbgnbd", ["bgnbd", "mbgnbd"])
    figures["bgnbd"]["purchases_mae"] = 0.9
    assert pick_model(figures) == ("bgnbd", ["bgnbd"])


@pytest.mark.slow  # default suite under two minutes; CI runs it
def test_auto_in_training_refits_the_chosen_model_everywhere(synthetic):
    config = TrainingConfig(as_of="2025-12-31", max_snapshots=2, clv_model="auto")
    result = train_scorer(synthetic, None, config)
    chosen = result.clv_choice["chosen"]
    assert result.config.clv_model == "auto" and result.scorer.clv.model == chosen
    metrics = result.choice_metrics()
    assert metrics[f"clv.choice.{chosen}.purchases_mae"] == pytest.approx(
        result.clv_choice["candidates"][chosen]["purchases_mae"]
    )
    with pytest.raises(Exception, match="model must be one of"):
        TrainingConfig(as_of="2025-12-31", clv_model="pareto")


def test_clvmodel_auto_chooses_on_transactions_and_matches_the_chosen_fit():
    from cx_models.errors import CXDataError
    from cx_models.models.clv import CLVModel

    raw = load_cdnow("sample")
    auto = CLVModel(model="auto").fit_transactions(raw, as_of="1998-06-30")
    tx = validate_transactions(raw, as_of="1998-06-30").data
    assert auto.choice_ == choose_clv_model(tx, as_of="1998-06-30")
    direct = CLVModel(model=auto.model).fit_transactions(raw, as_of="1998-06-30")
    assert auto.model == auto.choice_["chosen"] and auto.params_ == direct.params_
    with pytest.raises(CXDataError, match="fit_transactions"):
        CLVModel(model="auto").fit(load_cdnow("sample").head(0))


def test_churn_features_come_from_bgnbd_whatever_the_clv_model(synthetic, tmp_path):
    """A Pareto/NBD scorer keeps BG/NBD for the churn features (scored, saved, loaded)."""
    import numpy as np
    import pandas as pd

    from cx_models.churn_data import add_model_features
    from cx_models.scoring import CXScorer

    config = TrainingConfig(as_of="2025-12-31", max_snapshots=2, clv_model="pnbd")
    result = train_scorer(synthetic, None, config)
    scorer, features = result.scorer, result.features
    assert scorer.clv.model == "pnbd" and scorer.churn_clv.model == "bgnbd"
    # the churn model sees BG/NBD's outputs; the scored columns are Pareto/NBD's
    churn_inputs = add_model_features(features, scorer.churn_clv, horizon_days=90)
    scored = scorer.score(features, explain=False)
    np.testing.assert_allclose(
        scored["churn_risk"], scorer.churn.predict_proba(churn_inputs), rtol=1e-6
    )
    one_timers = (features["frequency"] == 0).to_numpy() & (features["T"] > 0).to_numpy()
    assert (churn_inputs.loc[one_timers, "p_alive"] == 1).all()  # BG/NBD
    assert (scored.loc[one_timers, "p_alive"] < 1).all()  # Pareto/NBD lets them drop out
    own = scorer.clv.predict(features, horizon_days=90)
    np.testing.assert_allclose(scored["expected_purchases"], own["expected_purchases"])
    # the evaluation ranks the chosen model's P(no purchase) beside BG/NBD's
    assert {"bgnbd_prob_no_purchase", "pnbd_prob_no_purchase"} <= set(
        result.evaluation["metrics"]
    )
    loaded = CXScorer.load(scorer.save(tmp_path / "scorer"))
    assert loaded.churn_clv.model == "bgnbd"
    pd.testing.assert_frame_equal(loaded.score(features), scorer.score(features))
    same = train_scorer(synthetic, None, TrainingConfig(
        as_of="2025-12-31", max_snapshots=2, clv_model="pnbd", churn_clv_model="same"))
    assert same.scorer.churn_clv is None and same.scorer.feature_clv.model == "pnbd"
    with pytest.raises(Exception, match="model must be one of"):
        TrainingConfig(as_of="2025-12-31", churn_clv_model="nbd")
