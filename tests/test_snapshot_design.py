"""The snapshot design adapts to the history given; real short histories train."""

import datetime as dt

import pytest
from cx_models.training.pipeline import TrainingConfig, train_scorer

from cx_models.datasets import load_cdnow
from cx_models.schemas import validate_transactions
from cx_models.snapshot_design import NotEnoughHistory, design_snapshots

FIRST = dt.date(1997, 1, 1)


def test_long_histories_keep_the_standard_design():
    d = design_snapshots(dt.date(2023, 1, 1), "2025-12-31", horizon_days=90)
    assert d.rule == "standard" and d.step_days == 90 and d.min_history_days == 90
    assert d.dates[0] == dt.date(2025, 10, 2)
    assert all((a - b).days == 90 for a, b in zip(d.dates, d.dates[1:], strict=False))
    assert (d.dates[-1] - dt.date(2023, 1, 1)).days >= 90


@pytest.mark.parametrize("horizon", [30, 61, 91])
def test_short_histories_spread_up_to_four_snapshots(horizon):
    as_of = dt.date(1997, 7, 1)
    d = design_snapshots(FIRST, as_of, horizon_days=horizon)
    newest = as_of - dt.timedelta(days=horizon)
    assert d.dates[0] == newest  # every label window ends by as_of
    assert all((day - FIRST).days >= d.min_history_days for day in d.dates)
    if d.rule == "short history":
        assert 2 <= len(d.dates) <= 4 and d.step_days >= 7
    else:
        assert d.rule == "standard" and len(d.dates) >= 2


def test_one_snapshot_and_none():
    one = design_snapshots(FIRST, FIRST + dt.timedelta(days=30 + 91 + 3), horizon_days=91)
    assert one.rule == "one snapshot" and len(one.dates) == 1
    with pytest.raises(NotEnoughHistory) as caught:
        design_snapshots(FIRST, "1997-03-31", horizon_days=91)
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
