import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cx_models.errors import CXDataError
from cx_models.schemas import (
    QUARANTINE_REASONS,
    SurveyColumns,
    TransactionColumns,
    quarantine_table,
    survey_scales,
    validate_surveys,
    validate_transactions,
    write_quarantine,
)

AS_OF = "2024-06-30"


def tx_frame(rows):
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])


def invariant(report):
    return report.rows_in == report.rows_used + report.rows_quarantined + report.rows_after_as_of


# -- every transaction quarantine reason -----------------------------------------------------
@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ((None, "2024-01-01", 1.0), "missing_customer_id"),
        (("", "2024-01-01", 1.0), "missing_customer_id"),
        (("c1", None, 1.0), "missing_timestamp"),
        (("c1", "yesterday", 1.0), "unparseable_timestamp"),
        (("c1", "2024-13-45", 1.0), "unparseable_timestamp"),
        (("c1", "2024-01-01", None), "missing_amount"),
        (("c1", "2024-01-01", "twelve"), "non_numeric_amount"),
        (("c1", "2024-01-01", "nan"), "non_finite_amount"),
        (("c1", "2024-01-01", "inf"), "non_finite_amount"),
        (("c1", "2024-01-01", "-3.5"), "negative_amount"),
        (("c1", "2024-01-01", "1e39"), "amount_too_large"),
        (("c1", "2024-01-01", 1e308), "amount_too_large"),
    ],
)
def test_transaction_reason(row, reason):
    good = ("c2", "2024-01-02", "5.0")
    v = validate_transactions(tx_frame([good, row]), as_of=AS_OF)
    assert v.report.reasons == {reason: 1}
    assert v.report.rows_used == 1
    assert v.report.quarantine["row"].to_list() == [1]
    assert v.report.quarantine["reason"].to_list() == [reason]
    assert invariant(v.report)


def test_zero_amount_is_a_purchase():
    v = validate_transactions(tx_frame([("a", "2024-01-01", 0.0)]), as_of=AS_OF)
    assert v.report.rows_used == 1
    assert v.data["amount"].to_list() == [0.0]


# -- every survey quarantine reason ---------------------------------------------------------
@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ((None, "2024-01-01", "nps", 9), "missing_customer_id"),
        (("c1", None, "nps", 9), "missing_timestamp"),
        (("c1", "not a date", "nps", 9), "unparseable_timestamp"),
        (("c1", "2024-01-01", None, 9), "missing_survey_type"),
        (("c1", "2024-01-01", "csi", 9), "unknown_survey_type"),
        (("c1", "2024-01-01", "nps", None), "missing_score"),
        (("c1", "2024-01-01", "nps", "great"), "non_numeric_score"),
        (("c1", "2024-01-01", "nps", "nan"), "non_numeric_score"),
        (("c1", "2024-01-01", "nps", "8.5"), "non_integer_score"),
        (("c1", "2024-01-01", "nps", 11), "out_of_range_score"),
        (("c1", "2024-01-01", "nps", -1), "out_of_range_score"),
        (("c1", "2024-01-01", "csat", 0), "out_of_range_score"),
        (("c1", "2024-01-01", "csat", 6), "out_of_range_score"),
        (("c1", "2024-01-01", "ces", 8), "out_of_range_score"),
        (("c1", "2024-01-01", "ces", 0), "out_of_range_score"),
    ],
)
def test_survey_reason(row, reason):
    good = ("c2", "2024-01-02", "NPS", "10")
    frame = pd.DataFrame(
        [good, row], columns=["customer_id", "timestamp", "survey", "score"], dtype=object
    )
    v = validate_surveys(frame, as_of=AS_OF)
    assert v.report.reasons == {reason: 1}
    assert v.data["survey"].to_list() == ["nps"]
    assert invariant(v.report)


def test_survey_scale_edges_accepted():
    rows = [
        ("a", "2024-01-01", s, x)
        for s, x in [("nps", 0), ("nps", 10), ("CSAT", 1), ("csat", 5), ("Ces", 1), ("ces", 7)]
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "survey", "score"])
    v = validate_surveys(frame, as_of=AS_OF)
    assert v.report.rows_quarantined == 0
    assert v.data["survey"].to_list() == ["nps", "nps", "csat", "csat", "ces", "ces"]


def test_ces_direction_is_declared_not_guessed():
    assert survey_scales()["ces"].higher_is_better is False
    assert survey_scales(ces_higher_is_better=True)["ces"].higher_is_better is True


# -- counts ---------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "", None, "17"]),
            st.sampled_from(["2024-01-01", "2024-06-30 23:59:59", "2024-07-01", "garbage", None]),
            st.sampled_from(["1.5", "0", "-2", "x", "nan", None, "1e3"]),
        ),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
)
def test_rows_in_equals_used_plus_quarantined_plus_after(rows, drop):
    frame = tx_frame(rows)
    try:
        v = validate_transactions(frame, as_of=AS_OF, drop_duplicates=drop)
    except CXDataError as exc:
        assert "no usable transaction" in str(exc)
        return
    r = v.report
    assert invariant(r)
    assert sum(r.reasons.values()) == r.rows_quarantined == r.quarantine.height
    assert v.data.height == r.rows_used
    assert set(r.reasons) <= set(QUARANTINE_REASONS)


def test_as_of_includes_its_whole_day():
    frame = tx_frame(
        [
            ("a", "2024-06-30 00:00:00", 1),
            ("a", "2024-06-30 23:59:59", 1),
            ("a", "2024-07-01 00:00:00", 1),
        ]
    )
    v = validate_transactions(frame, as_of="2024-06-30")
    assert (v.report.rows_used, v.report.rows_after_as_of) == (2, 1)
    v2 = validate_transactions(frame, as_of=dt.datetime(2024, 6, 30, 8, 0))
    assert v2.report.rows_used == 2


def test_time_zones_converted_to_utc_and_naive():
    frame = tx_frame([("a", "2024-06-30T23:30:00-02:00", 1), ("a", "2024-06-30T10:00:00", 1)])
    v = validate_transactions(frame, as_of="2024-06-30")
    # 23:30 at UTC-2 is 01:30 UTC on July 1st: after as_of.
    assert v.report.rows_after_as_of == 1
    assert v.data["timestamp"].to_list() == [dt.datetime(2024, 6, 30, 10, 0)]
    assert v.data["timestamp"].dtype.time_zone is None


def test_aware_pandas_timestamps():
    ts = pd.to_datetime(["2024-01-01 05:00"]).tz_localize("America/New_York")
    frame = pd.DataFrame({"customer_id": [1], "timestamp": ts, "amount": [2.0]})
    v = validate_transactions(frame, as_of=AS_OF)
    assert v.data["timestamp"].to_list() == [dt.datetime(2024, 1, 1, 10, 0)]


def test_time_format_for_compact_dates():
    frame = pd.DataFrame({"customer_id": [1], "timestamp": [19970101], "amount": [2.0]})
    with pytest.raises(CXDataError, match=r"'timestamp'.*integers.*--time-format"):
        validate_transactions(frame, as_of="1997-09-30")
    v = validate_transactions(frame, as_of="1997-09-30", time_format="%Y%m%d")
    assert v.data["timestamp"].to_list() == [dt.datetime(1997, 1, 1)]


def test_duplicates_counted_kept_or_dropped():
    rows = [
        ("a", "2024-01-01", 1),
        ("a", "2024-01-01", 1),
        ("a", "2024-01-01", 1),
        ("b", "2024-01-01", 1),
    ]
    kept = validate_transactions(tx_frame(rows), as_of=AS_OF)
    assert kept.report.duplicate_rows == 2 and kept.report.rows_used == 4
    dropped = validate_transactions(tx_frame(rows), as_of=AS_OF, drop_duplicates=True)
    assert dropped.report.duplicate_rows == 2
    assert dropped.report.rows_used == 2
    assert dropped.report.reasons == {"duplicate_row": 2}
    assert invariant(dropped.report)
    # asking for it is not a data error under --strict
    strict = validate_transactions(tx_frame(rows), as_of=AS_OF, drop_duplicates=True, strict=True)
    assert strict.report.rows_used == 2


def test_strict_turns_quarantine_into_error():
    rows = [("a", "2024-01-01", 1), ("b", "2024-01-01", -1)]
    with pytest.raises(CXDataError, match=r"--strict.*negative_amount: 1.*rows \(0-based\): 1"):
        validate_transactions(tx_frame(rows), as_of=AS_OF, strict=True)


# -- customer id types ----------------------------------------------------------------------
def test_integer_ids_with_empty_cells_stay_integer(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text(
        "customer_id,timestamp,amount\n1,2024-01-01,3\n,2024-01-01,3\n22,2024-01-02,1\n"
    )
    v = validate_transactions(path, as_of=AS_OF)
    assert v.data["customer_id"].dtype == pl.Int64
    assert v.data["customer_id"].to_list() == [1, 22]
    assert v.report.reasons == {"missing_customer_id": 1}


def test_pandas_nullable_and_float_integer_ids():
    frame = pd.DataFrame(
        {"customer_id": [1.0, None, 3.0], "timestamp": ["2024-01-01"] * 3, "amount": [1, 2, 3]}
    )
    v = validate_transactions(frame, as_of=AS_OF)
    assert v.data["customer_id"].dtype == pl.Int64
    assert v.data["customer_id"].to_list() == [1, 3]


def test_codes_with_leading_zeros_stay_text(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\n00042,2024-01-01,3\n7,2024-01-01,3\n")
    v = validate_transactions(path, as_of=AS_OF)
    assert v.data["customer_id"].dtype == pl.String
    assert v.data["customer_id"].to_list() == ["00042", "7"]


def test_fractional_float_ids_are_structural():
    frame = pd.DataFrame({"customer_id": [1.5], "timestamp": ["2024-01-01"], "amount": [1]})
    with pytest.raises(CXDataError, match=r"'customer_id'.*non-integer"):
        validate_transactions(frame, as_of=AS_OF)


# -- structural errors ----------------------------------------------------------------------
def test_missing_column_names_file_column_and_flag(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("cust,timestamp,amount\n1,2024-01-01,3\n")
    with pytest.raises(
        CXDataError,
        match=r"orders\.csv: required column 'customer_id'.*found columns: 'cust'.*"
        r"--customer-col",
    ):
        validate_transactions(path, as_of=AS_OF)
    v = validate_transactions(path, as_of=AS_OF, columns=TransactionColumns(customer="cust"))
    assert v.data.columns == ["customer_id", "timestamp", "amount"]


def test_missing_survey_column_names_survey_flag():
    frame = pd.DataFrame(
        {"customer_id": [1], "timestamp": ["2024-01-01"], "kind": ["nps"], "score": [3]}
    )
    with pytest.raises(CXDataError, match=r"'survey' \(survey\).*--survey-col"):
        validate_surveys(frame, as_of=AS_OF)
    v = validate_surveys(frame, as_of=AS_OF, columns=SurveyColumns(survey="kind"))
    assert v.report.rows_used == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"missing\.csv: transactions file not found"),
        ("", r"transactions file is empty"),
        ("customer_id,timestamp,amount\n", r"no usable transaction: the input has no rows"),
        (
            "customer_id,timestamp,amount\n,2024-01-01,1\n1,2024-01-01,-1\n",
            r"every one of the 2 rows was quarantined "
            r"\(missing_customer_id: 1, negative_amount: 1\)",
        ),
        (
            "customer_id,timestamp,amount\n1,2025-01-01,1\n",
            r"all 1 rows are dated after as_of 2024-06-30",
        ),
        ("customer_id,timestamp,amount\n1,01/02/2024,1\n", r"--time-format"),
        ('customer_id,timestamp,amount\n1,2024-01-01,1,9,9\n"unterminated', r"cannot read"),
    ],
)
def test_structural_errors(tmp_path, content, message):
    path = tmp_path / ("missing.csv" if content is None else "tx.csv")
    if content is not None:
        path.write_text(content)
    with pytest.raises(CXDataError, match=message):
        validate_transactions(path, as_of=AS_OF)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "tx.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(CXDataError, match=r"tx\.parquet: cannot read the transactions file"):
        validate_transactions(path, as_of=AS_OF)


def test_unknown_extension(tmp_path):
    path = tmp_path / "tx.xlsx"
    path.write_text("x")
    with pytest.raises(CXDataError, match=r"tx\.xlsx.*\.csv or \.parquet"):
        validate_transactions(path, as_of=AS_OF)


def test_bad_as_of():
    with pytest.raises(CXDataError, match=r"as_of '30/06/2024' is not a date: expected YYYY-MM-DD"):
        validate_transactions(tx_frame([("a", "2024-01-01", 1)]), as_of="30/06/2024")


# -- inputs of every kind agree ---------------------------------------------------------------
def test_csv_parquet_pandas_polars_agree(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["x", "y", "x"],
            "timestamp": pd.to_datetime(
                ["2024-01-01 00:00", "2024-02-01 00:00", "2024-03-01 12:00"]
            ),
            "amount": [1.0, 2.5, -1.0],
            "extra": ["ignored", "too", "yes"],
        }
    )
    csv, pq = tmp_path / "t.csv", tmp_path / "t.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(pq)
    results = [
        validate_transactions(src, as_of=AS_OF) for src in (frame, pl.from_pandas(frame), csv, pq)
    ]
    for v in results:
        assert v.data.sort("timestamp").to_dicts() == results[0].data.sort("timestamp").to_dicts()
        assert v.report.reasons == {"negative_amount": 1}


def test_quarantine_file_has_every_rejected_row_of_every_input(tmp_path):
    tx = tx_frame([("a", "2024-01-01", 1), ("b", "bad", 1), ("c", "2024-01-01", "x")])
    sv = pd.DataFrame(
        {
            "customer_id": ["a", "a"],
            "timestamp": ["2024-01-01"] * 2,
            "survey": ["nps", "foo"],
            "score": [9, 9],
        }
    )
    t = validate_transactions(tx, as_of=AS_OF)
    s = validate_surveys(sv, as_of=AS_OF)
    table = quarantine_table(t.report, s.report)
    assert table.columns[:3] == ["source", "row", "reason"]
    assert table.select("source", "row", "reason").rows() == [
        ("transactions", 1, "unparseable_timestamp"),
        ("transactions", 2, "non_numeric_amount"),
        ("surveys", 1, "unknown_survey_type"),
    ]
    # original values kept
    assert table["timestamp"].to_list()[0] == "bad"
    assert table["survey"].to_list()[2] == "foo"
    out = write_quarantine(tmp_path / "q.parquet", t.report, s.report)
    assert pl.read_parquet(out).height == 3
    out_csv = write_quarantine(tmp_path / "q.csv", t.report, s.report)
    assert pl.read_csv(out_csv).height == 3


def test_one_extreme_customer_never_makes_an_infinite_feature():
    from cx_models.contract import MAX_AMOUNT
    from cx_models.features import build_customer_features

    rows = [("a", "2024-01-01", 1e308), ("a", "2024-02-01", 1e308), ("a", "2024-03-01", 1e308),
            ("a", "2024-04-01", 10.0), ("b", "2024-01-05", MAX_AMOUNT), ("b", "2024-02-05",
            MAX_AMOUNT), ("c", "2024-01-09", 1e39)]
    v = validate_transactions(tx_frame(rows), as_of=AS_OF)
    assert v.report.reasons == {"amount_too_large": 4} and invariant(v.report)
    f = build_customer_features(tx_frame(rows), as_of=AS_OF)
    assert sorted(f["customer_id"]) == ["a", "b"]  # c had no usable row
    numeric = f.select_dtypes("number").to_numpy(dtype=float, na_value=0.0)
    assert np.isfinite(numeric).all()
    assert f.set_index("customer_id").loc["b", "total_spend"] == 2 * MAX_AMOUNT
