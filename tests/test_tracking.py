import json
import os
import pickletools  # noqa: F401 - documents what the scan looks for
from pathlib import Path

import pandas as pd
import pytest
from cx_models.training.pipeline import TrainingConfig, load_config_file
from cx_models.training.tracking import load_model, resolve_tracking_uri
from cx_models.training.train import train
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.scoring import SCORE_COLUMNS
from cx_models.synthetic import generate_customer_base, write_customer_base

runner = CliRunner()
AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlbase")
    write_customer_base(generate_customer_base(3_000, seed=5), out)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def first_run(base_dir, store):
    return train(
        base_dir / "transactions.parquet",
        base_dir / "surveys.parquet",
        config=TrainingConfig(as_of=AS_OF, horizon_days=90, max_snapshots=2),
        tracking_uri=store,
        experiment="test",
        model_name="cx-test",
    )


def test_log_load_round_trip_gives_identical_scores(first_run, store):
    model = load_model("models:/cx-test@champion", tracking_uri=store)
    features = first_run["result"].features
    loaded = model.predict(features)
    direct = first_run["result"].scorer.score(features)
    assert list(loaded.columns) == list(SCORE_COLUMNS)
    pd.testing.assert_frame_equal(loaded.reset_index(drop=True), direct, check_dtype=False)
    again = model.predict(features.head(50), params={"horizon_days": 30.0, "explain": False})
    assert (again["drivers"] == "").all()
    assert (again["expected_purchases"] < loaded["expected_purchases"].head(50)).all()
    with_intervals = model.predict(features.head(20), params={"intervals": 0.9})
    assert list(with_intervals.columns)[: len(SCORE_COLUMNS)] == list(SCORE_COLUMNS)
    assert (with_intervals["purchases_lower"] <= with_intervals["purchases_upper"]).all()


def test_no_pickle_in_the_logged_model(first_run, store):
    import mlflow

    mlflow.set_tracking_uri(store)
    local = Path(mlflow.artifacts.download_artifacts(first_run["model_uri"]))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert any(p.name == "booster.ubj" for p in files)
    for path in files:
        assert path.suffix not in {".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle"}, path
        head = path.read_bytes()[:2]
        # pickle protocols 2-5 start with PROTO (0x80) followed by the protocol number
        assert not (len(head) == 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5)), path


def test_run_records_configuration_data_metrics_figures_tables(first_run, store):
    import mlflow

    client = mlflow.MlflowClient(store)
    run = client.get_run(first_run["run_id"])
    assert run.data.params["horizon_days"] == "90"
    assert run.data.params["nco_weights.value"] == "0.25"
    assert (
        run.data.metrics["churn.model.roc_auc"]
        > run.data.metrics["churn.days_since_last_purchase.roc_auc"]
    )
    assert "clv.se.alpha" in run.data.metrics and "clv.holdout.purchases_corr" in run.data.metrics
    names = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert names == {"transactions", "surveys"}
    tags = {
        t.key: t.value
        for d in run.inputs.dataset_inputs
        if d.dataset.name == "transactions"
        for t in d.tags
    }
    assert int(tags["rows_in"]) == int(tags["rows_used"]) + int(tags["rows_quarantined"]) + int(
        tags["rows_after_as_of"]
    )
    artifacts = {a.path for a in client.list_artifacts(first_run["run_id"], "figures")}
    assert {
        "figures/reliability.png",
        "figures/lift.png",
        "figures/tracking.png",
        "figures/p_alive_matrix.png",
        "figures/feature_importance.png",
        "figures/campaign_realised.png",
    } <= artifacts
    # the campaign replayed on the window: its settings as parameters, its profit as metrics
    assert run.data.params["campaign.contact_cost"] == "1.0"
    assert run.data.params["campaign.save_rate"] == "0.3"
    realised = run.data.metrics["churn.model.realised_profit"]
    assert realised <= run.data.metrics["churn.model.best_realised_profit"]
    assert run.data.metrics["churn.beats.bgnbd_prob_no_purchase.realised_profit"] == pytest.approx(
        realised - run.data.metrics["churn.bgnbd_prob_no_purchase.realised_profit"], abs=1e-6
    )
    tables = {a.path for a in client.list_artifacts(first_run["run_id"], "tables")}
    assert "tables/churn_evaluation.json" in tables
    # under the row cap every snapshot row trains (or is held out)
    churn = first_run["result"].scorer.churn
    assert run.data.metrics["snapshots.final.rows"] == churn.n_train_rows_ + churn.n_holdout_rows_
    assert run.data.metrics["snapshots.final.rows_kept"] == run.data.metrics["snapshots.final.rows"]


@pytest.mark.slow  # two more training runs (~15 s); CI runs the slow tests
def test_second_run_promotes_only_with_promote(first_run, base_dir, store, tmp_path):
    import mlflow

    client = mlflow.MlflowClient(store)
    assert first_run["champion"] and first_run["version"] == "1"
    args = [
        "train",
        "--transactions",
        str(base_dir / "transactions.parquet"),
        "--as-of",
        AS_OF,
        "--horizon-days",
        "90",
        "--max-snapshots",
        "3",
        "--tracking-uri",
        store,
        "--experiment",
        "test",
        "--model-name",
        "cx-test",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    second = json.loads(res.stdout)
    assert second["version"] == "2" and second["champion"] is False
    assert str(client.get_model_version_by_alias("cx-test", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("cx-test", "challenger").version) == "2"
    # both trained at the same as_of: the champion has seen the challenger's window
    promote = ["promote", "--model-name", "cx-test", "--tracking-uri", store, "--challenger"]
    res = runner.invoke(app, [*promote, "2"])
    assert res.exit_code == 2
    assert "--as-of 2026-03-31 or later can be compared" in " ".join(res.stderr.split())
    assert "Traceback" not in res.output
    assert str(client.get_model_version_by_alias("cx-test", "champion").version) == "1"
    res = runner.invoke(app, [*promote, "1"])
    assert res.exit_code == 2 and "already the champion" in res.stderr
    # the alias is resolved once: the scores, their metadata and the report name version 1
    from cx_models.io import read_table_metadata, write_table

    src, out = tmp_path / "features.parquet", tmp_path / "scored.parquet"
    write_table(first_run["result"].features, src, metadata={"time_unit": "D"})
    res = runner.invoke(
        app,
        [
            "score",
            "--model",
            "models:/cx-test@champion",
            "--features",
            str(src),
            "--out",
            str(out),
            "--tracking-uri",
            store,
            "--no-drivers",
        ],
    )
    assert res.exit_code == 0, res.stderr
    assert "models:/cx-test/1 (resolved from models:/cx-test@champion), version 1" in " ".join(
        res.stderr.split()
    )
    meta = read_table_metadata(out)
    assert meta["model_uri"] == "models:/cx-test/1" and meta["version"] == "1"
    assert meta["requested_uri"] == "models:/cx-test@champion" and meta["alias"] == "champion"
    assert meta["run_id"] == first_run["run_id"]
    assert (meta["clv_months"], meta["discount_rate"], meta["lookback_days"]) == (12, 0.1, 365)
    report = tmp_path / "report.html"
    assert runner.invoke(app, ["report", "--scored", str(out), "--out", str(report)]).exit_code == 0
    assert "models:/cx-test/1" in report.read_text()
    res = runner.invoke(app, [*args, "--promote"])
    assert res.exit_code == 0, res.stderr
    third = json.loads(res.stdout)
    assert third["champion"] is True
    assert str(client.get_model_version_by_alias("cx-test", "champion").version) == third["version"]


def test_artifacts_sit_beside_an_absolute_sqlite_store(first_run, store):
    import mlflow
    from cx_models.training.tracking import artifact_location

    database = Path(store.removeprefix("sqlite:///"))
    assert database.is_absolute()
    experiment = mlflow.MlflowClient(store).get_experiment_by_name("test")
    assert experiment.artifact_location == (database.parent / "artifacts").as_uri()
    assert any((database.parent / "artifacts").rglob("scorer.json"))
    assert artifact_location("sqlite:///rel/mlflow.db") == (
        (Path.cwd() / "rel" / "artifacts").as_uri()
    )


def test_config_file_and_errors(tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text("[train]\nhorizon_days = 60\nmax_snapshots = 3\n[nco.weights]\nvalue = 0.5\n")
    settings = load_config_file(cfg)
    assert settings["horizon_days"] == 60 and settings["nco_weights"]["value"] == 0.5
    cfg.write_text("[train]\nhorizon_days = 60\n[campaign]\ncontact_cost = 2.5\nsave_rate = 0.2\n")
    config = TrainingConfig(as_of=AS_OF, **load_config_file(cfg))
    assert (config.campaign.contact_cost, config.campaign.save_rate) == (2.5, 0.2)
    cfg.write_text("max_training_rows = 0\n")
    assert TrainingConfig(as_of=AS_OF, **load_config_file(cfg)).snapshot_plan.max_rows is None
    assert TrainingConfig(as_of=AS_OF).snapshot_plan.max_rows == 250_000
    cfg.write_text("[campaign]\ncost = 2\n")
    from cx_models.errors import CXDataError

    with pytest.raises(CXDataError, match=r"campaign: unknown setting\(s\) cost"):
        TrainingConfig(as_of=AS_OF, **load_config_file(cfg))
    cfg.write_text("[train]\nhorizon = 60\n")
    from cx_models.errors import CXDataError

    with pytest.raises(CXDataError, match=r"unknown setting\(s\) horizon; valid: .*horizon_days"):
        load_config_file(cfg)


def test_default_tracking_uri_is_the_embedded_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == "sqlite:///mlruns/mlflow.db"
    assert (tmp_path / "mlruns").is_dir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert resolve_tracking_uri() == "sqlite:///elsewhere.db"


def test_score_cli_loads_a_registered_model(first_run, store, tmp_path):
    from cx_models.io import write_table

    features = first_run["result"].features
    src = tmp_path / "features.parquet"
    write_table(features, src, metadata={"as_of": AS_OF, "time_unit": "D"})
    out = tmp_path / "scored.parquet"
    res = runner.invoke(
        app,
        [
            "score",
            "--model",
            first_run["model_uri"],  # by version: another test moves the champion alias
            "--features",
            str(src),
            "--out",
            str(out),
            "--tracking-uri",
            store,
            "--no-drivers",
        ],
    )
    assert res.exit_code == 0, res.stderr
    scored = pd.read_parquet(out).sort_values("customer_id").reset_index(drop=True)
    direct = first_run["result"].scorer.score(features, explain=False)
    assert list(scored.columns)[: len(SCORE_COLUMNS)] == list(SCORE_COLUMNS)
    pd.testing.assert_series_equal(scored["nco"], direct["nco"])
    res = runner.invoke(
        app,
        [
            "score",
            "--model",
            "models:/missing@champion",
            "--features",
            str(src),
            "--out",
            str(out),
            "--tracking-uri",
            store,
        ],
    )
    assert res.exit_code == 2 and "cannot load model 'models:/missing@champion'" in res.stderr
    assert "Traceback" not in res.stderr


def _stored_model_dir(store: str, run_id: str) -> Path:
    """The logged model's folder in the artifact store (not a downloaded copy)."""
    root = Path(store.removeprefix("sqlite:///")).parent / "artifacts" / "models"
    for mlmodel in root.glob("m-*/artifacts/MLmodel"):
        if f"run_id: {run_id}" in mlmodel.read_text():
            return mlmodel.parent
    raise AssertionError(f"no logged model of run {run_id} under {root}")


def test_text_ids_score_through_the_pyfunc_of_an_integer_id_model(first_run, store):
    model = load_model(first_run["model_uri"], tracking_uri=store)
    features = first_run["result"].features.head(20)
    as_text = features.assign(customer_id="c-" + features["customer_id"].astype(str))
    scored = model.predict(as_text)
    assert scored["customer_id"].tolist() == as_text["customer_id"].tolist()
    np_direct = model.predict(features)["churn_risk"].to_numpy()
    assert (scored["churn_risk"].to_numpy() == np_direct).all()


@pytest.mark.parametrize("target", ["cx_pyfunc.py", "code/cx_models/nco.py"])
def test_a_modified_model_file_is_refused_before_it_runs(first_run, store, tmp_path, target):
    import mlflow
    from cx_models.training.code_digest import DIGEST_TAG

    from cx_models.errors import CXDataError

    version = mlflow.MlflowClient(store).get_model_version("cx-test", first_run["version"])
    assert len(version.tags[DIGEST_TAG]) == 64  # recorded in the tracking database
    path = _stored_model_dir(store, first_run["run_id"]) / target
    original = path.read_bytes()
    marker = tmp_path / "ran"
    try:
        path.write_bytes(original + f"\nopen({str(marker)!r}, 'w').close()\n".encode())
        changed = rf"files differ from those logged \(changed: {target}\)"
        with pytest.raises(CXDataError, match=changed):
            load_model(first_run["model_uri"], tracking_uri=store)
        assert not marker.exists()  # refused before MLflow ran the file
        res = runner.invoke(app, ["score", "--model", first_run["model_uri"], "--tracking-uri",
                                  store, "--features", str(tmp_path / "f.parquet"),
                                  "--out", str(tmp_path / "s.parquet")])
        assert res.exit_code == 2 and "--trust-modified-model" in res.stderr
        assert not marker.exists()
        load_model(first_run["model_uri"], tracking_uri=store, trust_modified=True)
        if target == "cx_pyfunc.py":  # (the package copy is not re-imported in this process)
            assert marker.exists()  # trusted on request: the changed file ran
    finally:
        path.write_bytes(original)
    load_model(first_run["model_uri"], tracking_uri=store)  # restored: verified again


def test_monitor_logs_under_the_models_run(first_run, store, base_dir, tmp_path):
    import mlflow

    res = runner.invoke(app, ["monitor", "--model", first_run["model_uri"], "--tracking-uri",
                              store, "--transactions", str(base_dir / "transactions.parquet"),
                              "--surveys", str(base_dir / "surveys.parquet"), "--as-of", AS_OF,
                              "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["verdict"] == "ok"  # the training day's own base
    run = mlflow.MlflowClient(store).get_run(first_run["run_id"])
    assert run.data.metrics["monitor.psi_max"] == pytest.approx(
        max(c["psi"] for c in report["columns"].values())
    )
    res = runner.invoke(app, ["monitor", "--model", first_run["model_uri"], "--tracking-uri",
                              store, "--transactions", str(base_dir / "transactions.parquet"),
                              "--as-of", AS_OF, "--scored-at", "2025-12-01"])
    assert res.exit_code == 2 and "the latest possible is 2025-10-02" in res.stderr


@pytest.mark.slow  # two training runs (~15 s); CI runs the slow tests
def test_promotion_gate_through_train_and_promote(base_dir, store):
    import mlflow
    from cx_models.training.promotion import NotPromoted, promote

    from cx_models.promotion import PromotionGate

    client = mlflow.MlflowClient(store)
    tx, sv = base_dir / "transactions.parquet", base_dir / "surveys.parquet"
    early = train(tx, sv, config=TrainingConfig(as_of="2025-06-30", horizon_days=90,
                  max_snapshots=2), tracking_uri=store, experiment="gate", model_name="cx-gate")
    assert early["champion"]  # the first version: champion without a gate
    args = ["train", "--transactions", str(tx), "--surveys", str(sv), "--as-of", AS_OF,
            "--horizon-days", "90", "--max-snapshots", "2", "--tracking-uri", store,
            "--experiment", "gate", "--model-name", "cx-gate", "--promote-if-better",
            "--contact-cost", "2", "--save-rate", "0.25"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    assert "campaign replayed on the window (contact cost 2, save rate 0.25" in res.stderr
    late = json.loads(res.stdout)
    run = client.get_run(late["run_id"])
    assert run.data.params["campaign.contact_cost"] == "2.0"
    # train's default --clv-model auto: the choice and every candidate's figures are logged
    assert run.data.params["clv_model"] == "auto"
    assert run.data.tags["clv.model"] in {"bgnbd", "mbgnbd", "pnbd"}
    assert "clv.choice.pnbd.purchases_mae" in run.data.metrics
    assert run.data.params["campaign.save_rate"] == "0.25"
    metrics = run.data.metrics
    # the challenger's side of the comparison is its own forward evaluation
    assert metrics["promotion.challenger.roc_auc"] == pytest.approx(metrics["churn.model.roc_auc"])
    gain = metrics["promotion.challenger.roc_auc"] - metrics["promotion.champion.roc_auc"]
    loss = metrics["promotion.challenger.brier"] - metrics["promotion.champion.brier"]
    wins = gain >= 0.005 and loss <= 0.002
    assert late["champion"] is wins
    assert run.data.tags["promotion"] == f"{'promoted' if wins else 'rejected'} vs champion v1"
    champion = str(client.get_model_version_by_alias("cx-gate", "champion").version)
    assert champion == ("2" if wins else "1")
    if not wins:
        # a gate nobody passes keeps the champion and exits 2 with the reason; --force moves it
        with pytest.raises(NotPromoted, match="stays challenger: challenger ROC-AUC"):
            promote("cx-gate", 2, tracking_uri=store, gate=PromotionGate(min_auc_gain=1.0))
        res = runner.invoke(app, ["promote", "--model-name", "cx-gate", "--challenger", "2",
                                  "--tracking-uri", store, "--force"])
        assert res.exit_code == 0, res.stderr
        assert client.get_run(late["run_id"]).data.tags["promotion"] == "forced vs champion v1"
    assert str(client.get_model_version_by_alias("cx-gate", "champion").version) == "2"
    # the older version cannot be compared with a champion trained after its window opened
    with pytest.raises(NotPromoted, match="not compared: the champion was trained with data"):
        promote("cx-gate", 1, tracking_uri=store)
