"""A synthetic non-contractual customer base with known ground truth.

The process (all time in days):

1. **Acquisition** — customers arrive uniformly between ``start`` and
   ``end - min_observation_days``; their first purchase is at acquisition.
2. **Purchases (BG/NBD)** — while alive a customer buys as a Poisson process
   with rate ``lambda ~ Gamma(shape=r, rate=alpha)``; after each *repeat*
   purchase they drop out for good with probability ``p ~ Beta(a, b)``.
3. **Satisfaction** — a latent ``satisfaction ~ N(0, 1)`` is tied to the
   dropout probability through a Gaussian copula with correlation ``rho``:
   ``p = F_Beta^-1(Phi(-rho * satisfaction + sqrt(1 - rho^2) * e))``. So
   ``p`` stays exactly ``Beta(a, b)`` (BG/NBD parameters are recoverable),
   while unhappy customers drop out more often.
4. **Spend (Gamma-Gamma)** — each customer's transaction values are
   ``Gamma(shape=p_spend, rate=nu)`` with ``nu ~ Gamma(shape=q, rate=gamma)``;
   the customer's mean spend is ``p_spend / nu``.
5. **Surveys** — after each purchase the customer answers a survey with
   probability ``response_rate`` within three days (NPS, CSAT or CES, chosen
   with ``survey_mix``); scores are rounded, clipped functions of the latent
   satisfaction plus noise. The purchase after which a customer drops out was a
   bad experience (the "last straw"): its survey answer is scored
   ``last_straw_shift`` standard deviations lower, and unhappy customers answer
   ``complaint_response_boost`` times as often. The purchase and dropout process
   is untouched (still exactly BG/NBD), but surveys now carry signal about churn
   that purchase history alone cannot show.

The defaults give about ten transactions and two survey responses per
customer over three years.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["CustomerBase", "SyntheticParams", "generate_customer_base", "write_customer_base"]


@dataclass(frozen=True)
class SyntheticParams:
    """Population parameters and calendar of a synthetic customer base.

    Examples
    --------
    >>> SyntheticParams().r
    1.25
    """

    start: str = "2023-01-01"
    end: str = "2025-12-31"
    min_observation_days: int = 30
    # BG/NBD (rate in purchases per day)
    r: float = 1.25
    alpha: float = 30.0
    a: float = 1.2
    b: float = 9.0
    # Gamma-Gamma spend
    p_spend: float = 6.0
    q: float = 4.0
    gamma: float = 15.0
    # surveys
    rho: float = 0.6
    response_rate: float = 0.2
    last_straw_shift: float = 2.0
    complaint_response_boost: float = 2.0
    survey_mix: dict = field(default_factory=lambda: {"nps": 0.4, "csat": 0.4, "ces": 0.2})
    # customer attributes (off by default: the base stays exactly BG/NBD): region multiplies
    # the odds of dropping out after each purchase; plan and channel have no effect
    attributes: bool = False
    region_dropout_odds: dict = field(
        default_factory=lambda: {"north": 1.0, "south": 1.0, "east": 3.0, "west": 0.4}
    )
    plan_mix: dict = field(default_factory=lambda: {"basic": 0.5, "plus": 0.35, "premium": 0.15})
    channel_mix: dict = field(default_factory=lambda: {"web": 0.5, "store": 0.3, "app": 0.2})


@dataclass
class CustomerBase:
    """The generated tables, as polars frames in the default column contract."""

    transactions: pl.DataFrame
    surveys: pl.DataFrame
    truth: pl.DataFrame
    params: dict
    attributes: pl.DataFrame | None = None


def _seconds(days: np.ndarray) -> np.ndarray:
    """Whole seconds as ``timedelta64[us]`` (timestamps are kept to the second)."""
    return (np.floor(days * 86_400.0).astype("int64") * 1_000_000).astype("timedelta64[us]")


def _grouped_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each group of ``counts`` consecutive values."""
    total = np.cumsum(values)
    ends = np.cumsum(counts)
    starts = ends - counts
    offset = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0.0)
    return total - np.repeat(offset, counts)


def generate_customer_base(
    n_customers: int, *, seed: int = 0, params: SyntheticParams | None = None
) -> CustomerBase:
    """Simulate a customer base from the process in the module docstring.

    Parameters
    ----------
    n_customers : int
        Number of customers (each has at least one purchase).
    seed : int
        Seed of the ``numpy.random.Generator``; same seed, same base.
    params : SyntheticParams, optional
        Population parameters; the defaults when omitted.

    Returns
    -------
    CustomerBase
        ``transactions`` (customer_id, timestamp, amount), ``surveys``
        (customer_id, timestamp, survey, score), ``truth`` (one row per customer
        with ``purchase_rate_per_day``, ``dropout_prob``, ``dropout_at``,
        ``mean_spend``, ``satisfaction``, ...) and ``params``.

    Examples
    --------
    >>> base = generate_customer_base(1000, seed=1)
    >>> base.truth.height, base.transactions["customer_id"].n_unique()
    (1000, 1000)
    >>> bool((base.transactions["amount"] > 0).all())
    True
    """
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    prm = params or SyntheticParams()
    rng = np.random.default_rng(seed)
    start = np.datetime64(dt.date.fromisoformat(prm.start), "us")
    end_date = dt.date.fromisoformat(prm.end)
    period_days = (end_date - dt.date.fromisoformat(prm.start)).days + 1  # end day included
    n = int(n_customers)

    acquired = rng.uniform(0.0, period_days - prm.min_observation_days, n)
    tau = period_days - acquired
    lam = rng.gamma(prm.r, 1.0 / prm.alpha, n)
    satisfaction = rng.standard_normal(n)
    latent = -prm.rho * satisfaction + np.sqrt(1.0 - prm.rho**2) * rng.standard_normal(n)
    from scipy import special, stats  # lazy: scoring imports the package, not this

    dropout_p = stats.beta.ppf(special.ndtr(latent), prm.a, prm.b)
    dropout_p = np.clip(dropout_p, 1e-12, 1.0)
    attributes = None
    if prm.attributes:
        attributes, factor = _attributes(np.random.default_rng([seed, 1]), prm, n)
        odds = dropout_p / np.maximum(1.0 - dropout_p, 1e-12) * factor
        dropout_p = np.clip(odds / (1.0 + odds), 1e-12, 1.0)
    nu = rng.gamma(prm.q, 1.0 / prm.gamma, n)

    # Repeat purchases: the first min(K, M) events of a Poisson process on [0, tau].
    k_until_dropout = rng.geometric(dropout_p)
    m_events = rng.poisson(lam * tau)
    x_repeat = np.minimum(k_until_dropout, m_events)
    total = int(x_repeat.sum())
    owner = np.repeat(np.arange(n), x_repeat)
    partial = _grouped_cumsum(rng.standard_exponential(total), x_repeat)
    s_x = np.zeros(n)
    has = x_repeat > 0
    s_x[has] = partial[np.cumsum(x_repeat)[has] - 1]
    tail = rng.gamma(np.maximum(m_events - x_repeat + 1, 1).astype(float))
    repeat_days = tau[owner] * partial / (s_x + tail)[owner]

    dropped = k_until_dropout <= m_events
    dropout_day = np.full(n, np.nan)
    last_repeat = np.zeros(n)
    last_repeat[has] = repeat_days[np.cumsum(x_repeat)[has] - 1]
    dropout_day[dropped] = acquired[dropped] + last_repeat[dropped]

    # Transactions: the first purchase at acquisition, then the repeats.
    cust = np.concatenate([np.arange(n), owner])
    day = np.concatenate([acquired, acquired[owner] + repeat_days])
    spend = rng.gamma(prm.p_spend, 1.0 / nu[cust])
    amount = np.maximum(np.round(spend, 2), 0.01)
    timestamp = start + _seconds(day)
    order = np.argsort(timestamp, kind="stable")
    transactions = pl.DataFrame(
        {
            "customer_id": (cust[order] + 1).astype(np.int64),
            "timestamp": timestamp[order],
            "amount": amount[order],
        }
    )

    last_straw = np.zeros(cust.size, dtype=bool)
    ends = np.cumsum(x_repeat)
    last_straw[n + ends[dropped] - 1] = True  # the repeat purchase followed by dropout
    surveys = _simulate_surveys(rng, prm, cust, day, satisfaction, last_straw, period_days, start)

    def to_ts(days: np.ndarray) -> np.ndarray:
        out = start + _seconds(np.nan_to_num(days))
        return np.where(np.isnan(days), np.datetime64("NaT"), out)

    truth = pl.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "acquired_at": to_ts(acquired),
            "purchase_rate_per_day": lam,
            "dropout_prob": dropout_p,
            "dropout_at": to_ts(dropout_day),
            "mean_spend": prm.p_spend * nu**-1,
            "satisfaction": satisfaction,
            "n_transactions": (x_repeat + 1).astype(np.int64),
        }
    )
    if attributes is not None:
        truth = truth.with_columns(attributes.drop("customer_id"))
        truth = truth.with_columns(
            pl.col("region").replace_strict(prm.region_dropout_odds).alias("dropout_odds_factor")
        )
    info = asdict(prm)
    if not prm.attributes:
        for key in ("region_dropout_odds", "plan_mix", "channel_mix"):
            info.pop(key)
    else:
        info["attribute_effects"] = {
            "region": "multiplies the odds of dropping out after each purchase by "
            "region_dropout_odds[region]",
            "plan": "none",
            "channel": "none",
        }
    info.update(
        seed=seed,
        n_customers=n,
        n_transactions=int(transactions.height),
        n_survey_responses=int(surveys.height),
        time_unit_of_rates="purchases per day",
        spend_model="Gamma-Gamma: amount ~ Gamma(p_spend, rate nu), nu ~ Gamma(q, rate gamma)",
    )
    return CustomerBase(
        transactions=transactions, surveys=surveys, truth=truth, params=info, attributes=attributes
    )


def _attributes(rng, prm: SyntheticParams, n: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Draw region, plan and channel (independent of everything else) and region's factor."""

    def draw(mix: dict) -> np.ndarray:
        levels = np.array(list(mix))
        weights = np.array(list(mix.values()), dtype=float)
        return rng.choice(levels, size=n, p=weights / weights.sum())

    regions = np.array(list(prm.region_dropout_odds))
    region = regions[rng.integers(0, regions.size, n)]
    frame = pl.DataFrame({
        "customer_id": np.arange(1, n + 1, dtype=np.int64),
        "region": region,
        "plan": draw(prm.plan_mix),
        "channel": draw(prm.channel_mix),
    })
    odds = {k: float(v) for k, v in prm.region_dropout_odds.items()}
    factor = frame["region"].replace_strict(odds, return_dtype=pl.Float64).to_numpy()
    return frame, factor


def survey_answers(rng, survey_mix: dict, satisfaction: np.ndarray):
    """Draw each answer's survey type (by ``survey_mix``) and its score on the type's scale.

    Scores are rounded, clipped functions of the answer's satisfaction plus noise:
    NPS 7 + 2.2·s, CSAT 3.7 + 0.9·s, CES 3 − 1.1·s. Returns ``(kind, score)``.

    Examples
    --------
    >>> kind, score = survey_answers(np.random.default_rng(0), {"nps": 1.0}, np.zeros(3))
    >>> kind.tolist(), bool(((score >= 0) & (score <= 10)).all())
    (['nps', 'nps', 'nps'], True)
    """
    kinds = np.array(list(survey_mix))
    weights = np.array(list(survey_mix.values()), dtype=float)
    kind = rng.choice(kinds, size=satisfaction.size, p=weights / weights.sum())
    noise = rng.standard_normal(satisfaction.size)
    score = np.select(
        [kind == "nps", kind == "csat", kind == "ces"],
        [
            np.clip(np.round(7.0 + 2.2 * satisfaction + 1.2 * noise), 0, 10),
            np.clip(np.round(3.7 + 0.9 * satisfaction + 0.6 * noise), 1, 5),
            np.clip(np.round(3.0 - 1.1 * satisfaction + 0.9 * noise), 1, 7),
        ],
    ).astype(np.int64)
    return kind, score


def _simulate_surveys(
    rng, prm, cust, day, satisfaction, last_straw, period_days, start
) -> pl.DataFrame:
    rate = np.where(last_straw, prm.response_rate * prm.complaint_response_boost, prm.response_rate)
    answered = rng.random(cust.size) < np.minimum(rate, 1.0)
    who = cust[answered]
    shock = last_straw[answered]
    when = day[answered] + rng.uniform(0.0, 3.0, who.size)
    keep = when < period_days
    who, when, shock = who[keep], when[keep], shock[keep]
    kind, score = survey_answers(
        rng, prm.survey_mix, satisfaction[who] - prm.last_straw_shift * shock
    )
    timestamp = start + _seconds(when)
    order = np.argsort(timestamp, kind="stable")
    return pl.DataFrame(
        {
            "customer_id": (who[order] + 1).astype(np.int64),
            "timestamp": timestamp[order],
            "survey": kind[order],
            "score": score[order],
        }
    )


def write_customer_base(base: CustomerBase, out_dir) -> dict[str, Path]:
    """Write ``transactions.parquet``, ``surveys.parquet``, ``truth.parquet`` and ``params.json``.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_customer_base(generate_customer_base(50, seed=2), tempfile.mkdtemp())
    >>> sorted(paths)
    ['params', 'surveys', 'transactions', 'truth']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "transactions": out / "transactions.parquet",
        "surveys": out / "surveys.parquet",
        "truth": out / "truth.parquet",
        "params": out / "params.json",
    }
    base.transactions.write_parquet(paths["transactions"])
    base.surveys.write_parquet(paths["surveys"])
    base.truth.write_parquet(paths["truth"])
    if base.attributes is not None:
        paths["attributes"] = out / "attributes.parquet"
        base.attributes.write_parquet(paths["attributes"])
    paths["params"].write_text(json.dumps(base.params, indent=2, sort_keys=True) + "\n")
    return paths
