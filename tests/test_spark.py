"""Spark features, CLV fitting and scoring equal the single-machine ones (``pytest -m spark``)."""

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from cx_models.serving import spark as cx_spark  # noqa: E402
from cx_models.serving.batch import EXTRA_COLUMNS, score_features  # noqa: E402
from cx_models.training.pipeline import TrainingConfig  # noqa: E402
from cx_models.training.tracking import load_model  # noqa: E402
from cx_models.training.train import train  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cx_models.cli import app  # noqa: E402
from cx_models.errors import CXDataError  # noqa: E402
from cx_models.features import build_features  # noqa: E402
from cx_models.models.clv import CLVModel  # noqa: E402
from cx_models.nco import priority_rank  # noqa: E402
from cx_models.scoring import SCORE_COLUMNS  # noqa: E402
from cx_models.synthetic import generate_customer_base, write_customer_base  # noqa: E402

pytestmark = pytest.mark.spark
AS_OF = "2025-12-31"
runner = CliRunner()


@pytest.fixture(scope="module")
def base():
    generated = generate_customer_base(2_000, seed=23)
    return generated.transactions.to_pandas(), generated.surveys.to_pandas(), generated


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, base):
    out = tmp_path_factory.mktemp("sparkbase")
    write_customer_base(base[2], out)
    return out


@pytest.fixture(scope="module")
def logged(base_dir, tmp_path_factory):
    store = f"sqlite:///{tmp_path_factory.mktemp('sparkstore') / 'mlflow.db'}"
    train(
        base_dir / "transactions.parquet",
        base_dir / "surveys.parquet",
        config=TrainingConfig(as_of=AS_OF, horizon_days=90, max_snapshots=2),
        tracking_uri=store,
        experiment="spark-test",
        model_name="cx-spark",
    )
    return "models:/cx-spark@champion", store


def _assert_tables_equal(got: pd.DataFrame, expected: pd.DataFrame, key="customer_id"):
    got = got.sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for col in expected.columns:
        e, g = expected[col], got[col]
        if pd.api.types.is_numeric_dtype(e) and not pd.api.types.is_bool_dtype(e):
            e_num, g_num = e.to_numpy(dtype=float), g.to_numpy(dtype=float)
            assert np.array_equal(np.isnan(e_num), np.isnan(g_num)), col
            np.testing.assert_allclose(g_num, e_num, rtol=1e-9, atol=1e-9, err_msg=col)
            if pd.api.types.is_integer_dtype(e):
                assert pd.api.types.is_integer_dtype(g), f"{col}: {g.dtype}"
        else:
            assert (g.fillna("<NA>").astype(str) == e.fillna("<NA>").astype(str)).all(), col


def test_features_equal_single_machine(spark, base):
    single = build_features(base[0], base[1], as_of=AS_OF)
    built = cx_spark.build_features(
        spark.createDataFrame(base[0]), spark.createDataFrame(base[1]), as_of=AS_OF
    )
    _assert_tables_equal(built.features.toPandas(), single.features)
    assert built.transactions.to_dict() | {"source": None} == single.transactions.to_dict() | {
        "source": None
    }
    assert built.surveys.rows_used == single.surveys.rows_used > 0
    # weeks: recency and T in weeks, the rest unchanged
    weekly = cx_spark.build_features(spark.createDataFrame(base[0]), as_of=AS_OF, time_unit="W")
    single_w = build_features(base[0], as_of=AS_OF, time_unit="W").features
    _assert_tables_equal(weekly.features.toPandas(), single_w)
    assert (single_w["recency"] <= single_w["T"]).all()


def _messy_inputs(base, tmp_path):
    """Text CSVs with every class of bad row, a time-zone offset and rows after as_of."""
    tx = base[0][base[0]["customer_id"] <= 300].astype(str)
    tx["timestamp"] = base[0].loc[tx.index, "timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    bad_tx = pd.DataFrame(
        {
            "customer_id": ["", "7", "7", "7", "7", "7", "7", "8", "8", "9"],
            "timestamp": [
                "2025-01-01",
                "junk",
                "",
                "2025-02-01",
                "2025-02-02",
                "2025-02-03",
                "2026-03-01",
                "2025-06-01T23:30:00-02:00",  # 2025-06-02 in UTC
                "2025-06-01T23:30:00-02:00",  # an exact duplicate
                "2025-07-01",
            ],
            "amount": ["5", "5", "5", "abc", "-3", "", "4", "10.5", "10.5", "inf"],
        }
    )
    tx_path = tmp_path / "tx.csv"
    pd.concat([tx, bad_tx]).to_csv(tx_path, index=False)
    sv = base[1][base[1]["customer_id"] <= 300].astype(str)
    sv["timestamp"] = base[1].loc[sv.index, "timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    bad_sv = pd.DataFrame(
        {
            "customer_id": ["7", "7", "7", "7", "7", "x7"],
            "timestamp": ["2025-05-01"] * 5 + ["2025-05-02"],
            "survey": ["NPS", "foo", "csat", "ces", "", "nps"],
            "score": ["11", "3", "3.5", "", "4", "9"],
        }
    )
    sv_path = tmp_path / "sv.csv"
    pd.concat([sv, bad_sv]).to_csv(sv_path, index=False)
    return tx_path, sv_path


def test_messy_csv_same_counts_and_features(spark, base, tmp_path):
    tx_path, sv_path = _messy_inputs(base, tmp_path)
    single = build_features(tx_path, sv_path, as_of=AS_OF, drop_duplicates=True)
    built = cx_spark.build_features(
        cx_spark.read_table(spark, tx_path, what="transactions"),
        cx_spark.read_table(spark, sv_path, what="surveys"),
        as_of=AS_OF,
        drop_duplicates=True,
    )
    for got, expected in (
        (built.transactions, single.transactions),
        (built.surveys, single.surveys),
    ):
        assert got.rows_in == expected.rows_in
        assert got.rows_in == got.rows_used + got.rows_quarantined + got.rows_after_as_of
        assert (got.rows_used, got.rows_after_as_of, got.reasons) == (
            expected.rows_used,
            expected.rows_after_as_of,
            expected.reasons,
        )
    assert built.transactions.reasons["duplicate_row"] == 1
    assert (
        built.quarantine.count()
        == built.transactions.rows_quarantined + built.surveys.rows_quarantined
    )
    _assert_tables_equal(built.features.toPandas(), single.features)


def test_session_time_zone_must_be_utc(spark, base):
    frame = spark.createDataFrame(base[0].head(5))
    spark.conf.set("spark.sql.session.timeZone", "Europe/Paris")
    try:
        with pytest.raises(CXDataError, match="time zone"):
            cx_spark.build_features(frame, as_of=AS_OF)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def test_priority_rank_over_many_partitions_equals_single_machine(spark):
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame(
        {
            "customer_id": rng.permutation(n).astype(np.int64),
            "value_at_risk": rng.choice([0.0, 1.5, 2.0, np.nan, 7.25], n),  # many ties
            "nco": rng.choice([10.0, 20.0, np.nan], n),
            "priority_rank": np.zeros(n, dtype=np.int64),
        }
    )
    scored = spark.createDataFrame(frame).repartition(7)
    got = cx_spark.with_priority_rank(scored).toPandas().sort_values("customer_id")
    expected = frame.assign(priority_rank=priority_rank(frame)).sort_values("customer_id")
    assert got["priority_rank"].tolist() == expected["priority_rank"].tolist()
    assert sorted(got["priority_rank"]) == list(range(1, n + 1))


def test_fit_clv_from_spark_counts_equals_fit(spark, base):
    single = build_features(base[0], as_of=AS_OF, time_unit="W").features
    built = cx_spark.build_features(spark.createDataFrame(base[0]), as_of=AS_OF, time_unit="W")
    # Spark sums in the order partitions arrive: pin one computation of the table
    built.features = built.features.persist()
    spark_model = cx_spark.fit_clv(built)
    assert spark_model.time_unit_ == "W"
    # the same table on one machine: fit from Spark's pattern counts is the per-customer fit
    collected = built.features.toPandas()
    collected.attrs["time_unit"] = "W"
    same_table = CLVModel().fit(collected)
    spark_params = {**spark_model.params_, **spark_model.spend_params_}
    for key, value in {**same_table.params_, **same_table.spend_params_}.items():
        assert spark_params[key] == pytest.approx(value, rel=1e-9), key
    # the single-machine table differs in the last bits of monetary_value (sums in another
    # order); the flat Gamma-Gamma optimum moves by less than 1e-6
    model = CLVModel().fit(single)
    assert (spark_model.n_customers_, spark_model.n_repeat_customers_) == (
        model.n_customers_,
        model.n_repeat_customers_,
    )
    for key, value in {**model.params_, **model.spend_params_}.items():
        assert spark_params[key] == pytest.approx(value, rel=1e-6), key
    # and the parameters are the generator's, roughly (2,000 customers)
    assert 0 < spark_model.params_["r"] < 5


def test_cli_spark_engine_scores_equal_single_machine(base_dir, logged, spark, tmp_path):
    model_uri, store = logged
    out = tmp_path / "scored.parquet"
    quarantine = tmp_path / "quarantine.parquet"
    args = [
        "score",
        "--engine",
        "spark",
        "--spark-master",
        "local[2]",
        "--model",
        model_uri,
        "--tracking-uri",
        store,
        "--transactions",
        str(base_dir / "transactions.parquet"),
        "--surveys",
        str(base_dir / "surveys.parquet"),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--quarantine-out",
        str(quarantine),
        "--quiet",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out)
    assert list(got.columns) == [*SCORE_COLUMNS, *EXTRA_COLUMNS]
    meta = json.loads((out / cx_spark.METADATA_FILE).read_text())
    assert meta["engine"] == "spark" and meta["version"] == "1" and meta["as_of"] == AS_OF
    # the quarantine (no bad row here: empty) is a dataset renamed into place, no scratch left
    assert len(pd.read_parquet(quarantine)) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    features = build_features(
        base_dir / "transactions.parquet", base_dir / "surveys.parquet", as_of=AS_OF
    ).features
    expected = score_features(load_model(model_uri, tracking_uri=store), features)
    _assert_tables_equal(got, expected)
    assert (got["drivers"].str.len() > 0).all()
    assert 0 <= got["p_alive"].min() and got["p_alive"].max() <= 1

    # the report reads the Spark output directory
    report = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--scored", str(out), "--out", str(report)])
    assert result.exit_code == 0, result.output
    assert "at-risk" in report.read_text().lower()


def test_cli_spark_engine_bad_model_leaves_no_output(base_dir, logged, spark, tmp_path):
    _, store = logged
    out = tmp_path / "scored.parquet"
    result = runner.invoke(
        app,
        [
            "score",
            "--engine",
            "spark",
            "--model",
            "models:/no-such-model@champion",
            "--tracking-uri",
            store,
            "--transactions",
            str(base_dir / "transactions.parquet"),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 2
    assert "no-such-model" in result.output and "Traceback" not in result.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".scored")]


def test_cli_spark_engine_from_a_weekly_feature_table(base, logged, spark, tmp_path):
    """``--features`` in weeks: Spark converts to the scorer's days, as one machine does."""
    from cx_models.io import write_table

    model_uri, store = logged
    weekly = build_features(base[0], base[1], as_of=AS_OF, time_unit="W").features
    features_path = tmp_path / "features.parquet"
    write_table(weekly, features_path, metadata={"as_of": AS_OF, "time_unit": "W"})
    out = tmp_path / "scored.parquet"
    args = ["score", "--engine", "spark", "--model", model_uri, "--tracking-uri", store]
    args += ["--features", str(features_path), "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    daily = build_features(base[0], base[1], as_of=AS_OF).features
    expected = score_features(load_model(model_uri, tracking_uri=store), daily)
    _assert_tables_equal(pd.read_parquet(out), expected)


def test_cli_spark_engine_quarantines_extreme_features_as_one_machine_does(
    base, logged, spark, tmp_path
):
    from cx_models.io import write_table

    model_uri, store = logged
    features = build_features(base[0], base[1], as_of=AS_OF).features
    features.loc[3, "monetary_value"] = np.inf
    features.loc[8, "total_spend"] = 1e39
    path = tmp_path / "features.parquet"
    write_table(features, path, metadata={"as_of": AS_OF, "time_unit": "D"})
    out = tmp_path / "scored.parquet"
    args = ["score", "--engine", "spark", "--model", model_uri, "--tracking-uri", store]
    result = runner.invoke(app, [*args, "--features", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 customers quarantined (feature_out_of_range" in result.stderr
    scored = pd.read_parquet(out)
    assert len(scored) == len(features) - 2
    assert not set(features["customer_id"].iloc[[3, 8]]) & set(scored["customer_id"])


def test_cli_spark_engine_unreadable_input_is_one_line(logged, spark, tmp_path):
    _, store = logged
    bad = tmp_path / "tx.parquet"
    bad.write_bytes(b"PAR1 this is not parquet PAR1")
    out = tmp_path / "scored.parquet"
    args = ["score", "--engine", "spark", "--model", "models:/cx-spark@champion"]
    args += ["--tracking-uri", store, "--transactions", str(bad), "--as-of", AS_OF]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    assert str(bad) in result.output and "Traceback" not in result.output
    assert not out.exists()
