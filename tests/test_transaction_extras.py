"""Extra transaction columns (--tx-numeric, --tx-categorical): values, leakage, contracts."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
from cx_models.serving.batch import score_events
from cx_models.training.pipeline import TrainingConfig, train_scorer
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.errors import CXDataError
from cx_models.features import build_features
from cx_models.schemas import validate_transactions
from cx_models.scoring import CXScorer
from cx_models.settings import FeatureSpec, TransactionExtras
from cx_models.synthetic import generate_customer_base

EXTRAS = TransactionExtras(numeric=["qty"], categorical=["channel"])


def _orders():
    return pd.DataFrame({
        "customer_id": [1, 1, 1, 1, 2, 2, 3],
        "timestamp": ["2024-01-01", "2024-01-01", "2024-05-20", "2024-06-25",
                      "2024-06-01", "2024-06-02", "2024-03-01"],
        "amount": [10.0, 5.0, 8.0, 1.0, 3.0, 4.0, 9.0],
        "qty": [2.0, 1.0, None, 4.0, 1.0, 1.0, 7.0],
        "channel": ["web", "Mail order", "web", "app", "web", " ", "store"],
    })


def test_values_by_hand():
    built = build_features(_orders(), as_of="2024-06-30", spec=FeatureSpec(extras=EXTRAS))
    f = built.features.set_index("customer_id")
    # occasions counted per level: web 3 (1 twice, 2 once), then ties in text order
    assert dict(built.spec.extras.levels) == {"channel": ("web", "Mail order", "app", "store")}
    c1 = f.loc[1]
    # customer 1: occasions 01-01 (qty 3), 05-20 (no qty: missing), 06-25 (qty 4)
    assert c1["qty_sum"] == 7.0 and c1["qty_mean"] == 3.5
    assert c1["qty_sum_30d"] == 4.0 and c1["qty_mean_30d"] == 4.0
    assert c1["qty_sum_90d"] == 4.0  # 05-20 holds no qty
    assert c1["qty_sum_180d"] == 4.0  # 01-01 is 181 days before as_of: outside
    shares = {k: c1[f"channel_share_{k}"] for k in ("web", "mail_order", "app", "store", "other")}
    assert shares == pytest.approx({"web": 2 / 3, "mail_order": 1 / 3, "app": 1 / 3, "store": 0,
                                    "other": 0})
    # customer 2: the blank channel counts for no level; customer 3: only before the windows
    assert f.loc[2, "channel_share_web"] == 0.5 and f.loc[2, "channel_share_other"] == 0.0
    assert f.loc[3, "qty_sum_30d"] == 0.0 and np.isnan(f.loc[3, "qty_mean_30d"])
    assert f.loc[3, "qty_sum"] == 7.0
    # rows in = rows used + quarantined + after as_of, as always
    r = built.transactions
    assert r.rows_in == r.rows_used + r.rows_quarantined + r.rows_after_as_of == 7


def test_levels_beyond_the_ten_most_frequent_are_other_and_names_stay_distinct():
    n = 12
    tx = pd.DataFrame({
        "customer_id": list(range(n)) + [0],
        "timestamp": ["2024-01-01"] * n + ["2024-01-02"],
        "amount": [1.0] * (n + 1),
        "channel": [f"L{i:02d}" for i in range(n)] + ["l00"],
    })
    extras = TransactionExtras(categorical=["channel"])
    built = build_features(tx, as_of="2024-01-31", spec=FeatureSpec(extras=extras))
    levels = dict(built.spec.extras.levels)["channel"]
    assert len(levels) == 10 and levels[:2] == ("L00", "L01")
    names = built.spec.extras.feature_names()
    assert len(set(names)) == len(names) == 11 and names[-1] == "channel_share_other"
    f = built.features.set_index("customer_id")
    assert f.loc[11, "channel_share_other"] == 1.0  # L11 is not among the ten
    assert f.loc[0, "channel_share_l00"] == 0.5 and f.loc[0, "channel_share_other"] == 0.5


def test_features_do_not_see_after_the_cutoff():
    orders = _orders()
    spec = FeatureSpec(extras=EXTRAS)
    cut = build_features(orders, as_of="2024-05-31", spec=spec)
    later = pd.concat([orders, pd.DataFrame({
        "customer_id": [1, 3], "timestamp": ["2024-06-10", "2024-06-01"], "amount": [1.0, 2.0],
        "qty": [100.0, 50.0], "channel": ["store", "fax"]})])
    later.loc[later["timestamp"] > "2024-05-31", "qty"] = 999.0
    again = build_features(later, as_of="2024-05-31", spec=spec)
    pd.testing.assert_frame_equal(cut.features, again.features)
    assert cut.spec == again.spec  # the levels are learnt on what the cutoff sees


def test_bad_cells_are_quarantined_and_structural_errors_name_the_column():
    raw = _orders()
    raw["qty"] = raw["qty"].astype(object)
    raw.loc[0, "qty"], raw.loc[4, "qty"], raw.loc[5, "qty"] = "two", float("inf"), 2e15
    v = validate_transactions(raw, as_of="2024-06-30", extras=EXTRAS)
    assert v.report.reasons == {"non_numeric_extra": 2, "extra_too_large": 1}
    assert v.report.rows_used == 4 and set(v.data.columns) >= {"qty", "channel"}
    with pytest.raises(CXDataError, match="column 'size' \\(--tx-numeric, declared"):
        validate_transactions(raw, as_of="2024-06-30",
                              extras=TransactionExtras(numeric=["size"]))
    with pytest.raises(CXDataError, match="cannot be named amount"):
        TransactionExtras(numeric=["amount"])
    renamed = raw.rename(columns={"amount": "value"})
    from cx_models.contract import TransactionColumns
    from cx_models.settings import EventFormat

    fmt = EventFormat(transactions=TransactionColumns(amount="value"))
    with pytest.raises(CXDataError, match="'value' is the transactions' amount column"):
        validate_transactions(renamed, as_of="2024-06-30", fmt=fmt,
                              extras=TransactionExtras(numeric=["value"]))
    with pytest.raises(CXDataError, match="both numeric"):
        TransactionExtras(numeric="qty", categorical="qty")


@pytest.fixture(scope="module")
def base():
    base = generate_customer_base(2_000, seed=5)
    rng = np.random.default_rng(5)
    n = base.transactions.height
    tx = base.transactions.with_columns(
        pl.Series("qty", rng.integers(1, 5, n).astype(float)),
        pl.Series("channel", rng.choice(["web", "store", "app"], n)),
    )
    return tx, base.surveys


@pytest.fixture(scope="module")
def trained(base):
    tx, sv = base
    config = TrainingConfig(as_of="2025-06-30", max_snapshots=2, tx_numeric=["qty"],
                            tx_categorical=["channel"])
    v = validate_transactions(tx, as_of=config.as_of, extras=config.feature_spec.extras)
    return train_scorer(v.data, None, config)


def test_trained_model_learns_levels_once_and_scores_from_raw_history(base, trained, tmp_path):
    scorer = trained.scorer
    extras = scorer.feature_spec.extras
    assert set(dict(extras.levels)["channel"]) == {"app", "store", "web"}
    assert set(extras.feature_names()) <= set(scorer.churn.features_)
    assert scorer.attribute_columns == []  # aggregates are not customer attributes
    back = CXScorer.load(scorer.save(tmp_path / "scorer"))
    assert back.feature_spec == scorer.feature_spec
    tx, _ = base
    def risk(model):
        scored = score_events(model, tx, as_of="2025-12-31").scored
        return scored.sort_values("customer_id")["churn_risk"]

    np.testing.assert_allclose(risk(back), risk(scorer), rtol=1e-12)
    result = score_events(scorer, tx, as_of="2025-12-31")
    direct = scorer.score(build_features(tx, as_of="2025-12-31",
                                         spec=scorer.feature_spec).features)
    np.testing.assert_allclose(result.scored.sort_values("customer_id")["churn_risk"],
                               direct.sort_values("customer_id")["churn_risk"], rtol=1e-9)
    # a level first seen at scoring time is "other", never a new column
    fresh = tx.with_columns(pl.lit("kiosk").alias("channel"))
    feats = build_features(fresh, as_of="2025-12-31", spec=scorer.feature_spec).features
    assert (feats["channel_share_other"] == 1.0).all()
    with pytest.raises(CXDataError, match="'channel' \\(--tx-categorical"):
        score_events(scorer, tx.drop("channel"), as_of="2025-12-31")
    plain = build_features(tx, as_of="2025-12-31").features
    with pytest.raises(CXDataError, match="extra transaction columns.*--tx-numeric qty"):
        scorer.score(plain)


def test_features_cli_writes_the_aggregates_and_their_definition(tmp_path):
    path = tmp_path / "orders.csv"
    _orders().to_csv(path, index=False)
    out = tmp_path / "f.parquet"
    res = CliRunner().invoke(app, [
        "features", "--transactions", str(path), "--as-of", "2024-06-30", "--tx-numeric", "qty",
        "--tx-categorical", "channel", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    back = pl.read_parquet(out)
    assert back.filter(pl.col("customer_id") == 1)["qty_sum"].item() == 7.0
    import json

    import pyarrow.parquet as pq

    meta = pq.read_schema(out).metadata
    text = json.dumps({k.decode(): v.decode() for k, v in meta.items()})
    assert "Mail order" in text  # the learnt levels travel with the table
    bad = CliRunner().invoke(app, [
        "features", "--transactions", str(path), "--as-of", "2024-06-30", "--tx-numeric",
        "weight", "--out", str(tmp_path / "g.parquet")])
    assert bad.exit_code != 0 and "'weight'" in bad.stderr and "Traceback" not in bad.stderr


def test_api_score_history_takes_the_models_extra_fields_only(base, trained):
    from cx_models.serving.api import create_app
    from fastapi.testclient import TestClient

    tx, _ = base
    ids = tx["customer_id"].unique().sort().head(3).to_list()
    rows = tx.filter(pl.col("customer_id").is_in(ids)).with_columns(
        pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    records = rows.to_dicts()
    body = {"as_of": "2025-12-31", "transactions": records}
    with TestClient(create_app(loader=lambda: (trained.scorer, {}))) as client:
        res = client.post("/score/history", json=body)
        assert res.status_code == 200, res.text
        got = {r["customer_id"]: r["churn_risk"] for r in res.json()["scores"]}
        want = score_events(trained.scorer, rows.with_columns(
            pl.col("timestamp").str.to_datetime()), as_of="2025-12-31").scored
        for cid, risk in zip(want["customer_id"], want["churn_risk"], strict=True):
            assert got[cid] == pytest.approx(risk, rel=1e-6)
        wrong = [{**records[0], "colour": "red"}, {**records[1], "qty": "many"}]
        res = client.post("/score/history", json={**body, "transactions": wrong})
        assert res.status_code == 422
        fields = {e["field"] for e in res.json()["errors"]}
        assert fields == {"transactions.0.colour", "transactions.1.qty"}


def test_churn_evaluate_cli_uses_the_extra_columns(tmp_path):
    import json

    from cx_models.datasets import load_cdnow

    path = tmp_path / "cdnow.csv"
    load_cdnow("sample").drop(columns="sample_id").to_csv(path, index=False)
    aucs = []
    for extra in ([], ["--tx-numeric", "quantity"]):
        out = tmp_path / f"report{len(extra)}.json"
        res = CliRunner().invoke(app, [
            "churn", "evaluate", "--transactions", str(path), "--as-of", "1997-09-30",
            "--horizon-days", "91", *extra, "--out", str(out)])
        assert res.exit_code == 0, res.stderr
        aucs.append(json.loads(out.read_text())["metrics"]["model"]["roc_auc"])
    # the same data and seed: only the quantity features can move the model's ranking
    assert 0.6 < min(aucs) and abs(aucs[1] - aucs[0]) > 1e-4
