"""The promotion gate: the champion scored on the challenger's own forward-evaluation window."""

import datetime as dt

import numpy as np
import pytest
from cx_models.training.pipeline import TrainingConfig, train_scorer
from sklearn.metrics import brier_score_loss, roc_auc_score

from cx_models import promotion
from cx_models.churn_data import churn_labels
from cx_models.errors import CXDataError
from cx_models.features import build_customer_features
from cx_models.promotion import PromotionGate, compare_on_window, evaluation_window
from cx_models.schemas import validate_surveys, validate_transactions

EARLY, LATE, H = "2025-06-30", "2025-12-31", 90


@pytest.fixture(scope="module")
def events(small_base):
    tx = validate_transactions(small_base.transactions, as_of=LATE).data
    sv = validate_surveys(small_base.surveys, as_of=LATE).data
    return tx, sv


@pytest.fixture(scope="module")
def champion(events):
    tx, sv = events
    config = TrainingConfig(as_of=EARLY, horizon_days=H, max_snapshots=2)
    return train_scorer(tx.filter(tx["timestamp"] < dt.datetime(2025, 7, 1)), None, config)


@pytest.fixture(scope="module")
def challenger(events):
    tx, sv = events
    return train_scorer(tx, sv, TrainingConfig(as_of=LATE, horizon_days=H, max_snapshots=2))


def _meta(result):
    return {
        "evaluation_day": result.evaluation["evaluation_day"],
        "horizon_days": H,
        "lookback_days": result.config.lookback_days,
    }


def test_gate_both_ways_by_hand():
    gate = PromotionGate()
    assert gate.decide({"roc_auc": 0.805, "brier": 0.152}, {"roc_auc": 0.8, "brier": 0.15})[0]
    # ROC-AUC short by a thousandth, or a Brier score 0.0021 worse: the champion stays
    assert not gate.decide({"roc_auc": 0.804, "brier": 0.15}, {"roc_auc": 0.8, "brier": 0.15})[0]
    ok, reason = gate.decide({"roc_auc": 0.9, "brier": 0.1521}, {"roc_auc": 0.8, "brier": 0.15})
    assert not ok and "Brier 0.1521 vs 0.1500 (+0.0021 > +0.002)" in reason


def test_champion_is_scored_on_the_challengers_window(events, champion, challenger):
    tx, sv = events
    window = evaluation_window(challenger.evaluation)
    day = dt.date.fromisoformat(challenger.evaluation["evaluation_day"])
    assert day == dt.date(2025, 10, 2)
    got = compare_on_window(champion.scorer, window, window=_meta(challenger))
    # the challenger's side is its forward evaluation, as logged
    logged = challenger.evaluation["metrics"]["model"]
    assert got["challenger"]["roc_auc"] == pytest.approx(logged["roc_auc"], abs=1e-12)
    assert got["challenger"]["brier"] == pytest.approx(logged["brier"], abs=1e-12)
    # the champion's side, recomputed independently from the raw events of that day
    seen_tx = tx.filter(tx["timestamp"] < dt.datetime.combine(day, dt.time.max))
    seen_sv = sv.filter(sv["timestamp"] < dt.datetime.combine(day, dt.time.max))
    features = build_customer_features(seen_tx, seen_sv, as_of=day)
    risk = champion.scorer.score(features, explain=False)["churn_risk"].to_numpy()
    y = churn_labels(tx, features["customer_id"].to_numpy(), as_of=day, horizon_days=H)
    assert got["customers"] == len(y)
    assert got["observed_churn_rate"] == pytest.approx(y.mean())
    assert got["champion"]["roc_auc"] == pytest.approx(roc_auc_score(y, risk), abs=1e-9)
    assert got["champion"]["brier"] == pytest.approx(brier_score_loss(y, risk), abs=1e-9)
    wins, _ = PromotionGate().decide(got["challenger"], got["champion"])
    assert got["promote"] is wins
    # a gate nobody passes and one everybody passes
    never = compare_on_window(champion.scorer, window, window=_meta(challenger),
                              gate=PromotionGate(min_auc_gain=1.0))
    always = compare_on_window(champion.scorer, window, window=_meta(challenger),
                               gate=PromotionGate(min_auc_gain=-1.0, max_brier_loss=1.0))
    assert never["promote"] is False and always["promote"] is True


def test_a_champion_that_saw_the_window_or_another_horizon_is_not_compared(challenger):
    window = evaluation_window(challenger.evaluation)
    with pytest.raises(CXDataError, match=r"--as-of 2026-03-31 or later can be compared"):
        compare_on_window(challenger.scorer, window, window=_meta(challenger))
    other = {**_meta(challenger), "horizon_days": 60, "evaluation_day": "2026-12-31"}
    with pytest.raises(CXDataError, match="within 90 days, the challenger within 60"):
        compare_on_window(challenger.scorer, window, window=other)


def test_the_window_is_a_seeded_sample_with_outcomes(challenger, monkeypatch):
    full = evaluation_window(challenger.evaluation)
    assert full["churned"].tolist() == challenger.evaluation["_labels"].tolist()
    monkeypatch.setattr(promotion, "WINDOW_SAMPLE", 500)
    a, b = (evaluation_window(challenger.evaluation, random_state=3) for _ in range(2))
    assert len(a) == 500 and a["customer_id"].tolist() == b["customer_id"].tolist()
    assert a["customer_id"].is_unique and set(a["customer_id"]) <= set(full["customer_id"])
    by_id = full.set_index("customer_id")
    np.testing.assert_array_equal(
        a["challenger_churn_risk"], by_id.loc[a["customer_id"], "challenger_churn_risk"]
    )
