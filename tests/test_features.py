import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from cx_models.datasets import load_cdnow
from cx_models.errors import CXDataError
from cx_models.features import build_customer_features, build_features, feature_columns
from cx_models.io import read_features, write_table

AS_OF = "2024-06-30"


@pytest.fixture
def tx():
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 1],
            "timestamp": [
                "2024-01-01 09:00",
                "2024-01-01 17:00",
                "2024-03-01",
                "2024-06-20",
                "2024-06-30 23:59:59",
                "2024-07-01",  # the last one is after as_of
            ],
            "amount": [10.0, 5.0, 20.0, 30.0, 7.0, 999.0],
        }
    )


@pytest.fixture
def surveys():
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 1, 1, 1, 3],
            "timestamp": [
                "2024-06-01 10:00",
                "2024-06-01 10:00",
                "2024-05-01",
                "2023-06-30",
                "2023-07-02",
                "2023-07-01",
                "2024-07-01",
                "2024-06-01",
            ],
            "survey": ["nps", "NPS", "nps", "nps", "csat", "csat", "nps", "ces"],
            "score": [9, 5, 10, 0, 4, 1, 0, 2],
        }
    )


def test_hand_computed_customer(tx, surveys):
    build = build_features(tx, surveys, as_of=AS_OF)
    f = build.features.set_index("customer_id")
    c = f.loc[1]
    # occasions: Jan 1 (15), Mar 1 (20), Jun 20 (30)
    assert c["frequency"] == 2
    assert c["recency"] == 171
    assert c["T"] == 181
    assert c["monetary_value"] == pytest.approx(25.0)
    assert c["n_transactions"] == 4
    assert c["total_spend"] == pytest.approx(65.0)
    assert c["mean_spend"] == pytest.approx(16.25)
    assert c["days_since_last_purchase"] == 10
    assert c["tenure_days"] == 181
    assert c["mean_gap_days"] == pytest.approx(85.5)
    assert c["std_gap_days"] == pytest.approx(25.5 * math.sqrt(2))
    assert c["gap_ratio"] == pytest.approx(10 / 85.5)
    assert (c["purchases_30d"], c["spend_30d"]) == (1, 30.0)
    assert (c["purchases_trend_30d"], c["spend_trend_30d"]) == (1, 30.0)
    assert (c["purchases_90d"], c["purchases_trend_90d"], c["spend_trend_90d"]) == (1, 0, 10.0)
    assert (c["purchases_180d"], c["spend_180d"]) == (2, 50.0)
    assert (c["purchases_trend_180d"], c["spend_trend_180d"]) == (1, 35.0)
    # surveys: the two responses at the latest timestamp are averaged
    assert c["nps_latest"] == 7
    assert c["nps_mean"] == pytest.approx(8.0)
    assert c["nps_count"] == 3
    assert c["nps_days_since"] == 29
    assert c["nps_category"] == "passive"
    # look-back: dated after as_of - 365 days (2023-07-01, 2024 being a leap year)
    assert (c["csat_latest"], c["csat_count"], c["csat_days_since"]) == (4, 1, 364)
    # missing stays missing
    assert np.isnan(c["ces_latest"]) and np.isnan(c["ces_mean"]) and c["ces_count"] == 0
    # customer 2 bought once, at 23:59:59 on as_of
    two = f.loc[2]
    assert (two["frequency"], two["recency"], two["T"], two["monetary_value"]) == (0, 0, 0, 0)
    assert np.isnan(two["mean_gap_days"]) and np.isnan(two["nps_latest"])
    assert pd.isna(two["nps_category"])
    # customer 3 answered a survey but never bought: no row, but counted
    assert 3 not in f.index
    assert build.survey_customers_without_purchase == 1
    assert build.transactions.rows_after_as_of == 1
    assert build.surveys.rows_after_as_of == 1
    assert list(build.features.columns) == feature_columns()


def test_nps_categories():
    tx = pd.DataFrame(
        {"customer_id": [1, 2, 3], "timestamp": ["2024-01-01"] * 3, "amount": [1.0] * 3}
    )
    sv = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "timestamp": ["2024-01-01"] * 3,
            "survey": ["nps"] * 3,
            "score": [9, 8, 6],
        }
    )
    f = build_customer_features(tx, sv, as_of=AS_OF)
    assert f["nps_category"].tolist() == ["promoter", "passive", "detractor"]


def test_lookback_is_configurable(tx, surveys):
    f = build_customer_features(tx, surveys, as_of=AS_OF, lookback_days=30).set_index("customer_id")
    assert f.loc[1, "nps_count"] == 2  # only the two June responses
    assert np.isnan(f.loc[1, "csat_latest"])


def test_nothing_after_as_of_changes_a_feature(small_base):
    """Adding any event after as_of — purchases or surveys — leaves every feature as it was."""
    as_of = "2024-12-31"
    tx = small_base.transactions
    sv = small_base.surveys
    cutoff = dt.datetime(2025, 1, 1)
    past_tx = tx.filter(tx["timestamp"] < cutoff)
    past_sv = sv.filter(sv["timestamp"] < cutoff)
    with_future = build_customer_features(tx, sv, as_of=as_of)
    past_only = build_customer_features(past_tx, past_sv, as_of=as_of)
    pd.testing.assert_frame_equal(with_future, past_only)
    assert past_tx.height < tx.height and past_sv.height < sv.height


def test_weeks_are_days_over_seven(small_base):
    d = build_customer_features(small_base.transactions, as_of="2025-06-30", time_unit="D")
    w = build_customer_features(small_base.transactions, as_of="2025-06-30", time_unit="W")
    np.testing.assert_allclose(w["recency"] * 7, d["recency"], rtol=1e-12)
    np.testing.assert_allclose(w["T"] * 7, d["T"], rtol=1e-12)
    pd.testing.assert_series_equal(w["days_since_last_purchase"], d["days_since_last_purchase"])
    assert (d["recency"] <= d["T"]).all()
    assert ((d["frequency"] == 0) == (d["recency"] == 0)).all()
    assert (d["monetary_value"] >= 0).all()


def test_cdnow_matches_lifetimes_summary_in_weeks():
    from lifetimes.utils import summary_data_from_transaction_data

    tx = load_cdnow("master")
    ours = build_customer_features(tx, as_of="1997-09-30", time_unit="W").set_index("customer_id")
    ref = summary_data_from_transaction_data(
        tx,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        observation_period_end="1997-09-30",
        freq="D",
        freq_multiplier=7,
    )
    assert len(ours) == len(ref) == 23_570
    ours = ours.loc[ref.index]
    for col in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(
            ours[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12, atol=1e-12, err_msg=col
        )


def test_cdnow_sample_matches_published_summary():
    from cx_models.datasets import load_cdnow_summary

    sample = load_cdnow("sample")
    ours = build_customer_features(sample, as_of="1997-09-30", time_unit="W")
    # the published summary numbers customers 1..2357 by their sample id
    sample_ids = sample.drop_duplicates("customer_id").set_index("customer_id")["sample_id"]
    ours = ours.assign(sid=ours["customer_id"].map(sample_ids)).sort_values("sid")
    published = load_cdnow_summary()
    assert len(ours) == len(published) == 2357
    # the published file rounds to two decimals
    np.testing.assert_array_equal(ours["frequency"].to_numpy(), published["frequency"].to_numpy())
    np.testing.assert_allclose(ours["recency"], published["recency"], atol=0.006)
    np.testing.assert_allclose(ours["T"], published["T"], atol=0.006)
    np.testing.assert_allclose(ours["monetary_value"], published["monetary_value"], atol=0.006)


def test_customer_id_type_preserved_in_output(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\n5,2024-01-01,1\n,2024-01-02,1\n6,2024-01-03,1\n")
    f = build_customer_features(path, as_of=AS_OF)
    assert str(f["customer_id"].dtype) == "Int64"
    assert f["customer_id"].tolist() == [5, 6]
    s = build_customer_features(load_cdnow("sample").head(5), as_of="1997-09-30")
    assert s["customer_id"].tolist()[0] == "00004"


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_metadata_round_trip(tmp_path, tx, suffix):
    f = build_customer_features(tx, as_of=AS_OF, time_unit="W")
    out = tmp_path / f"features{suffix}"
    write_table(f, out, metadata={"as_of": f.attrs["as_of"], "time_unit": "W"})
    back = read_features(out)
    assert back.attrs == {"as_of": AS_OF, "time_unit": "W"}
    np.testing.assert_allclose(back["T"], f["T"])


def test_table_without_metadata_is_in_days(tmp_path, tx):
    out = tmp_path / "plain.parquet"
    build_customer_features(tx, as_of=AS_OF).to_parquet(out)
    assert read_features(out).attrs["time_unit"] == "D"


def test_bad_time_unit():
    with pytest.raises(CXDataError, match=r"time_unit 'M'.*'D'.*'W'"):
        build_customer_features(
            pd.DataFrame({"customer_id": [1], "timestamp": ["2024-01-01"], "amount": [1]}),
            as_of=AS_OF,
            time_unit="M",
        )


def test_occasion_sums_fast_and_fallback_paths_agree():
    """Sums and counts per key, ascending: the packed sort and the frame sort give one answer."""
    import numpy as np
    import polars as pl

    from cx_models.occasions import occasion_sums

    rng = np.random.default_rng(3)
    key = rng.integers(0, 500, size=5_000)
    amount = rng.gamma(2.0, 10.0, size=5_000)
    fast = occasion_sums(pl.Series(key), pl.Series(amount))
    slow = occasion_sums(pl.Series(key + (1 << 60)), pl.Series(amount))  # 61 + 13 bits > 63
    assert fast["key"].to_list() == sorted(set(key.tolist()))
    assert (slow["key"] - (1 << 60)).to_list() == fast["key"].to_list()
    assert fast["n_tx"].to_list() == slow["n_tx"].to_list()
    assert fast["n_tx"].sum() == 5_000
    np.testing.assert_allclose(fast["amount"].to_numpy(), slow["amount"].to_numpy(), rtol=1e-12)
    expected = {k: amount[key == k].sum() for k in (0, 17, 499)}
    got = dict(zip(fast["key"].to_list(), fast["amount"].to_list(), strict=True))
    assert all(abs(got[k] - v) < 1e-9 for k, v in expected.items())
    empty = occasion_sums(pl.Series([], dtype=pl.Int64), pl.Series([], dtype=pl.Float64))
    assert empty.height == 0
