"""Forward-in-time evaluation of the churn model against baselines.

Train with data up to ``as_of - horizon`` (its snapshots' label windows end
there), score every customer at ``as_of - horizon`` and compare with what
happened in the window after it. The model is therefore always scored at a later
date, on older customers, than any snapshot it was trained on. Baselines on the
same rows: the BG/NBD ``prob_no_purchase`` (and the configured transaction
model's, when it is another), days since last purchase, and a logistic
regression on the same features; with the generator's ground truth, the
ceiling: the same probability computed from each customer's true purchase rate
and dropout probability.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from sklearn.calibration import calibration_curve
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cx_models.campaign import CampaignSettings
from cx_models.campaign_outcomes import EVALUATION_CAMPAIGN, plot_realised, realised_campaign
from cx_models.churn_data import (
    SnapshotCache,
    churn_labels,
    fit_snapshot_clv,
    snapshot_features,
    training_snapshots,
)
from cx_models.emp import emp_score
from cx_models.errors import ConvergenceError, CXDataError
from cx_models.models.churn import ChurnModel
from cx_models.settings import SnapshotPlan
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = ["classification_metrics", "evaluate_churn", "true_prob_no_purchase"]

_K_SHARES = (0.01, 0.05, 0.10)


def classification_metrics(y, score, *, probability: bool = True) -> dict:
    """ROC-AUC, PR-AUC, Brier, log loss, top-decile lift, precision/recall at k %, EMP.

    ``emp`` and ``emp_fraction`` are the expected maximum profit measure for churn
    and the share contacted at it (:func:`cx_models.emp.emp_score`, the paper's
    defaults: CLV 200, incentive 10, contact 1, acceptance ~ Beta(6, 14)).

    ``score`` ranks customers (higher = more likely to churn); Brier and log
    loss are reported only for probabilities.

    Examples
    --------
    >>> m = classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> m["roc_auc"], m["precision_at_10pct"]
    (0.75, 1.0)
    """
    y = np.asarray(y, dtype=int)
    s = np.asarray(score, dtype=float)
    n = y.size
    order = np.argsort(-s, kind="stable")
    base_rate = y.mean()
    out = {
        "n": int(n),
        "churn_rate": float(base_rate),
        "mean_predicted": float(s.mean()) if probability else None,
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "brier": float(brier_score_loss(y, s)) if probability else None,
        "log_loss": float(log_loss(y, np.clip(s, 1e-12, 1 - 1e-12))) if probability else None,
    }
    top = max(1, int(round(0.10 * n)))
    out["lift_top_decile"] = float(y[order[:top]].mean() / base_rate) if base_rate else None
    positives = y.sum()
    for share in _K_SHARES:
        k = max(1, int(round(share * n)))
        hits = y[order[:k]].sum()
        label = f"{round(share * 100)}pct"
        out[f"precision_at_{label}"] = float(hits / k)
        out[f"recall_at_{label}"] = float(hits / positives) if positives else None
    if 0 < positives < n:  # the expected maximum profit (Verbraken et al. 2013, their defaults)
        out.update(emp_score(y, s))
    return out


def true_prob_no_purchase(features: pd.DataFrame, truth: pd.DataFrame, horizon_days: int):
    """P(no purchase in the horizon) from each customer's true rate and dropout probability.

    With the rate ``lambda`` and dropout probability ``p`` known, P(alive) given
    the history is ``1 / (1 + [x > 0] * p / (1 - p) * exp(lambda * (T - t_x)))``
    (days), and the probability of no purchase is
    ``1 - P(alive) + P(alive) * exp(-lambda * horizon)``.
    """
    t = truth.set_index("customer_id").loc[features["customer_id"].to_numpy()]
    lam = t["purchase_rate_per_day"].to_numpy(dtype=float)
    p = t["dropout_prob"].to_numpy(dtype=float)
    x = features["frequency"].to_numpy(dtype=float)
    days = {"D": 1.0, "W": 7.0}[features.attrs.get("time_unit", "D")]
    gap = (features["T"].to_numpy(dtype=float) - features["recency"].to_numpy(dtype=float)) * days
    with np.errstate(over="ignore", divide="ignore"):
        log_odds = np.log(p) - np.log1p(-p) + lam * gap
        alive = np.where(x > 0, 1.0 / (1.0 + np.exp(log_odds)), 1.0)
    return 1.0 - alive + alive * np.exp(-lam * horizon_days)


def _median(values: np.ndarray) -> float:
    """Return the median of a column's values (0 for a column without any), for the imputer.

    scikit-learn's ``strategy="median"`` goes through masked arrays, ~8× slower on
    250,000 training rows than this per-column median of the values present.
    """
    return float(np.median(values)) if values.size else 0.0


def evaluate_churn(
    transactions: pl.DataFrame,
    surveys: pl.DataFrame | None,
    *,
    as_of,
    plan: SnapshotPlan,
    model: ChurnModel | None = None,
    truth: pd.DataFrame | None = None,
    plots_dir=None,
    campaign: CampaignSettings | None = None,
    attributes: pl.DataFrame | None = None,
    cache: SnapshotCache | None = None,
    baselines: tuple[str, ...] = (),
) -> dict:
    """Train up to ``as_of - horizon``, evaluate on the window after it, with baselines.

    Parameters
    ----------
    transactions, surveys : polars.DataFrame
        Validated canonical frames (see :mod:`cx_models.schemas`), up to ``as_of``.
    as_of : str or date
        The last day of data; the evaluation window is the ``plan.horizon_days``
        before it.
    plan : SnapshotPlan
        The horizon, the snapshot design (as in
        :func:`~cx_models.churn_data.training_snapshots`) and the feature definition
        of every snapshot, the evaluated one included: the definition the final
        model is trained on.
    model : ChurnModel, optional
        Settings for the model (a fresh one with the horizon when omitted).
    truth : pandas.DataFrame, optional
        Ground truth from the generator, for the ceiling.
    plots_dir : path, optional
        Where to write ``reliability.png``, ``lift.png`` and ``campaign_realised.png``.
    campaign : CampaignSettings, optional
        The retention campaign replayed on the window's known outcomes for every
        probability scorer (:func:`cx_models.campaign_outcomes.realised_campaign`;
        :data:`~cx_models.campaign_outcomes.EVALUATION_CAMPAIGN` when omitted).
        Its ``realised_profit`` (the plan's contacts) and ``best_realised_profit``
        join each scorer's metrics.
    attributes : polars.DataFrame, optional
        Validated customer attributes (:func:`cx_models.attributes.validate_attributes`),
        features of the model (and, the numeric ones, of the logistic regression).
    cache : SnapshotCache, optional
        Keeps the snapshots built here for the final model of the same run
        (:class:`cx_models.churn_data.SnapshotCache`).
    baselines : tuple of str
        More transaction models (``mbgnbd``, ``pnbd``) whose P(no purchase), fitted on
        the evaluated day, join the baselines beside BG/NBD's and ``plan.clv_model``'s
        (a run's chosen CLV model, when the churn features come from another).

    Returns
    -------
    dict
        ``metrics`` per scorer, ``beats`` (model minus each baseline), ``campaign``
        (the replay per scorer), training details, and ``plots``.
    """
    as_of = parse_as_of(as_of)
    horizon_days = plan.horizon_days
    day = as_of - dt.timedelta(days=horizon_days)
    # the extra columns' levels are learnt on what the model trained to as_of - horizon saw
    plan = plan.learn(transactions.filter(pl.col("timestamp") < as_of_cutoff(day)))
    spec = plan.spec
    snaps = training_snapshots(
        transactions, surveys, as_of=day, plan=plan, attributes=attributes, cache=cache
    )
    model = model or ChurnModel(horizon_days=horizon_days)
    model.fit(snaps)
    visible = transactions.filter(pl.col("timestamp") < dt.datetime.combine(as_of, dt.time.max))
    current, _ = snapshot_features(
        transactions, surveys, as_of=day, horizon_days=horizon_days, spec=spec,
        clv_model=plan.clv_model, attributes=attributes, cache=cache,
    )
    y = churn_labels(
        visible, current["customer_id"].to_numpy(), as_of=day, horizon_days=horizon_days
    )
    logistic = make_pipeline(
        SimpleImputer(strategy=_median, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    )
    features = [f for f in model.features_ if f not in model.categories_]  # numbers only
    logistic.fit(snaps[features].to_numpy(dtype=float), snaps["churn"].to_numpy())
    scores = {
        "model": (model.predict_proba(current), True),
        "model_uncalibrated": (model.predict_proba_raw(current), True),
        "bgnbd_prob_no_purchase": (_bgnbd_prob_no_purchase(current, plan), True),
        "days_since_last_purchase": (current["days_since_last_purchase"].to_numpy(), False),
        "logistic_regression": (
            logistic.predict_proba(current[features].to_numpy(dtype=float))[:, 1],
            True,
        ),
    }
    if plan.clv_model != "bgnbd":  # the churn features' transaction model's own
        own = current["prob_no_purchase"].to_numpy()
        scores[f"{plan.clv_model}_prob_no_purchase"] = (own, True)
    for name in dict.fromkeys(baselines):
        if f"{name}_prob_no_purchase" not in scores and name != "bgnbd":
            try:
                fitted = fit_snapshot_clv(current, name)
            except (ConvergenceError, CXDataError):  # not identified / no data for it on
                continue  # this day (BG/BB: no complete period yet): no such baseline
            own = fitted.predict_arrays(
                current, horizon_days=horizon_days, clv_months=0, discount_rate=0.0
            )["prob_no_purchase"]
            scores[f"{name}_prob_no_purchase"] = (own, True)
    if truth is not None:
        scores["ceiling_true_parameters"] = (
            true_prob_no_purchase(current, truth, horizon_days),
            True,
        )
    metrics = {
        name: classification_metrics(y, s, probability=prob) for name, (s, prob) in scores.items()
    }
    replays = _replay(current, y, scores, campaign or EVALUATION_CAMPAIGN)
    for name, replay in replays.items():
        metrics[name]["realised_profit"] = replay["realised_profit"]
        metrics[name]["best_realised_profit"] = replay["best_realised_profit"]
    ours = metrics["model"]
    beats = {}
    for name, m in metrics.items():
        if name == "model":
            continue
        gap = {"roc_auc": ours["roc_auc"] - m["roc_auc"], "pr_auc": ours["pr_auc"] - m["pr_auc"]}
        for key in ("emp", "realised_profit"):
            if key in ours and key in m:
                gap[key] = ours[key] - m[key]
        if m["brier"] is not None:
            gap["brier"] = m["brier"] - ours["brier"]  # positive: the model is better
            gap["log_loss"] = m["log_loss"] - ours["log_loss"]
        beats[name] = gap
    report = {
        "as_of": as_of.isoformat(),
        "evaluation_day": day.isoformat(),
        "horizon_days": int(horizon_days),
        "training_snapshots": sorted(snaps["snapshot"].unique().tolist()),
        "training_rows": int(model.n_train_rows_),
        "holdout_rows": int(model.n_holdout_rows_),
        "best_iteration": model.best_iteration_,
        "design": {**snaps.attrs.get("snapshot_design", {}), "holdout": model.holdout_},
        "metrics": metrics,
        "beats": beats,
        "campaign": {
            "settings": dict((campaign or EVALUATION_CAMPAIGN).__dict__),
            **{name: {k: v for k, v in r.items() if k != "_full"} for name, r in replays.items()},
        },
    }
    if plots_dir is not None:
        report["plots"] = _plots(Path(plots_dir), y, scores)
        report["plots"].append(plot_realised(replays, Path(plots_dir) / "campaign_realised.png"))
    report["_model"] = model  # not JSON: the caller pops it
    report["_scores"] = {k: v[0] for k, v in scores.items()}
    report["_labels"] = y
    report["_features"] = current  # the window's first day, for the promotion gate
    return report


def _bgnbd_prob_no_purchase(current: pd.DataFrame, plan: SnapshotPlan) -> np.ndarray:
    """BG/NBD P(no purchase in the horizon) at the evaluation day: the BTYD baseline."""
    if plan.clv_model == "bgnbd":
        return current["prob_no_purchase"].to_numpy()
    bg = fit_snapshot_clv(current, "bgnbd")
    return bg.predict_arrays(current, horizon_days=plan.horizon_days)["prob_no_purchase"]


def _replay(current: pd.DataFrame, y, scores: dict, settings: CampaignSettings) -> dict:
    """Replay the campaign for every probability scorer, ranked by its own risk."""
    if "clv" not in current.columns:
        return {}
    replays = {}
    for name, (score, probability) in scores.items():
        if probability and name != "model_uncalibrated":
            scored = pd.DataFrame(
                {"customer_id": current["customer_id"].to_numpy(), "churn_risk": score,
                 "clv": current["clv"].to_numpy(dtype=float)}
            )
            replays[name] = realised_campaign(scored, y, settings)
    return replays


def _plots(out: Path, y, scores) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    for name in ("model", "model_uncalibrated", "bgnbd_prob_no_purchase", "logistic_regression"):
        frac, mean = calibration_curve(y, scores[name][0], n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o", label=name)
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Reliability (forward evaluation window)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)
    paths.append(str(out / "reliability.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    base = np.mean(y)
    shares = np.linspace(0.01, 1, 100)
    for name, (s, _) in scores.items():
        order = np.argsort(-np.asarray(s, dtype=float), kind="stable")
        cum = np.cumsum(np.asarray(y)[order])
        k = np.maximum((shares * len(y)).astype(int), 1)
        ax.plot(shares * 100, cum[k - 1] / k / base, label=name)
    ax.set_xlabel("% of customers contacted (highest risk first)")
    ax.set_ylabel("lift over the churn rate")
    ax.set_title("Cumulative lift")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "lift.png", dpi=110)
    plt.close(fig)
    paths.append(str(out / "lift.png"))
    return paths
