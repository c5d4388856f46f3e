"""Per-customer intervals on the synthetic base, where the model is true."""

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from cx_models.errors import CXDataError
from cx_models.features import build_customer_features
from cx_models.models._families import family as model_family
from cx_models.models.clv import CLVModel
from cx_models.synthetic import generate_customer_base


@pytest.fixture(scope="module")
def holdout():
    base = generate_customer_base(20_000, seed=0)
    tx = base.transactions
    end = tx["timestamp"].max().date()
    cut = end - dt.timedelta(days=210)
    features = build_customer_features(tx, as_of=cut.isoformat())
    model = CLVModel().fit(features)
    day = pl.col("timestamp").dt.date()
    held = (
        tx.filter((day > cut) & (day <= cut + dt.timedelta(days=180)))
        .select("customer_id", day.alias("d")).unique().group_by("customer_id").len()
    )
    actual = (pl.DataFrame({"customer_id": features["customer_id"].to_numpy()})
              .join(held, on="customer_id", how="left")["len"].fill_null(0).to_numpy())
    return model, features, actual.astype(np.int64)


def test_purchase_intervals_cover_what_their_mass_says(holdout):
    model, features, actual = holdout
    pred = model.predict(features, horizon_days=180, intervals=0.9)
    inside = (actual >= pred["purchases_lower"]) & (actual <= pred["purchases_upper"])
    mass = pred["purchases_interval_mass"].mean()
    assert mass >= 0.9 and (pred["purchases_interval_mass"] >= 0.9 - 1e-9).all()
    assert abs(inside.mean() - mass) <= 0.02
    assert 0.88 <= inside.mean() <= 0.98  # the 0.97: see the note, counts are whole
    assert (pred["purchases_lower"] <= pred["purchases_upper"]).all()
    # the expected CLV lies inside its own interval, which is narrow for a 20,000 base
    assert ((pred["clv_lower"] <= pred["clv"] * (1 + 1e-9))
            & (pred["clv"] <= pred["clv_upper"] * (1 + 1e-9))).all()
    few = features.head(500)  # seeded draws: the same intervals again
    assert model.predict(few, horizon_days=180, intervals=0.9).equals(
        model.predict(few, horizon_days=180, intervals=0.9))


def test_randomised_pit_is_uniform(holdout):
    model, features, actual = holdout
    pmf = model.purchase_distribution(features, horizon_days=180, n_max=int(actual.max()) + 40)
    cdf = np.cumsum(pmf, axis=1)
    rows = np.arange(actual.size)
    below = np.where(actual > 0, cdf[rows, np.maximum(actual - 1, 0)], 0.0)
    pit = below + np.random.default_rng(0).random(actual.size) * (cdf[rows, actual] - below)
    shares = np.histogram(pit, bins=10, range=(0, 1))[0] / actual.size
    np.testing.assert_allclose(shares, 0.1, atol=0.015)


def test_interval_level_is_checked(holdout):
    model, features, _ = holdout
    with pytest.raises(CXDataError, match="central level between 0 and 1"):
        model.predict(features.head(5), horizon_days=30, intervals=1.5)


def _holdout_total(tx, features, cut, days):
    day = pl.col("timestamp").dt.date()
    ids = pl.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    window = (day > cut) & (day <= cut + dt.timedelta(days=days))
    return (tx.filter(window).select("customer_id", day.alias("d")).unique()
            .join(ids, on="customer_id").height)


@pytest.mark.slow  # default suite under two minutes; CI runs it
def test_total_interval_is_ordered_and_checked(holdout):
    model, features, actual = holdout
    total = model.total_purchases(features, horizon_days=180, level=0.95)
    narrow = model.total_purchases(features, horizon_days=180, level=0.5)
    assert total["lower"] < narrow["lower"] < total["expected"] < narrow["upper"] < total["upper"]
    assert total["expected"] == pytest.approx(
        model.predict(features, horizon_days=180)["expected_purchases"].sum())
    with pytest.raises(CXDataError, match="central level"):
        model.total_purchases(features.head(5), horizon_days=30, level=0)


@pytest.mark.slow
def test_total_interval_covers_the_truth_in_34_of_40_replications():
    hits, misses = 0, []
    for seed in range(40):
        tx = generate_customer_base(5_000, seed=1000 + seed).transactions
        cut = tx["timestamp"].max().date() - dt.timedelta(days=210)
        features = build_customer_features(tx, as_of=cut.isoformat())
        total = CLVModel().fit(features).total_purchases(features, horizon_days=180)
        truth = _holdout_total(tx, features, cut, 180)
        inside = total["lower"] <= truth <= total["upper"]
        hits += inside
        if not inside:
            misses.append((seed, truth, total))
    assert hits >= 34, misses


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "pnbd"])
def test_compiled_count_bounds_equal_the_mixed_distributions(name):
    from cx_models.datasets import load_cdnow_summary
    from cx_models.models import _intervals as iv

    table = load_cdnow_summary()
    heavy = pd.DataFrame({"frequency": [3000, 400, 0], "recency": [519.0, 300.0, 0.0],
                          "T": [520.0, 520.0, 520.0], "monetary_value": [20.0, 20.0, 0.0]})
    table = pd.concat([table, heavy], ignore_index=True)  # first terms that underflow
    table.attrs["time_unit"] = "W"
    model = CLVModel(model=name).fit(table)
    # every eighth customer and the heavy ones: the reference pmfs are slow for Pareto/NBD
    table = table.iloc[np.r_[0 : len(table) - 3 : 8, -3, -2, -1]].reset_index(drop=True)
    table.attrs["time_unit"] = "W"
    drawn = list(iv._draws(model, 5, 0))
    mean = model.predict_arrays(table, horizon_days=273, clv_months=0)["expected_purchases"]
    rfm = model._in_model_units(table)
    x, t_x, T = rfm["frequency"], rfm["recency"], rfm["T"]
    params = [d._params(table) for d in drawn]
    alive = np.vstack([model_family(name).p_alive(p, x, t_x, T) for p in params])
    cap = np.ceil(mean * 3.0 + 12.0 * np.sqrt(mean + 1.0) + 10.0).astype(np.int64)
    fast = iv._count_bounds(name, params, x, T, 39.0, alive, (0.05, 0.95), cap)
    slow = iv._bounds_from_pmfs(drawn, table, 273, mean, (0.05, 0.95))
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    np.testing.assert_allclose(fast[2], slow[2], atol=1e-9)
    # the heavy buyer's interval sits where their purchases are (~5.8 a week)
    assert 100 < mean[-3] < fast[1][-3] < 3 * mean[-3]


def test_first_order_draws_stay_close_to_the_exact_ones(holdout, monkeypatch):
    from cx_models.models import _intervals as iv

    model, features, _ = holdout
    few = features.head(4000)
    exact = model.predict(few, horizon_days=180, intervals=0.9)
    monkeypatch.setattr(iv, "LINEARISE_ABOVE", 0)
    first = model.predict(few, horizon_days=180, intervals=0.9)
    width = (exact["clv_upper"] - exact["clv_lower"]).to_numpy()
    moved = np.maximum(np.abs(first["clv_upper"] - exact["clv_upper"]),
                       np.abs(first["clv_lower"] - exact["clv_lower"])).to_numpy()
    assert np.median(moved / width) < 0.02 and np.quantile(moved / width, 0.99) < 0.1
    changed = (first["purchases_upper"] != exact["purchases_upper"]).mean()
    assert changed < 0.01  # P(alive) to first order in its log-odds
