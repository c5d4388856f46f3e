import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cx_models.errors import CXDataError
from cx_models.nco import (
    DEFAULT_WEIGHTS,
    ValueReference,
    load_weights,
    parse_weights,
    score_nco,
    summarise,
    validate_weights,
)

REF = ValueReference.from_clv(np.arange(0, 1000, 10.0))  # 100 values: 0, 10, ..., 990


def table(**cols):
    base = {
        "customer_id": [1],
        "csat_latest": [np.nan],
        "nps_latest": [np.nan],
        "ces_latest": [np.nan],
        "churn_risk": [0.5],
        "clv": [np.nan],
    }
    base.update({k: [v] for k, v in cols.items()})
    return pd.DataFrame(base)


def test_all_components_by_hand():
    row = score_nco(
        table(csat_latest=4, nps_latest=7, ces_latest=3, churn_risk=0.3, clv=245.0), reference=REF
    ).iloc[0]
    assert row["csat_score"] == 75.0
    assert row["nps_score"] == 70.0
    assert row["ces_score"] == pytest.approx(200 / 3)  # (7 - 3) / 6
    assert row["retention_score"] == pytest.approx(70.0)
    assert row["value_score"] == 25.0  # 25 of the 100 reference values are <= 245
    expected = 0.2 * 75 + 0.2 * 70 + 0.1 * 200 / 3 + 0.25 * 70 + 0.25 * 25
    assert row["nco"] == pytest.approx(expected)
    assert row["nco_coverage"] == 1.0
    assert row["experience_score"] == pytest.approx((0.2 * 75 + 0.2 * 70 + 0.1 * 200 / 3) / 0.5)
    assert row["value_at_risk"] == pytest.approx(245 * 0.3)


def test_no_survey_still_gets_an_nco_with_lower_coverage():
    row = score_nco(table(churn_risk=0.1, clv=995.0), reference=REF).iloc[0]
    assert np.isnan(row["csat_score"]) and np.isnan(row["experience_score"])
    assert row["nco"] == pytest.approx((0.25 * 90 + 0.25 * 100) / 0.5)
    assert row["nco_coverage"] == pytest.approx(0.5)


def test_nothing_available():
    row = score_nco(table(churn_risk=np.nan, clv=np.nan), reference=REF).iloc[0]
    assert np.isnan(row["nco"]) and row["nco_coverage"] == 0.0


def test_custom_weights_and_ces_direction():
    t = table(csat_latest=5, ces_latest=2, churn_risk=0.0, clv=0.0)
    row = score_nco(
        t, reference=REF, weights={"csat": 1, "ces": 1, "retention": 0, "value": 0, "nps": 0}
    ).iloc[0]
    assert row["nco"] == pytest.approx((100 + 500 / 6) / 2)
    assert row["nco_coverage"] == pytest.approx(1.0)  # nps has weight 0: nothing is missing
    mirrored = score_nco(t, reference=REF, ces_higher_is_better=True).iloc[0]
    assert mirrored["ces_score"] == pytest.approx(100 / 6)
    # 1 is best by default, 7 is best when declared the other way
    assert score_nco(table(ces_latest=1), reference=REF)["ces_score"].iloc[0] == 100
    assert (
        score_nco(table(ces_latest=7), reference=REF, ces_higher_is_better=True)["ces_score"].iloc[
            0
        ]
        == 100
    )


@given(
    st.sampled_from(["csat_latest", "nps_latest", "ces_latest", "churn_risk", "clv"]),
    st.floats(0, 1),
    st.floats(0, 1),
    st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_raising_a_component_never_lowers_nco(column, u, v, missing):
    scales = {
        "csat_latest": (1, 5),
        "nps_latest": (0, 10),
        "ces_latest": (1, 7),
        "churn_risk": (0, 1),
        "clv": (0, 1000),
    }
    values = {
        c: (np.nan if miss else lo + 0.5 * (hi - lo))
        for (c, (lo, hi)), miss in zip(scales.items(), missing, strict=True)
    }
    lo, hi = scales[column]
    worse, better = sorted([lo + u * (hi - lo), lo + v * (hi - lo)])
    if column in ("ces_latest", "churn_risk"):  # lower is better
        worse, better = better, worse
    a = score_nco(table(**{**values, column: worse}), reference=REF)["nco"].iloc[0]
    b = score_nco(table(**{**values, column: better}), reference=REF)["nco"].iloc[0]
    assert b >= a - 1e-9


def test_value_score_does_not_depend_on_the_batch():
    rng = np.random.default_rng(0)
    batch = pd.DataFrame(
        {
            "customer_id": range(50),
            "churn_risk": rng.uniform(0, 1, 50),
            "clv": rng.gamma(2, 100, 50),
        }
    )
    together = score_nco(batch, reference=REF)
    for i in (0, 17, 49):
        alone = score_nco(batch.iloc[[i]], reference=REF)
        assert alone["value_score"].iloc[0] == together["value_score"].iloc[i]
        assert alone["nco"].iloc[0] == together["nco"].iloc[i]


def test_priority_rank_breaks_ties_by_nco_then_id():
    t = pd.DataFrame(
        {
            "customer_id": [5, 3, 9, 1],
            "csat_latest": [5, 1, np.nan, 1],
            "churn_risk": [0.5, 0.5, 0.1, 0.5],
            "clv": [100.0, 100.0, 10.0, 100.0],
        }
    )
    out = score_nco(t, reference=REF)
    # customers 5, 3, 1 share the largest value at risk (50); 3 and 1 tie on NCO too -> id
    assert dict(zip(out["customer_id"], out["priority_rank"], strict=True)) == {
        1: 1,
        3: 2,
        5: 3,
        9: 4,
    }
    assert sorted(out["priority_rank"]) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (
            {"loyalty": 1},
            r"unknown NCO weight 'loyalty'; valid names: csat, nps, ces, "
            r"retention, value",
        ),
        ({"csat": -0.1}, r"'csat' must be a number from 0 to 1e\+06"),
        ({"nps": float("nan")}, r"'nps' must be a number from 0"),
        ({"nps": 1e308}, r"'nps' must be a number from 0 to 1e\+06 \(weights are relative"),
        ({"CSAT": 0.1, "csat": 0.2}, r"'csat' is given twice"),
        ({"value": "lots"}, r"'value' must be a number"),
        ({k: 0 for k in DEFAULT_WEIGHTS}, r"positive sum"),
    ],
)
def test_weight_validation(weights, message):
    with pytest.raises(CXDataError, match=message):
        validate_weights(weights)


def test_weights_from_cli_text_and_config_files(tmp_path):
    assert parse_weights("csat=0.5,value=0")["csat"] == 0.5
    with pytest.raises(CXDataError, match="name=value"):
        parse_weights("csat:0.5")
    toml = tmp_path / "cx.toml"
    toml.write_text("[nco.weights]\ncsat = 0.4\nretention = 0.1\n")
    assert load_weights(toml) == {**DEFAULT_WEIGHTS, "csat": 0.4, "retention": 0.1}
    js = tmp_path / "w.json"
    js.write_text(json.dumps({"value": 0.9}))
    assert load_weights(js)["value"] == 0.9
    js.write_text(json.dumps({"valeu": 0.9}))
    with pytest.raises(CXDataError, match=r"w\.json: unknown NCO weight 'valeu'"):
        load_weights(js)


def test_summary_against_hand_computed_nps():
    scored = pd.DataFrame(
        {
            "segment": ["a", "a", "a", "b", "b"],
            "nps_latest": [10, 6, np.nan, 8, 9],
            "csat_latest": [5, 3, np.nan, np.nan, 4],
            "ces_latest": [1, np.nan, np.nan, 3, np.nan],
            "churn_risk": [0.2, 0.4, 0.6, 0.1, 0.3],
            "clv": [100, 200, 300, 50, 50],
            "value_at_risk": [20, 80, 180, 5, 15],
            "nco": [80, 50, 20, 70, 75],
            "nco_coverage": [1, 0.7, 0.5, 0.8, 0.9],
        }
    )
    total = summarise(scored).iloc[0]
    # respondents 10, 6, 8, 9: promoters 2, detractors 1 -> (2 - 1) / 4 = 25
    assert total["nps"] == 25.0 and total["nps_respondents"] == 4
    assert total["csat_pct_satisfied"] == pytest.approx(200 / 3)
    assert total["mean_ces"] == 2.0
    assert total["predicted_churn_rate"] == pytest.approx(0.32)
    assert total["retention_rate"] == pytest.approx(0.68)
    assert total["total_clv"] == 700 and total["total_value_at_risk"] == 300
    by = summarise(scored, by="segment").set_index("segment")
    assert by.loc["a", "nps"] == 0.0  # one promoter, one detractor
    assert by.loc["b", "nps"] == 50.0  # one promoter, one passive
    assert by.loc["a", "customers"] == 3
    with pytest.raises(CXDataError, match="segment column 'region' not found"):
        summarise(scored, by="region")


def test_reference_round_trip_and_checks():
    ref = ValueReference.from_clv(
        np.random.default_rng(1).gamma(2, 50, 50_000),
        settings={"clv_months": 12, "discount_rate": 0.1},
    )
    assert len(ref.quantiles) == 1001
    back = ValueReference.from_dict(json.loads(json.dumps(ref.to_dict())))
    assert back == ref
    np.testing.assert_array_equal(back.score([0, 50, 1e9]), ref.score([0, 50, 1e9]))
    assert ref.score([1e9])[0] == 100.0 and ref.score([-1])[0] == 0.0
    with pytest.raises(CXDataError, match="sorted"):
        ValueReference.from_dict({"quantiles": [3, 1]})
    with pytest.raises(CXDataError, match="probabilities"):
        score_nco(table(churn_risk=1.5, clv=1.0), reference=REF)


def test_nco_cli_reference_score_summarise(tmp_path):
    from typer.testing import CliRunner

    from cx_models.cli import app

    runner = CliRunner()
    rng = np.random.default_rng(2)
    n = 200
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "csat_latest": np.where(rng.random(n) < 0.5, rng.integers(1, 6, n), np.nan),
            "nps_latest": np.where(rng.random(n) < 0.5, rng.integers(0, 11, n), np.nan),
            "ces_latest": np.nan,
            "churn_risk": rng.uniform(0, 1, n),
            "clv": rng.gamma(2, 50, n),
            "region": rng.choice(["north", "south"], n),
        }
    )
    src = tmp_path / "in.parquet"
    frame.to_parquet(src)
    ref = tmp_path / "ref.json"
    res = runner.invoke(app, ["nco", "reference", "--clv-from", str(src), "--out", str(ref)])
    assert res.exit_code == 0, res.stderr
    cfg = tmp_path / "cx.toml"
    cfg.write_text("[nco.weights]\nvalue = 0.5\n")
    out = tmp_path / "scored.parquet"
    res = runner.invoke(
        app,
        [
            "nco",
            "score",
            "--input",
            str(src),
            "--reference",
            str(ref),
            "--out",
            str(out),
            "--config",
            str(cfg),
            "--nco-weights",
            "csat=0",
        ],
    )
    assert res.exit_code == 0, res.stderr
    scored = pd.read_parquet(out)
    assert scored["priority_rank"].tolist() == list(range(1, n + 1))
    expected = score_nco(
        frame,
        reference=ValueReference.from_dict(json.loads(ref.read_text())),
        weights={"value": 0.5, "csat": 0},
    )
    pd.testing.assert_series_equal(
        scored.set_index("customer_id")["nco"].sort_index(),
        expected.set_index("customer_id")["nco"].sort_index(),
    )
    assert "region" in scored.columns
    res = runner.invoke(app, ["nco", "summarise", "--scored", str(out), "--by", "region"])
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert sorted(r["region"] for r in rows) == ["north", "south"]
    assert sum(r["customers"] for r in rows) == n
    res = runner.invoke(
        app,
        [
            "nco",
            "score",
            "--input",
            str(src),
            "--reference",
            str(ref),
            "--out",
            str(out),
            "--nco-weights",
            "loyalty=1",
        ],
    )
    assert res.exit_code == 2 and "valid names: csat, nps, ces, retention, value" in res.stderr


def test_a_weight_named_twice_on_the_command_line_is_an_error():
    from cx_models.nco import parse_weights

    with pytest.raises(CXDataError, match=r"--nco-weights: 'csat' is given twice"):
        parse_weights("csat=0.1,value=0.5,CSAT=0.9")
    assert parse_weights("csat=0.9", base={"csat": 0.1})["csat"] == 0.9  # overrides its base
