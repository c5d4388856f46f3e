"""A synthetic subscription base with known ground truth (shifted-beta-geometric churn).

The process (time in days, billing periods of ``period_days``):

1. **Acquisition** — customers start uniformly between ``start`` and ``end −
   period_days``, on one of the plans of ``plans`` (name → share, price per period).
2. **Churn (sBG)** — at the end of each period a customer leaves with her own
   probability ``θ ~ Beta(alpha, beta)``, so she is lost in period
   ``T ~ Geometric(θ)`` and her last day of service is ``start + T·period_days − 1``.
   The plan has no effect: the pooled base is exactly sBG(alpha, beta).
3. **Satisfaction** — a latent ``satisfaction ~ N(0, 1)`` tied to ``θ`` through a
   Gaussian copula with correlation ``rho`` (``θ`` stays exactly Beta).
4. **Surveys** — in each period of service a customer answers with probability
   ``response_rate`` (NPS, CSAT or CES by ``survey_mix``) on a random day of the
   period; scores are rounded, clipped functions of satisfaction plus noise. In
   the last period before leaving the experience was bad: the answer is
   ``last_straw_shift`` standard deviations lower and given
   ``complaint_response_boost`` times as often.
5. **Notice** — a share ``notice_share`` of the customers who leave record
   ``cancelled_at`` within their last period.

The tables are seen from ``end``: an end or cancellation after it is empty, as an
export taken that day would show it. ``truth.parquet`` keeps ``churn_prob`` (θ),
the period each customer is lost in and her true last day (empty past year 9999).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from cx_models.synthetic import survey_answers

__all__ = ["SubscriptionBase", "SubscriptionParams", "generate_subscription_base",
           "write_subscription_base"]


_LAST_DAY = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days


@dataclass(frozen=True)
class SubscriptionParams:
    """Population parameters and calendar of a synthetic subscription base.

    Examples
    --------
    >>> SubscriptionParams().alpha
    0.9
    """

    start: str = "2022-01-01"
    end: str = "2025-12-31"
    period_days: int = 30
    alpha: float = 0.9
    beta: float = 2.5
    plans: dict = field(default_factory=lambda: {
        "basic": {"share": 0.5, "price": 9.0},
        "plus": {"share": 0.35, "price": 19.0},
        "premium": {"share": 0.15, "price": 49.0},
    })
    rho: float = 0.6
    response_rate: float = 0.25
    last_straw_shift: float = 2.0
    complaint_response_boost: float = 2.0
    notice_share: float = 0.3
    survey_mix: dict = field(default_factory=lambda: {"nps": 0.4, "csat": 0.4, "ces": 0.2})


@dataclass
class SubscriptionBase:
    """The generated tables (polars frames in the default column contract)."""

    subscriptions: pl.DataFrame
    surveys: pl.DataFrame
    truth: pl.DataFrame
    params: dict


def generate_subscription_base(
    n_customers: int, *, seed: int = 0, params: SubscriptionParams | None = None
) -> SubscriptionBase:
    """Simulate a subscription base from the process in the module docstring.

    Examples
    --------
    >>> base = generate_subscription_base(200, seed=1)
    >>> base.subscriptions.columns
    ['customer_id', 'start', 'end', 'plan', 'price', 'cancelled_at']
    >>> bool((base.truth["churn_prob"].is_between(0, 1)).all())
    True
    """
    prm = params or SubscriptionParams()
    rng = np.random.default_rng(seed)
    n = int(n_customers)
    first, last = dt.date.fromisoformat(prm.start), dt.date.fromisoformat(prm.end)
    span = (last - first).days - prm.period_days
    if span <= 0:
        raise ValueError("the calendar must be longer than one billing period")
    start_day = rng.integers(0, span + 1, n)
    names = list(prm.plans)
    shares = np.array([prm.plans[p]["share"] for p in names], dtype=float)
    plan_index = rng.choice(len(names), size=n, p=shares / shares.sum())
    plan = np.array(names)[plan_index]
    price = np.array([float(prm.plans[p]["price"]) for p in names])[plan_index]
    satisfaction = rng.standard_normal(n)
    latent = -prm.rho * satisfaction + np.sqrt(1.0 - prm.rho**2) * rng.standard_normal(n)
    theta = stats.beta.ppf(stats.norm.cdf(latent), prm.alpha, prm.beta)
    theta = np.clip(theta, 1e-12, 1.0)
    lost_period = rng.geometric(theta)  # lost in period T >= 1
    end_day = start_day + lost_period * prm.period_days - 1
    horizon = (last - first).days
    notice = rng.random(n) < prm.notice_share
    cancel_day = end_day - rng.integers(0, prm.period_days, n)
    origin = np.datetime64(first, "D")
    visible_end = np.where(end_day <= horizon, end_day, -1)
    visible_cancel = np.where(notice & (cancel_day <= horizon), cancel_day, -1)

    def dates(days):
        values = origin + days.astype("timedelta64[D]")
        return pl.Series(values).cast(pl.Date).to_frame("d").select(
            pl.when(pl.lit(pl.Series(days >= 0))).then(pl.col("d")).otherwise(None)
        ).to_series()

    ids = np.arange(1, n + 1, dtype=np.int64)
    subscriptions = pl.DataFrame({
        "customer_id": ids,
        "start": dates(start_day),
        "end": dates(visible_end),
        "plan": plan,
        "price": price,
        "cancelled_at": dates(visible_cancel),
    })
    surveys = _surveys(rng, prm, start_day, end_day, horizon, satisfaction, origin)
    truth = pl.DataFrame({
        "customer_id": ids,
        "churn_prob": theta,
        "satisfaction": satisfaction,
        "lost_period": lost_period.astype(np.int64),
        # a lifetime past the calendar's end (year 9999) has no date
        "true_end": dates(np.where(end_day < _LAST_DAY - (first - dt.date(1970, 1, 1)).days,
                                   end_day, -1)),
        "plan": plan,
    })
    return SubscriptionBase(
        subscriptions=subscriptions, surveys=surveys, truth=truth,
        params={**asdict(prm), "customers": n, "seed": seed, "kind": "subscriptions"},
    )


def _surveys(rng, prm, start_day, end_day, horizon, satisfaction, origin) -> pl.DataFrame:
    periods = np.ceil((np.minimum(end_day, horizon) - start_day + 1) / prm.period_days)
    periods = np.maximum(periods.astype(np.int64), 1)
    who = np.repeat(np.arange(start_day.size), periods)
    offsets = np.arange(periods.sum()) - np.repeat(np.cumsum(periods) - periods, periods)
    last = (start_day[who] + (offsets + 1) * prm.period_days - 1) >= end_day[who]
    rate = np.where(last, prm.response_rate * prm.complaint_response_boost, prm.response_rate)
    answered = rng.random(who.size) < np.minimum(rate, 1.0)
    day = start_day[who] + offsets * prm.period_days + rng.integers(0, prm.period_days, who.size)
    keep = answered & (day <= np.minimum(end_day[who], horizon))
    who, day, shock = who[keep], day[keep], last[keep]
    kind, score = survey_answers(rng, prm.survey_mix,
                                 satisfaction[who] - prm.last_straw_shift * shock)
    seconds = rng.integers(8 * 3600, 20 * 3600, who.size)
    timestamp = (origin + day.astype("timedelta64[D]")).astype("datetime64[us]") + (
        seconds * 1_000_000
    ).astype("timedelta64[us]")
    order = np.argsort(timestamp, kind="stable")
    return pl.DataFrame({
        "customer_id": (who[order] + 1).astype(np.int64),
        "timestamp": timestamp[order],
        "survey": kind[order],
        "score": score[order],
    })


def write_subscription_base(base: SubscriptionBase, out_dir) -> dict[str, Path]:
    """Write ``subscriptions.parquet``, ``surveys.parquet``, ``truth.parquet``, ``params.json``.

    Examples
    --------
    >>> import tempfile
    >>> sorted(write_subscription_base(generate_subscription_base(30), tempfile.mkdtemp()))
    ['params', 'subscriptions', 'surveys', 'truth']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "subscriptions": out / "subscriptions.parquet",
        "surveys": out / "surveys.parquet",
        "truth": out / "truth.parquet",
        "params": out / "params.json",
    }
    base.subscriptions.write_parquet(paths["subscriptions"])
    base.surveys.write_parquet(paths["surveys"])
    base.truth.write_parquet(paths["truth"])
    paths["params"].write_text(json.dumps(base.params, indent=2, sort_keys=True) + "\n")
    return paths
