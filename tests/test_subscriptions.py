"""The subscriptions input: validation and quarantine, relationships, billing periods."""

import datetime as dt

import polars as pl
import pytest

from cx_models.billing import BillingPeriod
from cx_models.errors import CXDataError
from cx_models.relationships import load_relationships, relationship_periods, relationships
from cx_models.subscriptions import (
    SUBSCRIPTION_REASONS,
    SubscriptionColumns,
    SubscriptionSpec,
    validate_subscriptions,
)
from cx_models.synthetic_subscriptions import generate_subscription_base

D = dt.date


def _raw():
    return pl.DataFrame({
        "customer_id": ["1", "1", "2", "", "3", "4", "5", "6", "7", "8", "9", "9", "10"],
        "start": ["2024-01-01", "2024-01-01", "2024-02-01", "2024-01-01", "", "soon",
                  "2024-01-01", "2024-05-01", "2024-01-01", "2024-01-01", "2024-01-01",
                  "2024-03-01", "2025-03-01"],
        "end": ["2024-03-31", "2024-03-31", None, None, None, None, "never",
                "2024-04-01", None, None, None, "2025-02-28", None],
        "plan": ["a", "a", "b", "a", "a", "a", "a", "a", "a", "a", "a", "b", "a"],
        "price": ["10", "10", "20", "10", "10", "10", "10", "10", "", "x", "-1", "15", "10"],
        "cancelled_at": [None] * 11 + ["2025-01-15", None],
    })


def test_every_reason_and_the_counts_add_up():
    v = validate_subscriptions(_raw(), as_of="2024-12-31")
    r = v.report
    assert r.reasons == {
        "duplicate_subscription": 1, "end_before_start": 1, "missing_customer_id": 1,
        "missing_price": 1, "missing_start": 1, "negative_price": 1, "non_numeric_price": 1,
        "unparseable_end": 1, "unparseable_start": 1,
    }
    assert set(r.reasons) <= set(SUBSCRIPTION_REASONS)
    assert r.rows_in == r.rows_used + r.rows_quarantined + r.rows_after_as_of
    assert (r.rows_in, r.rows_used, r.rows_after_as_of) == (13, 3, 1)
    q = r.quarantine
    assert q["row"].to_list() == sorted(q["row"].to_list())
    # each rejected row keeps its original values
    assert q.filter(pl.col("reason") == "non_numeric_price")["price"].to_list() == ["x"]
    assert q.filter(pl.col("reason") == "unparseable_start")["start"].to_list() == ["soon"]


def test_what_as_of_cannot_see_is_hidden():
    v = validate_subscriptions(_raw(), as_of="2024-12-31")
    row = v.data.filter(pl.col("customer_id") == 9).row(0, named=True)
    # the end (2025-02-28) and the cancellation (2025-01-15) come after as_of
    assert row["end"] is None and row["cancelled_at"] is None
    later = validate_subscriptions(_raw(), as_of="2025-01-31")
    row = later.data.filter(pl.col("customer_id") == 9).row(0, named=True)
    assert row["end"] is None and row["cancelled_at"] == D(2025, 1, 15)


def test_structural_errors_name_the_column():
    with pytest.raises(CXDataError, match=r"required column 'end' \(end\) is missing"):
        validate_subscriptions(pl.DataFrame({"customer_id": [1], "start": ["2024-01-01"]}),
                               as_of="2024-12-31")
    raw = pl.DataFrame({"cid": [1], "began": ["2024-01-01"], "stop": [None]})
    cols = SubscriptionColumns(customer="cid", start="began", end="stop")
    assert validate_subscriptions(raw, as_of="2024-12-31", columns=cols).report.rows_used == 1
    with pytest.raises(CXDataError, match="no usable subscription on or before 2023-12-31"):
        validate_subscriptions(raw, as_of="2023-12-31", columns=cols)
    bad = pl.DataFrame({"customer_id": [1], "start": [True], "end": [None]})
    with pytest.raises(CXDataError, match="'start'"):
        validate_subscriptions(bad, as_of="2024-12-31")


def test_csv_file_and_time_format(tmp_path):
    path = tmp_path / "subs.csv"
    pl.DataFrame({"customer_id": [1, 2], "start": ["01/02/2024", "15/03/2024"],
                  "end": ["31/03/2024", ""]}).write_csv(path)
    v = validate_subscriptions(path, as_of="2024-12-31", time_format="%d/%m/%Y")
    assert v.data["start"].to_list() == [D(2024, 2, 1), D(2024, 3, 15)]
    assert v.report.source.endswith("subs.csv")


def _subs(rows):
    return pl.DataFrame(rows, schema={
        "customer_id": pl.Int64, "start": pl.Date, "end": pl.Date, "plan": pl.String,
        "price": pl.Float64, "cancelled_at": pl.Date}, orient="row")


def test_relationships_join_overlaps_consecutive_rows_and_grace_gaps():
    subs = _subs([
        (1, D(2024, 1, 1), D(2024, 1, 31), "a", 10.0, None),
        (1, D(2024, 2, 1), D(2024, 2, 29), "a", 12.0, None),   # consecutive
        (1, D(2024, 2, 15), D(2024, 3, 31), "b", 12.0, None),  # overlapping
        (1, D(2024, 4, 4), None, "b", 15.0, D(2024, 11, 1)),   # 3 days without service
        (2, D(2024, 1, 1), D(2024, 6, 30), "a", 10.0, None),
    ])
    strict = relationships(subs, as_of="2024-12-31")
    assert strict.select("customer_id", "relationship", "subscriptions").rows() == [
        (1, 1, 3), (1, 2, 1), (2, 1, 1)]
    graced = relationships(subs, as_of="2024-12-31", grace_days=3)
    first = graced.row(0, named=True)
    assert (first["subscriptions"], first["start"], first["end"]) == (4, D(2024, 1, 1), None)
    assert first["active"] and first["cancellation_pending"]
    assert (first["plan"], first["price"], first["first_price"], first["price_changes"]) == (
        "b", 15.0, 10.0, 2)
    # one day short of the gap: two relationships
    assert relationships(subs, as_of="2024-12-31", grace_days=2).height == 3


def test_relationships_do_not_depend_on_what_happens_after_as_of():
    base = generate_subscription_base(2_000, seed=3)
    as_of = D(2024, 6, 30)
    full = validate_subscriptions(base.subscriptions, as_of=as_of)
    # cut every end and start after as_of out of the data, then validate again
    cut = base.subscriptions.filter(pl.col("start") <= as_of).with_columns(
        pl.when(pl.col("end") > as_of).then(None).otherwise(pl.col("end")).alias("end"),
        pl.when(pl.col("cancelled_at") > as_of).then(None)
        .otherwise(pl.col("cancelled_at")).alias("cancelled_at"),
    )
    seen = validate_subscriptions(cut, as_of=as_of)
    a = relationship_periods(relationships(full.data, as_of=as_of), as_of=as_of, period=30)
    b = relationship_periods(relationships(seen.data, as_of=as_of), as_of=as_of, period=30)
    assert a.equals(b)
    assert full.report.rows_after_as_of == base.subscriptions.height - cut.height


@pytest.mark.parametrize(("period", "ends", "expected"), [
    (30, [D(2024, 1, 1), D(2024, 1, 30), D(2024, 1, 31), D(2024, 2, 1)], [1, 1, 1, 2]),
    ("monthly", [D(2024, 1, 31), D(2024, 2, 1), D(2024, 2, 2), D(2024, 12, 31)], [1, 1, 2, 12]),
    ("annual", [D(2024, 12, 31), D(2025, 1, 1), D(2025, 1, 2)], [1, 1, 2]),
])
def test_lost_in_period_t_when_the_end_falls_in_its_interval(period, ends, expected):
    # (start + (t-1)P, start + tP] is period t
    rels = pl.DataFrame({"start": [D(2024, 1, 1)] * len(ends), "end": ends,
                         "active": [False] * len(ends)})
    out = relationship_periods(rels, as_of="2026-12-31", period=period)
    assert out["period"].to_list() == expected
    assert out["renewals"].to_list() == [t - 1 for t in expected]


def test_month_ends_clip():
    p = BillingPeriod(calendar="monthly")
    frame = pl.DataFrame({"s": [D(2024, 1, 31)] * 3,
                          "d": [D(2024, 2, 29), D(2024, 3, 1), D(2024, 3, 31)]})
    got = frame.select(p.period_of(pl.col("s"), pl.col("d"))).to_series().to_list()
    assert got == [1, 2, 2]


def test_billing_period_errors():
    with pytest.raises(CXDataError, match="monthly, annual"):
        BillingPeriod(calendar="weekly")
    with pytest.raises(CXDataError, match="not both"):
        BillingPeriod(days=30, calendar="monthly")
    with pytest.raises(CXDataError, match=">= 1"):
        BillingPeriod(days=0)
    with pytest.raises(CXDataError, match="--period-days N or --period"):
        load_relationships(_raw(), as_of="2024-12-31")
    with pytest.raises(CXDataError, match="grace_days"):
        SubscriptionSpec(grace_days=-1)


def test_load_relationships_on_a_generated_base():
    base = generate_subscription_base(3_000, seed=5)
    rels, report = load_relationships(base.subscriptions, as_of="2025-12-31",
                                      spec=SubscriptionSpec(period=30))
    assert report.rows_used == 3_000 and rels.height == 3_000
    truth = base.truth.join(rels, on="customer_id")
    lost = truth.filter(pl.col("lost"))
    # a lost customer made lost_period - 1 renewals, exactly
    assert (lost["renewals"] == lost["lost_period"] - 1).all()
    active = truth.filter(~pl.col("lost"))
    # an active one is censored no later than the truth
    assert (active["renewals"] < active["lost_period"]).all()
    assert active["cancellation_pending"].sum() > 0
