"""Billing periods of a subscription: fixed length in days, or calendar months or years.

A relationship that starts on day ``S`` has period ``t`` (1, 2, …) covering the days
``(S + (t−1)·P, S + t·P]``, counted as days elapsed since ``S`` (the start day itself
belongs to period 1). For calendar periods ``S + t·P`` is ``S`` plus ``t`` months
(or ``12·t`` months), clipped to the month's last day (31 January + 1 month =
28/29 February). A relationship whose last day of service falls in period ``t``
is *lost in period t*: it made ``t − 1`` renewals.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cx_models.errors import CXDataError

__all__ = ["CALENDAR_PERIODS", "BillingPeriod"]

#: Calendar periods and their length in months.
CALENDAR_PERIODS = {"monthly": 1, "annual": 12}


@dataclass(frozen=True)
class BillingPeriod:
    """The length of a billing period: ``days`` or a calendar ``period``.

    Parameters
    ----------
    days : int, optional
        A fixed period length in days (``--period-days``).
    calendar : {"monthly", "annual"}, optional
        Calendar periods (``--period``) instead.

    Examples
    --------
    >>> BillingPeriod(days=30).label, BillingPeriod(calendar="monthly").label
    ('30 days', 'monthly')
    >>> BillingPeriod(calendar="annual").approx_days
    365.25
    """

    days: int | None = None
    calendar: str | None = None

    def __post_init__(self):
        if (self.days is None) == (self.calendar is None):
            raise CXDataError(
                "give the billing period either as a number of days (--period-days, "
                "period_days=) or as a calendar period (--period monthly|annual), not both"
                if self.days is not None
                else "give the billing period: --period-days N (period_days=) or "
                "--period monthly|annual"
            )
        if self.days is not None:
            if isinstance(self.days, bool) or int(self.days) != self.days or self.days < 1:
                raise CXDataError(
                    f"period_days must be a whole number of days >= 1, got {self.days!r}"
                )
            object.__setattr__(self, "days", int(self.days))
        elif self.calendar not in CALENDAR_PERIODS:
            raise CXDataError(
                f"the calendar period must be one of {', '.join(CALENDAR_PERIODS)}, "
                f"got {self.calendar!r}"
            )

    @classmethod
    def of(cls, value) -> BillingPeriod:
        """Return ``value`` as a period: a BillingPeriod, a number of days or a calendar name.

        Examples
        --------
        >>> BillingPeriod.of(7).days, BillingPeriod.of("annual").calendar
        (7, 'annual')
        """
        if isinstance(value, BillingPeriod):
            return value
        if isinstance(value, str) and not value.strip().isdigit():
            return cls(calendar=value.strip().lower())
        return cls(days=int(value) if isinstance(value, str) else value)

    @property
    def label(self) -> str:
        """A short description (``30 days``, ``monthly``)."""
        return f"{self.days} days" if self.days is not None else str(self.calendar)

    @property
    def months(self) -> int | None:
        """Months per period for a calendar period, else None."""
        return CALENDAR_PERIODS.get(self.calendar) if self.calendar else None

    @property
    def approx_days(self) -> float:
        """The mean length in days (365.25 / 12 per month), for discount rates."""
        return float(self.days) if self.days is not None else 365.25 / 12 * self.months

    def boundary(self, start: pl.Expr, t: pl.Expr) -> pl.Expr:
        """Return the last day of period ``t`` of a relationship started on ``start`` (S + t·P)."""
        if self.days is not None:
            return start + pl.duration(days=t * self.days)
        months = t * self.months
        return start.dt.offset_by(pl.format("{}mo", months.cast(pl.Int64)))

    def period_of(self, start: pl.Expr, day: pl.Expr) -> pl.Expr:
        """Return the period (1, 2, …) of ``day`` for a relationship started on ``start``.

        Examples
        --------
        >>> import datetime as dt
        >>> f = pl.DataFrame({"s": [dt.date(2024, 1, 31)] * 3,
        ...                   "d": [dt.date(2024, 1, 31), dt.date(2024, 2, 29),
        ...                         dt.date(2024, 3, 1)]})
        >>> f.select(BillingPeriod(calendar="monthly").period_of(pl.col("s"), pl.col("d"))
        ...          ).to_series().to_list()
        [1, 1, 2]
        >>> f.select(BillingPeriod(days=29).period_of(pl.col("s"), pl.col("d"))
        ...          ).to_series().to_list()
        [1, 1, 2]
        """
        elapsed = (day - start).dt.total_days()
        if self.days is not None:
            t = (elapsed + self.days - 1) // self.days  # ceil(elapsed / P)
            return pl.max_horizontal(t, pl.lit(1)).cast(pl.Int64)
        months = (day.dt.year() - start.dt.year()) * 12 + day.dt.month() - start.dt.month()
        whole = (months // self.months).cast(pl.Int64)
        within = day <= self.boundary(start, whole)
        t = pl.when(within).then(whole).otherwise(whole + 1)
        return pl.max_horizontal(t, pl.lit(1)).cast(pl.Int64)

    def per_period_rate(self, annual_rate: float) -> float:
        """Return the discount rate per period for an annual rate: (1 + r)^(P / 365.25) − 1.

        Examples
        --------
        >>> round(BillingPeriod(calendar="annual").per_period_rate(0.10), 6)
        0.1
        """
        return (1.0 + float(annual_rate)) ** (self.approx_days / 365.25) - 1.0
