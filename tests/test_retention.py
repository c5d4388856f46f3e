"""Observed retention: rates by calendar period and cohort (hand-computed), Kaplan–Meier."""

import datetime as dt

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.errors import CXDataError
from cx_models.retention import calendar_grid, kaplan_meier, retention_matrix, retention_rates
from cx_models.sbg import SBGModel

ORIGIN = dt.date(2024, 1, 1)
runner = CliRunner()


def day(n):
    return ORIGIN + dt.timedelta(days=n)


def _rels():
    # customer: (first day, last day or None) as day numbers from 2024-01-01
    spans = {1: (0, 14), 2: (0, None), 3: (5, 25), 4: (12, 19), 5: (0, 9), 6: (10, 29)}
    return pl.DataFrame({
        "customer_id": list(spans),
        "start": [day(s) for s, _ in spans.values()],
        "end": [None if e is None else day(e) for _, e in spans.values()],
    })


def test_rates_by_period_and_cohort_by_hand():
    # 10-day periods [0, 9], [10, 19], [20, 29]; as_of day 30 leaves the 4th incomplete
    r = retention_rates(_rels(), as_of=day(30), period=10)
    overall = r.filter(pl.col("cohort").is_null())
    assert overall["period"].to_list() == [day(0), day(10), day(20)]
    assert overall.select("at_start", "lost").rows() == [(3, 0), (4, 1), (3, 1)]
    assert overall["churn_rate"].to_list() == pytest.approx([0.0, 0.25, 1 / 3])
    assert (overall["retention_rate"] + overall["churn_rate"]).to_list() == [1.0] * 3
    cells = r.filter(pl.col("cohort").is_not_null()).select(
        "period", "cohort", "tenure", "at_start", "lost").rows()
    assert cells == [
        (day(0), day(0), 0, 3, 0),
        (day(10), day(0), 1, 3, 1), (day(10), day(10), 0, 1, 0),
        (day(20), day(0), 2, 2, 1), (day(20), day(10), 1, 1, 0),
    ]
    # per period, the cohorts add up to the whole base
    sums = r.filter(pl.col("cohort").is_not_null()).group_by("period").agg(
        pl.col("at_start").sum(), pl.col("lost").sum()).sort("period")
    assert sums.select("at_start", "lost").rows() == overall.select("at_start", "lost").rows()
    matrix = retention_matrix(r)
    assert matrix.columns == ["cohort", "0", "1", "2"]
    assert matrix.row(0) == (day(0), 1.0, pytest.approx(2 / 3), 0.5)


def test_calendar_grids():
    starts, ends = calendar_grid("annual", dt.date(2022, 6, 1), dt.date(2024, 12, 30))
    assert [str(s) for s in starts] == ["2022-01-01", "2023-01-01"]
    assert [str(e) for e in ends] == ["2022-12-31", "2023-12-31"]
    starts, ends = calendar_grid(7, dt.date(2024, 1, 1), dt.date(2024, 1, 21))
    assert [str(e) for e in ends] == ["2024-01-07", "2024-01-14", "2024-01-21"]
    with pytest.raises(CXDataError, match="no complete monthly period"):
        retention_rates(_rels(), as_of=day(20), period="monthly")


def test_kaplan_meier_without_censoring_is_the_empirical_survival():
    rng = np.random.default_rng(2)
    lost_in = rng.geometric(rng.beta(0.9, 2.5, 5_000))
    km = kaplan_meier(lost_in - 1, np.ones(lost_in.size, bool))
    for t in (1, 2, 5, 10):
        assert km["survival"][t] == pytest.approx(np.mean(lost_in > t), abs=1e-12)


def test_kaplan_meier_with_weights_and_censoring_matches_sbg_on_its_own_data():
    # survivors of the paper's regular cohort: KM on the counts reproduces them exactly
    survivors = np.array([1000, 631, 468, 382, 326, 289, 262, 241])
    renewals = np.concatenate([np.arange(7), [7]])
    lost = np.concatenate([np.ones(7, bool), [False]])
    weights = np.concatenate([survivors[:-1] - survivors[1:], [survivors[-1]]])
    km = kaplan_meier(renewals, lost, weights=weights)
    assert km["survival"].to_numpy() == pytest.approx(survivors / 1000)
    assert km["se"][1] == pytest.approx(np.sqrt(0.631 * 0.369 / 1000), rel=1e-9)
    fitted = SBGModel().fit_renewals(renewals, lost, weights=weights).survival(7)
    assert np.max(np.abs(fitted - km["survival"].to_numpy())) < 0.025


def test_rates_cli(tmp_path):
    rels = _rels().with_columns(pl.col("start").cast(pl.String), pl.col("end").cast(pl.String))
    subs = tmp_path / "subs.csv"
    rels.write_csv(subs)
    out, km = tmp_path / "rates.csv", tmp_path / "km.parquet"
    res = runner.invoke(app, ["rates", "--subscriptions", str(subs), "--as-of", str(day(30)),
                              "--period-days", "10", "--out", str(out), "--km-out", str(km)])
    assert res.exit_code == 0, res.stderr
    table = pl.read_csv(out, try_parse_dates=True)
    assert table.columns == ["period", "cohort", "tenure", "at_start", "lost", "churn_rate",
                             "retention_rate"]
    assert table.filter(pl.col("cohort").is_null())["lost"].to_list() == [0, 1, 1]
    assert pl.read_parquet(km)["tenure"][0] == 0
    res = runner.invoke(app, ["rates", "--subscriptions", str(subs), "--as-of", str(day(30)),
                              "--period-days", "10", "--out", str(subs)])
    assert res.exit_code == 2 and "error:" in res.stderr
