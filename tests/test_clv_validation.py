import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.clv_validation import validate_clv
from cx_models.datasets import load_cdnow
from cx_models.errors import CXDataError
from cx_models.features import build_customer_features
from cx_models.models.clv import CLVModel

runner = CliRunner()


@pytest.fixture(scope="module")
def sample():
    return load_cdnow("sample")


@pytest.fixture(scope="module")
def report(sample, tmp_path_factory):
    plots = tmp_path_factory.mktemp("plots")
    return validate_clv(
        sample,
        calibration_end="1997-09-30",
        holdout_end="1998-06-30",
        time_unit="W",
        plots_dir=plots,
    )


def test_holdout_actuals_are_distinct_customer_days(sample, report):
    calib_ids = set(sample.loc[sample["timestamp"] <= "1997-09-30", "customer_id"])
    hold = sample[(sample["timestamp"] > "1997-09-30") & (sample["timestamp"] <= "1998-06-30")]
    hold = hold[hold["customer_id"].isin(calib_ids)]
    occasions = hold.groupby(["customer_id", hold["timestamp"].dt.date])["amount"].sum()
    assert report["holdout"]["purchases_actual"] == len(occasions)
    assert report["holdout"]["spend_actual"] == pytest.approx(occasions.sum())
    assert report["holdout_days"] == 273  # 39 weeks


def test_predictions_are_the_models(sample, report):
    features = build_customer_features(sample, as_of="1997-09-30", time_unit="W")
    model = CLVModel().fit(features)
    pred = model.predict(features, horizon_days=273, clv_months=0)
    assert report["holdout"]["purchases_predicted"] == pytest.approx(
        pred["expected_purchases"].sum(), rel=1e-9
    )
    spend = (pred["expected_purchases"] * pred["expected_order_value"]).sum()
    assert report["holdout"]["spend_predicted"] == pytest.approx(spend, rel=1e-9)
    assert report["params"] == pytest.approx(model.params_)
    # BG/NBD tracks CDNOW's holdout within about 12 % (it is known to under-forecast a little)
    ratio = report["holdout"]["purchases_predicted"] / report["holdout"]["purchases_actual"]
    assert 0.85 < ratio < 1.0
    assert 0.5 < report["holdout"]["purchases_corr"] < 1


def test_by_frequency_bins(sample, report):
    bins = report["by_frequency"]
    assert [b["frequency"] for b in bins] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(b["n_customers"] for b in bins) == report["n_customers"] == 2357
    assert bins[0]["n_customers"] == 1411
    # more calibration purchases, more holdout purchases: actual and predicted
    actual = [b["actual_mean"] for b in bins]
    predicted = [b["predicted_mean"] for b in bins]
    assert np.all(np.diff(predicted) > 0)
    assert actual[-1] > actual[0] * 10


def test_plots_written(report):
    names = sorted(p.split("/")[-1] for p in report["plots"])
    assert names == ["holdout_by_frequency.png", "p_alive_matrix.png", "tracking.png"]
    for path in report["plots"]:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_holdout_must_follow_calibration(sample):
    with pytest.raises(CXDataError, match="must be after calibration_end"):
        validate_clv(sample, calibration_end="1998-01-01", holdout_end="1997-12-31")
    with pytest.raises(CXDataError, match="no transaction at or before calibration_end"):
        validate_clv(sample, calibration_end="1990-01-01", holdout_end="1998-06-30")


@pytest.mark.slow  # default suite under two minutes; CI runs it
def test_clv_cli_fit_predict_validate(tmp_path, sample):
    tx = tmp_path / "cdnow.csv"
    sample.assign(date=sample["timestamp"].dt.strftime("%Y%m%d")).drop(columns="timestamp").to_csv(
        tx, index=False
    )
    mapping = ["--time-col", "date", "--time-format", "%Y%m%d"]
    res = runner.invoke(
        app,
        [
            "clv",
            "fit",
            "--transactions",
            str(tx),
            "--as-of",
            "1997-09-30",
            "--time-unit",
            "W",
            "--out",
            str(tmp_path / "clv.json"),
            *mapping,
        ],
    )
    assert res.exit_code == 0, res.stderr
    printed = json.loads(res.stdout)
    saved = json.loads((tmp_path / "clv.json").read_text())
    assert printed == saved
    assert set(printed) >= {
        "model",
        "time_unit",
        "params",
        "spend_params",
        "standard_errors",
        "log_likelihood",
        "spend_log_likelihood",
        "n_customers",
        "cx_models_version",
    }
    assert printed["time_unit"] == "W" and printed["n_customers"] == 2357
    assert printed["params"]["alpha"] == pytest.approx(4.414, abs=1e-3)

    out = tmp_path / "pred.parquet"
    res = runner.invoke(
        app,
        [
            "clv",
            "predict",
            "--model",
            str(tmp_path / "clv.json"),
            "--transactions",
            str(tx),
            "--as-of",
            "1997-09-30",
            "--horizon-days",
            "273",
            "--out",
            str(out),
            *mapping,
        ],
    )
    assert res.exit_code == 0, res.stderr
    pred = pl.read_parquet(out)
    assert pred.columns == [
        "customer_id",
        "p_alive",
        "expected_purchases",
        "prob_no_purchase",
        "expected_order_value",
        "clv",
    ]
    assert pred["customer_id"].dtype == pl.String  # "00004" stays text
    assert pred["expected_purchases"].sum() == pytest.approx(1653.4, abs=0.5)

    res = runner.invoke(
        app,
        [
            "clv",
            "validate",
            "--transactions",
            str(tx),
            "--calibration-end",
            "1997-09-30",
            "--holdout-end",
            "1998-06-30",
            "--out",
            str(tmp_path / "report.json"),
            *mapping,
        ],
    )
    assert res.exit_code == 0, res.stderr
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["holdout"]["purchases_actual"] == 1882
    assert "purchases actual 1,882" in res.stderr

    # every model side by side, each validated as alone
    res = runner.invoke(app, ["clv", "validate", "--transactions", str(tx), "--calibration-end",
                              "1997-09-30", "--holdout-end", "1998-06-30", "--clv-model", "all",
                              "--plots", str(tmp_path / "plots"), "--out",
                              str(tmp_path / "all.json"), *mapping])
    assert res.exit_code == 0, res.stderr
    every = json.loads((tmp_path / "all.json").read_text())
    assert set(every["models"]) == {"bgnbd", "mbgnbd", "pnbd"}
    assert every["models"]["bgnbd"]["holdout"] == rep["holdout"]
    maes = {k: v["holdout"]["purchases_mae"] for k, v in every["models"].items()}
    assert every["lowest_purchases_mae"] == min(maes, key=maes.get)
    assert (tmp_path / "plots" / "pnbd" / "tracking.png").exists()


def test_clv_cli_errors(tmp_path):
    res = runner.invoke(
        app,
        [
            "clv",
            "predict",
            "--model",
            str(tmp_path / "none.json"),
            "--transactions",
            "x.csv",
            "--as-of",
            "2024-01-01",
            "--horizon-days",
            "30",
            "--out",
            str(tmp_path / "p.csv"),
        ],
    )
    assert res.exit_code == 2 and "none.json: CLV model file not found" in res.stderr
    assert "Traceback" not in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "bgnbd"}))
    res = runner.invoke(
        app,
        [
            "clv",
            "predict",
            "--model",
            str(bad),
            "--transactions",
            "x.csv",
            "--as-of",
            "2024-01-01",
            "--horizon-days",
            "30",
            "--out",
            str(tmp_path / "p.csv"),
        ],
    )
    assert res.exit_code == 2 and "not a CLV model description" in res.stderr
    frame = pd.DataFrame({"customer_id": [1], "timestamp": ["2024-01-01"], "amount": [1.0]})
    frame.to_csv(tmp_path / "one.csv", index=False)
    res = runner.invoke(
        app,
        [
            "clv",
            "fit",
            "--transactions",
            str(tmp_path / "one.csv"),
            "--as-of",
            "2024-02-01",
            "--out",
            str(tmp_path / "m.json"),
        ],
    )
    assert res.exit_code == 2 and "not identified" in res.stderr and "Traceback" not in res.stderr
