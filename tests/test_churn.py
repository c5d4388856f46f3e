import datetime as dt
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import polars as pl
import pytest

from cx_models.churn_data import (
    CHURN_FEATURES,
    churn_labels,
    snapshot_dates,
    snapshot_features,
    training_snapshots,
)
from cx_models.churn_eval import classification_metrics, evaluate_churn
from cx_models.errors import CXDataError
from cx_models.models.churn import BoosterSettings, ChurnModel
from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.settings import SnapshotPlan
from cx_models.synthetic import generate_customer_base

AS_OF = "2025-12-31"
H = 90


@pytest.fixture(scope="module")
def base():
    return generate_customer_base(30_000, seed=7)


@pytest.fixture(scope="module")
def events(base):
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    return tx, sv


@pytest.fixture(scope="module")
def evaluation(base, events):
    tx, sv = events
    return evaluate_churn(
        tx,
        sv,
        as_of=AS_OF,
        plan=SnapshotPlan(horizon_days=H, max_snapshots=4),
        truth=base.truth.to_pandas(),
    )


def test_label_window_is_the_day_after_to_the_horizon_inclusive():
    ts = [
        dt.datetime(2024, 1, 1, 23),
        dt.datetime(2024, 1, 2),
        dt.datetime(2024, 1, 31, 23, 59),
        dt.datetime(2024, 2, 1),
    ]
    tx = pl.DataFrame({"customer_id": [1, 2, 3, 4], "timestamp": ts})
    # as_of 2024-01-01, 30 days: purchases dated 2024-01-02 .. 2024-01-31 count
    assert churn_labels(tx, [1, 2, 3, 4, 5], as_of="2024-01-01", horizon_days=30).tolist() == [
        1,
        0,
        0,
        1,
        1,
    ]


def test_snapshot_dates():
    dates = snapshot_dates(dt.date(2023, 1, 1), "2025-12-31", horizon_days=90, step_days=60)
    assert dates[0] == dt.date(2025, 10, 2)
    assert all((a - b).days == 60 for a, b in zip(dates, dates[1:], strict=False))
    assert (dates[-1] - dt.date(2023, 1, 1)).days >= 90
    assert snapshot_dates(dt.date(2025, 9, 1), "2025-12-31", horizon_days=90) == []


def test_no_feature_uses_an_event_after_its_snapshot(events):
    """Cut every event after the snapshot day: each feature must stay exactly the same."""
    tx, sv = events
    snaps = training_snapshots(
        tx, sv, as_of=AS_OF, plan=SnapshotPlan(horizon_days=H, max_snapshots=2)
    )
    for day in snaps["snapshot"].unique():
        cut = dt.datetime.fromisoformat(day) + dt.timedelta(days=1)
        past, _ = snapshot_features(
            tx.filter(pl.col("timestamp") < cut),
            sv.filter(pl.col("timestamp") < cut),
            as_of=day,
            horizon_days=H,
        )
        rows = snaps[snaps["snapshot"] == day].drop(columns=["snapshot", "churn"])
        pd.testing.assert_frame_equal(
            rows.reset_index(drop=True), past.reset_index(drop=True), check_like=False
        )
        # customers enter only once acquired
        first = tx.group_by("customer_id").agg(pl.col("timestamp").min()).to_pandas()
        first = first.set_index("customer_id").loc[rows["customer_id"].to_numpy(), "timestamp"]
        assert (first < cut).all()


def test_label_windows_end_by_as_of(events):
    tx, sv = events
    snaps = training_snapshots(tx, sv, as_of="2025-06-30", plan=SnapshotPlan(horizon_days=H))
    latest = max(dt.date.fromisoformat(d) for d in snaps["snapshot"].unique())
    assert latest + dt.timedelta(days=H) == dt.date(2025, 6, 30)
    # labels are the window after each snapshot, recomputed independently
    day = snaps["snapshot"].iloc[0]
    rows = snaps[snaps["snapshot"] == day]
    start = dt.datetime.fromisoformat(day) + dt.timedelta(days=1)
    end = start + dt.timedelta(days=H)
    buyers = set(
        tx.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < end))[
            "customer_id"
        ].to_list()
    )
    expected = (~rows["customer_id"].isin(buyers)).astype(int).to_numpy()
    np.testing.assert_array_equal(rows["churn"].to_numpy(), expected)


def test_row_cap_keeps_the_same_share_of_every_snapshot(events):
    """Above max_rows each snapshot keeps one seeded share of its rows, unchanged otherwise."""
    tx, sv = events
    plan = SnapshotPlan(horizon_days=H, max_snapshots=3, max_rows=None)
    full = training_snapshots(tx, sv, as_of=AS_OF, plan=plan)
    capped = training_snapshots(tx, sv, as_of=AS_OF, plan=replace(plan, max_rows=len(full) // 3))
    again = training_snapshots(tx, sv, as_of=AS_OF, plan=replace(plan, max_rows=len(full) // 3))
    sizes, kept = full["snapshot"].value_counts(), capped["snapshot"].value_counts()
    assert abs(len(capped) - len(full) // 3) <= 3  # one rounding per snapshot
    assert set(kept.index) == set(sizes.index)
    np.testing.assert_allclose((kept / sizes).to_numpy(), 1 / 3, atol=1e-3)
    # the rows kept are rows of the full stack, features and labels unchanged
    key = ["snapshot", "customer_id"]
    joined = capped.merge(full, on=key, suffixes=("", "_full"))
    assert len(joined) == len(capped)
    np.testing.assert_array_equal(joined["churn"], joined["churn_full"])
    np.testing.assert_allclose(joined["p_alive"], joined["p_alive_full"])
    pd.testing.assert_frame_equal(capped, again)  # seeded
    sampled = capped.attrs["snapshot_design"]["sampled"]
    assert sampled["rows"] == len(full) and sampled["kept"] == len(capped)
    assert full.attrs["snapshot_design"]["sampled"] is None
    # the counts are of every customer of each snapshot, before the sample
    counts = capped.attrs["snapshot_counts"]
    assert {d: c["customers"] for d, c in counts.items()} == sizes.to_dict()
    rates = full.groupby("snapshot")["churn"].mean()
    assert all(abs(counts[d]["churn_rate"] - rates[d]) < 1e-12 for d in rates.index)


def test_snapshot_cache_reuses_the_evaluation_days_and_changes_nothing(events, monkeypatch):
    """The final design's days the forward evaluation built come from the cache, unchanged."""
    import cx_models.churn_data as churn_data

    tx, sv = events
    plan = SnapshotPlan(horizon_days=H, max_snapshots=3)
    earlier = (dt.date.fromisoformat(AS_OF) - dt.timedelta(days=H)).isoformat()
    built = []
    real = churn_data.features_from_validated

    def counting(*args, **kwargs):
        built.append(kwargs["as_of"])
        return real(*args, **kwargs)

    monkeypatch.setattr(churn_data, "features_from_validated", counting)
    cache = churn_data.SnapshotCache()
    evaluated = training_snapshots(tx, sv, as_of=earlier, plan=plan, cache=cache)
    snapshot_features(tx, sv, as_of=earlier, horizon_days=H, cache=cache)  # the evaluated day
    assert len(built) == 4
    final = training_snapshots(tx, sv, as_of=AS_OF, plan=plan, cache=cache)
    assert len(built) == 4  # all three final days were built by the evaluation
    monkeypatch.setattr(churn_data, "features_from_validated", real)
    fresh = training_snapshots(tx, sv, as_of=AS_OF, plan=plan)
    pd.testing.assert_frame_equal(final, fresh)
    assert set(final["snapshot"]) <= set(evaluated["snapshot"]) | {earlier}
    # taken once; and a different definition (a shorter look-back) is built anew
    monkeypatch.setattr(churn_data, "features_from_validated", counting)
    training_snapshots(tx, sv, as_of=AS_OF, plan=plan, cache=cache)
    assert len(built) == 7
    other = replace(plan, spec=replace(plan.spec, lookback_days=90))
    cache.put((dt.date.fromisoformat(earlier), H, plan.spec, "bgnbd", None), fresh, None)
    snapshot_features(tx, sv, as_of=earlier, horizon_days=H, spec=other.spec, cache=cache)
    assert len(built) == 8


def test_a_base_where_nobody_churns_is_a_clear_error():
    """Every customer buys every week: no churner to learn from, said with the counts."""
    from cx_models.snapshot_design import NotEnoughHistory

    rng = np.random.default_rng(3)
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2025, 12, 31), "7d", eager=True)
    n = 400
    start = np.tile(days.to_numpy().astype("datetime64[D]"), n)
    jitter = rng.integers(0, 4, start.size).astype("timedelta64[D]")
    tx = pl.DataFrame({
        "customer_id": np.repeat(np.arange(n), len(days)),
        "timestamp": (start + jitter).astype("datetime64[us]"),
        "amount": rng.gamma(4.0, 10.0, start.size),
    })
    tx = validate_transactions(tx, as_of=AS_OF).data
    with pytest.raises(NotEnoughHistory, match=r"2025-10-02: every customer has churn=0; "):
        training_snapshots(tx, None, as_of=AS_OF, plan=SnapshotPlan(horizon_days=H))
    # three customers stop in November 2024: churners in four snapshots, too few to learn from
    stop = (tx["customer_id"] < 3) & (tx["timestamp"] >= dt.datetime(2024, 11, 1))
    with pytest.raises(NotEnoughHistory, match=r"too few churners to learn churn from: 12 of 1,6"):
        training_snapshots(tx.filter(~stop), None, as_of=AS_OF, plan=SnapshotPlan(horizon_days=H))


def test_model_beats_the_baselines_forward_in_time(evaluation):
    beats = evaluation["beats"]
    assert beats["bgnbd_prob_no_purchase"]["roc_auc"] > 0
    assert beats["days_since_last_purchase"]["roc_auc"] > 0.01
    assert beats["logistic_regression"]["roc_auc"] > 0
    assert beats["bgnbd_prob_no_purchase"]["brier"] > 0
    # the ceiling from the true parameters stays above the model
    assert beats["ceiling_true_parameters"]["roc_auc"] < 0
    assert evaluation["training_snapshots"][-1] < evaluation["evaluation_day"]


def test_calibration_no_worse_than_uncalibrated(evaluation):
    m = evaluation["metrics"]
    assert m["model"]["brier"] <= m["model_uncalibrated"]["brier"] * 1.001
    p = evaluation["_scores"]["model"]
    assert abs(p.mean() - evaluation["_labels"].mean()) < 0.02


def test_contributions_sum_to_margin_and_drivers_read_well(events, evaluation):
    model = evaluation["_model"]
    tx, sv = events
    frame, _ = snapshot_features(tx, sv, as_of="2025-10-02", horizon_days=H)
    sample = frame.head(200)
    contrib = model.contributions(sample)
    np.testing.assert_allclose(contrib.sum(axis=1), model.margin(sample), rtol=1e-4, atol=1e-4)
    texts = model.drivers(sample, top=3)
    pattern = re.compile(r"^[^=;]+ = [^;]+ \([+-]\d+\.\d\d\)$")
    for text in texts[:50]:
        parts = text.split("; ")
        assert 1 <= len(parts) <= 3
        assert all(pattern.match(p) for p in parts), text
    # the strongest driver is the largest absolute contribution
    top = contrib.drop(columns="bias").abs().idxmax(axis=1).iloc[0]
    from cx_models.models.churn import FEATURE_LABELS

    assert texts[0].startswith(FEATURE_LABELS[top])


def test_save_load_round_trip(tmp_path, events, evaluation):
    model = evaluation["_model"]
    path = model.save(tmp_path / "churn")
    assert sorted(p.name for p in path.iterdir()) == ["booster.ubj", "churn.json"]
    back = ChurnModel.load(path)
    tx, sv = events
    frame, _ = snapshot_features(tx, sv, as_of="2025-10-02", horizon_days=H)
    np.testing.assert_array_equal(back.predict_proba(frame), model.predict_proba(frame))
    assert back.drivers(frame.head(5)) == model.drivers(frame.head(5))


def test_errors(events):
    tx, sv = events
    snaps = training_snapshots(
        tx, sv, as_of=AS_OF, plan=SnapshotPlan(horizon_days=H, max_snapshots=1)
    )
    # one snapshot: a customer split is held out (a few trees show it)
    one = ChurnModel(booster=BoosterSettings(n_estimators=20)).fit(snaps)
    assert one.holdout_ == "customer split of the only snapshot (25%)"
    assert one.n_train_rows_ + one.n_holdout_rows_ == len(snaps)
    assert 0.2 < one.n_holdout_rows_ / len(snaps) < 0.3
    with pytest.raises(CXDataError, match="churn features missing: clv"):
        ChurnModel().fit(
            snaps.drop(columns="clv").assign(
                snapshot=["a", "b"] * (len(snaps) // 2) + ["a"] * (len(snaps) % 2)
            )
        )
    with pytest.raises(CXDataError, match="not enough history"):
        training_snapshots(tx, sv, as_of="2023-03-01", plan=SnapshotPlan(horizon_days=H))
    assert "clv" in CHURN_FEATURES and "T" not in CHURN_FEATURES


def test_metrics_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    s = np.linspace(1, 0, 10)  # ranks customers in order
    m = classification_metrics(y, s)
    assert m["precision_at_10pct"] == 1.0 and m["recall_at_10pct"] == pytest.approx(1 / 3)
    assert m["lift_top_decile"] == pytest.approx(1 / 0.3)
    d = classification_metrics(y, s * 100, probability=False)
    assert d["brier"] is None and d["roc_auc"] == m["roc_auc"]


@pytest.mark.slow
def test_goal_beats_bgnbd_by_a_hundredth_of_auc_on_100k_customers():
    big = generate_customer_base(100_000, seed=1)
    tx = validate_transactions(big.transactions, as_of=AS_OF).data
    sv = validate_surveys(big.surveys, as_of=AS_OF).data
    rep = evaluate_churn(
        tx, sv, as_of=AS_OF, plan=SnapshotPlan(horizon_days=H), truth=big.truth.to_pandas()
    )
    assert rep["beats"]["bgnbd_prob_no_purchase"]["roc_auc"] >= 0.01


def test_driver_texts_same_for_few_and_many_customers(events, evaluation):
    model = evaluation["_model"]
    tx, sv = events
    frame, _ = snapshot_features(tx, sv, as_of="2025-10-02", horizon_days=H)
    sample = frame.head(600)
    many = model.drivers(sample)  # column-wise (polars) path
    few = sum((model.drivers(sample.iloc[i : i + 150]) for i in range(0, 600, 150)), [])
    assert many == few


def test_campaign_replayed_on_the_window_equals_an_independent_sum(evaluation):
    """The forward evaluation's realised profit: contacts with positive expected gain, by hand."""
    s = evaluation["campaign"]["settings"]
    assert (s["contact_cost"], s["save_rate"]) == (1.0, 0.3)
    current, y = evaluation["_features"], np.asarray(evaluation["_labels"])
    clv = current["clv"].to_numpy(dtype=float)
    for name in ("model", "bgnbd_prob_no_purchase", "logistic_regression"):
        p = np.asarray(evaluation["_scores"][name], dtype=float)
        contact = p * 0.3 * clv - 1.0 > 0
        realised = (y[contact] * 0.3 * clv[contact] - 1.0).sum()
        replay = evaluation["campaign"][name]
        assert replay["contacts"] == contact.sum() > 0
        assert replay["realised_profit"] == pytest.approx(realised, rel=1e-9)
        assert evaluation["metrics"][name]["realised_profit"] == replay["realised_profit"]
        assert replay["best_realised_profit"] >= replay["realised_profit"]
    assert evaluation["beats"]["bgnbd_prob_no_purchase"]["realised_profit"] == pytest.approx(
        evaluation["metrics"]["model"]["realised_profit"]
        - evaluation["metrics"]["bgnbd_prob_no_purchase"]["realised_profit"]
    )
