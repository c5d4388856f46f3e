"""The snapshot design adapts to the history given; real short histories train."""

import datetime as dt

import pytest
from cx_models.training.pipeline import TrainingConfig, train_scorer

from cx_models.datasets import load_cdnow
from cx_models.schemas import validate_transactions
from cx_models.settings import SnapshotPlan
from cx_models.snapshot_design import NotEnoughHistory, design_snapshots

FIRST = dt.date(1997, 1, 1)


def test_long_histories_keep_the_standard_design():
    d = design_snapshots(dt.date(2023, 1, 1), "2025-12-31", SnapshotPlan(horizon_days=90))
    assert d.rule == "standard" and d.step_days == 90 and d.min_history_days == 90
    assert d.dates[0] == dt.date(2025, 10, 2)
    assert all((a - b).days == 90 for a, b in zip(d.dates, d.dates[1:], strict=False))
    assert (d.dates[-1] - dt.date(2023, 1, 1)).days >= 90


@pytest.mark.parametrize("horizon", [30, 61, 91])
def test_short_histories_spread_up_to_four_snapshots(horizon):
    as_of = dt.date(1997, 7, 1)
    d = design_snapshots(FIRST, as_of, SnapshotPlan(horizon_days=horizon))
    newest = as_of - dt.timedelta(days=horizon)
    assert d.dates[0] == newest  # every label window ends by as_of
    assert all((day - FIRST).days >= d.min_history_days for day in d.dates)
    if d.rule == "short history":
        assert 2 <= len(d.dates) <= 4 and d.step_days >= 7
    else:
        assert d.rule == "standard" and len(d.dates) >= 2


def test_one_snapshot_and_none():
    one = design_snapshots(
        FIRST, FIRST + dt.timedelta(days=30 + 91 + 3), SnapshotPlan(horizon_days=91)
    )
    assert one.rule == "one snapshot" and len(one.dates) == 1
    with pytest.raises(NotEnoughHistory) as caught:
        design_snapshots(FIRST, "1997-03-31", SnapshotPlan(horizon_days=91))
    message = str(caught.value)
    assert "the earliest as_of that works is 1997-05-02" in message
    assert "the largest horizon that works is 59 days" in message


@pytest.fixture(scope="module")
def sample():
    return validate_transactions(load_cdnow("sample"), as_of="1998-06-30").data


@pytest.mark.parametrize(
    ("as_of", "horizon", "evaluated"),
    [("1997-09-30", 91, True), ("1997-09-30", 30, True), ("1997-06-30", 91, False)],
)
def test_cdnow_sample_trains_with_the_defaults(sample, as_of, horizon, evaluated):
    import polars as pl

    tx = sample.filter(pl.col("timestamp") < dt.datetime.fromisoformat(as_of) + dt.timedelta(1))
    result = train_scorer(tx, None, TrainingConfig(as_of=as_of, horizon_days=horizon))
    assert bool(result.evaluation.get("skipped")) is not evaluated
    final = result.design["final"]
    assert final["snapshots"][0] == str(dt.date.fromisoformat(as_of) - dt.timedelta(horizon))
    if evaluated:
        assert result.evaluation["metrics"]["model"]["roc_auc"] > 0.65
    else:
        assert "earliest as_of that works" in result.design["evaluation_skipped"]
    scored = result.scorer.score(result.features)
    assert scored["churn_risk"].between(0, 1).all() and len(scored) == len(result.features)


@pytest.fixture(scope="module")
def master():
    return validate_transactions(load_cdnow("master"), as_of="1998-06-30").data


def _month_ends():
    import calendar

    days = []
    for year, month in [(1997, m) for m in range(6, 13)] + [(1998, m) for m in range(1, 7)]:
        days.append(dt.date(year, month, calendar.monthrange(year, month)[1]).isoformat())
    return days


@pytest.mark.slow
@pytest.mark.parametrize(
    ("as_of", "horizon"),
    [(d, 91) for d in _month_ends()] + [("1997-09-30", 30), ("1997-09-30", 61)],
)
def test_cdnow_master_trains_at_every_cut(master, as_of, horizon):
    import polars as pl

    tx = master.filter(pl.col("timestamp") < dt.datetime.fromisoformat(as_of) + dt.timedelta(1))
    result = train_scorer(tx, None, TrainingConfig(as_of=as_of, horizon_days=horizon))
    # the forward evaluation trains to as_of - 91 days, which needs 30 + 91 days of history:
    # the earliest evaluated as_of is 1997-05-02 + 91 days = 1997-08-01
    skipped = horizon == 91 and as_of in ("1997-06-30", "1997-07-31")
    assert bool(result.evaluation.get("skipped")) is skipped
    assert len(result.design["final"]["snapshots"]) >= 2


@pytest.mark.slow
def test_cdnow_master_churn_beats_lifetimes_and_is_calibrated(master):
    """The standard cut: 1997-09-30, 91 days, against what happened in 1997-10-01..12-30."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "cdnow_churn.py"
    spec = importlib.util.spec_from_file_location("cdnow_churn", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.run_cut(master, dt.date(1997, 9, 30), 91)
    rows = out["rows"]
    assert out["observed"] == pytest.approx(0.822, abs=0.001)
    model, bgnbd = rows["model churn_risk"], rows["lifetimes BG/NBD -E[purchases]"]
    assert bgnbd["roc_auc"] == pytest.approx(0.769, abs=0.001)  # the figure
    assert model["roc_auc"] >= bgnbd["roc_auc"] + 0.005
    assert abs(model["mean"] - out["observed"]) <= 0.03
    ev = out["evaluation"]["metrics"]
    assert ev["model"]["roc_auc"] >= ev["days_since_last_purchase"]["roc_auc"] + 0.01
    assert ev["model"]["roc_auc"] >= ev["bgnbd_prob_no_purchase"]["roc_auc"] - 0.002
