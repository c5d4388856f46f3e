"""The settings a run carries, as typed, frozen objects built once at each face.

* :class:`EventFormat` — how to read an export: column names, time formats,
  ``strict``, ``drop_duplicates`` and the declared CES direction;
* :class:`FeatureSpec` — how the customer features are defined: the time unit of
  the BTYD columns and the survey look-back. A trained scorer carries its spec,
  so every scoring path builds features the way the model learned them;
* :class:`SnapshotPlan` — where the labelled churn snapshots go (horizon, step,
  count) and the feature definition they are built with;
* :class:`ScoreParams` — how to score: horizon, CLV months, discount rate,
  explanations; the one translator to and from the pyfunc model's params.

The command line, the Python API, the REST API and Spark build these once and
pass them down whole. Errors describe the setting by its Python name; the command
line maps names to its flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from cx_models.contract import SurveyColumns, SurveyScale, TransactionColumns, survey_scales
from cx_models.errors import CXDataError
from cx_models.timeutil import check_time_format, check_time_unit
from cx_models.transaction_extras import TransactionExtras

__all__ = [
    "CLV_MONTHS_MAX",
    "EventFormat",
    "FeatureSpec",
    "HORIZON_DAYS_MAX",
    "MAX_TRAINING_ROWS",
    "ScoreParams",
    "SnapshotPlan",
    "TransactionExtras",
    "check_time_format",
]

#: The longest prediction horizon accepted: 100 years of days.
HORIZON_DAYS_MAX = 36_525
#: The longest CLV horizon accepted, in months (50 years).
CLV_MONTHS_MAX = 600

@dataclass(frozen=True)
class EventFormat:
    """How to read a transactions export and a survey export.

    Examples
    --------
    >>> fmt = EventFormat(transactions=TransactionColumns(customer="cust"), time_format="%Y%m%d")
    >>> fmt.survey_time_format_or_default
    '%Y%m%d'
    """

    transactions: TransactionColumns = field(default_factory=TransactionColumns)
    surveys: SurveyColumns = field(default_factory=SurveyColumns)
    time_format: str | None = None
    survey_time_format: str | None = None
    strict: bool = False
    drop_duplicates: bool = False
    ces_higher_is_better: bool = False

    def __post_init__(self):
        check_time_format(self.time_format, name="time_format")
        check_time_format(self.survey_time_format, name="survey_time_format")

    @property
    def survey_time_format_or_default(self) -> str | None:
        """The survey timestamps' format: their own, else the transactions'."""
        return self.survey_time_format or self.time_format

    def scales(self) -> dict[str, SurveyScale]:
        """Return the declared survey scales with this export's CES direction."""
        return survey_scales(ces_higher_is_better=self.ces_higher_is_better)


@dataclass(frozen=True)
class FeatureSpec:
    """How the customer features are defined.

    Examples
    --------
    >>> FeatureSpec(time_unit="w", lookback_days=180).time_unit
    'W'
    >>> FeatureSpec.from_dict(FeatureSpec(lookback_days=90).to_dict()).lookback_days
    90
    >>> FeatureSpec(extras=TransactionExtras(numeric=["cds"])).extras.feature_names()[:3]
    ['cds_sum', 'cds_mean', 'cds_sum_30d']
    >>> FeatureSpec(period_days=7).added_columns()
    ['period_frequency', 'period_recency', 'period_T', 'period_monetary_value']
    """

    time_unit: str = "D"
    lookback_days: int = 365
    #: Extra transaction columns aggregated as features (:mod:`cx_models.transaction_extras`).
    extras: TransactionExtras = field(default_factory=TransactionExtras)
    #: Discrete opportunities of this many days: the table also holds each customer's
    #: BG/BB history in periods (:data:`~cx_models.period_features.PERIOD_COLUMNS`).
    period_days: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "time_unit", check_time_unit(self.time_unit))
        days = self.lookback_days
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise CXDataError(
                f"lookback_days must be a whole number of days >= 1, got {days!r}"
            )
        period = self.period_days
        if period is not None:
            if isinstance(period, bool) or int(period) != period or not 1 <= period <= 36_525:
                raise CXDataError(
                    f"period_days must be a whole number of days in 1..36525, got {period!r}"
                )
            object.__setattr__(self, "period_days", int(period))

    def added_columns(self) -> list[str]:
        """Return the columns this definition adds after the standard ones: periods, extras."""
        from cx_models.period_features import PERIOD_COLUMNS

        periods = list(PERIOD_COLUMNS) if self.period_days is not None else []
        return [*periods, *self.extras.feature_names()]

    @property
    def unit_days(self) -> float:
        """Days in one unit of the BTYD columns."""
        return {"D": 1.0, "W": 7.0}[self.time_unit]

    def to_dict(self) -> dict:
        """JSON-friendly form (saved with a trained scorer and in feature files)."""
        out = {"time_unit": self.time_unit, "lookback_days": self.lookback_days}
        if self.extras:
            out["extras"] = self.extras.to_dict()
        if self.period_days is not None:
            out["period_days"] = self.period_days
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> FeatureSpec:
        """Read :meth:`to_dict`'s form; missing keys take the defaults."""
        data = data or {}
        return cls(
            time_unit=data.get("time_unit", "D"),
            lookback_days=int(data.get("lookback_days", 365)),
            extras=TransactionExtras.from_dict(data.get("extras")),
            period_days=data.get("period_days"),
        )

    def core(self) -> FeatureSpec:
        """Return this definition without extra transaction columns (what the CLV models read)."""
        return replace(self, extras=TransactionExtras()) if self.extras else self

    def learn(self, transactions) -> FeatureSpec:
        """Return this definition with its categorical levels learnt on ``transactions``.

        ``transactions`` are validated and already cut at the cutoff the levels are
        learnt at (a model's training day); levels learnt before are kept.
        """
        extras = self.extras.learn(transactions)
        return self if extras is self.extras else replace(self, extras=extras)

    def with_unit(self, time_unit: str) -> FeatureSpec:
        """Return the same definition in another time unit (only recency and T change)."""
        return replace(self, time_unit=time_unit)


#: The default cap on churn training rows (snapshot, customer): above it XGBoost's time
#: grows with the rows while the forward ROC-AUC no longer moves (benchmarks/README.md).
MAX_TRAINING_ROWS = 250_000


@dataclass(frozen=True)
class SnapshotPlan:
    """Where the labelled churn snapshots go and how their features are defined.

    Parameters
    ----------
    horizon_days : int
        The churn window after each snapshot (days).
    step_days : int, optional
        Days between snapshots; by default the design chooses
        (:func:`cx_models.snapshot_design.design_snapshots`).
    max_snapshots : int, optional
        At most this many snapshots (all that fit by default).
    spec : FeatureSpec
        The feature definition of every snapshot (and of the model trained on them).
    clv_model : str
        The transaction model each snapshot's CLV fit uses (``bgnbd``, ``mbgnbd``,
        ``pnbd``): the one the scorer's CLV model is, so that the churn features a
        model is trained on and scored with come from the same model.
    max_rows : int, optional
        At most this many (snapshot, customer) training rows (default
        :data:`MAX_TRAINING_ROWS`; ``None``: all). Above it every snapshot keeps the
        same seeded random share of its customers, so the mix of snapshot days (and
        of customer ages) is unchanged (:func:`cx_models.churn_data.training_snapshots`).

    Examples
    --------
    >>> SnapshotPlan(horizon_days=91, max_snapshots=3).spec.lookback_days
    365
    >>> SnapshotPlan(horizon_days=0)
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: horizon_days must be a whole number of days in 1..36525, got 0
    """

    horizon_days: int = 90
    step_days: int | None = None
    max_snapshots: int | None = None
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    clv_model: str = "bgnbd"
    max_rows: int | None = MAX_TRAINING_ROWS

    def __post_init__(self):
        from cx_models.models._families import family

        family(self.clv_model)  # names the valid models
        for name, high in (
            ("horizon_days", HORIZON_DAYS_MAX),
            ("step_days", HORIZON_DAYS_MAX),
            ("max_snapshots", 10_000),
            ("max_rows", 10**10),
        ):
            value = getattr(self, name)
            if value is None and name != "horizon_days":
                continue
            whole = _number(value, name, whole=True)
            if not 1 <= whole <= high:
                raise CXDataError(
                    f"{name} must be a whole number of days in 1..{high}, got {value!r}"
                    if name not in ("max_snapshots", "max_rows")
                    else f"{name} must be a whole number in 1..{high}, got {value!r}"
                )
            object.__setattr__(self, name, int(whole))
        if not isinstance(self.spec, FeatureSpec):
            raise CXDataError(f"spec must be a FeatureSpec, got {type(self.spec).__name__}")

    def learn(self, transactions) -> SnapshotPlan:
        """Return this plan with its features' levels learnt (:meth:`FeatureSpec.learn`)."""
        spec = self.spec.learn(transactions)
        return self if spec is self.spec else replace(self, spec=spec)


def _number(value, name: str, *, whole: bool = False) -> float | int:
    if isinstance(value, bool):
        raise CXDataError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CXDataError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise CXDataError(f"{name} must be finite, got {value!r}")
    if whole:
        if number != int(number):
            raise CXDataError(f"{name} must be a whole number, got {value!r}")
        return int(number)
    return number


@dataclass(frozen=True)
class ScoreParams:
    """How to score: every field ``None`` means "as the model was trained".

    ``horizon_days`` (> 0, at most 100 years) is the horizon of ``expected_purchases``
    and ``prob_no_purchase``; ``churn_risk`` is always for the trained horizon.
    ``clv_months`` (0-600) and ``discount_rate`` (annual, 0-1) set the ``clv``
    column; ``explain`` adds the driver texts; ``intervals`` (a central level in
    (0, 1), e.g. 0.9) adds the per-customer intervals of
    :mod:`cx_models.models._intervals` after the contract's columns.

    Examples
    --------
    >>> ScoreParams(horizon_days=30).to_pyfunc()
    {'explain': True, 'horizon_days': 30.0}
    >>> ScoreParams.from_pyfunc({"horizon_days": 30.0, "explain": False})
    ScoreParams(horizon_days=30.0, clv_months=None, discount_rate=None, explain=False, \
intervals=None)
    >>> ScoreParams(horizon_days=0)
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: horizon_days must be > 0 days (leave it out for the \
trained horizon), got 0
    """

    horizon_days: float | None = None
    clv_months: int | None = None
    discount_rate: float | None = None
    explain: bool = True
    intervals: float | None = None

    def __post_init__(self):
        if self.horizon_days is not None:
            days = _number(self.horizon_days, "horizon_days")
            if not 0 < days <= HORIZON_DAYS_MAX:
                raise CXDataError(
                    "horizon_days must be > 0 days (leave it out for the trained horizon)"
                    + (f" and at most {HORIZON_DAYS_MAX:,}" if days > 0 else "")
                    + f", got {self.horizon_days!r}"
                )
            object.__setattr__(self, "horizon_days", days)
        if self.clv_months is not None:
            months = _number(self.clv_months, "clv_months", whole=True)
            if not 0 <= months <= CLV_MONTHS_MAX:
                raise CXDataError(
                    f"clv_months must be from 0 to {CLV_MONTHS_MAX}, got {self.clv_months!r}"
                )
            object.__setattr__(self, "clv_months", months)
        if self.discount_rate is not None:
            rate = _number(self.discount_rate, "discount_rate")
            if not 0 <= rate <= 1:
                raise CXDataError(
                    "discount_rate is an annual rate from 0 to 1 (0.10 for 10 %), got "
                    f"{self.discount_rate!r}"
                )
            object.__setattr__(self, "discount_rate", rate)
        if not isinstance(self.explain, bool):
            raise CXDataError(f"explain must be true or false, got {self.explain!r}")
        if self.intervals is not None:
            level = _number(self.intervals, "intervals")
            if not 0 < level < 1:
                raise CXDataError(
                    f"intervals is a central level between 0 and 1 (0.9 for 90 %), got "
                    f"{self.intervals!r}"
                )
            object.__setattr__(self, "intervals", level)

    def to_pyfunc(self) -> dict:
        """Return the pyfunc model's ``params``: only what was set, plus ``explain``."""
        params: dict = {"explain": self.explain}
        if self.horizon_days is not None:
            params["horizon_days"] = float(self.horizon_days)
        if self.clv_months is not None:
            params["clv_months"] = int(self.clv_months)
        if self.discount_rate is not None:
            params["discount_rate"] = float(self.discount_rate)
        if self.intervals is not None:
            params["intervals"] = float(self.intervals)
        return params

    @classmethod
    def from_pyfunc(cls, params: dict | None) -> ScoreParams:
        """Read the pyfunc model's ``params`` (unknown names are an error)."""
        params = dict(params or {})
        valid = {"horizon_days", "clv_months", "discount_rate", "explain", "intervals"}
        unknown = sorted(set(params) - valid)
        if unknown:
            raise CXDataError(
                f"unknown scoring parameter(s) {', '.join(unknown)}; valid: "
                f"{', '.join(sorted(valid))}"
            )
        explain = params.get("explain", True)
        if isinstance(explain, str):
            explain = explain.strip().lower() in ("1", "true", "yes")
        return cls(
            horizon_days=params.get("horizon_days"),
            clv_months=params.get("clv_months"),
            discount_rate=params.get("discount_rate"),
            explain=bool(explain),
            intervals=params.get("intervals") or None,  # 0, the signature's default: none
        )

    def resolved(self, *, horizon_days, clv_months, discount_rate) -> ScoreParams:
        """Fill the fields left ``None`` with the trained values given."""
        return ScoreParams(
            horizon_days=horizon_days if self.horizon_days is None else self.horizon_days,
            clv_months=clv_months if self.clv_months is None else self.clv_months,
            discount_rate=discount_rate if self.discount_rate is None else self.discount_rate,
            explain=self.explain,
            intervals=self.intervals,
        )
