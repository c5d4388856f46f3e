"""Whom to contact: a retention campaign plan with its expected return.

For each scored customer, the expected net gain of one retention contact
(the cost model of Verbraken, Verbeke & Baesens, IEEE TKDE 25(5), 2013):

    gain = p · γ · (CLV · m − d) − (1 − p) · d − f

with ``p`` the churn risk, ``γ`` the save rate (the share of would-be churners a
contact keeps), ``m`` the margin (1: CLV, which is revenue, is the value saved),
``d`` the incentive paid by each contacted customer who accepts it (would-be
churners who are saved, and customers who would have stayed anyway) and ``f``
the cost of the contact. With ``d = 0`` this is ``p γ CLV m − f``.

The gain is a **lower bound** on what a saved customer is worth: CLV is already
weighted by the chance of dropping out. **The save rate is an input, not an
estimate**: without a controlled experiment nothing in the scores says how many
churners a contact keeps. :func:`estimate_save_rate` gives it, with a 95 %
interval, from the outcomes of a contacted group and a control group — which
``control_share`` creates: that share of the chosen customers is kept
uncontacted, at random (seeded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx_models.errors import CXDataError

__all__ = [
    "CampaignSettings",
    "campaign_from_mapping",
    "contact_gain",
    "estimate_save_rate",
    "plan_campaign",
    "profit_curve",
]

REQUIRED = ("customer_id", "churn_risk", "clv")


@dataclass(frozen=True)
class CampaignSettings:
    """The economics of one retention campaign.

    Examples
    --------
    >>> CampaignSettings(contact_cost=5, save_rate=0.15).margin
    1.0
    >>> CampaignSettings(contact_cost=5, save_rate=1.5)
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: save_rate must be from 0 to 1, got 1.5
    """

    contact_cost: float
    save_rate: float | None = None
    margin: float = 1.0
    incentive_cost: float = 0.0
    budget: float | None = None
    max_contacts: int | None = None
    control_share: float = 0.0
    seed: int = 0

    def __post_init__(self):
        def number(name, low, high=None, *, optional=False):
            value = getattr(self, name)
            if value is None and optional:
                return
            if value is None or not math.isfinite(float(value)) or value < low or (
                high is not None and value > high
            ):
                bound = f"from {low:g} to {high:g}" if high is not None else f">= {low:g}"
                raise CXDataError(f"{name} must be {bound}, got {value}")

        number("contact_cost", 0.0, 1e12)
        number("save_rate", 0.0, 1.0, optional=True)
        number("margin", 0.0, 1.0)
        number("incentive_cost", 0.0, 1e12)
        number("budget", 0.0, 1e15, optional=True)
        number("control_share", 0.0, 0.9)
        if self.max_contacts is not None and self.max_contacts < 0:
            raise CXDataError(f"max_contacts must be >= 0, got {self.max_contacts}")
        if self.budget is not None and self.max_contacts is not None:
            raise CXDataError("give a budget or a maximum number of contacts, not both")


def contact_gain(p, save_rate, clv, settings: CampaignSettings) -> np.ndarray:
    """Net gain of one contact: ``p·γ·(CLV·m − d) − (1 − p)·d − f`` (module docstring).

    ``p`` is the churn risk for the plan, or what happened (0/1) for its replay.

    Examples
    --------
    >>> contact_gain(0.9, 0.15, 400.0, CampaignSettings(contact_cost=5)).item()
    49.0
    """
    d, f, m = settings.incentive_cost, settings.contact_cost, settings.margin
    with np.errstate(invalid="ignore"):
        return np.asarray(p * save_rate * (clv * m - d) - (1 - p) * d - f, dtype=float)


def campaign_from_mapping(values) -> CampaignSettings:
    """Build :class:`CampaignSettings` from a mapping (a ``[campaign]`` table), naming unknown keys.

    Examples
    --------
    >>> campaign_from_mapping({"contact_cost": 2, "save_rate": 0.2}).save_rate
    0.2
    >>> campaign_from_mapping({"cost": 2})
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: campaign: unknown setting(s) cost; valid: budget, \
contact_cost, control_share, incentive_cost, margin, max_contacts, save_rate, seed
    """
    from dataclasses import fields

    valid = sorted(f.name for f in fields(CampaignSettings))
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise CXDataError(
            f"campaign: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    if "contact_cost" not in values:
        raise CXDataError("campaign: contact_cost is required")
    return CampaignSettings(**dict(values))


def _save_rates(scored: pd.DataFrame, settings, save_rates, segment) -> np.ndarray:
    if save_rates is None:
        if settings.save_rate is None:
            raise CXDataError(
                "give a save rate (--save-rate) or one per segment (--save-rate-file)"
            )
        return np.full(len(scored), float(settings.save_rate))
    if segment is None or segment not in scored.columns:
        raise CXDataError(
            f"per-segment save rates need the scored table's segment column; {segment!r} "
            f"is not one of its columns"
        )
    rates = {str(k): float(v) for k, v in save_rates.items()}
    for name, value in rates.items():
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise CXDataError(f"save rate of segment {name!r} must be from 0 to 1, got {value}")
    labels = scored[segment].astype("string").fillna("<missing>")
    unknown = sorted(set(labels) - set(rates))
    if unknown and settings.save_rate is None:
        raise CXDataError(
            f"no save rate for segment(s) {', '.join(map(repr, unknown[:5]))} of {segment!r}; "
            "add them to the file or give --save-rate for the rest"
        )
    default = np.nan if settings.save_rate is None else float(settings.save_rate)
    return labels.map(lambda s: rates.get(s, default)).to_numpy(dtype=float)


def plan_campaign(
    scored: pd.DataFrame,
    settings: CampaignSettings,
    *,
    save_rates: dict | None = None,
    segment: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Rank customers by the expected gain of a contact and choose whom to contact.

    Parameters
    ----------
    scored : pandas.DataFrame
        A scored table (``customer_id``, ``churn_risk``, ``clv``; ``drivers`` kept
        as the reasons when present).
    settings : CampaignSettings
        Costs, save rate, margin, budget or maximum contacts, control share.
    save_rates : dict, optional
        Save rate per value of the ``segment`` column (``settings.save_rate``, if
        given, covers the segments not listed).

    Returns
    -------
    plan : pandas.DataFrame
        One row per scored customer, highest gain first: ``customer_id``,
        ``churn_risk``, ``clv``, ``save_rate``, ``expected_gain``, ``contact``,
        ``control``, ``reasons``. Without a budget or maximum, every positive gain is
        chosen; with one, the highest positive gains that fit. Chosen customers in the
        control group have ``control`` true and ``contact`` false.
    summary : dict
        Counts, expected retained value, cost, profit and return of the contacts.

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": [1, 2, 3], "churn_risk": [0.9, 0.5, 0.1],
    ...                        "clv": [400.0, 100.0, 1000.0]})
    >>> plan, summary = plan_campaign(scored, CampaignSettings(contact_cost=5, save_rate=0.15))
    >>> plan[["customer_id", "expected_gain", "contact"]].values.tolist()
    [[1, 49.0, True], [3, 10.0, True], [2, 2.5, True]]
    >>> summary["contacted"], summary["expected_profit"]
    (3, 61.5)
    """
    missing = [c for c in REQUIRED if c not in scored.columns]
    if missing:
        raise CXDataError(
            f"the scored table lacks {', '.join(map(repr, missing))}; give the output of "
            "`cx-models score`"
        )
    p = pd.to_numeric(scored["churn_risk"], errors="coerce").to_numpy(dtype=float)
    clv = pd.to_numeric(scored["clv"], errors="coerce").to_numpy(dtype=float)
    usable = np.isfinite(p) & np.isfinite(clv) & (p >= 0) & (p <= 1) & (clv >= 0)
    gamma = _save_rates(scored, settings, save_rates, segment)
    d, f, m = settings.incentive_cost, settings.contact_cost, settings.margin
    gain = contact_gain(p, gamma, clv, settings)
    with np.errstate(invalid="ignore"):
        cost = f + d * (p * gamma + (1 - p))  # contact, plus the expected incentives
        value = p * gamma * clv * m
    gain = np.where(usable, gain, np.nan)
    order = np.lexsort((np.arange(len(gain)), -np.nan_to_num(gain, nan=-np.inf)))
    chosen = np.zeros(len(gain), dtype=bool)
    positive = order[np.nan_to_num(gain[order], nan=-1.0) > 0]
    if settings.budget is not None:
        fits = np.cumsum(cost[positive]) <= settings.budget + 1e-9
        positive = positive[fits]
    elif settings.max_contacts is not None:
        positive = positive[: settings.max_contacts]
    chosen[positive] = True
    control = np.zeros(len(gain), dtype=bool)
    if settings.control_share > 0 and len(positive):
        rng = np.random.default_rng(settings.seed)
        control[positive[rng.random(len(positive)) < settings.control_share]] = True
    contact = chosen & ~control
    reasons = scored["drivers"] if "drivers" in scored.columns else pd.Series([""] * len(scored))
    plan = pd.DataFrame(
        {
            "customer_id": scored["customer_id"].to_numpy(),
            "churn_risk": p,
            "clv": clv,
            "save_rate": gamma,
            "expected_gain": gain,
            "contact": contact,
            "control": control,
            "reasons": reasons.to_numpy(),
        }
    ).iloc[order].reset_index(drop=True)
    summary = {
        "customers": int(len(plan)),
        "unusable_rows": int((~usable).sum()),
        "chosen": int(chosen.sum()),
        "contacted": int(contact.sum()),
        "control": int(control.sum()),
        "expected_retained_value": float(value[contact].sum()),
        "expected_cost": float(cost[contact].sum()),
        "expected_profit": float(gain[contact].sum()),
        "expected_return": float(gain[contact].sum() / cost[contact].sum())
        if contact.any() and cost[contact].sum() > 0
        else None,
        "settings": {k: v for k, v in settings.__dict__.items()},
        "assumption": "the save rate is an input, not an estimate (see estimate_save_rate); "
        "the gain is a lower bound: CLV is already weighted by the chance of dropping out",
    }
    return plan, summary


def profit_curve(plan: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return (number contacted, cumulative expected profit) down the plan's ranking.

    Examples
    --------
    >>> plan = pd.DataFrame({"expected_gain": [49.0, 10.0, 2.5, -4.0]})
    >>> n, profit = profit_curve(plan)
    >>> n.tolist(), profit.tolist()
    ([0, 1, 2, 3, 4], [0.0, 49.0, 59.0, 61.5, 57.5])
    """
    gains = np.nan_to_num(plan["expected_gain"].to_numpy(dtype=float), nan=0.0)
    return np.arange(len(gains) + 1), np.concatenate([[0.0], np.cumsum(gains)])


def estimate_save_rate(treated: pd.DataFrame, control: pd.DataFrame) -> dict:
    """Estimate the save rate from a contacted and a control group's outcomes.

    ``save rate = 1 − churn_treated / churn_control``, with a 95 % interval from the
    log risk ratio (Katz et al., 1978).

    Parameters
    ----------
    treated, control : pandas.DataFrame
        ``customer_id`` and ``churned`` (0/1) of the contacted and the control group.

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": range(200), "churned": [1] * 60 + [0] * 140})
    >>> c = pd.DataFrame({"customer_id": range(200), "churned": [1] * 80 + [0] * 120})
    >>> r = estimate_save_rate(t, c)
    >>> round(r["save_rate"], 3), [round(v, 3) for v in r["interval_95"]]
    (0.25, [0.016, 0.428])
    """
    rates = {}
    for name, frame in (("treated", treated), ("control", control)):
        if "churned" not in frame.columns or "customer_id" not in frame.columns:
            raise CXDataError(f"the {name} outcomes need columns customer_id and churned (0/1)")
        y = pd.to_numeric(frame["churned"], errors="coerce")
        if y.isna().any() or not y.isin([0, 1]).all():
            raise CXDataError(f"the {name} outcomes: churned must be 0 or 1 in every row")
        if frame["customer_id"].duplicated().any():
            raise CXDataError(f"the {name} outcomes name a customer twice")
        if len(y) == 0 or y.sum() == 0:
            raise CXDataError(f"the {name} group has no churner: the save rate is not defined")
        rates[name] = (float(y.mean()), len(y))
    (pt, nt), (pc, nc) = rates["treated"], rates["control"]
    ratio = pt / pc
    se = math.sqrt((1 - pt) / (nt * pt) + (1 - pc) / (nc * pc))
    low, high = ratio * math.exp(-1.96 * se), ratio * math.exp(1.96 * se)
    return {
        "save_rate": 1 - ratio,
        "interval_95": [1 - high, 1 - low],
        "churn_treated": pt,
        "churn_control": pc,
        "n_treated": nt,
        "n_control": nc,
    }
