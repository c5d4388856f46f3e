"""BG/BB beyond `clv fit`: period features in the feature table, train, score, API, model choice.

The ground truth is a seeded BG/BB world: monthly opportunities, at most one purchase
in each, p ~ Beta(α, β) and θ ~ Beta(γ, δ) per customer (Fader, Hardie & Shang 2010).
"""

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from btyd_sim import BGBB_AS_OF, BGBB_PERIOD, BGBB_START, BGBB_TRUTH, simulate_bgbb_orders
from cx_models.serving.batch import score_events
from cx_models.training.pipeline import TrainingConfig, train_scorer

from cx_models.errors import CXDataError
from cx_models.features import build_features
from cx_models.models.clv import CLVModel
from cx_models.period_features import PERIOD_COLUMNS, btyd_view, period_features
from cx_models.schemas import validate_transactions
from cx_models.scoring import CXScorer
from cx_models.settings import FeatureSpec

PERIOD = BGBB_PERIOD
START = BGBB_START
AS_OF = BGBB_AS_OF


@pytest.fixture(scope="module")
def orders():
    return simulate_bgbb_orders(6_000, seed=3)


@pytest.fixture(scope="module")
def trained(orders):
    config = TrainingConfig(as_of=AS_OF, horizon_days=90, clv_model="auto",
                            period_days=PERIOD, max_snapshots=3)
    tx = validate_transactions(orders, as_of=AS_OF).data
    return train_scorer(tx, None, config)


def test_feature_table_carries_the_period_history(orders):
    built = build_features(orders, as_of=AS_OF, spec=FeatureSpec(period_days=PERIOD))
    f = built.features
    assert f.columns[-4:].tolist() == list(PERIOD_COLUMNS) and f.attrs["period_days"] == PERIOD
    direct = period_features(validate_transactions(orders, as_of=AS_OF).data, as_of=AS_OF,
                             period_days=PERIOD)
    view = btyd_view(f)
    for col in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(view[col].to_numpy(), direct[col].to_numpy())
    # the same sums, added in another order
    np.testing.assert_allclose(view["monetary_value"], direct["monetary_value"], rtol=1e-13)
    # at most one purchase a period: the continuous repeat count is the period count,
    # except for purchases in the period still open at as_of (not yet counted)
    assert (f["frequency"] >= f["period_frequency"]).all()
    assert (f["frequency"] == f["period_frequency"]).mean() > 0.9
    assert FeatureSpec.from_dict(built.spec.to_dict()) == built.spec
    # the fit on the feature table is the fit on the period table
    a = CLVModel(model="bgbb").fit(f)
    b = CLVModel(model="bgbb", period_days=PERIOD).fit(direct)
    assert a.period_days == PERIOD and a.params_ == pytest.approx(b.params_, rel=1e-9)
    np.testing.assert_allclose(a.predict(f, horizon_days=90)["clv"],
                               b.predict(direct, horizon_days=90)["clv"], rtol=1e-6)


def test_a_history_in_days_is_not_read_as_periods(orders):
    plain = build_features(orders, as_of=AS_OF).features
    with pytest.raises(CXDataError, match="period_days=N \\(--period-days N\\)"):
        CLVModel(model="bgbb").fit(plain)
    f = build_features(orders, as_of=AS_OF, spec=FeatureSpec(period_days=PERIOD)).features
    model = CLVModel(model="bgbb").fit(f)
    weekly = build_features(orders, as_of=AS_OF, spec=FeatureSpec(period_days=7)).features
    with pytest.raises(CXDataError, match="periods of 7 days.*30 days"):
        model.predict(weekly, horizon_days=90)
    broken = f.head(3).assign(period_frequency=[5, 0, 0], period_recency=[2, 0, 0])
    with pytest.raises(CXDataError, match="1 customer\\(s\\).*period_frequency <= period_recency"):
        model.predict(broken, horizon_days=90)


def test_config_needs_periods_for_bgbb_and_bgbb_for_periods():
    with pytest.raises(CXDataError, match="--period-days N"):
        TrainingConfig(as_of=AS_OF, clv_model="bgbb")
    with pytest.raises(CXDataError, match="not 'bgnbd'"):
        TrainingConfig(as_of=AS_OF, clv_model="bgnbd", period_days=7)
    with pytest.raises(CXDataError, match="period_days must be"):
        TrainingConfig(as_of=AS_OF, clv_model="auto", period_days=0)
    config = TrainingConfig(as_of=AS_OF, clv_model="auto", period_days=7)
    assert config.feature_spec.period_days == 7


def test_auto_chooses_bgbb_on_a_bgbb_world_and_recovers_it(trained):
    choice = trained.clv_choice
    assert set(choice["candidates"]) == {"bgnbd", "mbgnbd", "pnbd", "bgbb"}
    assert all("purchases_mae" in v for v in choice["candidates"].values())
    assert choice["chosen"] == "bgbb"
    clv = trained.scorer.clv
    assert clv.model == "bgbb" and clv.period_days == PERIOD
    a, b, g, d = (clv.params_[k] for k in ("alpha", "beta", "gamma", "delta"))
    t = BGBB_TRUTH
    # the means of p and θ from 6,000 customers, within a few points of the truth
    assert a / (a + b) == pytest.approx(t["alpha"] / (t["alpha"] + t["beta"]), abs=0.03)
    assert g / (g + d) == pytest.approx(t["gamma"] / (t["gamma"] + t["delta"]), abs=0.03)
    # the churn features keep BG/NBD (churn_clv_model default); BG/BB joins the baselines
    assert trained.scorer.feature_clv.model == "bgnbd"
    assert "bgbb_prob_no_purchase" in trained.evaluation["metrics"]


def test_holdout_periods_predicted_for_the_truths_total(orders):
    """BG/BB from the feature table predicts the active periods that happen after as_of."""
    cut = (START + dt.timedelta(days=479)).isoformat()  # 16 periods in, 8 to go
    spec = FeatureSpec(period_days=PERIOD)
    f = build_features(orders, as_of=cut, spec=spec).features
    model = CLVModel(model="bgbb").fit(f)
    later = orders[(orders["timestamp"] > pd.Timestamp(cut))
                   & (orders["timestamp"] <= pd.Timestamp(cut) + pd.Timedelta(days=180))]
    actual = later[later["customer_id"].isin(f["customer_id"])]["customer_id"].size
    predicted = model.predict(f, horizon_days=180)["expected_purchases"].sum()
    # customers' periods are not aligned with the cut, so the 180 days hold 6 of each one's
    # periods give or take a part-period: a loose bound, the wrong model misses it by far
    assert predicted == pytest.approx(actual, rel=0.12)


def test_scorer_round_trip_and_every_scoring_path(orders, trained, tmp_path):
    scorer = trained.scorer
    assert scorer.period_columns == list(PERIOD_COLUMNS)
    back = CXScorer.load(scorer.save(tmp_path / "scorer"))
    assert back.feature_spec.period_days == PERIOD and back.clv.period_days == PERIOD
    feats = build_features(orders, as_of=AS_OF, spec=scorer.feature_spec).features
    direct = scorer.score(feats, intervals=0.9)
    again = back.score(feats, intervals=0.9)
    pd.testing.assert_frame_equal(direct, again)
    # BG/BB's CLV outputs, not BG/NBD's
    own = scorer.clv.predict(feats, horizon_days=90, clv_months=scorer.clv_months,
                             discount_rate=scorer.discount_rate)
    np.testing.assert_allclose(direct["clv"], own["clv"], rtol=1e-12)
    assert (direct["purchases_upper"] <= feats["period_T"].max() + 90 / PERIOD + 1).all()
    events = score_events(scorer, orders, as_of=AS_OF).scored.sort_values("customer_id")
    np.testing.assert_allclose(events["clv"].to_numpy(),
                               direct.sort_values("customer_id")["clv"].to_numpy(), rtol=1e-9)
    from cx_models.serving.batch_files import score_files

    path = tmp_path / "orders.parquet"
    orders.to_parquet(path)
    out = tmp_path / "scored.parquet"
    score_files(scorer, path, as_of=AS_OF, out=out, chunk_customers=700)  # nine chunks
    chunked = pd.read_parquet(out).sort_values("customer_id")
    np.testing.assert_allclose(chunked["clv"].to_numpy(),
                               direct.sort_values("customer_id")["clv"].to_numpy(), rtol=1e-9)
    plain = build_features(orders, as_of=AS_OF).features
    with pytest.raises(CXDataError, match="--period-days 30"):
        scorer.score(plain)


def test_api_takes_the_period_history_as_fields(orders, trained):
    from cx_models.serving.api import create_app
    from fastapi.testclient import TestClient

    scorer = trained.scorer
    feats = build_features(orders, as_of=AS_OF, spec=scorer.feature_spec).features.head(3)
    want = scorer.score(feats)
    rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in feats.astype(object).to_dict("records")]
    rows = [{k: (int(v) if isinstance(v, np.integer) else v) for k, v in r.items()} for r in rows]
    with TestClient(create_app(loader=lambda: (scorer, {}))) as client:
        res = client.post("/score", json={"customers": rows})
        assert res.status_code == 200, res.text
        got = [r["clv"] for r in res.json()["scores"]]
        np.testing.assert_allclose(got, want["clv"], rtol=1e-9)
        meta = client.get("/metadata").json()
        assert (meta["clv_model"], meta["period_days"]) == ("bgbb", PERIOD)
        assert meta["features"][-4:] == list(PERIOD_COLUMNS)
        # without the period history: a 422 naming it; an unknown field: still a 422
        bare = [{k: v for k, v in r.items() if k not in PERIOD_COLUMNS} for r in rows]
        res = client.post("/score", json={"customers": bare})
        assert res.status_code == 422 and "period_frequency" in res.text
        res = client.post("/score", json={"customers": [{**rows[0], "colour": "red"}]})
        assert res.status_code == 422 and "customers.0.colour" in res.text
        broken = [{**rows[0], "period_frequency": rows[0]["period_T"] + 1}]
        res = client.post("/score", json={"customers": broken})
        assert res.status_code == 422 and "period_" in res.text
        history = pl.from_pandas(orders[orders["customer_id"].isin(feats["customer_id"])])
        records = history.with_columns(
            pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S")).to_dicts()
        res = client.post("/score/history", json={"as_of": AS_OF, "transactions": records})
        assert res.status_code == 200, res.text
        got = sorted((r["customer_id"], r["clv"]) for r in res.json()["scores"])
        np.testing.assert_allclose([c for _, c in got], want.sort_values("customer_id")["clv"],
                                   rtol=1e-9)


def _config(tmp_path, text: str):
    path = tmp_path / "train.toml"
    path.write_text(text)
    return path


def test_cli_period_days_with_transactions(orders, tmp_path):
    from typer.testing import CliRunner

    from cx_models.cli import app

    path = tmp_path / "orders.csv"
    orders[orders["customer_id"] < 1_500].to_csv(path, index=False)
    out = tmp_path / "f.parquet"
    runner = CliRunner()
    res = runner.invoke(app, ["features", "--transactions", str(path), "--as-of", AS_OF,
                              "--period-days", "30", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    got = pd.read_parquet(out)
    direct = build_features(path, as_of=AS_OF, spec=FeatureSpec(period_days=30)).features
    np.testing.assert_array_equal(got["period_T"], direct["period_T"])
    for args, message in (
        (["--clv-model", "bgnbd", "--period-days", "30"], "not 'bgnbd'"),
        (["--clv-model", "bgbb"], "--period-days N"),
        (["--period", "monthly"], "--period-days N"),
        (["--clv-model", "bgbb", "--period-days", "800"], "no customer has a complete period"),
        # a config file's top-level settings are read as settings, not as NCO weights
        (["--config", str(_config(tmp_path, 'clv_model = "bgnbd"\nperiod_days = 7\n'))],
         "not 'bgnbd'"),
    ):
        res = runner.invoke(app, ["train", "--transactions", str(path), "--as-of", AS_OF,
                                  "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", *args])
        assert res.exit_code != 0 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr


def test_clv_validate_compares_bgbb_beside_the_others(orders, tmp_path):
    import json

    from typer.testing import CliRunner

    from cx_models.cli import app

    path = tmp_path / "orders.parquet"
    orders.to_parquet(path)
    out = tmp_path / "validate.json"
    res = CliRunner().invoke(app, [
        "clv", "validate", "--transactions", str(path), "--calibration-end", "2025-04-24",
        "--holdout-end", AS_OF, "--clv-model", "all", "--period-days", "30", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"bgnbd", "mbgnbd", "pnbd", "bgbb"}
    holdout = report["models"]["bgbb"]["holdout"]
    # one purchase at most a period: BG/BB's active periods are the purchase days
    assert holdout["purchases_predicted"] == pytest.approx(holdout["purchases_actual"], rel=0.1)
    assert report["lowest_purchases_mae"] == "bgbb"


def test_auto_with_periods_keeps_a_continuous_model_where_purchases_are_continuous():
    """The synthetic base is BG/NBD: monthly periods lose buyers' repeat days, BG/NBD wins."""
    from cx_models.synthetic import generate_customer_base

    base = generate_customer_base(4_000, seed=2)
    config = TrainingConfig(as_of="2025-12-31", horizon_days=90, clv_model="auto",
                            period_days=30, max_snapshots=2)
    result = train_scorer(base.transactions, base.surveys, config)
    choice = result.clv_choice
    mae = {k: v["purchases_mae"] for k, v in choice["candidates"].items()}
    assert choice["chosen"] == "bgnbd" and mae["bgbb"] > 1.02 * mae["bgnbd"]
    # the scorer then reads no period history; the run still logs what was asked
    assert result.scorer.feature_spec.period_days is None
    assert result.scorer.period_columns == [] and "period_T" not in result.features
    assert result.config.period_days == 30
