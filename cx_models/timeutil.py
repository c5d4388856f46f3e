"""Explicit time: the ``as_of`` calendar day and the table time units.

``as_of`` is a calendar date that includes its whole day: an event at
23:59 on the as-of date is "at or before as_of". Time units are ``"D"``
(days) or ``"W"`` (weeks of exactly seven days; nothing is merged by
calendar week).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from cx_models.errors import CXDataError

__all__ = [
    "DAYS_PER_UNIT",
    "TimeUnit",
    "as_of_cutoff",
    "check_time_format",
    "check_time_unit",
    "days_to_units",
    "parse_as_of",
]

TimeUnit = Literal["D", "W"]

#: Days in one unit of each supported time unit.
DAYS_PER_UNIT: dict[str, float] = {"D": 1.0, "W": 7.0}


def check_time_unit(time_unit: str) -> str:
    """Return the canonical time unit or raise a clear error.

    Examples
    --------
    >>> check_time_unit("w")
    'W'
    """
    unit = str(time_unit).strip().upper()
    if unit not in DAYS_PER_UNIT:
        raise CXDataError(
            f"time_unit {time_unit!r} is not supported: use 'D' (days) or 'W' (weeks of 7 days)"
        )
    return unit


def days_to_units(days, time_unit: str):
    """Convert a number of days to the given time unit.

    Examples
    --------
    >>> days_to_units(14, "W")
    2.0
    """
    return days / DAYS_PER_UNIT[check_time_unit(time_unit)]


def parse_as_of(value, *, name: str = "as_of") -> dt.date:
    """Parse an as-of value into a calendar date.

    Parameters
    ----------
    value : str, datetime.date, datetime.datetime, numpy.datetime64 or pandas.Timestamp
        A ``YYYY-MM-DD`` string, a date or a datetime. A datetime keeps only
        its calendar day (after conversion to UTC when it has a time zone).
    name : str
        The option name used in error messages (``--as-of`` on the CLI).

    Returns
    -------
    datetime.date

    Examples
    --------
    >>> parse_as_of("1997-09-30")
    datetime.date(1997, 9, 30)
    >>> parse_as_of(dt.datetime(2024, 5, 1, 18, 30))
    datetime.date(2024, 5, 1)
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
        try:
            return parse_as_of(dt.datetime.fromisoformat(text), name=name)
        except ValueError:
            raise CXDataError(
                f"{name} {value!r} is not a date: expected YYYY-MM-DD, e.g. 2024-06-30"
            ) from None
    raise CXDataError(
        f"{name} must be a YYYY-MM-DD string, a date or a datetime, got {type(value).__name__}"
    )


def as_of_cutoff(as_of: dt.date) -> dt.datetime:
    """Return the first instant *after* the as-of day (events before it are used).

    Examples
    --------
    >>> as_of_cutoff(dt.date(2024, 1, 31))
    datetime.datetime(2024, 2, 1, 0, 0)
    """
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())


# strptime directives that pandas / Python accept when parsing (others fail or mislead)
_DIRECTIVES = set("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")


def check_time_format(time_format: str | None, *, name: str = "time_format") -> str | None:
    """Return a ``strptime`` format after checking its directives, or ``None``.

    Examples
    --------
    >>> check_time_format("%Y%m%d")
    '%Y%m%d'
    >>> check_time_format("%Q")
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: time_format '%Q' has the unknown directive %Q; use \
strptime directives such as %Y-%m-%d %H:%M:%S
    """
    if time_format is None:
        return None
    text = str(time_format)
    if not text.strip():
        raise CXDataError(f"{name} is empty; leave it out for ISO 8601 timestamps")
    i = 0
    while i < len(text):
        if text[i] == "%":
            directive = text[i + 1 : i + 2]
            if directive not in _DIRECTIVES:
                shown = f"%{directive}" if directive else "a lone %"
                raise CXDataError(
                    f"{name} {time_format!r} has the unknown directive {shown}; use "
                    "strptime directives such as %Y-%m-%d %H:%M:%S"
                )
            i += 2
        else:
            i += 1
    return text
