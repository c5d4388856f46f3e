"""The REST API's request bodies (pydantic v2) and the checks and JSON shapes around them.

The bounds come from :mod:`cx_models.contract` (survey scales, NPS bands, the
feature columns); :mod:`cx_models.serving.api` routes the requests.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from cx_models.serving.api_convert import (  # noqa: F401 - re-exported
    column_records,
    json_records,
    json_value,
    request_frame,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from cx_models.contract import MAX_AMOUNT, MAX_FEATURE_VALUE, NPS_BANDS, SURVEY_SCALES

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_CUSTOMERS",
    "MAX_HISTORY_CUSTOMERS",
    "CustomerFeatures",
    "HistoryRequest",
    "ScoreRequest",
    "SubscriptionRecord",
    "SubscriptionRequest",
    "SurveyRecord",
    "TransactionRecord",
    "column_records",
    "cross_field_errors",
    "field_path",
    "json_records",
    "json_value",
    "request_frame",
]

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_CUSTOMERS = 10_000
MAX_HISTORY_CUSTOMERS = 1_000

# every number is bounded (MAX_FEATURE_VALUE): a value the model cannot read is a 422, not a 500
NonNegative = Annotated[float, Field(ge=0, le=MAX_FEATURE_VALUE, allow_inf_nan=False)]
Finite = Annotated[
    float, Field(ge=-MAX_FEATURE_VALUE, le=MAX_FEATURE_VALUE, allow_inf_nan=False)
]
Count = Annotated[int, Field(ge=0, le=int(MAX_FEATURE_VALUE))]


def _on_scale(survey: str):
    """Return the type of a score or mean on the scale of ``survey`` (missing allowed)."""
    scale = SURVEY_SCALES[survey]
    return Annotated[float, Field(ge=scale.low, le=scale.high)] | None


NpsBand = Literal[tuple(name for name, _ in NPS_BANDS)]  # type: ignore[valid-type]


class CustomerFeatures(BaseModel):
    """One row of the customer feature table (days), as ``cx-models features`` writes it.

    Fields beyond these are kept aside (``model_extra``): the route accepts those
    that are the served model's customer attributes (:func:`attribute_errors`) and
    rejects any other.
    """

    model_config = ConfigDict(extra="allow")

    customer_id: int | str
    frequency: Count
    recency: NonNegative
    T: NonNegative
    monetary_value: NonNegative
    n_transactions: Count = 1
    total_spend: NonNegative = 0.0
    mean_spend: NonNegative = 0.0
    days_since_last_purchase: NonNegative
    tenure_days: NonNegative
    mean_gap_days: NonNegative | None = None
    std_gap_days: NonNegative | None = None
    gap_ratio: NonNegative | None = None
    purchases_30d: Count = 0
    spend_30d: NonNegative = 0.0
    purchases_trend_30d: int = 0
    spend_trend_30d: Finite = 0.0
    purchases_90d: Count = 0
    spend_90d: NonNegative = 0.0
    purchases_trend_90d: int = 0
    spend_trend_90d: Finite = 0.0
    purchases_180d: Count = 0
    spend_180d: NonNegative = 0.0
    purchases_trend_180d: int = 0
    spend_trend_180d: Finite = 0.0
    nps_latest: _on_scale("nps") = None
    nps_mean: _on_scale("nps") = None
    nps_count: Count = 0
    nps_days_since: NonNegative | None = None
    csat_latest: _on_scale("csat") = None
    csat_mean: _on_scale("csat") = None
    csat_count: Count = 0
    csat_days_since: NonNegative | None = None
    ces_latest: _on_scale("ces") = None
    ces_mean: _on_scale("ces") = None
    ces_count: Count = 0
    ces_days_since: NonNegative | None = None
    nps_category: NpsBand | None = None

    @model_validator(mode="after")
    def _rfm_rules(self):
        if self.recency > self.T:
            raise ValueError("recency must be <= T")
        if self.frequency == 0 and self.recency > 0:
            raise ValueError("customers with frequency 0 must have recency 0")
        return self


class ScoreRequest(BaseModel):
    """Body of ``POST /score``."""

    model_config = ConfigDict(extra="forbid")
    customers: Annotated[list[CustomerFeatures], Field(min_length=1, max_length=MAX_CUSTOMERS)]
    #: A central level (e.g. 0.9): adds each customer's purchase and CLV intervals.
    intervals: Annotated[float | None, Field(gt=0.0, lt=1.0)] = None


def _text_timestamp(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("timestamp must be ISO 8601 text (2024-06-30 or 2024-06-30T14:05:00), "
                         "not a number")
    return value


def _naive_utc(value: dt.datetime | dt.date) -> dt.datetime:
    """Datetimes with a time zone are converted to UTC and made naive, as files' are."""
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


#: An event's time: ISO 8601 text, naive or with an offset (then converted to naive UTC).
Timestamp = Annotated[
    dt.datetime | dt.date, BeforeValidator(_text_timestamp), AfterValidator(_naive_utc)
]


def _present_id(value):
    if isinstance(value, str) and not value.strip():
        raise ValueError("customer_id must not be empty")
    return value


#: A record's customer id: an integer or a non-empty text.
RecordId = Annotated[int | str, AfterValidator(_present_id)]


def _few_customers(ids: set) -> None:
    if len(ids) > MAX_HISTORY_CUSTOMERS:
        raise ValueError(f"at most {MAX_HISTORY_CUSTOMERS} customers per request")


class TransactionRecord(BaseModel):
    """One order in the default column contract, plus the served model's extra columns."""

    model_config = ConfigDict(extra="allow")
    customer_id: RecordId
    timestamp: Timestamp
    amount: Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]


class SurveyRecord(BaseModel):
    """One survey answer in the default column contract."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int | str
    timestamp: Timestamp
    survey: str
    score: Annotated[float, Field(allow_inf_nan=False)]

    @field_validator("survey")
    @classmethod
    def _known_survey(cls, value: str) -> str:
        kind = value.strip().lower()
        if kind not in SURVEY_SCALES:
            raise ValueError(f"survey must be one of {', '.join(SURVEY_SCALES)}")
        return kind

    @model_validator(mode="after")
    def _in_scale(self):
        scale = SURVEY_SCALES[self.survey]
        low, high = scale.low, scale.high
        if not (low <= self.score <= high) or self.score != int(self.score):
            raise ValueError(f"{self.survey} score must be a whole number from {low} to {high}")
        return self


class AttributeRecord(BaseModel):
    """One customer's attributes: ``customer_id`` and the served model's attribute fields."""

    model_config = ConfigDict(extra="allow")
    customer_id: int | str


class HistoryRequest(BaseModel):
    """Body of ``POST /score/history``."""

    model_config = ConfigDict(extra="forbid")
    as_of: dt.date
    transactions: Annotated[list[TransactionRecord], Field(min_length=1)]
    surveys: list[SurveyRecord] = []
    attributes: list[AttributeRecord] = []
    intervals: Annotated[float | None, Field(gt=0.0, lt=1.0)] = None

    @model_validator(mode="after")
    def _few_customers(self):
        _few_customers({t.customer_id for t in self.transactions})
        return self


class SubscriptionRecord(BaseModel):
    """One subscription in the default column contract (``end``: last day of service)."""

    model_config = ConfigDict(extra="forbid")
    customer_id: RecordId
    start: dt.date
    end: dt.date | None = None
    plan: str | None = None
    price: Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)] | None = None
    cancelled_at: dt.date | None = None

    @model_validator(mode="after")
    def _end_after_start(self):
        if self.end is not None and self.end < self.start:
            raise ValueError("end (the last day of service) must be on or after start")
        return self


class SubscriptionRequest(BaseModel):
    """Body of ``POST /score/subscriptions``: the relationships' rows seen on ``as_of``."""

    model_config = ConfigDict(extra="forbid")
    as_of: dt.date
    subscriptions: Annotated[list[SubscriptionRecord], Field(min_length=1)]
    surveys: list[SurveyRecord] = []
    attributes: list[AttributeRecord] = []
    explain: bool = True

    @model_validator(mode="after")
    def _few_customers(self):
        _few_customers({s.customer_id for s in self.subscriptions})
        return self


_UNION_TAGS = {"datetime", "date", "int", "str", "float", "bool", "none", "list", "dict"}


def field_path(loc) -> str:
    """Return the dotted path of a field; union member tags such as ``datetime`` are left out."""
    parts = [
        str(p)
        for p in loc
        if p != "body" and not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p))
    ]
    return ".".join(parts) if parts else "body"


def cross_field_errors(body) -> list[dict]:
    """Check the RFM rules of records that other errors kept pydantic from checking.

    A record with a missing or malformed field never reaches its model validator;
    its ``recency`` and ``T`` (and ``frequency``) are still checked here when they
    are numbers, so one 422 lists every problem.
    """
    customers = body.get("customers") if isinstance(body, dict) else None
    if not isinstance(customers, list):
        return []

    def number(value):
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    found = []
    for i, record in enumerate(customers):
        if not isinstance(record, dict):
            continue
        recency, t, freq = (number(record.get(k)) for k in ("recency", "T", "frequency"))
        if recency is not None and t is not None and recency > t:
            found.append(
                {
                    "field": f"customers.{i}.recency",
                    "message": "recency must be <= T",
                    "type": "value_error",
                }
            )
        elif freq == 0 and recency is not None and recency > 0:
            found.append(
                {
                    "field": f"customers.{i}.recency",
                    "message": "customers with frequency 0 must have recency 0",
                    "type": "value_error",
                }
            )
    return found


def attribute_errors(
    customers, categories: dict, attributes: list[str], where: str = "customers",
    what: str = "attributes",
) -> list[dict]:
    """Return the errors of the customers' extra fields against the model's attributes.

    ``customers`` are validated :class:`CustomerFeatures` or the raw dicts of a
    body that failed validation. A field that is not one of ``attributes`` is
    unknown; a categorical attribute takes a text, number or null, a numeric one
    a finite number or null.
    """
    errors = []
    base = where
    known_fields = set(CustomerFeatures.model_fields)
    for i, customer in enumerate(customers):
        if isinstance(customer, dict):
            extra = {k: v for k, v in customer.items() if k not in known_fields}
        else:
            extra = customer.model_extra or {}
        for name, value in extra.items():
            where = f"{base}.{i}.{name}"
            if name not in attributes:
                known = ", ".join(attributes) if attributes else "none"
                errors.append({"field": where, "type": "extra_forbidden",
                               "message": f"unknown field (the model's {what}: {known})"})
            elif value is not None and not isinstance(value, str | int | float) or (
                isinstance(value, bool)
            ):
                errors.append({"field": where, "type": "attribute_type",
                               "message": "an attribute is a text, a number or null"})
            elif name not in categories and value is not None and (
                isinstance(value, str) or not math.isfinite(value)
            ):
                errors.append({"field": where, "type": "attribute_type",
                               "message": "a numeric attribute: a finite number or null"})
    return errors
