"""What a campaign plan would have returned, where the outcomes are known.

On the forward evaluation the churn outcome of every customer in the window is
known, so the plan of :func:`cx_models.campaign.plan_campaign` can be replayed:
each contacted customer's **realised gain** is the expected gain with the churn
risk ``p`` replaced by what happened ``y`` (1 = churned):

    realised gain = y · γ · (CLV · m − d) − (1 − y) · d − f

The save rate ``γ`` stays an input (no experiment says whom a contact would have
kept), so the realised curve checks the *ranking and the churn risks*, not the
save rate. The curve is the cumulative realised gain down the plan's ranking;
the plan's choice, its realised profit and the best number to have contacted in
hindsight are read off it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_models.campaign import CampaignSettings, contact_gain, plan_campaign, profit_curve
from cx_models.errors import CXDataError

__all__ = ["CURVE_POINTS", "EVALUATION_CAMPAIGN", "plot_realised", "realised_campaign"]

#: Points kept of each curve for the JSON summary (the whole curve is drawn).
CURVE_POINTS = 201

#: The campaign replayed on the forward evaluation unless one is given: the contact
#: cost (1) and mean acceptance rate (0.3, the mean of Beta(6, 14)) of Verbraken et
#: al.'s defaults, with no incentive (their fixed incentive of 10 assumes a CLV of
#: 200; ours is each customer's own, in the data's currency).
EVALUATION_CAMPAIGN = CampaignSettings(contact_cost=1.0, save_rate=0.3)


def realised_campaign(scored: pd.DataFrame, churned, settings: CampaignSettings) -> dict:
    """Replay the plan on known outcomes: expected and realised profit by number contacted.

    Parameters
    ----------
    scored : pandas.DataFrame
        ``customer_id``, ``churn_risk`` and ``clv`` as for
        :func:`~cx_models.campaign.plan_campaign`.
    churned : array-like of 0/1
        What happened to each row of ``scored`` (1 = churned in the horizon).
    settings : CampaignSettings
        The campaign's economics; a budget or maximum limits the plan as usual.

    Returns
    -------
    dict
        ``contacts`` (the plan's), ``expected_profit`` and ``realised_profit`` of
        those contacts, ``best_contacts`` / ``best_realised_profit`` (the best count
        in hindsight, down the same ranking), ``realised_profit_all`` (contacting
        everyone), and ``curve`` (``contacted``, ``expected``, ``realised``, thinned
        to at most :data:`CURVE_POINTS` points; the full arrays under ``_full``).

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": [1, 2, 3], "churn_risk": [0.9, 0.5, 0.1],
    ...                        "clv": [400.0, 100.0, 1000.0]})
    >>> r = realised_campaign(scored, [1, 0, 0], CampaignSettings(contact_cost=5, save_rate=0.15))
    >>> r["contacts"], r["expected_profit"], r["realised_profit"]
    (3, 61.5, 45.0)
    >>> r["best_contacts"], r["best_realised_profit"]
    (1, 55.0)
    """
    y = np.asarray(churned, dtype=float)
    if y.shape != (len(scored),):
        raise CXDataError(f"need one outcome per scored row: {len(scored)} rows, {y.size} outcomes")
    if not np.isin(y, (0.0, 1.0)).all():
        raise CXDataError("outcomes must be 0 (stayed) or 1 (churned)")
    if settings.control_share:
        raise CXDataError("replaying a plan on known outcomes needs control_share 0")
    plan, summary = plan_campaign(scored, settings)
    position = pd.Series(np.arange(len(scored)), index=scored["customer_id"].to_numpy())
    outcome = y[position.loc[plan["customer_id"].to_numpy()].to_numpy()]
    gamma = plan["save_rate"].to_numpy(dtype=float)
    clv = plan["clv"].to_numpy(dtype=float)
    usable = np.isfinite(plan["expected_gain"].to_numpy(dtype=float))
    realised = np.where(usable, contact_gain(outcome, gamma, clv, settings), 0.0)
    expected = np.nan_to_num(plan["expected_gain"].to_numpy(dtype=float), nan=0.0)
    contacted, expected_curve = profit_curve(plan)
    realised_curve = np.concatenate([[0.0], np.cumsum(realised)])
    contact = plan["contact"].to_numpy(dtype=bool)
    best = int(np.argmax(realised_curve))
    points = min(CURVE_POINTS, len(plan) + 1)
    keep = np.unique(np.linspace(0, len(plan), points).round().astype(int))
    keep = np.union1d(keep, [int(contact.sum()), best])
    return {
        "customers": int(len(plan)),
        "churned": int(y.sum()),
        "contacts": int(contact.sum()),
        "expected_profit": float(expected[contact].sum()),
        "realised_profit": float(realised[contact].sum()),
        "best_contacts": best,
        "best_realised_profit": float(realised_curve[best]),
        "realised_profit_all": float(realised_curve[-1]),
        "curve": {
            "contacted": contacted[keep].tolist(),
            "expected": expected_curve[keep].round(6).tolist(),
            "realised": realised_curve[keep].round(6).tolist(),
        },
        "_full": {"contacted": contacted, "expected": expected_curve, "realised": realised_curve},
        "assumption": summary["assumption"],
    }


def plot_realised(replays: dict, path) -> str:
    """Draw the expected and realised profit curves of each replayed ranking (PNG).

    ``replays`` maps a scorer's name to the result of :func:`realised_campaign`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, replay) in enumerate(replays.items()):
        full = replay["_full"]
        color = f"C{i}"
        ax.plot(full["contacted"], full["realised"], color=color, label=f"{name}: realised")
        if name == "model":
            ax.plot(full["contacted"], full["expected"], color=color, linestyle=":",
                    label="model: expected")
            ax.axvline(replay["contacts"], color=color, linestyle="--", linewidth=0.8,
                       label=f"plan: {replay['contacts']:,} contacted")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("customers contacted (highest expected gain first)")
    ax.set_ylabel("profit (currency of the CLV)")
    ax.set_title("Campaign replayed on the forward evaluation window")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
