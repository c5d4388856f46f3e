"""Contractual churn: leakage-safe features, labels, snapshots and the forward evaluation."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from cx_models.contract_churn import ContractPlan, contract_snapshots, evaluate_contract_churn
from cx_models.contract_features import CONTRACT_FEATURES, contract_features, contract_labels
from cx_models.errors import CXDataError
from cx_models.schemas import validate_surveys
from cx_models.subscriptions import SubscriptionSpec, validate_subscriptions
from cx_models.synthetic_subscriptions import generate_subscription_base

D = dt.date
SPEC = SubscriptionSpec(period=30)


@pytest.fixture(scope="module")
def base():
    return generate_subscription_base(4_000, seed=21)


def _validated(base, as_of="2025-12-31"):
    subs = validate_subscriptions(base.subscriptions, as_of=as_of).data
    surveys = validate_surveys(base.surveys, as_of=as_of).data
    return subs, surveys


def test_features_see_nothing_after_the_snapshot(base):
    subs, surveys = _validated(base)
    for day in (D(2023, 6, 30), D(2024, 9, 15), D(2025, 9, 30)):
        full = contract_features(subs, day=day, horizon_days=91, period=30, surveys=surveys)
        # cut every start, end, cancellation and survey answer after the day out of the raw data
        raw = base.subscriptions.filter(pl.col("start") <= day).with_columns(
            pl.when(pl.col("end") > day).then(None).otherwise(pl.col("end")).alias("end"),
            pl.when(pl.col("cancelled_at") > day).then(None)
            .otherwise(pl.col("cancelled_at")).alias("cancelled_at"),
        )
        cut_surveys = base.surveys.filter(pl.col("timestamp").dt.date() <= day)
        cut = contract_features(
            validate_subscriptions(raw, as_of=day).data, day=day, horizon_days=91, period=30,
            surveys=validate_surveys(cut_surveys, as_of=day).data,
        )
        assert full.equals(cut), day
        assert full.columns[5:] == list(CONTRACT_FEATURES)


def test_features_and_labels_by_hand():
    subs = pl.DataFrame({
        "customer_id": [1, 2, 3, 4, 4],
        "start": [D(2024, 1, 1), D(2024, 3, 10), D(2024, 1, 1), D(2023, 1, 1), D(2024, 2, 1)],
        "end": [D(2024, 7, 29), None, D(2024, 6, 29), D(2023, 3, 31), None],
        "plan": ["a", "b", "a", "a", "b"],
        "price": [10.0, 20.0, 10.0, 8.0, 12.0],
        "cancelled_at": [None, None, D(2024, 6, 20), None, None],
    })
    f = contract_features(subs, day=D(2024, 6, 30), horizon_days=60, period=30)
    # customer 3 ended on 2024-06-29: not active; customer 4 has one lost relationship before
    assert f["customer_id"].to_list() == [1, 2, 4]
    row = f.row(0, named=True)
    # started 2024-01-01: 181 days, period 7 ((180, 210]), 6 renewals, next on 2024-07-29
    assert (row["tenure_days"], row["renewals"], row["days_to_next_renewal"]) == (181, 6, 29)
    assert row["renewals_due"] == 2  # 2024-07-29 and 2024-08-28 fall in (06-30, 08-29]
    assert f.row(2, named=True)["prior_relationships"] == 1
    y = contract_labels(subs, f, day=D(2024, 6, 30), horizon_days=60)
    assert y.tolist() == [1, 0, 0]


def test_pending_cancellations_are_flagged_and_left_out_of_the_labels(base):
    subs, surveys = _validated(base)
    snaps = contract_snapshots(subs, as_of="2025-12-31", plan=ContractPlan(horizon_days=91),
                               spec=SPEC, surveys=surveys)
    f = contract_features(subs, day=D(2025, 10, 1), horizon_days=91, period=30)
    assert f["cancellation_pending"].sum() > 0
    assert len(snaps["snapshot"].unique()) == 6
    assert snaps.groupby("snapshot")["customer_id"].apply(lambda s: s.is_unique).all()
    latest = snaps[snaps["snapshot"] == snaps["snapshot"].max()]
    assert len(latest) == int((~f["cancellation_pending"]).sum())
    # the label is what the generator's true end says
    truth = base.truth.to_pandas().set_index("customer_id")
    ends = truth.loc[latest["customer_id"], "true_end"].to_numpy()
    day = np.datetime64("2025-10-01")
    expected = (ends.astype("datetime64[D]") <= day + 91).astype(int)
    assert (latest["churn"].to_numpy() == expected).all()


def test_snapshot_design_names_the_earliest_as_of(base):
    subs, _ = _validated(base)
    with pytest.raises(CXDataError, match="the earliest --as-of that works is 2022-06-01"):
        contract_snapshots(subs, as_of="2022-04-01", plan=ContractPlan(horizon_days=91),
                           spec=SPEC)


@pytest.mark.slow
def test_forward_evaluation_on_a_small_base(base):
    subs, surveys = _validated(base)
    r = evaluate_contract_churn(subs, as_of="2025-12-31", plan=ContractPlan(horizon_days=91),
                                spec=SPEC, surveys=surveys, truth=base.truth)
    assert r["evaluation_day"] == "2025-10-01" and r["design"]["snapshots"][-1] == "2025-07-02"
    assert set(r["metrics"]) == {"model", "model_uncalibrated", "sbg_churn_prob",
                                 "km_churn_prob", "logistic_regression",
                                 "ceiling_true_churn_prob"}
    assert r["beats"]["sbg_churn_prob"]["roc_auc"] > 0
    assert r["metrics"]["model"]["roc_auc"] < r["metrics"]["ceiling_true_churn_prob"]["roc_auc"]


@pytest.mark.slow
def test_forward_evaluation_beats_the_retention_baselines():
    b = generate_subscription_base(20_000, seed=1)
    subs, surveys = _validated(b)
    r = evaluate_contract_churn(subs, as_of="2025-12-31", plan=ContractPlan(horizon_days=91),
                                spec=SPEC, surveys=surveys, truth=b.truth)
    m = r["metrics"]
    assert r["relationships"] > 3_000
    for baseline in ("sbg_churn_prob", "km_churn_prob"):
        assert r["beats"][baseline]["roc_auc"] >= 0.01, baseline
        assert m["model"]["brier"] < m[baseline]["brier"]
    # the generator's ceiling clears the tenure baselines by at least 0.03
    assert m["ceiling_true_churn_prob"]["roc_auc"] - m["sbg_churn_prob"]["roc_auc"] >= 0.03
    assert m["model"]["roc_auc"] < m["ceiling_true_churn_prob"]["roc_auc"]
    # calibrated: the mean risk is close to the observed churn rate
    assert abs(r["_scores"]["model"].mean() - r["churn_rate"]) < 0.03


def test_activity_events_become_features():
    subs = pl.DataFrame({
        "customer_id": [1, 2], "start": [D(2024, 1, 1), D(2024, 1, 1)], "end": [None, None],
        "plan": ["a", "a"], "price": [10.0, 10.0], "cancelled_at": [None, None],
    }).with_columns(pl.col("end").cast(pl.Date), pl.col("cancelled_at").cast(pl.Date))
    events = pl.DataFrame({
        "customer_id": [1, 1, 1, 2],
        "timestamp": [dt.datetime(2024, 6, 25), dt.datetime(2024, 5, 1),
                      dt.datetime(2024, 7, 5), dt.datetime(2023, 12, 1)],
        "amount": [1.0, 1.0, 1.0, 1.0],
    })
    f = contract_features(subs, day=D(2024, 6, 30), horizon_days=30, period=30,
                          transactions=events)
    one, two = f.row(0, named=True), f.row(1, named=True)
    # the event of 2024-07-05 is after the day: not seen
    assert (one["activity_30d"], one["activity_90d"], one["days_since_activity"]) == (1, 2, 5)
    assert (two["activity_30d"], two["activity_90d"], two["days_since_activity"]) == (0, 0, 212)
    none = contract_features(subs, day=D(2024, 6, 30), horizon_days=30, period=30)
    assert none["activity_30d"].null_count() == 2


def test_customer_attributes_join_the_contractual_features(base):
    from cx_models.training.contract_pipeline import train_contract_scorer
    from cx_models.training.pipeline import TrainingConfig

    from cx_models.attributes import validate_attributes

    subs, surveys = _validated(base)
    ids = base.subscriptions["customer_id"]
    raw = pl.DataFrame({"customer_id": ids,
                        "region": np.where(ids.to_numpy() % 2 == 0, "north", "south")})
    attrs = validate_attributes(raw).data
    result = train_contract_scorer(subs, surveys, TrainingConfig(as_of="2025-12-31",
                                                                 horizon_days=91),
                                   spec=SPEC, attributes=attrs)
    scorer = result.scorer
    assert scorer.attribute_columns == ["region"]
    assert scorer.churn.categories_["region"] == ["north", "south"]
    assert "region" in result.features.columns
    with pytest.raises(CXDataError, match="trained with customer attributes"):
        scorer.features(subs, day=D(2025, 12, 31), surveys=surveys)
