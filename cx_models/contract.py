"""The data contract's vocabulary, defined once: columns, scales, reasons, rules.

Every engine (polars validation, Spark validation, the API's pydantic models, the
scorer) reads these names and rules from here instead of restating them:

* the input column roles (:class:`TransactionColumns`, :class:`SurveyColumns`) and
  the missing-column check (:func:`require_columns`);
* the declared survey scales (:data:`SURVEY_SCALES`, :func:`survey_scales`), their
  0-100 normalisation (:func:`score_0_100`) and the NPS bands (:data:`NPS_BANDS`);
* the quarantine reasons (:data:`QUARANTINE_REASONS`);
* the customer-id type rule (:data:`INTEGER_ID_PATTERN`, :func:`decide_id_type`);
* the output column lists (:func:`feature_columns`, :data:`SCORE_COLUMNS`,
  :data:`EXTRA_COLUMNS`);
* the atomic write every output goes through (:func:`atomic_output`, defined in
  :mod:`cx_models.outputs` with the other rules for outputs).

Errors here describe the data; the command line adds its flag names
(:meth:`TransactionColumns.roles` carries them for the missing-column message).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cx_models.errors import CXDataError
from cx_models.outputs import atomic_output  # noqa: F401 - defined with the other output rules

__all__ = [
    "BTYD_COLUMNS",
    "EXTRA_COLUMNS",
    "INTEGER_ID_PATTERN",
    "MAX_AMOUNT",
    "MAX_FEATURE_VALUE",
    "NPS_BANDS",
    "QUARANTINE_REASONS",
    "REQUESTED_REASONS",
    "ROW_INDEX",
    "SCORE_COLUMNS",
    "SURVEY_SCALES",
    "SURVEY_TYPES",
    "SurveyColumns",
    "SurveyScale",
    "TransactionColumns",
    "WINDOWS_DAYS",
    "atomic_output",
    "decide_id_type",
    "feature_columns",
    "nps_category",
    "require_columns",
    "score_0_100",
    "survey_scales",
]


# --------------------------------------------------------------------------- input columns
@dataclass(frozen=True)
class TransactionColumns:
    """Names of the transaction columns in the user's data.

    Examples
    --------
    >>> TransactionColumns(customer="cust", amount="value").amount
    'value'
    """

    customer: str = "customer_id"
    time: str = "timestamp"
    amount: str = "amount"

    def roles(self) -> dict[str, tuple[str, str]]:
        """Map canonical name to (user column, CLI flag)."""
        return {
            "customer_id": (self.customer, "--customer-col"),
            "timestamp": (self.time, "--time-col"),
            "amount": (self.amount, "--amount-col"),
        }


@dataclass(frozen=True)
class SurveyColumns:
    """Names of the survey columns in the user's data.

    Examples
    --------
    >>> SurveyColumns(survey="type").survey
    'type'
    """

    customer: str = "customer_id"
    time: str = "timestamp"
    survey: str = "survey"
    score: str = "score"

    def roles(self) -> dict[str, tuple[str, str]]:
        """Map canonical name to (user column, CLI flag)."""
        return {
            "customer_id": (self.customer, "--survey-customer-col"),
            "timestamp": (self.time, "--survey-time-col"),
            "survey": (self.survey, "--survey-col"),
            "score": (self.score, "--score-col"),
        }


def require_columns(
    present: Iterable[str], source: str, roles: dict[str, tuple[str, str]]
) -> None:
    """Raise a clear error naming the first required column that is missing.

    Examples
    --------
    >>> require_columns(["customer_id", "timestamp"], "t.csv", TransactionColumns().roles())
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: t.csv: required column 'amount' (amount) is missing; found \
columns: 'customer_id', 'timestamp'. Map another column with --amount-col
    """
    names = [c for c in present if c != ROW_INDEX]
    for canonical, (column, flag) in roles.items():
        if column not in names:
            found = ", ".join(repr(c) for c in names) or "none"
            raise CXDataError(
                f"{source}: required column {column!r} ({canonical}) is missing; "
                f"found columns: {found}. Map another column with {flag}"
            )


# --------------------------------------------------------------------------- survey scales
@dataclass(frozen=True)
class SurveyScale:
    """A declared survey scale: integer scores from ``low`` to ``high``.

    Examples
    --------
    >>> SURVEY_SCALES["ces"].higher_is_better
    False
    """

    name: str
    low: int
    high: int
    higher_is_better: bool


#: Declared scales: NPS 0-10 and CSAT 1-5 (higher is better); CES 1-7 where,
#: by default, 1 = very low effort is best.
SURVEY_SCALES: dict[str, SurveyScale] = {
    "nps": SurveyScale("nps", 0, 10, True),
    "csat": SurveyScale("csat", 1, 5, True),
    "ces": SurveyScale("ces", 1, 7, False),
}
#: Survey types, in output order.
SURVEY_TYPES = tuple(SURVEY_SCALES)

#: NPS bands by the latest answer, highest first: (name, lowest score in the band).
NPS_BANDS: tuple[tuple[str, int], ...] = (("promoter", 9), ("passive", 7), ("detractor", 0))


def survey_scales(*, ces_higher_is_better: bool = False) -> dict[str, SurveyScale]:
    """Return the declared survey scales, with the CES direction as given.

    Examples
    --------
    >>> survey_scales(ces_higher_is_better=True)["ces"].higher_is_better
    True
    """
    ces = SURVEY_SCALES["ces"]
    return {**SURVEY_SCALES, "ces": SurveyScale("ces", ces.low, ces.high, ces_higher_is_better)}


def score_0_100(survey: str, values, *, ces_higher_is_better: bool = False):
    """Put answers on 0-100 where 100 is the best answer of the declared scale.

    Works on numbers and NumPy arrays alike (missing stays NaN).

    Examples
    --------
    >>> score_0_100("csat", 5.0), score_0_100("ces", 1.0), score_0_100("nps", 7.0)
    (100.0, 100.0, 70.0)
    """
    scale = survey_scales(ces_higher_is_better=ces_higher_is_better)[survey]
    span = float(scale.high - scale.low)
    best_high = (values - scale.low) / span
    return (best_high if scale.higher_is_better else 1.0 - best_high) * 100.0


def nps_category(score: float | None) -> str | None:
    """Return the NPS band of one answer (``None`` when missing).

    Examples
    --------
    >>> nps_category(9), nps_category(8), nps_category(0), nps_category(None)
    ('promoter', 'passive', 'detractor', None)
    """
    if score is None or score != score:
        return None
    for name, lowest in NPS_BANDS:
        if score >= lowest:
            return name
    return None


# --------------------------------------------------------------------------- quarantine
#: Every quarantine reason, with what it means.
QUARANTINE_REASONS: dict[str, str] = {
    "missing_customer_id": "the customer id is empty",
    "missing_timestamp": "the timestamp is empty",
    "unparseable_timestamp": "the timestamp cannot be read as a date or datetime",
    "missing_amount": "the amount is empty",
    "non_numeric_amount": "the amount is not a number",
    "non_finite_amount": "the amount is NaN or infinite",
    "negative_amount": "the amount is negative (returns are not purchases)",
    "amount_too_large": "the amount is above MAX_AMOUNT (1e15): no real order, and sums of such "
    "amounts overflow",
    "missing_survey_type": "the survey type is empty",
    "unknown_survey_type": "the survey type is not one of nps, csat, ces",
    "missing_score": "the score is empty",
    "non_numeric_score": "the score is not a finite number",
    "non_integer_score": "the score is not a whole number on its scale",
    "out_of_range_score": "the score is outside its declared scale",
    "non_numeric_extra": "a declared numeric transaction column (--tx-numeric) holds text or "
    "a NaN or infinite value",
    "extra_too_large": "a declared numeric transaction column (--tx-numeric) is above 1e15 in "
    "magnitude",
    "duplicate_row": "an exact copy of an earlier row, dropped on request (--drop-duplicates)",
}
#: The largest amount one order may carry; larger ones are quarantined (``amount_too_large``).
#: It keeps every sum of a customer's amounts finite and within the 32-bit floats the churn
#: model reads, so that one extreme row cannot sink a whole base.
MAX_AMOUNT = 1e15
#: The largest magnitude of a feature value the scorer accepts (the API answers 422 above it).
MAX_FEATURE_VALUE = 1e30
#: Reasons that ``strict`` does not turn into an error: the user asked for them.
REQUESTED_REASONS = frozenset({"duplicate_row"})
#: Column carrying each row's number in the whole input when a file is read in chunks.
ROW_INDEX = "__cx_row"


# --------------------------------------------------------------------------- customer ids
#: Text ids are integers when every present id matches this: no sign but minus, no
#: leading zeros (``00042`` is a code), at most 18 digits (fits Int64).
INTEGER_ID_PATTERN = r"^-?(0|[1-9][0-9]{0,17})$"


def decide_id_type(
    kind: str,
    *,
    source: str,
    column: str,
    all_whole: bool = True,
    present: int = 0,
    all_integer_text: bool = False,
) -> str:
    """Apply the customer-id rule: return ``"int"`` or ``"str"`` for a column of the given kind.

    ``kind`` is ``"int"``, ``"float"``, ``"bool"`` or ``"text"`` (anything else);
    the engine computes the aggregates: for floats whether every present value is
    whole, for text how many ids are present and whether all match
    :data:`INTEGER_ID_PATTERN`.

    Examples
    --------
    >>> decide_id_type("text", source="t.csv", column="c", present=3, all_integer_text=True)
    'int'
    >>> decide_id_type("text", source="t.csv", column="c", present=0)
    'str'
    """
    if kind == "int":
        return "int"
    if kind == "bool":
        raise CXDataError(f"{source}: column {column!r} (customer id) is boolean; expected ids")
    if kind == "float":
        if not all_whole:
            raise CXDataError(
                f"{source}: column {column!r} (customer id) holds non-integer numbers; "
                "expected integer or text ids"
            )
        return "int"
    return "int" if present and all_integer_text else "str"


# --------------------------------------------------------------------------- output columns
#: The BTYD summary columns, in the table's time unit.
BTYD_COLUMNS = ("frequency", "recency", "T", "monetary_value")
#: Recent-activity windows, in days.
WINDOWS_DAYS = (30, 90, 180)


def feature_columns() -> list[str]:
    """Return every feature column name, in output order.

    Examples
    --------
    >>> feature_columns()[:5]
    ['customer_id', 'frequency', 'recency', 'T', 'monetary_value']
    """
    cols = ["customer_id", *BTYD_COLUMNS]
    cols += [
        "n_transactions",
        "total_spend",
        "mean_spend",
        "days_since_last_purchase",
        "tenure_days",
        "mean_gap_days",
        "std_gap_days",
        "gap_ratio",
    ]
    for w in WINDOWS_DAYS:
        cols += [f"purchases_{w}d", f"spend_{w}d", f"purchases_trend_{w}d", f"spend_trend_{w}d"]
    for s in SURVEY_TYPES:
        cols += [f"{s}_latest", f"{s}_mean", f"{s}_count", f"{s}_days_since"]
    cols.append("nps_category")
    return cols


#: The scoring contract's columns, in order.
SCORE_COLUMNS = (
    "customer_id",
    "p_alive",
    "expected_purchases",
    "prob_no_purchase",
    "expected_order_value",
    "clv",
    "churn_risk",
    "csat_score",
    "nps_score",
    "ces_score",
    "retention_score",
    "value_score",
    "experience_score",
    "nco",
    "nco_coverage",
    "value_at_risk",
    "priority_rank",
    "drivers",
)
#: Raw survey answers appended after the contract's columns, for reports and summaries.
EXTRA_COLUMNS = tuple(f"{s}_latest" for s in SURVEY_TYPES)
