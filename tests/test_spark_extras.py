"""Spark reads extra transaction columns as one machine does: contracts, levels, scores."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from cx_models.serving import spark as cx_spark  # noqa: E402
from cx_models.serving.batch import score_features  # noqa: E402
from cx_models.serving.predictors import feature_spec_of  # noqa: E402
from cx_models.training.pipeline import TrainingConfig  # noqa: E402
from cx_models.training.tracking import load_model  # noqa: E402
from cx_models.training.train import train  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cx_models.cli import app  # noqa: E402
from cx_models.errors import CXDataError  # noqa: E402
from cx_models.features import build_features  # noqa: E402
from cx_models.settings import FeatureSpec, TransactionExtras  # noqa: E402
from cx_models.synthetic import generate_customer_base  # noqa: E402

pytestmark = pytest.mark.spark
AS_OF = "2025-06-30"
EXTRAS = TransactionExtras(numeric=["qty"], categorical=["channel"])


@pytest.fixture(scope="module")
def orders(tmp_path_factory):
    """A generated base with a quantity and a channel, messy cells included, as text."""
    base = generate_customer_base(1_500, seed=7)
    rng = np.random.default_rng(7)
    tx = base.transactions.to_pandas()
    n = len(tx)
    qty = rng.integers(1, 5, n).astype(float).astype(object)
    qty[rng.random(n) < 0.05] = None  # empty: missing, kept
    qty[:3] = ["many", "inf", "1e20"]  # quarantined: non_numeric_extra ×2, extra_too_large
    levels = np.array([f"c{i}" for i in range(13)] + [" web ", ""], dtype=object)
    channel = levels[rng.integers(0, levels.size, n)]
    tx = tx.assign(qty=[None if v is None else str(v) for v in qty], channel=channel)
    path = tmp_path_factory.mktemp("extras") / "orders.parquet"
    tx.to_parquet(path)
    return tx, path


def _sorted(frame):
    return frame.sort_values("customer_id").reset_index(drop=True)


def test_contracts_levels_and_features_equal_single_machine(spark, orders):
    tx, _ = orders
    spec = FeatureSpec(extras=EXTRAS)
    single = build_features(tx, as_of=AS_OF, spec=spec)
    built = cx_spark.build_features(spark.createDataFrame(tx), as_of=AS_OF, spec=spec)
    got = built.features.toPandas()
    assert list(got.columns) == list(single.features.columns)
    # the same rows quarantined for the same reasons, nothing lost
    one, many = single.transactions, built.transactions
    assert many.reasons == one.reasons and one.reasons["non_numeric_extra"] == 2
    assert one.reasons["extra_too_large"] == 1
    assert many.rows_in == many.rows_used + many.rows_quarantined + many.rows_after_as_of
    assert (many.rows_used, many.rows_after_as_of) == (one.rows_used, one.rows_after_as_of)
    got, want = _sorted(got), _sorted(single.features)
    for col in single.spec.extras.feature_names():
        g, w = got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(g), np.isnan(w)), col
        np.testing.assert_allclose(g[~np.isnan(g)], w[~np.isnan(w)], rtol=1e-12, err_msg=col)
    # ten levels learnt, the rest pooled, the blank level counted for none
    assert len(dict(single.spec.extras.levels)["channel"]) == 10
    assert "channel_share_other" in got.columns and "channel_share_" not in got.columns


def test_a_missing_extra_column_is_one_error(spark, orders):
    tx, _ = orders
    with pytest.raises(CXDataError, match="'weight' \\(--tx-numeric"):
        cx_spark.build_features(spark.createDataFrame(tx), as_of=AS_OF,
                                spec=FeatureSpec(extras=TransactionExtras(numeric=["weight"])))


def test_spark_engine_scores_an_extras_model_as_one_machine(spark, orders, tmp_path):
    _, path = orders
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train(path, None, config=TrainingConfig(as_of=AS_OF, max_snapshots=2, tx_numeric=["qty"],
                                            tx_categorical=["channel"]),
          tracking_uri=store, experiment="extras-spark", model_name="cx-extras")
    uri = "models:/cx-extras@champion"
    out = tmp_path / "scored.parquet"
    result = CliRunner().invoke(app, [
        "score", "--engine", "spark", "--spark-master", "local[2]", "--model", uri,
        "--tracking-uri", store, "--transactions", str(path), "--as-of", "2025-12-31",
        "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    model = load_model(uri, tracking_uri=store)
    spec = feature_spec_of(model)
    assert dict(spec.extras.levels)["channel"]  # learnt at training, used by Spark
    features = build_features(path, as_of="2025-12-31", spec=spec).features
    expected = _sorted(score_features(model, features))
    got = _sorted(pd.read_parquet(out))
    for col in ("churn_risk", "clv", "nco", "priority_rank"):
        np.testing.assert_allclose(got[col], expected[col], rtol=1e-9, err_msg=col)
