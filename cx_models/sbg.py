"""The shifted-beta-geometric retention model as an estimator: fit, predict, save, load.

:class:`SBGModel` fits the sBG model (:mod:`cx_models.models.sbg`) by maximum
likelihood with exact gradient and Hessian — on a cohort's survivor counts
(:meth:`SBGModel.fit_survival`), on relationships' renewals
(:meth:`SBGModel.fit_renewals`) or on a subscriptions input
(:meth:`SBGModel.fit`), per group (``by="plan"``) or for all relationships
together (the group ``"all"``). Standard errors come from the inverse observed
information. The JSON file (:meth:`SBGModel.save`) is what ``cx-models sbg fit``
writes: ``{"groups": {"<group>": {"alpha", "beta", "se", "n", "log_likelihood"}}}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl

from cx_models.billing import BillingPeriod
from cx_models.errors import CXDataError
from cx_models.models import sbg as _sbg
from cx_models.models._sbg_fit import SBGFit, fit_group

__all__ = ["SBGFit", "SBGModel"]

_FORMAT = "cx-models/sbg"
_ALL = "all"


class SBGModel:
    """Shifted-beta-geometric retention model (Fader & Hardie 2007).

    Parameters
    ----------
    period : BillingPeriod, int or str, optional
        The billing period the model counts in (kept with the model; needed by
        :meth:`fit` on subscriptions and for discounting by an annual rate).

    Attributes
    ----------
    groups_ : dict of str to SBGFit
        Each group's estimate (``"all"`` when fitted without ``by``).
    params_ : dict
        ``{"alpha", "beta"}`` for one group, else ``{group: {"alpha", "beta"}}``.
    standard_errors_, log_likelihood_ : dict or float
        Likewise.

    Examples
    --------
    The "regular" cohort of Fader & Hardie (2007):

    >>> m = SBGModel().fit_survival([1000, 631, 468, 382, 326, 289, 262, 241])
    >>> {k: round(v, 3) for k, v in m.params_.items()}
    {'alpha': 0.704, 'beta': 1.182}
    >>> m.survival(3).round(3)
    array([1.   , 0.627, 0.474, 0.388])
    """

    def __init__(self, period=None):
        self.period = period

    # ------------------------------------------------------------------ fitting
    def fit_survival(self, survivors) -> SBGModel:
        """Fit on one cohort's counts still active at periods 0, 1, …, n.

        Parameters
        ----------
        survivors : sequence of int
            Customers active at the start (period 0) and after each renewal;
            non-increasing.
        """
        s = np.asarray(survivors, dtype=float)
        if s.ndim != 1 or s.size < 2 or np.any(np.diff(s) > 0) or s[-1] < 0 or s[0] <= 0:
            raise CXDataError(
                "survivors must be a non-increasing sequence of at least two counts, the "
                "first positive, e.g. [1000, 631, 468]"
            )
        t = np.arange(1, s.size)
        renewals = np.concatenate([t - 1, [s.size - 1]])
        lost = np.concatenate([np.ones(t.size, bool), [False]])
        weights = np.concatenate([s[:-1] - s[1:], [s[-1]]])
        keep = weights > 0
        self.groups_ = {_ALL: fit_group(renewals[keep], lost[keep], weights[keep], _ALL)}
        self.by_ = None
        return self

    def fit_renewals(self, renewals, lost, *, weights=None, groups=None) -> SBGModel:
        """Fit on relationships: renewals made so far and whether each was lost.

        Parameters
        ----------
        renewals : array_like of int
            Renewals made (a lost relationship was lost in period ``renewals + 1``).
        lost : array_like of bool
            Lost, or still active (censored).
        weights : array_like, optional
            How many relationships each row stands for.
        groups : array_like of str, optional
            A group per row; one fit per group.
        """
        renewals = np.asarray(renewals, dtype=float)
        lost = np.asarray(lost, dtype=bool)
        if renewals.size == 0:
            raise CXDataError("sBG: no relationship to fit on")
        if np.any(renewals < 0) or np.any(renewals != np.round(renewals)):
            raise CXDataError("sBG: renewals must be whole numbers >= 0")
        weights = np.ones(renewals.size) if weights is None else np.asarray(weights, float)
        if groups is None:
            labels = np.full(renewals.size, _ALL, dtype=object)
        else:
            labels = np.array(["(none)" if g is None else str(g) for g in groups], dtype=object)
        self.groups_ = {}
        for g in sorted(set(labels)):
            mask = labels == g
            self.groups_[g] = fit_group(renewals[mask], lost[mask], weights[mask], g)
        self.by_ = None
        return self

    def fit(self, subscriptions, *, as_of, period_days=None, by=None, spec=None) -> SBGModel:
        """Fit on a subscriptions input as seen on ``as_of``.

        Parameters
        ----------
        subscriptions : path, DatabaseSource or DataFrame
            Raw subscriptions (validated by
            :func:`cx_models.subscriptions.validate_subscriptions`).
        as_of : str or date
            The day the data is seen from.
        period_days : int, optional
            The billing period in days; else ``spec.period``, else the model's own.
        by : str, optional
            ``"plan"`` (the latest plan of each relationship) or ``"cohort"`` (the year
            it began): one fit per group.
        spec : SubscriptionSpec, optional
            Columns, date format, billing period and grace days.
        """
        from dataclasses import replace

        from cx_models.relationships import load_relationships
        from cx_models.subscriptions import SubscriptionSpec

        spec = spec or SubscriptionSpec()
        chosen = period_days if period_days is not None else spec.period or self.period
        spec = replace(spec, period=chosen)
        rels, _ = load_relationships(subscriptions, as_of=as_of, spec=spec)
        self.period = spec.period
        return self.fit_relationships(rels, by=by)

    def fit_relationships(self, rels, *, by=None) -> SBGModel:
        """Fit on relationships with their periods (from ``load_relationships``).

        ``by="plan"`` fits one model per plan (the latest plan of each relationship),
        ``by="cohort"`` one per acquisition cohort (the calendar year it began).
        """
        if by not in (None, "plan", "cohort"):
            raise CXDataError(f"by must be 'plan', 'cohort' or None, got {by!r}")
        groups = None
        if by == "plan":
            groups = rels["plan"].to_list()
        elif by == "cohort":  # the calendar year the relationship began
            groups = rels["start"].dt.year().cast(pl.String).to_list()
        self.fit_renewals(rels["renewals"].to_numpy(), rels["lost"].to_numpy(), groups=groups)
        self.by_ = by
        return self

    # ------------------------------------------------------------------ state
    def _check(self):
        if not hasattr(self, "groups_"):
            raise CXDataError("this SBGModel is not fitted yet; call fit first")

    def _pick(self, name):
        self._check()
        if len(self.groups_) == 1 and _ALL in self.groups_:
            return getattr(self.groups_[_ALL], name) if name != "params" else {
                "alpha": self.groups_[_ALL].alpha, "beta": self.groups_[_ALL].beta}
        if name == "params":
            return {g: {"alpha": f.alpha, "beta": f.beta} for g, f in self.groups_.items()}
        return {g: getattr(f, name) for g, f in self.groups_.items()}

    @property
    def params_(self):
        """``{"alpha", "beta"}`` for one group, else one such dict per group."""
        return self._pick("params")

    @property
    def standard_errors_(self):
        """Standard errors, shaped as :attr:`params_`."""
        return self._pick("se")

    @property
    def log_likelihood_(self):
        """The maximised log-likelihood (a float, or one per group)."""
        return self._pick("log_likelihood")

    def _ab(self, group):
        """Alpha and beta arrays for a group name or a per-row sequence of names."""
        self._check()
        if group is None:
            if len(self.groups_) != 1:
                raise CXDataError(
                    f"this model has groups {', '.join(self.groups_)}; say which (group=)"
                )
            fit = next(iter(self.groups_.values()))
            return np.asarray(fit.alpha), np.asarray(fit.beta)
        names = np.atleast_1d(np.asarray(group, dtype=object))
        unknown = sorted({str(g) for g in names} - set(self.groups_))
        if unknown:
            raise CXDataError(
                f"unknown sBG group(s) {', '.join(map(repr, unknown))}; the model has "
                f"{', '.join(self.groups_)}"
            )
        alpha = np.array([self.groups_[str(g)].alpha for g in names])
        beta = np.array([self.groups_[str(g)].beta for g in names])
        if np.ndim(group) == 0:
            return alpha[0], beta[0]
        return alpha, beta

    # ------------------------------------------------------------------ predictions
    def survival(self, periods: int, *, group=None) -> np.ndarray:
        """S(0), …, S(periods): the share of a new cohort still active after t renewals."""
        a, b = self._ab(group)
        return _sbg.survival(a, b, np.arange(int(periods) + 1))

    def retention_rate(self, periods: int, *, group=None) -> np.ndarray:
        """r(1), …, r(periods): the share of those active in period t−1 who renew, S(t)/S(t−1)."""
        a, b = self._ab(group)
        t = np.arange(1, int(periods) + 1, dtype=float)
        return (b + t - 1.0) / (a + b + t - 1.0)

    def p_active(self, renewals, periods_ahead, *, group=None) -> np.ndarray:
        """P(still active ``periods_ahead`` renewals later | ``renewals`` made), S(k+m)/S(k)."""
        a, b = self._ab(group)
        k = np.asarray(renewals, dtype=float)
        m = np.asarray(periods_ahead, dtype=float)
        return np.exp(_sbg.log_survival(a, b, k + m) - _sbg.log_survival(a, b, k))

    def churn_probability(self, renewals, renewals_due, *, group=None) -> np.ndarray:
        """P(lost before making the next ``renewals_due`` renewals), 1 − S(k+m)/S(k)."""
        return 1.0 - self.p_active(renewals, renewals_due, group=group)

    def expected_renewals(self, renewals, renewals_due, *, group=None) -> np.ndarray:
        """Return the expected number of the next ``renewals_due`` renewals: Σ_j S(k+j)/S(k)."""
        k = np.atleast_1d(np.asarray(renewals, dtype=float))
        m = np.broadcast_to(np.asarray(renewals_due, dtype=float), k.shape)
        a, b = np.broadcast_arrays(*self._ab(group), k)[:2]
        out = np.zeros(k.shape)
        for j in range(1, int(m.max(initial=0)) + 1):
            step = np.exp(_sbg.log_survival(a, b, k + j) - _sbg.log_survival(a, b, k))
            out += np.where(j <= m, step, 0.0)
        return out if np.ndim(renewals) else out[0]

    def derl(self, renewals, *, discount_rate=None, annual_rate=None, group=None):
        """Discounted expected residual lifetime in payments (Fader & Hardie 2010).

        Give the per-period ``discount_rate`` d, or an ``annual_rate`` converted with
        the model's billing period, d = (1 + annual)^(period_days / 365.25) − 1.
        """
        if (discount_rate is None) == (annual_rate is None):
            raise CXDataError("give discount_rate (per period) or annual_rate, not both")
        if discount_rate is None:
            if self.period is None:
                raise CXDataError("annual_rate needs the model's billing period (period=)")
            discount_rate = BillingPeriod.of(self.period).per_period_rate(annual_rate)
        if not discount_rate > 0:
            raise CXDataError(f"the discount rate must be > 0, got {discount_rate!r}")
        a, b = self._ab(group)
        return _sbg.derl(a, b, renewals, discount_rate)

    def mean_residual_lifetime(self, renewals, *, group=None):
        """Return the expected further renewals, (β + k)/(α − 1); infinite when α ≤ 1."""
        a, b = self._ab(group)
        return _sbg.mean_residual_lifetime(a, b, renewals)

    def median_residual_lifetime(self, renewals, *, group=None):
        """Return the fewest further periods after which at most half are still active."""
        a, b = self._ab(group)
        return _sbg.median_residual_lifetime(a, b, renewals)

    def curves(self, periods: int) -> pl.DataFrame:
        """``group, period, survival, retention_rate`` for periods 0..``periods`` of each group.

        Examples
        --------
        >>> m = SBGModel().fit_survival([1000, 869, 743, 653, 593, 551, 517, 491])
        >>> [round(v, 4) for v in m.curves(2).row(1)[2:]]
        [0.8507, 0.8507]
        """
        self._check()
        if int(periods) < 1:
            raise CXDataError(f"periods must be >= 1, got {periods!r}")
        frames = []
        for g in self.groups_:
            s = self.survival(periods, group=g)
            r = np.concatenate([[np.nan], self.retention_rate(periods, group=g)])
            frames.append(pl.DataFrame({
                "group": [g] * s.size, "period": np.arange(s.size),
                "survival": s, "retention_rate": r,
            }).with_columns(pl.col("retention_rate").fill_nan(None)))
        return pl.concat(frames)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """Return the model as a JSON-friendly dict (what :meth:`save` writes)."""
        self._check()
        period = BillingPeriod.of(self.period) if self.period is not None else None
        return {
            "format": _FORMAT,
            "period": None if period is None else {"days": period.days,
                                                    "calendar": period.calendar},
            "by": getattr(self, "by_", None),
            "groups": {g: f.to_dict() for g, f in self.groups_.items()},
        }

    def save(self, path) -> Path:
        """Write the model as JSON (atomically)."""
        from cx_models.io import write_text_atomic

        return write_text_atomic(path, json.dumps(self.to_dict(), indent=2, allow_nan=True))

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "model") -> SBGModel:
        """Rebuild a model from :meth:`to_dict`'s output."""
        try:
            period = data.get("period")
            model = cls(None if not period else BillingPeriod(**period))
            model.groups_ = {
                str(g): SBGFit(alpha=float(f["alpha"]), beta=float(f["beta"]),
                               se=dict(f.get("se", {})), cov=list(f.get("cov", [])),
                               n=float(f.get("n", math.nan)),
                               log_likelihood=float(f.get("log_likelihood", math.nan)))
                for g, f in data["groups"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CXDataError(
                f"{source}: not an sBG model file (expected {{'groups': {{name: {{'alpha', "
                f"'beta', …}}}}}}): {exc}"
            ) from None
        if not model.groups_:
            raise CXDataError(f"{source}: the sBG model file has no groups")
        model.by_ = data.get("by")
        return model

    @classmethod
    def load(cls, path) -> SBGModel:
        """Read a model written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CXDataError(f"{path}: no such sBG model file") from None
        except (OSError, ValueError) as exc:
            raise CXDataError(f"{path}: cannot read the sBG model: {exc}") from None
        if not isinstance(data, dict):
            raise CXDataError(f"{path}: not an sBG model file")
        return cls.from_dict(data, source=str(path))
