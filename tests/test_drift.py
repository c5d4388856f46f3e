"""Drift: no alarm on the same generator with another seed; an alarm on a shifted base."""

import json

import numpy as np
import pandas as pd
import pytest
from cx_models.training.pipeline import TrainingConfig, train_scorer
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.drift import drift_reference, drift_report
from cx_models.features import build_customer_features
from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.synthetic import SyntheticParams, generate_customer_base, write_customer_base

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def scorer():
    base = generate_customer_base(4000, seed=1)
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    return train_scorer(tx, sv, TrainingConfig(as_of=AS_OF, max_snapshots=3)).scorer


def _report(scorer, base):
    features = build_customer_features(base.transactions, base.surveys, as_of=AS_OF)
    return drift_report(scorer.drift_frame(features), scorer.drift_reference)


def test_psi_and_ks_by_hand():
    ref = drift_reference(pd.DataFrame({"x": np.arange(1000.0)}), ["x"])
    same = drift_report(pd.DataFrame({"x": np.arange(1000.0)}), ref)["columns"]["x"]
    assert same["psi"] == pytest.approx(0.0, abs=1e-9) and same["ks"] <= 0.002
    # every value above the 9th decile: actual share 1 in the top bin (expected 0.1)
    high = drift_report(pd.DataFrame({"x": np.full(1000, 5000.0)}), ref)["columns"]["x"]
    expected = (1 - 0.1) * np.log(1 / 0.1) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert high["psi"] == pytest.approx(expected, rel=1e-3) and high["ks"] == pytest.approx(1.0)


def test_same_generator_other_seed_is_ok(scorer):
    assert set(scorer.drift_reference) == set(scorer.churn.features_) | {"churn_risk", "nco"}
    for seed in (2, 3):
        report = _report(scorer, generate_customer_base(4000, seed=seed))
        assert report["verdict"] == "ok", report["largest_psi"]


def test_a_shifted_base_raises_the_alarm(scorer):
    slower = SyntheticParams(alpha=SyntheticParams().alpha * 3)  # a third of the purchase rate
    report = _report(scorer, generate_customer_base(4000, seed=2, params=slower))
    assert report["verdict"] == "alarm"
    assert report["columns"]["purchase_rate_per_year"]["psi"] >= 0.25
    assert report["columns"]["mean_gap_days"]["psi"] >= 0.25


def test_monitor_command(scorer, tmp_path, monkeypatch):
    import cx_models.training.tracking as tracking
    from cx_models.serving.batch import as_predictor

    monkeypatch.setattr(tracking, "load_model", lambda uri, tracking_uri=None: as_predictor(scorer))
    monkeypatch.setattr(tracking, "describe_model", lambda uri, tracking_uri=None: {})
    write_customer_base(generate_customer_base(3000, seed=5), tmp_path / "b")
    out = tmp_path / "monitor.json"
    res = CliRunner().invoke(app, ["monitor", "--model", "models:/x@c", "--transactions",
                                   str(tmp_path / "b" / "transactions.parquet"), "--surveys",
                                   str(tmp_path / "b" / "surveys.parquet"), "--as-of", AS_OF,
                                   "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    saved = json.loads(out.read_text())
    assert saved["verdict"] == "ok" and saved["customers"] > 2500
    assert set(saved["columns"]) == set(scorer.drift_reference)
    assert "drift at 2025-12-31" in res.stderr


@pytest.fixture(scope="module")
def earlier():
    """A scorer trained at 2025-06-30 on a base that goes on to 2025-12-31."""
    base = generate_customer_base(4000, seed=9)
    tx = validate_transactions(base.transactions, as_of="2025-06-30").data
    sv = validate_surveys(base.surveys, as_of="2025-06-30").data
    scorer = train_scorer(tx, sv, TrainingConfig(as_of="2025-06-30", max_snapshots=3)).scorer
    return base, scorer


def test_realised_performance_equals_an_independent_computation(earlier):
    import datetime as dt

    from sklearn.metrics import roc_auc_score

    from cx_models.errors import CXDataError
    from cx_models.realised import realised_performance

    base, scorer = earlier
    assert scorer.trained_as_of == "2025-06-30"
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    got = realised_performance(scorer, tx, sv, scored_at="2025-08-31", as_of=AS_OF)
    # by hand: features from the raw base at 2025-08-31, labels from the raw timestamps
    features = build_customer_features(
        base.transactions.filter(base.transactions["timestamp"] < dt.datetime(2025, 9, 1)),
        base.surveys.filter(base.surveys["timestamp"] < dt.datetime(2025, 9, 1)),
        as_of="2025-08-31",
    )
    risk = scorer.score(features, explain=False)["churn_risk"].to_numpy()
    raw = base.transactions.to_pandas()
    window = raw[(raw["timestamp"] >= "2025-09-01") & (raw["timestamp"] < "2025-11-30")]
    y = (~features["customer_id"].isin(window["customer_id"])).astype(int).to_numpy()
    assert got["customers"] == len(features)
    assert got["observed_churn_rate"] == pytest.approx(y.mean())
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, risk))
    assert got["predicted_churn_rate"] == pytest.approx(risk.mean())
    spent = raw[(raw["timestamp"] >= "2025-09-01") & (raw["customer_id"].isin(
        features["customer_id"]))]["amount"].sum()
    assert got["spend_actual"] == pytest.approx(spent)
    assert 0.5 < got["spend_predicted"] / got["spend_actual"] < 2.0
    assert sum(b["customers"] for b in got["calibration"]) == len(features)
    with pytest.raises(CXDataError, match="the latest possible is 2025-10-02"):
        realised_performance(scorer, tx, sv, scored_at="2025-11-01", as_of=AS_OF)
    with pytest.raises(CXDataError, match="before the model's training day 2025-06-30"):
        realised_performance(scorer, tx, sv, scored_at="2025-05-31", as_of=AS_OF)


def test_a_zero_psi_is_not_the_largest():
    import numpy as np
    import pandas as pd

    from cx_models.drift import drift_reference, drift_report

    ref = pd.DataFrame({"same": np.arange(100.0), "moved": np.arange(100.0)})
    now = pd.DataFrame({"same": np.arange(100.0), "moved": np.arange(100.0) + 50})
    report = drift_report(now, drift_reference(ref, ref.columns))
    assert report["columns"]["same"]["psi"] == 0
    assert report["largest_psi"] == ["moved", "same"]
