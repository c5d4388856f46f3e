"""Customer lifetime value: BG/NBD, MBG/NBD or Pareto/NBD + Gamma-Gamma.

The default engine fits
the models on weighted unique customer patterns with the analytic-gradient
likelihoods of :mod:`cx_models.models.bgnbd`, :mod:`cx_models.models.pareto_nbd`
and :mod:`cx_models.models.gamma_gamma` (the transaction models are listed in
:mod:`cx_models.models._families`), which the tests hold to lifetimes'
likelihood values and estimates; ``engine="lifetimes"`` fits with lifetimes
itself (on the same weighted patterns) as the reference
(:mod:`cx_models.models._lifetimes_engine`, the one module that imports lifetimes).

Time units: the feature table's ``recency`` and ``T`` are in its ``time_unit``
(``attrs["time_unit"]``, days when absent); the model records the unit it was
fitted in, converts any table to it, and takes every horizon in **days**.

Notes
-----
BG/NBD gives P(alive) = 1 to every customer without a repeat purchase: in that
model dropout can only happen right after a repeat purchase. That is a modelling
assumption, not evidence of loyalty — churn risk must not be read as
``1 - p_alive``; use the churn model (or MBG/NBD, which allows dropout at time 0).
"""

from __future__ import annotations

import numpy as np

from cx_models.errors import CXDataError
from cx_models.models import gamma_gamma
from cx_models.models._clv_persistence import CLVPersistence
from cx_models.models._clv_predict import CLVPredictions
from cx_models.models._covariate_fit import fit_covariates
from cx_models.models._families import family
from cx_models.models._fitting import inverse_hessian, minimise
from cx_models.models._patterns import (
    DAYS_PER_MONTH,
    RFM_COLUMNS,
    SPEND_PARAMS,
    fit_table,
    rfm_arrays,
    spend_patterns,
    table_unit,
    transaction_patterns,
    weighted_patterns,
)
from cx_models.models.covariates import Covariates, blocks, covariate_matrix
from cx_models.timeutil import check_time_unit

__all__ = ["CLVModel", "DAYS_PER_MONTH", "RFM_COLUMNS"]


class CLVModel(CLVPredictions, CLVPersistence):
    """BG/NBD, MBG/NBD or Pareto/NBD transactions with Gamma-Gamma spend, scikit-learn style.

    Parameters
    ----------
    model : {"bgnbd", "mbgnbd", "pnbd"}
        The transaction model: BG/NBD (Fader, Hardie & Lee 2005), MBG/NBD
        (Batislam et al. 2007) or Pareto/NBD (Schmittlein, Morrison & Colombo
        1987). ``params_`` uses the literature's names: ``r, alpha, a, b`` or
        ``r, alpha, s, beta``.
    penalizer : float
        L2 penalty on the transaction parameters, as lifetimes' ``penalizer_coef``
        (applied on lifetimes' scaled time axis). 0, the default, gives the
        unpenalised estimates of the literature.
    spend_penalizer : float
        L2 penalty on the Gamma-Gamma parameters.
    tol : float
        Optimiser tolerance (gradient norm).
    engine : {"fast", "lifetimes"}
        ``"fast"``: analytic gradients on weighted unique patterns (default);
        ``"lifetimes"``: lifetimes' own fitters, the reference.
    period_days : float, optional
        BG/BB: the length of one period in days (for predictions over days).
    covariates : Covariates or mapping, optional
        Time-invariant purchase and dropout covariates (BG/NBD, MBG/NBD,
        Pareto/NBD), columns of the feature table; see
        :mod:`cx_models.models.covariates`. ``coefficients_`` then holds the slopes.

    Examples
    --------
    >>> from cx_models.datasets import load_cdnow_summary
    >>> m = CLVModel().fit(load_cdnow_summary())  # weeks, calibration to 1997-09-30
    >>> {k: round(v, 3) for k, v in m.params_.items()}
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    >>> p = CLVModel(model="pnbd").fit(load_cdnow_summary())
    >>> {k: round(v, 3) for k, v in p.params_.items()}, round(p.log_likelihood_, 2)
    ({'r': 0.553, 'alpha': 10.578, 's': 0.606, 'beta': 11.668}, -9594.97)
    """

    def __init__(
        self,
        *,
        model: str = "bgnbd",
        penalizer: float = 0.0,
        spend_penalizer: float = 0.0,
        tol: float = 1e-8,
        engine: str = "fast",
        period_days: float | None = None,
        covariates=None,
    ):
        self.model = model
        self.penalizer = penalizer
        self.spend_penalizer = spend_penalizer
        self.tol = tol
        self.engine = engine
        self.period_days = period_days
        self.covariates = covariates

    # ------------------------------------------------------------------ fitting
    def _check_settings(self) -> None:
        if self.model != "auto":
            family(self.model)  # names the valid models
        if self.engine not in ("fast", "lifetimes"):
            raise CXDataError(f"engine must be 'fast' or 'lifetimes', got {self.engine!r}")
        for name in ("penalizer", "spend_penalizer", "tol"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise CXDataError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.period_days is not None and not (
            np.isfinite(self.period_days) and self.period_days > 0
        ):
            raise CXDataError(f"period_days must be a number of days > 0, got {self.period_days!r}")
        self.covariates = Covariates.coerce(self.covariates)
        if self.covariates is not None:
            blocks(self.model, self.covariates)  # names the models that take covariates
            if self.engine != "fast":
                raise CXDataError("covariates need engine='fast' (lifetimes has no covariates)")

    def fit(self, features) -> CLVModel:
        """Fit both models on a customer feature table.

        Parameters
        ----------
        features : pandas.DataFrame or polars.DataFrame
            One row per customer with ``frequency``, ``recency``, ``T`` and
            ``monetary_value`` (other columns are ignored), in the table's
            ``attrs["time_unit"]`` (days when absent). For BG/BB they count
            periods (``T`` may be called ``periods``), and without
            ``monetary_value`` no spend model is fitted. A ``weights`` column
            counts the customers each row stands for.

        Returns
        -------
        CLVModel
            ``self``, with ``params_``, ``spend_params_``, ``standard_errors_``,
            ``log_likelihood_``, ``spend_log_likelihood_``, ``n_customers_``,
            ``n_repeat_customers_`` and ``time_unit_``.
        """
        self._check_settings()
        if self.model == "auto":
            raise CXDataError(
                "model='auto' chooses on a holdout inside the purchase history, which a feature "
                "table does not have: fit_transactions(transactions, as_of=...) does it"
            )
        unit = "P" if self.model == "bgbb" else table_unit(features)
        if self.model == "bgbb":  # a feature table's history in periods, when it has one
            features = self._period_table(features)
        features, weights, has_spend = fit_table(features, allow_no_spend=self.model == "bgbb")
        if self.covariates is not None:  # the levels of text covariates: learnt once, here
            self.covariates = self.covariates.learn(features)
        Z = None if self.covariates is None else covariate_matrix(features, self.covariates)
        rfm = rfm_arrays(features)
        x = rfm["frequency"].astype(np.int64)
        if x.size == 0:
            raise CXDataError("features: no customers to fit")
        if self.model == "bgbb" and rfm["T"].max() == 0:
            length = f"{self.period_days:g} days" if self.period_days else "one period"
            raise CXDataError(
                f"features: no customer has a complete period ({length}) after the first "
                f"purchase yet, so BG/BB has no opportunity to learn from: use shorter periods "
                f"(--period-days) or a later as_of"
            )
        (px, pr, pT), w = weighted_patterns(x, rfm["recency"], rfm["T"], weights=weights)
        spend = None
        if has_spend:
            repeat = (x > 0) & (rfm["monetary_value"] > 0)
            (gx, gm), gw = weighted_patterns(
                x[repeat], rfm["monetary_value"][repeat], weights=weights[repeat]
            )
            spend = {"frequency": gx, "monetary_value": gm, "count": gw}
        self._fit_patterns({"frequency": px, "recency": pr, "T": pT, "count": w}, spend, unit)
        if Z is not None:  # from the fit without covariates
            fit_covariates(self, x, rfm["recency"], rfm["T"], weights, Z, self.n_customers_)
        return self

    def fit_transactions(self, transactions, *, as_of, fmt=None, spec=None) -> CLVModel:
        """Validate transactions, build their table at ``as_of`` and fit; ``"auto"`` chooses first.

        ``model="auto"`` fits BG/NBD, MBG/NBD and Pareto/NBD on a calibration
        period and keeps the best on the holdout
        (:func:`cx_models.clv_choice.choose_clv_model`, recorded in ``choice_``);
        ``model`` is then the chosen one. ``fmt``: the columns and time format
        (:class:`~cx_models.settings.EventFormat`); ``spec``: the feature table's
        definition (its time unit is the fit's).
        """
        from cx_models.clv_choice import fit_transactions

        return fit_transactions(self, transactions, as_of=as_of, fmt=fmt, spec=spec)

    def fit_patterns(
        self, patterns, spend, *, time_unit: str = "D", source: str = "patterns"
    ) -> CLVModel:
        """Fit both models on unique patterns and how many customers share each.

        This is all the likelihoods need, and what a database or Spark can
        aggregate where the data lives (``GROUP BY frequency, recency, T``):
        :func:`cx_models.serving.spark.fit_clv` uses it. :meth:`fit` gives the
        same estimates from one row per customer.

        Parameters
        ----------
        patterns : table or mapping of columns
            ``frequency, recency, T, count``: the unique (frequency, recency, T)
            triples in ``time_unit`` and the number of customers with each (a
            pandas or polars frame, or a dict of arrays).
        spend : table or mapping of columns, or None
            ``frequency, monetary_value, count``: the unique (frequency,
            monetary_value) pairs of the repeat customers with
            ``monetary_value > 0``, and their counts. ``None``: no spend model
            (predictions then stop at purchases: no order value, no CLV).
        time_unit : {"D", "W"}
            The unit of ``recency`` and ``T`` (BG/BB: whole periods, whatever is
            given).
        source : str
            Name used in error messages.

        Returns
        -------
        CLVModel
            ``self``, fitted.

        Examples
        --------
        >>> import polars as pl
        >>> from cx_models.datasets import load_cdnow_summary
        >>> f = pl.from_pandas(load_cdnow_summary())  # weeks
        >>> p = f.group_by("frequency", "recency", "T").len("count")
        >>> s = f.filter(pl.col("monetary_value") > 0).group_by("frequency", "monetary_value")
        >>> m = CLVModel().fit_patterns(p, s.len("count"), time_unit="W")
        >>> round(m.params_["r"], 3), m.n_customers_, m.params_ == CLVModel().fit(f).params_
        (0.243, 2357, True)
        """
        self._check_settings()
        if self.covariates is not None:
            raise CXDataError(
                f"{source}: a model with covariates is fitted on one row per customer "
                "(fit(features)), not on patterns"
            )
        return self._fit_patterns(patterns, spend, time_unit, source)

    def _fit_patterns(self, patterns, spend, time_unit, source="features") -> CLVModel:
        self.coefficients_ = {}
        self.covariance_ = {}
        unit = "P" if self.model == "bgbb" else check_time_unit(time_unit)
        px, pr, pT, w = transaction_patterns(patterns, source, periods=unit == "P")
        n = int(w.sum())
        if n == 0:
            raise CXDataError(f"{source}: no customers to fit")
        if self.engine == "fast":
            params, se = self._fit_transactions_fast(px, pr, pT, w, n)
        else:
            params, se = self._fit_transactions_lifetimes(px, pr, pT, w, n)
        names = family(self.model).params
        self.params_ = dict(zip(names, map(float, params), strict=True))
        self.log_likelihood_ = float(w @ family(self.model).loglik(params, px, pr, pT))
        self.standard_errors_ = dict(zip(names, map(float, se), strict=True))
        self.spend_params_, self.spend_log_likelihood_, self.n_repeat_customers_ = {}, None, 0
        if spend is not None:
            self._fit_spend_patterns(spend, source, n)
        self.n_customers_ = n
        self.time_unit_ = unit
        return self

    def _fit_spend_patterns(self, spend, source: str, n: int) -> None:
        gx, gm, gw = spend_patterns(spend, source)
        n_repeat = int(gw.sum())
        if n_repeat < 2:
            raise CXDataError(
                f"{source}: the Gamma-Gamma spend model needs repeat customers with "
                f"monetary_value > 0; found {n_repeat} of {n}"
            )
        if self.engine == "fast":
            spend, spend_se = self._fit_spend_fast(gx, gm, gw)
        else:
            spend, spend_se = self._fit_spend_lifetimes(gx, gm, gw)
        self.spend_params_ = dict(zip(SPEND_PARAMS, map(float, spend), strict=True))
        self.spend_log_likelihood_ = float(gw @ gamma_gamma.gg_loglik(spend, gx, gm))
        self.standard_errors_.update(zip(SPEND_PARAMS, map(float, spend_se), strict=True))
        self.n_repeat_customers_ = n_repeat

    def _optimise(self, make, columns, theta0, what: str, n: int):
        return minimise(
            make, columns, theta0, penalty=self._penalty(what), tol=self.tol, what=what, n=n
        )

    def _penalty(self, what: str) -> float:
        return self.spend_penalizer if what == "Gamma-Gamma" else self.penalizer

    def _fit_transactions_fast(self, x, t_x, T, w, n):
        model = family(self.model)
        # fit on a unit time axis (lifetimes' convention); BG/BB counts whole periods
        scale = 1.0 / T.max() if T.max() > 0 and model.time_params else 1.0
        log_params, hessian = self._optimise(
            model.patterns, (x, t_x * scale, T * scale, w), np.full(4, 0.1), model.label, n
        )
        params = np.exp(log_params)
        theta_cov = inverse_hessian(hessian, model.label, n) / w.sum()  # of the log-parameters
        self.covariance_ = {"transaction": theta_cov.tolist()}  # (the axis scale only shifts)
        cov = np.outer(params, params) * theta_cov
        se = np.sqrt(np.diag(cov))
        for i in model.time_params:  # back from the unit time axis
            params[i] /= scale
            se[i] /= scale
        return params, se

    def _fit_spend_fast(self, x, m, w):
        n = int(w.sum())
        theta0 = np.log([1.0, 1.0, max(float(np.average(m, weights=w)), 1e-6)])
        theta, hessian = self._optimise(
            gamma_gamma.GammaGammaPatterns, (x, m, w), theta0, "Gamma-Gamma", n
        )
        p, q1, v = np.exp(theta)
        jac = np.array([p, q1, v])  # d(p, q, v) / d theta
        theta_cov = inverse_hessian(hessian, "Gamma-Gamma", n) / w.sum()
        self.covariance_["spend"] = theta_cov.tolist()  # of (log p, log(q - 1), log v)
        cov = np.outer(jac, jac) * theta_cov
        return np.array([p, 1.0 + q1, v]), np.sqrt(np.diag(cov))

    def _fit_transactions_lifetimes(self, x, t_x, T, w, n):
        from cx_models.models import _lifetimes_engine

        return _lifetimes_engine.fit_transactions(
            self.model, family(self.model).params, (x, t_x, T, w),
            penalizer=self.penalizer, tol=self.tol, n=n,
        )

    def _fit_spend_lifetimes(self, x, m, w):
        from cx_models.models import _lifetimes_engine

        return _lifetimes_engine.fit_spend(
            (x, m, w), penalizer=self.spend_penalizer, tol=self.tol
        )
