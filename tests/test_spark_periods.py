"""Spark builds BG/BB's period history as one machine does and scores a BG/BB model alike."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from btyd_sim import BGBB_AS_OF, BGBB_PERIOD, simulate_bgbb_orders  # noqa: E402
from cx_models.serving import spark as cx_spark  # noqa: E402
from cx_models.serving.batch import score_features  # noqa: E402
from cx_models.training.pipeline import TrainingConfig  # noqa: E402
from cx_models.training.tracking import load_model  # noqa: E402
from cx_models.training.train import train  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cx_models.cli import app  # noqa: E402
from cx_models.features import build_features  # noqa: E402
from cx_models.period_features import PERIOD_COLUMNS  # noqa: E402
from cx_models.settings import FeatureSpec  # noqa: E402

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def orders(tmp_path_factory):
    frame = simulate_bgbb_orders(1_500, seed=5)
    # a second order on the same day and one in the period still open at as_of
    extra = frame.head(2).assign(timestamp=[frame["timestamp"].iloc[0],
                                            pd.Timestamp(BGBB_AS_OF)])
    frame = pd.concat([frame, extra], ignore_index=True)
    path = tmp_path_factory.mktemp("bgbb") / "orders.parquet"
    frame.to_parquet(path)
    return frame, path


@pytest.mark.parametrize("period", [BGBB_PERIOD, 7, 90])
def test_period_history_equals_single_machine(spark, orders, period):
    frame, _ = orders
    spec = FeatureSpec(period_days=period)
    single = build_features(frame, as_of=BGBB_AS_OF, spec=spec).features
    got = cx_spark.build_features(spark.createDataFrame(frame), as_of=BGBB_AS_OF,
                                  spec=spec).features.toPandas()
    assert list(got.columns) == list(single.columns) and list(got.columns)[-4:] == list(
        PERIOD_COLUMNS)
    got = got.sort_values("customer_id").reset_index(drop=True)
    single = single.sort_values("customer_id").reset_index(drop=True)
    for col in PERIOD_COLUMNS:
        np.testing.assert_allclose(got[col].to_numpy(dtype=float),
                                   single[col].to_numpy(dtype=float), rtol=1e-12, err_msg=col)
    assert (single["period_frequency"] > 0).mean() > 0.3


def test_spark_engine_scores_a_bgbb_model_as_one_machine(spark, orders, tmp_path):
    frame, path = orders
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train(path, None, config=TrainingConfig(as_of=BGBB_AS_OF, horizon_days=90, clv_model="bgbb",
                                            period_days=BGBB_PERIOD, max_snapshots=2),
          tracking_uri=store, experiment="bgbb-spark", model_name="cx-bgbb")
    uri = "models:/cx-bgbb@champion"
    out = tmp_path / "scored.parquet"
    result = CliRunner().invoke(app, [
        "score", "--engine", "spark", "--spark-master", "local[2]", "--model", uri,
        "--tracking-uri", store, "--transactions", str(path), "--as-of", BGBB_AS_OF,
        "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out).sort_values("customer_id").reset_index(drop=True)
    model = load_model(uri, tracking_uri=store)
    spec = FeatureSpec(period_days=BGBB_PERIOD)
    expected = score_features(model, build_features(path, as_of=BGBB_AS_OF, spec=spec).features)
    expected = expected.sort_values("customer_id").reset_index(drop=True)
    for col in ("p_alive", "expected_purchases", "clv", "churn_risk", "nco"):
        np.testing.assert_allclose(got[col], expected[col], rtol=1e-9, err_msg=col)

    # a feature file: with the period history it scores alike; without, one line, no output
    for name, extra in (("with", ["--period-days", str(BGBB_PERIOD)]), ("without", [])):
        table = tmp_path / f"features_{name}.parquet"
        made = CliRunner().invoke(app, ["features", "--transactions", str(path), "--as-of",
                                        BGBB_AS_OF, "--out", str(table), *extra])
        assert made.exit_code == 0, made.output
        scored = tmp_path / f"scored_{name}.parquet"
        result = CliRunner().invoke(app, [
            "score", "--engine", "spark", "--spark-master", "local[2]", "--model", uri,
            "--tracking-uri", store, "--features", str(table), "--out", str(scored), "--quiet"])
        if name == "with":
            assert result.exit_code == 0, result.output
            back = pd.read_parquet(scored).sort_values("customer_id").reset_index(drop=True)
            np.testing.assert_allclose(back["clv"], expected["clv"], rtol=1e-9)
        else:
            assert result.exit_code != 0 and "--period-days 30" in result.stderr
            assert "Traceback" not in result.stderr and not scored.exists()
