"""Where the churn training snapshots fall: a design derived from the history given.

A snapshot on day ``s`` is labelled by the ``horizon_days`` after it, so the newest
possible one is ``as_of - horizon``; older ones follow every ``step_days``. The
rule, stated once here and in the README:

1. **Standard design** — each snapshot needs :data:`STANDARD_HISTORY_DAYS` (90) days of
   history before it, and the step is ``step_days`` (default: the horizon). Used when
   it gives at least two snapshots.
2. **Short history** — otherwise each snapshot needs only :data:`SHORT_HISTORY_DAYS`
   (30) days of history, and the step (unless given) spreads up to four snapshots over
   the span available: ``max(7, span // 3)`` days.
3. **One snapshot** — when only one fits, the churn model holds out a customer split of
   it for early stopping and calibration
   (:meth:`cx_models.models.churn.ChurnModel.fit`).
4. **None** — :class:`NotEnoughHistory`, naming the earliest ``as_of`` and the largest
   horizon that would work.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cx_models.errors import CXDataError
from cx_models.settings import SnapshotPlan
from cx_models.timeutil import parse_as_of

__all__ = [
    "SHORT_HISTORY_DAYS",
    "STANDARD_HISTORY_DAYS",
    "NotEnoughHistory",
    "SnapshotDesign",
    "design_snapshots",
    "snapshot_dates",
]

#: Days of history a snapshot needs in the standard design.
STANDARD_HISTORY_DAYS = 90
#: Days of history a snapshot needs when the history is short.
SHORT_HISTORY_DAYS = 30
#: The smallest step between snapshots of the short-history design.
MIN_STEP_DAYS = 7


class NotEnoughHistory(CXDataError):
    """No labelled snapshot fits between the first purchase and ``as_of``."""


@dataclass
class SnapshotDesign:
    """The snapshot days chosen (newest first) and how, with what was adapted later."""

    dates: list[dt.date]
    rule: str
    min_history_days: int
    step_days: int
    dropped: list[dict] = field(default_factory=list)
    penalized: list[dict] = field(default_factory=list)
    sampled: dict | None = None

    def to_dict(self) -> dict:
        """Return the design as a JSON-friendly dict (logged with the run)."""
        return {
            "rule": self.rule,
            "snapshots": [d.isoformat() for d in self.dates],
            "min_history_days": self.min_history_days,
            "step_days": self.step_days,
            "dropped": list(self.dropped),
            "penalized": list(self.penalized),
            "sampled": self.sampled,
        }


def snapshot_dates(
    first_day: dt.date,
    as_of,
    *,
    horizon_days: int,
    step_days: int | None = None,
    max_snapshots: int | None = None,
    min_history_days: int = STANDARD_HISTORY_DAYS,
) -> list[dt.date]:
    """Snapshot days, newest first: ``as_of - horizon``, then every ``step_days`` back.

    A snapshot needs at least ``min_history_days`` of history before it.

    Examples
    --------
    >>> snapshot_dates(dt.date(2024, 1, 1), "2024-12-31", horizon_days=90, max_snapshots=3)
    [datetime.date(2024, 10, 2), datetime.date(2024, 7, 4), datetime.date(2024, 4, 5)]
    """
    as_of = parse_as_of(as_of)
    step = int(step_days or horizon_days)
    if horizon_days <= 0 or step <= 0:
        raise CXDataError("horizon_days and step_days must be positive numbers of days")
    dates = []
    day = as_of - dt.timedelta(days=int(horizon_days))
    while (day - first_day).days >= min_history_days:
        dates.append(day)
        if max_snapshots is not None and len(dates) >= max_snapshots:
            break
        day -= dt.timedelta(days=step)
    return dates


def design_snapshots(first_day: dt.date, as_of, plan: SnapshotPlan) -> SnapshotDesign:
    """Choose the snapshot days for data from ``first_day`` to ``as_of`` (module docstring).

    Examples
    --------
    >>> d = design_snapshots(dt.date(1997, 1, 1), "1997-07-01", SnapshotPlan(horizon_days=91))
    >>> d.rule, d.step_days, [str(s) for s in d.dates]
    ('short history', 20, ['1997-04-01', '1997-03-12', '1997-02-20', '1997-01-31'])
    >>> design_snapshots(dt.date(2023, 1, 1), "2025-12-31", SnapshotPlan(horizon_days=90)).rule
    'standard'
    """
    as_of = parse_as_of(as_of)
    horizon_days, step_days = plan.horizon_days, plan.step_days
    keywords = {"horizon_days": horizon_days, "max_snapshots": plan.max_snapshots}
    dates = snapshot_dates(first_day, as_of, step_days=step_days, **keywords)
    if len(dates) >= 2:
        step = int(step_days or horizon_days)
        return SnapshotDesign(dates, "standard", STANDARD_HISTORY_DAYS, step)
    newest = as_of - dt.timedelta(days=int(horizon_days))
    span = (newest - (first_day + dt.timedelta(days=SHORT_HISTORY_DAYS))).days
    if span < 0:
        earliest = first_day + dt.timedelta(days=SHORT_HISTORY_DAYS + int(horizon_days))
        largest = (as_of - first_day).days - SHORT_HISTORY_DAYS
        longest = (
            f"; with as_of {as_of} the largest horizon that works is {largest} days"
            if largest > 0
            else ""
        )
        raise NotEnoughHistory(
            f"not enough history for a churn snapshot: the data start {first_day}, and a "
            f"snapshot needs {SHORT_HISTORY_DAYS} days of history before it and its whole "
            f"{int(horizon_days)}-day label window before as_of {as_of}. With this horizon the "
            f"earliest as_of that works is {earliest}{longest}"
        )
    step = int(step_days or max(MIN_STEP_DAYS, span // 3))
    dates = snapshot_dates(
        first_day, as_of, step_days=step, min_history_days=SHORT_HISTORY_DAYS, **keywords
    )
    rule = "short history" if len(dates) >= 2 else "one snapshot"
    return SnapshotDesign(dates, rule, SHORT_HISTORY_DAYS, step)
