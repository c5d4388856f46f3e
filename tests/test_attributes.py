"""Customer attributes: validation, the feature join, the generator's effect, the churn model."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
from cx_models.serving.batch import score_events
from cx_models.training.pipeline import TrainingConfig, train_scorer
from typer.testing import CliRunner

from cx_models.attributes import AttributeInput, AttributeSpec, validate_attributes
from cx_models.cli import app
from cx_models.contract import feature_columns
from cx_models.errors import CXDataError
from cx_models.features import build_features
from cx_models.models.churn import ChurnModel
from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.synthetic import SyntheticParams, generate_customer_base

TRAIN_AS_OF, AS_OF = "2025-06-30", "2025-12-31"


@pytest.fixture(scope="module")
def base():
    return generate_customer_base(3_000, seed=21, params=SyntheticParams(attributes=True))


@pytest.fixture(scope="module")
def trained(base):
    tx = validate_transactions(base.transactions, as_of=TRAIN_AS_OF).data
    sv = validate_surveys(base.surveys, as_of=TRAIN_AS_OF).data
    attrs = validate_attributes(base.attributes, id_dtype=tx["customer_id"].dtype)
    config = TrainingConfig(as_of=TRAIN_AS_OF, max_snapshots=2)
    return train_scorer(tx, sv, config, attributes=attrs.data)


def test_kinds_reasons_and_counts():
    raw = pl.DataFrame({
        "customer_id": [" 7", "8", "8", "", "00042", "9"],
        "region": ["N", "S", "E", "W", "N", None],
        "age": ["31", "", "40", "22", " 5e1", "x"],
        "tier": ["1", "2", "2", "1", "3", "1"],
    })
    v = validate_attributes(raw, AttributeSpec(categorical=["tier"]))
    # age has a non-number: categorical; tier is declared categorical though its cells are digits
    assert v.kinds == {"region": "categorical", "age": "categorical", "tier": "categorical"}
    assert v.report.reasons == {"duplicate_customer_id": 2, "missing_customer_id": 1}
    r = v.report
    assert r.rows_in == r.rows_used + r.rows_quarantined == 6 and r.rows_used == 3
    assert v.data["customer_id"].to_list() == ["7", "00042", "9"]  # text ids: 00042 stays
    assert sorted(r.quarantine["row"].to_list()) == [1, 2, 3]
    numeric = validate_attributes(raw.with_columns(pl.col("age").replace("x", "")))
    assert numeric.kinds["age"] == "numeric" and numeric.kinds["tier"] == "numeric"
    assert numeric.data.sort("customer_id")["age"].to_list() == [50.0, 31.0, None]


def test_structural_errors_name_the_column():
    raw = pl.DataFrame({"customer_id": [1], "frequency": [2.0], "flag": [True]})
    with pytest.raises(CXDataError, match="'frequency'.*name of a feature"):
        validate_attributes(raw, reserved=feature_columns())
    with pytest.raises(CXDataError, match="column 'flag' .* has type boolean"):
        validate_attributes(raw.drop("frequency"))
    with pytest.raises(CXDataError, match="--categorical names 'plan'"):
        validate_attributes(raw.drop("flag"), AttributeSpec(categorical=["plan"]))
    with pytest.raises(CXDataError, match="no customer id column 'id'"):
        validate_attributes(raw, AttributeSpec(customer="id"))


def test_features_join_attributes_and_count_those_without_a_purchase(tmp_path):
    tx = pd.DataFrame({"customer_id": [1, 1, 2], "timestamp": ["2024-01-01", "2024-02-01",
                                                               "2024-03-01"],
                       "amount": [5.0, 6.0, 7.0]})
    attrs = pd.DataFrame({"customer_id": [2, 1, 3], "plan": ["b", "a", "c"], "age": [40, 30, 20]})
    built = build_features(tx, None, as_of="2024-06-30", attributes=attrs)
    f = built.features
    assert list(f.columns[-2:]) == ["plan", "age"] and f["plan"].tolist() == ["a", "b"]
    assert built.attribute_customers_without_purchase == 1  # customer 3
    assert f.attrs["attributes"] == {"plan": "categorical", "age": "numeric"}
    out, q = tmp_path / "f.parquet", tmp_path / "q.csv"
    res = CliRunner().invoke(app, [
        "features", "--transactions", str(_csv(tx, tmp_path / "tx.csv")), "--as-of",
        "2024-06-30", "--attributes", str(_csv(attrs, tmp_path / "a.csv")), "--categorical",
        "age", "--out", str(out), "--quarantine-out", str(q)])
    assert res.exit_code == 0, res.stderr
    assert "1 customers in the attributes have no purchase" in res.stderr
    from cx_models.io import read_features

    back = read_features(out)
    assert back.attrs["attributes"] == {"age": "categorical", "plan": "categorical"}
    assert back["age"].tolist() == ["30", "40"]


def _csv(frame, path):
    frame.to_csv(path, index=False)
    return path


def test_generator_states_the_effect_and_keeps_the_default_base(base):
    plain = generate_customer_base(500, seed=21)
    assert plain.attributes is None and "attribute_effects" not in plain.params
    off = generate_customer_base(500, seed=21, params=SyntheticParams(attributes=False))
    assert off.transactions.equals(plain.transactions)
    truth = base.truth
    odds = base.params["region_dropout_odds"]
    assert base.params["attribute_effects"]["plan"] == "none"
    by_region = truth.group_by("region").agg(pl.col("dropout_prob").mean()).sort("region")
    means = dict(by_region.iter_rows())
    assert means["east"] > means["north"] > means["west"]  # odds 3 > 1 > 0.4
    assert dict(truth.select("region", "dropout_odds_factor").unique().iter_rows()) == odds


def test_the_model_uses_the_informative_attribute(trained):
    churn = trained.scorer.churn
    assert churn.categories_["region"] == ["east", "north", "south", "west"]
    gain = churn.booster_.get_score(importance_type="total_gain")
    region, others = gain.get("region", 0.0), max(gain.get("plan", 0.0), gain.get("channel", 0.0))
    assert region > 3 * others, gain


def test_scoring_carries_attributes_and_scores_unseen_levels_as_missing(base, trained, tmp_path):
    scorer = trained.scorer
    attrs = base.attributes.with_columns(
        pl.when(pl.col("customer_id") <= 200).then(pl.lit("mars")).otherwise(pl.col("region"))
        .alias("region")
    )
    res = score_events(scorer, base.transactions, base.surveys, as_of=AS_OF,
                       chunk_customers=1500, attributes=attrs)
    scored = res.scored
    assert list(scored.columns[-3:]) == ["region", "plan", "channel"]
    assert res.unseen_levels == {"region": 200, "plan": 0, "channel": 0}
    # the attributes are segments of the summary and words in the report's reasons
    from cx_models.serving.report_text import plain_drivers

    from cx_models.nco import summarise

    summary = summarise(scored, by="region")
    assert {"east", "north", "south", "west", "mars"} <= set(summary["region"])
    assert summary["customers"].sum() == len(scored)
    reasons = [plain_drivers(t) for t in scored["drivers"] if "region = " in t]
    assert reasons and any("region: " in r for r in reasons)
    assert res.attributes.rows_in == res.attributes.rows_used == 3000
    missing = score_events(scorer, base.transactions, base.surveys, as_of=AS_OF,
                           attributes=attrs.with_columns(
                               pl.when(pl.col("region") == "mars").then(None)
                               .otherwise(pl.col("region")).alias("region")))
    first = scored["customer_id"] <= 200
    np.testing.assert_allclose(scored.loc[first, "churn_risk"],
                               missing.scored.loc[first, "churn_risk"], atol=1e-12)
    with pytest.raises(CXDataError, match=r"trained with customer attributes \(region"):
        score_events(scorer, base.transactions, base.surveys, as_of=AS_OF)
    # the churn model's levels survive its JSON round trip, with the same scores
    churn = scorer.churn
    back = ChurnModel.load(churn.save(tmp_path / "churn"))
    assert back.categories_ == churn.categories_
    frame = build_features(base.transactions, base.surveys, as_of=AS_OF,
                           attributes=AttributeInput(attrs)).features
    a = scorer.score(frame.head(300))["churn_risk"].to_numpy()
    scorer.churn = back
    try:
        b = scorer.score(frame.head(300))["churn_risk"].to_numpy()
    finally:
        scorer.churn = churn
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_the_api_accepts_the_models_attributes_and_rejects_other_fields(base, trained):
    import time

    from cx_models.serving.api import create_app
    from fastapi.testclient import TestClient

    scorer = trained.scorer
    features = build_features(base.transactions, base.surveys, as_of=AS_OF,
                              attributes=base.attributes).features.head(3)
    rows = features.replace({np.nan: None}).to_dict(orient="records")
    app = create_app(loader=lambda: (scorer, {"name": "cx", "version": "1"}))
    with TestClient(app) as client:
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        r = client.post("/score", json={"customers": rows})
        assert r.status_code == 200, r.text
        served = [s["churn_risk"] for s in r.json()["scores"]]
        np.testing.assert_allclose(served, scorer.score(features)["churn_risk"], atol=1e-6)
        bad = [dict(rows[0], loyalty="gold", nps_latest=11), dict(rows[1], region=["x"])]
        r = client.post("/score", json={"customers": bad})
        assert r.status_code == 422
        fields = {e["field"]: e["message"] for e in r.json()["errors"]}
        assert "unknown field" in fields["customers.0.loyalty"]
        assert "customers.0.nps_latest" in fields  # every error in one answer
        assert "a text, a number or null" in fields["customers.1.region"]
        r = client.post("/score", json={"customers": [dict(rows[0], loyalty="gold")]})
        assert r.status_code == 422 and "region, plan, channel" in r.text
        # from raw history, with the customer's attributes beside it
        first = int(features["customer_id"].iloc[0])
        tx = base.transactions.filter(pl.col("customer_id") == first)
        history = {
            "as_of": AS_OF,
            "transactions": [{"customer_id": first, "timestamp": t.isoformat(), "amount": a}
                             for _, t, a in tx.iter_rows()],
            "attributes": [base.attributes.filter(pl.col("customer_id") == first).row(
                0, named=True)],
        }
        r = client.post("/score/history", json=history)
        assert r.status_code == 200, r.text
        alone = build_features(tx, None, as_of=AS_OF, attributes=base.attributes).features
        expected = scorer.score(alone)["churn_risk"].iloc[0]
        assert abs(r.json()["scores"][0]["churn_risk"] - expected) < 1e-6
        history["attributes"][0]["loyalty"] = "gold"
        r = client.post("/score/history", json=history)
        assert r.status_code == 422 and "attributes.0.loyalty" in r.text
