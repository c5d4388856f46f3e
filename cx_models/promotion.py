"""The promotion gate: a challenger against the champion, on the challenger's own window.

A training run's forward evaluation trains a model up to ``as_of - horizon`` and
scores the customers on that day against what happened in the ``horizon`` days
after. That window, the customers' features on its first day, their outcomes and
the forward model's churn risk, is kept with the run (:func:`evaluation_window`;
a seeded sample of at most :data:`WINDOW_SAMPLE` customers). The champion is then
scored on the same rows (:func:`compare_on_window`) — a fair test only when the
champion was trained at or before the window's first day, with the same horizon
and feature definition — and the challenger wins when its ROC-AUC is at least
``min_auc_gain`` higher and its Brier score at most ``max_brier_loss`` worse
(:class:`PromotionGate`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from cx_models.errors import CXDataError

__all__ = [
    "PromotionGate",
    "WINDOW_FILE",
    "WINDOW_META",
    "WINDOW_SAMPLE",
    "compare_on_window",
    "evaluation_window",
]

#: At most this many customers are kept in the evaluation window (seeded sample):
#: enough for an ROC-AUC difference to a few thousandths.
WINDOW_SAMPLE = 200_000
#: The window's files in a training run's artifacts (under ``evaluation/``).
WINDOW_FILE, WINDOW_META = "window.parquet", "window.json"
#: The label and the forward model's churn risk in the window table.
LABEL, CHALLENGER = "churned", "challenger_churn_risk"


@dataclass(frozen=True)
class PromotionGate:
    """When a challenger replaces the champion.

    Examples
    --------
    >>> gate = PromotionGate()
    >>> gate.decide({"roc_auc": 0.80, "brier": 0.150}, {"roc_auc": 0.79, "brier": 0.149})
    (True, 'challenger ROC-AUC 0.8000 vs champion 0.7900 (+0.0100 >= +0.005); Brier 0.1500 vs 0.1490 (+0.0010 <= +0.002)')
    >>> gate.decide({"roc_auc": 0.80, "brier": 0.150}, {"roc_auc": 0.798, "brier": 0.15})[0]
    False
    """  # noqa: E501

    min_auc_gain: float = 0.005
    max_brier_loss: float = 0.002

    def decide(self, challenger: dict, champion: dict) -> tuple[bool, str]:
        """Return whether the challenger wins and why, from both models' metrics."""
        gain = challenger["roc_auc"] - champion["roc_auc"]
        loss = challenger["brier"] - champion["brier"]
        auc_ok, brier_ok = gain >= self.min_auc_gain - 1e-12, loss <= self.max_brier_loss + 1e-12
        reason = (
            f"challenger ROC-AUC {challenger['roc_auc']:.4f} vs champion {champion['roc_auc']:.4f} "
            f"({gain:+.4f} {'>=' if auc_ok else '<'} +{self.min_auc_gain:g}); Brier "
            f"{challenger['brier']:.4f} vs {champion['brier']:.4f} "
            f"({loss:+.4f} {'<=' if brier_ok else '>'} +{self.max_brier_loss:g})"
        )
        return auc_ok and brier_ok, reason

    def to_dict(self) -> dict:
        """Return the gate as a dict (recorded with the comparison)."""
        return asdict(self)


def evaluation_window(evaluation: dict, *, random_state: int = 0) -> pd.DataFrame | None:
    """Return the forward evaluation's window as one table (``None`` when it was skipped).

    One row per customer of the window's first day (a seeded sample of at most
    :data:`WINDOW_SAMPLE`): the plain feature columns, ``churned`` (0/1, what
    happened) and ``challenger_churn_risk`` (the forward model's prediction).
    """
    features = evaluation.get("_features")
    if features is None:
        return None
    window = features.reset_index(drop=True).copy()
    window[LABEL] = np.asarray(evaluation["_labels"], dtype=np.int8)
    window[CHALLENGER] = np.asarray(evaluation["_scores"]["model"], dtype=float)
    if len(window) > WINDOW_SAMPLE:
        rng = np.random.default_rng(random_state)
        window = window.iloc[np.sort(rng.choice(len(window), WINDOW_SAMPLE, replace=False))]
    window.attrs = dict(features.attrs)
    return window.reset_index(drop=True)


def _metrics(y: np.ndarray, risk: np.ndarray) -> dict:
    return {
        "roc_auc": float(roc_auc_score(y, risk)),
        "brier": float(brier_score_loss(y, risk)),
        "predicted_churn_rate": float(np.mean(risk)),
    }


def compare_on_window(
    champion, table: pd.DataFrame, *, window: dict, gate: PromotionGate | None = None
) -> dict:
    """Score ``champion`` (a CXScorer) on the challenger's window table; decide with ``gate``.

    ``window`` describes the table: the challenger's ``evaluation_day``,
    ``horizon_days`` and ``lookback_days``. Raises :class:`CXDataError` naming why
    the two cannot be compared fairly: the champion was trained after the window
    opened (it saw the outcomes; the message names the first challenger ``as_of``
    that can be compared), or for another horizon or survey look-back.

    Returns
    -------
    dict
        ``challenger`` and ``champion`` metrics (``roc_auc``, ``brier``,
        ``predicted_churn_rate``), ``observed_churn_rate``, ``customers``,
        ``promote`` (bool), ``reason`` and the ``gate``.
    """
    gate = gate or PromotionGate()
    kinds = (getattr(champion, "kind", "transactions"), window.get("kind", "transactions"))
    if kinds[0] != kinds[1]:
        raise CXDataError(
            f"the champion is a {kinds[0]} scorer, the challenger a {kinds[1]} one: they do "
            "not score the same rows"
        )
    day = dt.date.fromisoformat(window["evaluation_day"])
    horizon = int(window["horizon_days"])
    trained = champion.trained_as_of
    if trained is None:
        raise CXDataError("the champion does not record its training day; it cannot be compared")
    trained_day = dt.date.fromisoformat(trained)
    if trained_day > day:
        first = trained_day + dt.timedelta(days=horizon)
        raise CXDataError(
            f"the champion was trained with data to {trained}, after the challenger's evaluation "
            f"window opened ({day}): it has seen the outcomes. A challenger trained with "
            f"--as-of {first} or later can be compared"
        )
    if int(champion.horizon_days) != horizon:
        raise CXDataError(
            f"the champion predicts churn within {champion.horizon_days} days, the challenger "
            f"within {horizon}: their risks are not comparable"
        )
    lookback = champion.feature_spec.lookback_days
    if lookback != int(window["lookback_days"]):
        raise CXDataError(
            f"the champion's survey look-back is {lookback} days, the challenger's "
            f"{window['lookback_days']}: the window's features fit only the challenger"
        )
    y = table[LABEL].to_numpy()
    if y.min() == y.max():
        raise CXDataError(f"every customer of the window has churned={int(y[0])}: no ranking")
    features = table.drop(columns=[LABEL, CHALLENGER])
    features.attrs = dict(table.attrs)
    scored = champion.score(features, explain=False)
    result = {
        "challenger": _metrics(y, table[CHALLENGER].to_numpy()),
        "champion": _metrics(y, scored["churn_risk"].to_numpy()),
        "observed_churn_rate": float(np.mean(y)),
        "customers": int(len(y)),
        "evaluation_day": day.isoformat(),
        "horizon_days": horizon,
        "gate": gate.to_dict(),
    }
    result["promote"], result["reason"] = gate.decide(result["challenger"], result["champion"])
    return result
