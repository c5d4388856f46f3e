import datetime as dt
import json

import numpy as np
import polars as pl
from scipy import stats

from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.synthetic import SyntheticParams, generate_customer_base, write_customer_base


def test_same_seed_same_base_other_seed_other_base():
    a = generate_customer_base(300, seed=5)
    b = generate_customer_base(300, seed=5)
    c = generate_customer_base(300, seed=6)
    assert a.transactions.equals(b.transactions) and a.surveys.equals(b.surveys)
    assert not a.transactions.equals(c.transactions)


def test_transactions_agree_with_ground_truth(small_base):
    tx, truth = small_base.transactions, small_base.truth
    per = (
        tx.group_by("customer_id")
        .agg(
            pl.len().alias("n"),
            pl.col("timestamp").min().alias("first"),
            pl.col("timestamp").max().alias("last"),
        )
        .join(truth, on="customer_id")
    )
    assert per.height == truth.height == 3_000
    assert (per["n"] == per["n_transactions"]).all()
    # first purchase at acquisition, to the second
    assert (per["first"] == per["acquired_at"]).all()
    # a customer who dropped out did so right after their last purchase, and bought nothing after
    dropped = per.filter(pl.col("dropout_at").is_not_null())
    assert (dropped["last"] == dropped["dropout_at"]).all()
    assert 0.3 < dropped.height / per.height < 0.9
    # every event inside the simulated calendar
    prm = SyntheticParams()
    assert tx["timestamp"].min() >= dt.datetime.fromisoformat(prm.start)
    assert tx["timestamp"].max() < dt.datetime.fromisoformat(prm.end) + dt.timedelta(days=1)
    assert small_base.surveys["timestamp"].max() < dt.datetime(2026, 1, 1)


def test_population_distributions_match_declared_parameters(small_base):
    prm = SyntheticParams()
    truth = small_base.truth
    # rates ~ Gamma(r, rate alpha); dropout ~ Beta(a, b) exactly, despite the satisfaction link
    ks_rate = stats.kstest(
        truth["purchase_rate_per_day"], stats.gamma(prm.r, scale=1 / prm.alpha).cdf
    )
    ks_p = stats.kstest(truth["dropout_prob"], stats.beta(prm.a, prm.b).cdf)
    assert ks_rate.pvalue > 0.001 and ks_p.pvalue > 0.001
    # mean spend = p_spend / nu with nu ~ Gamma(q, rate gamma)
    nu = prm.p_spend / truth["mean_spend"].to_numpy()
    assert stats.kstest(nu, stats.gamma(prm.q, scale=1 / prm.gamma).cdf).pvalue > 0.001


def test_spend_follows_each_customers_mean(small_base):
    realised = (
        small_base.transactions.group_by("customer_id")
        .agg(pl.col("amount").mean().alias("avg"), pl.len().alias("n"))
        .join(small_base.truth, on="customer_id")
        .filter(pl.col("n") >= 10)
    )
    ratio = (realised["avg"] / realised["mean_spend"]).to_numpy()
    assert abs(np.median(ratio) - 1) < 0.05
    assert (small_base.transactions["amount"] > 0).all()


def test_surveys_are_valid_and_carry_churn_signal(small_base):
    v = validate_surveys(small_base.surveys, as_of="2025-12-31")
    assert v.report.rows_quarantined == 0 and v.report.rows_used == small_base.surveys.height
    responses = small_base.surveys.height / small_base.truth.height
    assert 1.0 < responses < 3.0
    truth = small_base.truth
    assert np.corrcoef(truth["satisfaction"], truth["dropout_prob"])[0, 1] < -0.3
    nps = small_base.surveys.filter(pl.col("survey") == "nps").join(truth, on="customer_id")
    high_p = nps.filter(pl.col("dropout_prob") > truth["dropout_prob"].median())["score"].mean()
    low_p = nps.filter(pl.col("dropout_prob") <= truth["dropout_prob"].median())["score"].mean()
    assert low_p - high_p > 0.8  # the customers about to leave score clearly lower
    ces = small_base.surveys.filter(pl.col("survey") == "ces").join(truth, on="customer_id")
    assert np.corrcoef(ces["score"], ces["satisfaction"])[0, 1] < -0.4  # low effort = happy


def test_scale_about_ten_transactions_per_customer(small_base):
    per_customer = small_base.transactions.height / small_base.truth.height
    assert 7 < per_customer < 12


def test_written_files_feed_validation(tmp_path, small_base):
    paths = write_customer_base(small_base, tmp_path)
    v = validate_transactions(paths["transactions"], as_of="2025-12-31")
    assert v.report.rows_used == small_base.transactions.height
    assert v.data["customer_id"].dtype == pl.Int64
    truth = pl.read_parquet(paths["truth"])
    assert {
        "customer_id",
        "purchase_rate_per_day",
        "dropout_prob",
        "dropout_at",
        "mean_spend",
    } <= set(truth.columns)
    assert truth["dropout_at"].dtype == pl.Datetime("us")
    params = json.loads(paths["params"].read_text())
    assert params["seed"] == 11 and params["n_customers"] == 3_000
    assert params["r"] == SyntheticParams().r
