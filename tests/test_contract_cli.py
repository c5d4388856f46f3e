"""The contractual kind end to end: generate → train (MLflow) → score, and its scores."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.contract_scoring import SUBSCRIPTION_SCORE_COLUMNS, ContractScorer
from cx_models.io import read_table_metadata

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _train_and_score(tmp_path, customers, seed, as_of):
    gen = tmp_path / "gen"
    res = run("generate", "--kind", "subscriptions", "--customers", customers, "--seed", seed,
              "--out", gen)
    assert res.exit_code == 0, res.stderr
    store = f"sqlite:///{tmp_path}/mlflow.db"
    res = run("train", "--subscriptions", gen / "subscriptions.parquet", "--surveys",
              gen / "surveys.parquet", "--period-days", 30, "--as-of", as_of,
              "--horizon-days", 91, "--tracking-uri", store, "--truth", gen / "truth.parquet")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    out = tmp_path / "scored.parquet"
    res = run("score", "--model", summary["model_uri"], "--tracking-uri", store,
              "--subscriptions", gen / "subscriptions.parquet", "--surveys",
              gen / "surveys.parquet", "--as-of", as_of, "--out", out)
    assert res.exit_code == 0, res.stderr
    return gen, store, summary, out, res


@pytest.mark.slow
def test_generate_train_score(tmp_path):
    gen, store, summary, out, res = _train_and_score(tmp_path, 3_000, 4, "2025-12-31")
    scored = pd.read_parquet(out)
    assert list(scored.columns) == list(SUBSCRIPTION_SCORE_COLUMNS)
    subs = pl.read_parquet(gen / "subscriptions.parquet")
    assert len(scored) == subs["end"].null_count()  # one row per active relationship
    assert scored["priority_rank"].sort_values().tolist() == list(range(1, len(scored) + 1))
    pending = scored["cancellation_pending"]
    assert pending.any()
    assert (scored.loc[pending, "churn_risk"] == 1).all()
    assert (scored.loc[pending, "clv"] == 0).all()
    assert (scored.loc[pending, "drivers"] == "cancellation pending").all()
    live = scored[~pending]
    assert live["churn_risk"].between(0, 1).all() and (live["clv"] > 0).all()
    assert np.allclose(live["value_at_risk"], live["clv"] * live["churn_risk"])
    # CLV rises with price at equal tenure: premium > basic among new relationships
    young = live[live["renewals"] <= 2]
    by_plan = young.groupby("plan")["clv"].mean()
    assert by_plan["premium"] > by_plan["plus"] > by_plan["basic"]
    meta = read_table_metadata(out)
    assert meta["kind"] == "subscriptions" and meta["version"] == summary["version"]
    assert "relationships" in res.stderr
    # a non-contractual verb path refuses the subscription model, and the reverse
    res = run("score", "--model", summary["model_uri"], "--tracking-uri", store,
              "--features", tmp_path / "nothing.parquet", "--out", tmp_path / "x.parquet")
    assert res.exit_code == 2


def test_contract_scorer_round_trip_and_params(tmp_path, contract_trained):
    _, result = contract_trained
    scorer = result.scorer
    back = ContractScorer.load(scorer.save(tmp_path / "scorer"))
    a, b = scorer.score(result.features), back.score(result.features)
    pd.testing.assert_frame_equal(a, b)
    # a longer CLV horizon is worth more; a higher discount rate less
    longer = scorer.score(result.features, clv_months=24)["clv"]
    dearer = scorer.score(result.features, discount_rate=0.5)["clv"]
    live = ~a["cancellation_pending"]
    assert (longer[live] > a["clv"][live]).all() and (dearer[live] < a["clv"][live]).all()
    # expected renewals within 12 months: at most the renewals due in 12 months
    assert (a["expected_residual_periods"] <= 13).all()
    from cx_models.errors import CXDataError

    with pytest.raises(CXDataError, match="trained horizon"):
        scorer.score(result.features, horizon_days=30)


@pytest.mark.slow
def test_scored_at_as_of_beats_the_retention_baselines_on_what_happens_next(tmp_path):
    # seen on 2025-09-30, scored that day, judged on the 91 days after it (truth)
    as_of = "2025-09-30"
    gen, _, _, out, _ = _train_and_score(tmp_path, 20_000, 2, as_of)
    scored = pd.read_parquet(out)
    scored = scored[~scored["cancellation_pending"]]
    truth = pd.read_parquet(gen / "truth.parquet").set_index("customer_id")
    ends = truth.loc[scored["customer_id"], "true_end"].to_numpy().astype("datetime64[D]")
    day = np.datetime64(dt.date.fromisoformat(as_of))
    y = (ends <= day + 91).astype(int)
    model = roc_auc_score(y, scored["churn_risk"])
    sbg = roc_auc_score(y, 1 - scored["p_active"])
    theta = truth.loc[scored["customer_id"], "churn_prob"].to_numpy()
    ceiling = roc_auc_score(y, 1 - (1 - theta) ** scored["renewals_due"].to_numpy())
    assert model - sbg >= 0.01, (model, sbg)
    assert ceiling - sbg >= 0.03
    assert abs(scored["churn_risk"].mean() - y.mean()) < 0.03


def test_features_evaluate_and_cohorts_from_the_command_line(tmp_path):
    from cx_models.synthetic_subscriptions import (
        generate_subscription_base,
        write_subscription_base,
    )

    paths = write_subscription_base(generate_subscription_base(3_000, seed=12), tmp_path / "g")
    common = ["--subscriptions", paths["subscriptions"], "--surveys", paths["surveys"],
              "--period-days", 30, "--as-of", "2025-12-31"]
    feats = tmp_path / "features.parquet"
    res = run("features", *common, "--horizon-days", 91, "--out", feats)
    assert res.exit_code == 0, res.stderr
    table = pd.read_parquet(feats)
    subs = pl.read_parquet(paths["subscriptions"])
    assert len(table) == subs["end"].null_count()
    assert read_table_metadata(feats)["kind"] == "subscriptions"
    report = tmp_path / "evaluation.json"
    res = run("churn", "evaluate", *common, "--horizon-days", 91, "--truth", paths["truth"],
              "--out", report)
    assert res.exit_code == 0, res.stderr
    evaluation = json.loads(report.read_text())
    assert evaluation["kind"] == "subscriptions"
    assert {"sbg_churn_prob", "km_churn_prob", "ceiling_true_churn_prob"} <= set(
        evaluation["metrics"])
    model = tmp_path / "cohorts.json"
    res = run("sbg", "fit", *common[:2], *common[4:], "--by", "cohort", "--out", model)
    assert res.exit_code == 0, res.stderr
    assert set(json.loads(model.read_text())["groups"]) == {"2022", "2023", "2024", "2025"}
    # transactions or subscriptions: one of them
    res = run("features", "--as-of", "2025-12-31", "--out", tmp_path / "none.parquet")
    assert res.exit_code == 2 and "--subscriptions" in res.stderr


def test_subscriptions_from_duckdb_equal_the_file(tmp_path):
    import duckdb

    from cx_models.synthetic_subscriptions import (
        generate_subscription_base,
        write_subscription_base,
    )

    paths = write_subscription_base(generate_subscription_base(2_000, seed=13), tmp_path / "g")
    shop = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(shop))
    con.execute(f"CREATE TABLE subs AS SELECT * FROM read_parquet('{paths['subscriptions']}')")
    con.close()
    outs = []
    for source in (["--subscriptions", paths["subscriptions"]],
                   ["--subscriptions", f"duckdb:///{shop}", "--subscriptions-table", "subs"]):
        out = tmp_path / f"sbg{len(outs)}.json"
        res = run("sbg", "fit", *source, "--as-of", "2025-12-31", "--period-days", 30,
                  "--out", out)
        assert res.exit_code == 0, res.stderr
        outs.append(json.loads(out.read_text())["groups"]["all"])
    assert outs[0]["alpha"] == pytest.approx(outs[1]["alpha"], rel=1e-12)
    assert outs[0]["log_likelihood"] == pytest.approx(outs[1]["log_likelihood"], rel=1e-12)


@pytest.mark.slow
def test_promotion_gate_compares_two_subscription_scorers(tmp_path):
    from cx_models.synthetic_subscriptions import (
        generate_subscription_base,
        write_subscription_base,
    )

    paths = write_subscription_base(generate_subscription_base(3_000, seed=3), tmp_path / "g")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    outs = []
    for as_of in ("2025-06-30", "2025-12-31"):
        res = run("train", "--subscriptions", paths["subscriptions"], "--surveys",
                  paths["surveys"], "--period-days", 30, "--as-of", as_of, "--horizon-days", 91,
                  "--tracking-uri", store, "--promote-if-better")
        assert res.exit_code == 0, res.stderr
        outs.append((json.loads(res.stdout), res.stderr))
    assert outs[0][0]["champion"] is True
    # the second is compared with the first on its own evaluation window, whatever the outcome
    second, said = outs[1]
    assert second["model_uri"].startswith("models:/cx-subscription-scorer/")
    assert ("not promoted" in said) != second["champion"]
    assert "challenger ROC-AUC" in said or "promoted" in said
    # monitor the first version a quarter after its training day: the base has aged
    out = tmp_path / "monitor.json"
    res = run("monitor", "--model", "models:/cx-subscription-scorer/1", "--tracking-uri", store,
              "--subscriptions", paths["subscriptions"], "--surveys", paths["surveys"],
              "--as-of", "2025-09-30", "--out", out)
    assert res.exit_code == 0, res.stderr
    report = json.loads(out.read_text())
    assert report["largest_psi"][0] == max(report["columns"],
                                           key=lambda c: report["columns"][c]["psi"])


def test_drift_reference_of_a_subscription_scorer(contract_trained, tmp_path):
    from cx_models.drift import drift_report

    _, result = contract_trained
    scorer = result.scorer
    live = result.features[~result.features["cancellation_pending"]]
    report = drift_report(scorer.drift_frame(live), scorer.drift_reference)
    # the base it was trained on, on its training day: no drift
    assert report["verdict"] == "ok"
    assert max(c["psi"] for c in report["columns"].values()) < 1e-9
    assert {"tenure_days", "churn_risk", "clv", "nco"} <= set(report["columns"])
    assert "plan" not in report["columns"]  # categorical: not a numeric distribution
    back = ContractScorer.load(scorer.save(tmp_path / "s"))
    assert back.drift_reference == scorer.drift_reference
