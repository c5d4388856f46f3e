"""Customer lifetime value: BG/NBD (or MBG/NBD) + Gamma-Gamma.

This is the one module that imports lifetimes' fitters. The default engine fits
the models on weighted unique customer patterns with the analytic-gradient
likelihoods of :mod:`cx_models.btyd`, which the tests hold to lifetimes'
likelihood values and estimates; ``engine="lifetimes"`` fits with lifetimes
itself (on the same weighted patterns) as the reference.

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

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from cx_models import btyd
from cx_models._version import __version__
from cx_models.columns import as_float
from cx_models.errors import ConvergenceError, CXDataError, NotFittedError
from cx_models.timeutil import DAYS_PER_UNIT, check_time_unit

__all__ = ["CLVModel", "DAYS_PER_MONTH", "RFM_COLUMNS"]

#: Length of a CLV month in days: 365.25 / 12.
DAYS_PER_MONTH = 365.25 / 12
#: Columns the model reads from a feature table.
RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_TRANSACTION_PARAMS = ("r", "alpha", "a", "b")
# Above this many patterns, a fit on a seeded subsample starts the optimiser.
_WARM_START_ABOVE = 100_000
_WARM_START_SAMPLE = 20_000
_SPEND_PARAMS = ("p", "q", "v")


def _distinct_pairs(x: np.ndarray, T: np.ndarray):
    """Distinct (x, T) pairs and, for each customer, the index of its pair.

    Examples
    --------
    >>> px, pT, of = _distinct_pairs(np.array([1.0, 0.0, 1.0]), np.array([5.0, 9.0, 5.0]))
    >>> px.tolist(), pT.tolist(), of.tolist()
    ([0.0, 1.0], [9.0, 5.0], [1, 0, 1])
    """
    n = x.size
    if n == 0:
        return x, T, np.zeros(0, dtype=np.intp)
    order = np.lexsort((T, x))
    xs, Ts = x[order], T[order]
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(xs[1:], xs[:-1], out=first[1:])
    first[1:] |= Ts[1:] != Ts[:-1]
    pair_of = np.empty(n, dtype=np.intp)
    pair_of[order] = np.cumsum(first) - 1
    return xs[first], Ts[first], pair_of


def _month_ends(clv_months: int, time_unit: str) -> np.ndarray:
    """Return the end of each CLV month 1..clv_months, in model time units."""
    return np.arange(1, int(clv_months) + 1) * DAYS_PER_MONTH / DAYS_PER_UNIT[time_unit]


def _discounted_clv(if_alive, pair_of, alive, order_value, discount_rate: float) -> np.ndarray:
    """Discounted CLV from per-pair expected purchases by each month's end (if alive).

    Month m's expected purchases (the increment of the cumulative ones) are
    discounted by (1 + rate)^(-m/12), summed per pair, then scaled by each
    customer's P(alive) and expected order value.
    """
    months = np.arange(1, if_alive.shape[1] + 1)
    monthly = np.diff(if_alive, axis=1, prepend=0.0)
    per_pair = monthly @ ((1.0 + discount_rate) ** (-months / 12.0))
    return np.clip(per_pair[pair_of] * alive, 0.0, None) * order_value


def _table_unit(features: pd.DataFrame) -> str:
    return check_time_unit(getattr(features, "attrs", {}).get("time_unit", "D"))


def _rfm_arrays(features, *, source: str = "features") -> dict[str, np.ndarray]:
    """Extract and check the RFM columns (lifetimes' rules, with clear messages)."""
    if isinstance(features, pl.DataFrame):
        features = features.to_pandas()
    missing = [c for c in RFM_COLUMNS if c not in features.columns]
    if missing:
        raise CXDataError(
            f"{source}: required column(s) {', '.join(map(repr, missing))} missing; a customer "
            "feature table from `cx-models features` / build_customer_features has them"
        )
    out = {}
    for col in RFM_COLUMNS:
        values = as_float(features[col])
        if not np.isfinite(values).all():
            raise CXDataError(f"{source}: column {col!r} has missing or non-finite values")
        if (values < 0).any():
            raise CXDataError(f"{source}: column {col!r} has negative values")
        out[col] = values
    x = out["frequency"]
    if (x != np.round(x)).any():
        raise CXDataError(f"{source}: column 'frequency' must hold whole numbers")
    if (out["recency"] > out["T"] * (1 + 1e-9) + 1e-9).any():
        raise CXDataError(f"{source}: recency must be <= T for every customer")
    if ((x == 0) & (out["recency"] > 0)).any():
        raise CXDataError(f"{source}: customers with frequency 0 must have recency 0")
    return out


def _weighted_patterns(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Return the unique rows of the columns and how many customers share each."""
    frame = pl.DataFrame({f"c{i}": c for i, c in enumerate(columns)})
    grouped = frame.group_by(frame.columns).len()
    return [grouped[f"c{i}"].to_numpy() for i in range(len(columns))], grouped["len"].to_numpy()


def _sort_order(*keys: np.ndarray) -> np.ndarray:
    """Return a canonical order of the rows of ``keys``, whatever order they came in.

    The fit sums over patterns, and the order of a sum moves the estimates by up
    to 1e-6 (Gamma-Gamma's optimum is flat): one canonical order makes them
    reproducible however the patterns were aggregated. The order is that of a
    seeded 64-bit hash of each row (a stable sort of one integer key is several
    times faster than sorting on the float columns).

    Examples
    --------
    >>> a = _sort_order(np.array([2, 1, 1]), np.array([0.5, 3.0, 2.0]))
    >>> b = _sort_order(np.array([1, 1, 2]), np.array([2.0, 3.0, 0.5]))
    >>> [(2, 1, 1)[i] for i in a] == [(1, 1, 2)[i] for i in b]
    True
    """
    frame = pl.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    digest = frame.select(pl.struct(pl.all()).hash(seed=0)).to_series().to_numpy()
    # the first key (frequency, a whole number) leads: the likelihoods' per-frequency
    # terms then find their distinct values in sorted order
    first = np.asarray(keys[0])
    if first.dtype.kind in "iu" and first.size and 0 <= first.min() and first.max() < 2**20:
        digest = (first.astype(np.uint64) << np.uint64(44)) | (digest >> np.uint64(20))
    return np.argsort(digest, kind="stable")


def _pattern_counts(counts, size: int, source: str) -> np.ndarray:
    """Check pattern counts: one positive whole number per pattern."""
    w = np.asarray(counts, dtype=float)
    if w.shape != (size,):
        raise CXDataError(f"{source}: {w.size} counts for {size} patterns")
    if not (np.isfinite(w).all() and (w > 0).all() and (w == np.round(w)).all()):
        raise CXDataError(f"{source}: counts must be whole numbers > 0")
    return w


def _numeric_hessian(grad, theta: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central-difference Hessian of an analytic gradient."""
    k = theta.size
    hess = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        hess[:, i] = (grad(theta + e) - grad(theta - e)) / (2 * step)
    return (hess + hess.T) / 2


def _positive_inverse(matrix: np.ndarray) -> np.ndarray | None:
    """Return the symmetric inverse of a well-conditioned positive definite matrix, else None."""
    if not np.all(np.isfinite(matrix)):
        return None
    eig = np.linalg.eigvalsh(matrix)
    if eig.min() <= 0 or eig.max() / eig.min() > 1e12:
        return None
    inverse = np.linalg.inv(matrix)
    return (inverse + inverse.T) / 2


class CLVModel:
    """BG/NBD (or MBG/NBD) transactions with Gamma-Gamma spend, scikit-learn style.

    Parameters
    ----------
    model : {"bgnbd", "mbgnbd"}
        The transaction model.
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

    Examples
    --------
    >>> from cx_models.datasets import load_cdnow_summary
    >>> m = CLVModel().fit(load_cdnow_summary())  # weeks, calibration to 1997-09-30
    >>> {k: round(v, 3) for k, v in m.params_.items()}
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    """

    def __init__(
        self,
        *,
        model: str = "bgnbd",
        penalizer: float = 0.0,
        spend_penalizer: float = 0.0,
        tol: float = 1e-8,
        engine: str = "fast",
    ):
        self.model = model
        self.penalizer = penalizer
        self.spend_penalizer = spend_penalizer
        self.tol = tol
        self.engine = engine

    # ------------------------------------------------------------------ fitting
    def _check_settings(self) -> None:
        if self.model not in ("bgnbd", "mbgnbd"):
            raise CXDataError(f"model must be 'bgnbd' or 'mbgnbd', got {self.model!r}")
        if self.engine not in ("fast", "lifetimes"):
            raise CXDataError(f"engine must be 'fast' or 'lifetimes', got {self.engine!r}")
        for name in ("penalizer", "spend_penalizer", "tol"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise CXDataError(f"{name} must be a finite number >= 0, got {value!r}")

    def fit(self, features) -> CLVModel:
        """Fit both models on a customer feature table.

        Parameters
        ----------
        features : pandas.DataFrame or polars.DataFrame
            One row per customer with ``frequency``, ``recency``, ``T`` and
            ``monetary_value`` (other columns are ignored), in the table's
            ``attrs["time_unit"]`` (days when absent).

        Returns
        -------
        CLVModel
            ``self``, with ``params_``, ``spend_params_``, ``standard_errors_``,
            ``log_likelihood_``, ``spend_log_likelihood_``, ``n_customers_``,
            ``n_repeat_customers_`` and ``time_unit_``.
        """
        unit = _table_unit(features)
        rfm = _rfm_arrays(features)
        x = rfm["frequency"].astype(np.int64)
        if x.size == 0:
            raise CXDataError("features: no customers to fit")
        (px, pr, pT), w = _weighted_patterns(x, rfm["recency"], rfm["T"])
        repeat = (x > 0) & (rfm["monetary_value"] > 0)
        (gx, gm), gw = _weighted_patterns(x[repeat], rfm["monetary_value"][repeat])
        return self.fit_patterns(px, pr, pT, w, gx, gm, gw, time_unit=unit)

    def fit_patterns(
        self,
        frequency,
        recency,
        T,
        counts,
        spend_frequency,
        spend_monetary_value,
        spend_counts,
        *,
        time_unit: str = "D",
        source: str = "patterns",
    ) -> CLVModel:
        """Fit both models on unique patterns and how many customers share each.

        This is all the likelihoods need, and what a database or Spark can
        aggregate where the data lives (``GROUP BY frequency, recency, T``):
        :func:`cx_models.serving.spark.fit_clv` uses it. :meth:`fit` gives the
        same estimates from one row per customer.

        Parameters
        ----------
        frequency, recency, T, counts : array-like
            Unique (frequency, recency, T) triples in ``time_unit`` and the
            number of customers with each.
        spend_frequency, spend_monetary_value, spend_counts : array-like
            Unique (frequency, monetary_value) pairs of the repeat customers
            with ``monetary_value > 0``, and their counts.
        time_unit : {"D", "W"}
            The unit of ``recency`` and ``T``.
        source : str
            Name used in error messages.

        Returns
        -------
        CLVModel
            ``self``, fitted.

        Examples
        --------
        >>> from cx_models.datasets import load_cdnow_summary
        >>> f = pl.from_pandas(load_cdnow_summary())  # weeks
        >>> p = f.group_by("frequency", "recency", "T").len()
        >>> s = f.filter(pl.col("monetary_value") > 0).group_by("frequency", "monetary_value").len()
        >>> m = CLVModel().fit_patterns(p["frequency"], p["recency"], p["T"], p["len"],
        ...     s["frequency"], s["monetary_value"], s["len"], time_unit="W")
        >>> round(m.params_["r"], 3), m.n_customers_, m.params_ == CLVModel().fit(f).params_
        (0.243, 2357, True)
        """
        self._check_settings()
        unit = check_time_unit(time_unit)
        rfm = _rfm_arrays(
            pd.DataFrame(
                {
                    "frequency": np.asarray(frequency, dtype=float),
                    "recency": np.asarray(recency, dtype=float),
                    "T": np.asarray(T, dtype=float),
                    "monetary_value": 0.0,
                }
            ),
            source=source,
        )
        px, pr, pT = rfm["frequency"].astype(np.int64), rfm["recency"], rfm["T"]
        w = _pattern_counts(counts, px.size, source)
        gx = np.asarray(spend_frequency, dtype=float)
        gm = np.asarray(spend_monetary_value, dtype=float)
        gw = _pattern_counts(spend_counts, gx.size, source)
        if gx.size != gm.size:
            raise CXDataError(f"{source}: spend frequency and monetary_value differ in length")
        if not (np.isfinite(gm).all() and (gm > 0).all() and (gx > 0).all()):
            raise CXDataError(
                f"{source}: spend patterns need frequency > 0 and a finite monetary_value > 0"
            )
        gx = gx.astype(np.int64)
        # one canonical order: the estimates do not depend on how patterns were aggregated
        order = _sort_order(px, pr, pT)
        px, pr, pT, w = px[order], pr[order], pT[order], w[order]
        order = _sort_order(gx, gm)
        gx, gm, gw = gx[order], gm[order], gw[order]
        n = int(w.sum())
        if n == 0:
            raise CXDataError(f"{source}: no customers to fit")
        if self.engine == "fast":
            params, se = self._fit_transactions_fast(px, pr, pT, w, n)
        else:
            params, se = self._fit_transactions_lifetimes(px, pr, pT, w, n)
        self.params_ = dict(zip(_TRANSACTION_PARAMS, map(float, params), strict=True))
        ll = btyd.bgnbd_loglik(params, px, pr, pT, model=self.model)
        self.log_likelihood_ = float(w @ ll)

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
        self.spend_params_ = dict(zip(_SPEND_PARAMS, map(float, spend), strict=True))
        self.spend_log_likelihood_ = float(gw @ btyd.gg_loglik(spend, gx, gm))
        self.standard_errors_ = {
            **dict(zip(_TRANSACTION_PARAMS, map(float, se), strict=True)),
            **dict(zip(_SPEND_PARAMS, map(float, spend_se), strict=True)),
        }
        self.n_customers_ = n
        self.n_repeat_customers_ = n_repeat
        self.time_unit_ = unit
        return self

    def _fail(self, what: str, n: int, detail: str) -> ConvergenceError:
        return ConvergenceError(
            f"{what} did not converge on {n:,} customers ({detail}); try a penalizer, "
            "e.g. CLVModel(penalizer=0.001) or --penalizer 0.001"
        )

    def _optimise(self, make, columns, theta0, what: str, n: int) -> np.ndarray:
        """Minimise ``make(*columns).objective`` with BFGS; return the optimum and Hessian.

        On large inputs a fit on a seeded subsample of the patterns gives the
        starting point and, through its Hessian, BFGS's initial inverse Hessian,
        so the full-data optimisation needs only a few steps.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._optimise_quietly(make, columns, theta0, what, n)

    def _optimise_quietly(self, make, columns, theta0, what: str, n: int):
        from scipy.optimize import minimize  # only fitting needs it (import ~0.4 s)

        full = make(*columns)
        hess_inv0 = None
        size = columns[0].size
        if size > _WARM_START_ABOVE:
            rng = np.random.default_rng(0)
            pick = np.sort(rng.choice(size, _WARM_START_SAMPLE, replace=False))
            sub = make(*(c[pick] for c in columns))
            warm = minimize(
                sub.objective,
                theta0,
                args=(self._penalty(what),),
                jac=True,
                method="BFGS",
                options={"gtol": 1e-6, "maxiter": 2000},
            )
            if np.all(np.isfinite(warm.x)):
                theta0 = warm.x
                hess_inv0 = _positive_inverse(
                    _numeric_hessian(lambda th: sub.objective(th, self._penalty(what))[1], theta0)
                )
        result = minimize(
            full.objective,
            theta0,
            args=(self._penalty(what),),
            jac=True,
            method="BFGS",
            options={"gtol": self.tol, "maxiter": 2000, "hess_inv0": hess_inv0},
        )
        if not np.all(np.isfinite(result.x)) or (
            not result.success and np.linalg.norm(result.jac, np.inf) > 1e-5
        ):
            raise self._fail(what, n, result.message)
        hessian = _numeric_hessian(lambda th: full.objective(th, self._penalty(what))[1], result.x)
        return result.x, hessian

    def _penalty(self, what: str) -> float:
        return self.spend_penalizer if what == "Gamma-Gamma" else self.penalizer

    def _fit_transactions_fast(self, x, t_x, T, w, n):
        scale = 1.0 / T.max() if T.max() > 0 else 1.0
        what = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD"}[self.model]

        def make(x, t_x, T, w):
            return btyd.BGNBDPatterns(x, t_x, T, w, model=self.model)

        log_params, hessian = self._optimise(
            make, (x, t_x * scale, T * scale, w), np.full(4, 0.1), what, n
        )
        params = np.exp(log_params)
        cov = np.outer(params, params) * self._inverse(hessian, what, n) / w.sum()
        se = np.sqrt(np.diag(cov))
        params[1] /= scale
        se[1] /= scale
        return params, se

    def _fit_spend_fast(self, x, m, w):
        n = int(w.sum())
        theta0 = np.log([1.0, 1.0, max(float(np.average(m, weights=w)), 1e-6)])
        theta, hessian = self._optimise(
            btyd.GammaGammaPatterns, (x, m, w), theta0, "Gamma-Gamma", n
        )
        p, q1, v = np.exp(theta)
        jac = np.array([p, q1, v])  # d(p, q, v) / d theta
        cov = np.outer(jac, jac) * self._inverse(hessian, "Gamma-Gamma", n) / w.sum()
        return np.array([p, 1.0 + q1, v]), np.sqrt(np.diag(cov))

    def _inverse(self, hess: np.ndarray, what: str, n: int) -> np.ndarray:
        """Invert the Hessian at the optimum, or explain why the estimate is not identified."""
        try:
            inv = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            inv = None
        if inv is None or not np.all(np.isfinite(inv)) or np.any(np.diag(inv) <= 0):
            raise ConvergenceError(
                f"{what}: the likelihood is flat at the optimum on {n:,} customers, so the "
                "parameters are not identified (too few customers or repeat purchases); add "
                "data, or a penalizer, e.g. --penalizer 0.001"
            )
        return inv

    def _fit_transactions_lifetimes(self, x, t_x, T, w, n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter
            from lifetimes.fitters import ConvergenceError as LifetimesConvergenceError

            cls = BetaGeoFitter if self.model == "bgnbd" else ModifiedBetaGeoFitter
            fitter = cls(penalizer_coef=self.penalizer)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    fitter.fit(x, t_x, T, weights=w, tol=self.tol)
            except LifetimesConvergenceError:
                raise self._fail(self.model, n, "lifetimes") from None
            se = fitter.standard_errors_[list(_TRANSACTION_PARAMS)].to_numpy()
        return fitter.params_[list(_TRANSACTION_PARAMS)].to_numpy(), se

    def _fit_spend_lifetimes(self, x, m, w):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lifetimes import GammaGammaFitter
            from lifetimes.fitters import ConvergenceError as LifetimesConvergenceError

            fitter = GammaGammaFitter(penalizer_coef=self.spend_penalizer)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    fitter.fit(x, m, weights=w, tol=self.tol, q_constraint=True)
            except LifetimesConvergenceError:
                raise self._fail("Gamma-Gamma", int(w.sum()), "lifetimes") from None
            se = fitter.standard_errors_[list(_SPEND_PARAMS)].to_numpy()
        return fitter.params_[list(_SPEND_PARAMS)].to_numpy(), se

    # -------------------------------------------------------------- predictions
    def _require_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("this CLVModel is not fitted yet: call fit(features) first")

    def _params(self) -> tuple:
        return tuple(self.params_[k] for k in _TRANSACTION_PARAMS)

    def _in_model_units(self, features) -> dict[str, np.ndarray]:
        rfm = _rfm_arrays(features)
        factor = DAYS_PER_UNIT[_table_unit(features)] / DAYS_PER_UNIT[self.time_unit_]
        rfm["recency"] = rfm["recency"] * factor
        rfm["T"] = rfm["T"] * factor
        return rfm

    def predict(
        self,
        features,
        *,
        horizon_days: float,
        clv_months: int = 12,
        discount_rate: float = 0.10,
    ) -> pd.DataFrame:
        """Predict P(alive), purchases, order value and discounted CLV per customer.

        Parameters
        ----------
        features : pandas.DataFrame
            Customer feature table (any unit; converted to the model's).
        horizon_days : float
            Horizon, in days, of ``expected_purchases`` and ``prob_no_purchase``.
        clv_months : int
            Months of CLV; a month is 365.25 / 12 = 30.4375 days.
        discount_rate : float
            **Annual** discount rate; month ``m`` is discounted by
            ``(1 + discount_rate) ** (-m / 12)``.

        Returns
        -------
        pandas.DataFrame
            ``customer_id`` (when the table has it), ``p_alive``,
            ``expected_purchases``, ``prob_no_purchase``,
            ``expected_order_value`` and ``clv``.
        """
        columns = self.predict_arrays(
            features,
            horizon_days=horizon_days,
            clv_months=clv_months,
            discount_rate=discount_rate,
        )
        out = pd.DataFrame(columns)
        if "customer_id" in features.columns:
            ids = pd.Series(np.asarray(features["customer_id"])).astype(
                features["customer_id"].dtype
            )
            out.insert(0, "customer_id", ids)
        return out

    def predict_arrays(
        self,
        features,
        *,
        horizon_days: float,
        clv_months: int = 12,
        discount_rate: float = 0.10,
    ) -> dict[str, np.ndarray]:
        """:meth:`predict` as a dict of arrays (no ``customer_id``), without building a frame.

        The per-call path of the scorer: a few customers at a time (the API)
        should not pay for DataFrame construction.
        """
        self._require_fitted()
        if not np.isfinite(horizon_days) or horizon_days <= 0:
            raise CXDataError(f"horizon_days must be a positive number of days, got {horizon_days}")
        if int(clv_months) != clv_months or clv_months < 0:
            raise CXDataError(f"clv_months must be a whole number >= 0, got {clv_months}")
        if not np.isfinite(discount_rate) or discount_rate <= -1:
            raise CXDataError(f"discount_rate must be an annual rate > -1, got {discount_rate}")
        rfm = self._in_model_units(features)
        x, t_x, T = rfm["frequency"], rfm["recency"], rfm["T"]
        params = self._params()
        horizon = horizon_days / DAYS_PER_UNIT[self.time_unit_]
        spend = tuple(self.spend_params_[k] for k in _SPEND_PARAMS)
        eov = btyd.gg_expected_spend(spend, np.where(x > 0, x, 0), rfm["monetary_value"])
        alive = btyd.p_alive(params, x, t_x, T, model=self.model)
        # at the horizon and at the end of every CLV month, in one evaluation per pair
        times = np.concatenate([[horizon], _month_ends(clv_months, self.time_unit_)])
        if_alive, pair_of = self._if_alive_by_pair(x, T, times)
        return {
            "p_alive": alive,
            "expected_purchases": if_alive[pair_of, 0] * alive,
            "prob_no_purchase": btyd.prob_no_purchase(
                params, horizon, x, t_x, T, model=self.model, alive=alive
            ),
            "expected_order_value": eov,
            "clv": _discounted_clv(if_alive[:, 1:], pair_of, alive, eov, discount_rate),
        }

    def _if_alive_by_pair(self, x, T, times: np.ndarray):
        """Return expected purchases by each of ``times`` if alive, per distinct (x, T) pair.

        They depend on the history through frequency and T only (not the
        recency): one evaluation per pair, not per customer. Returns the
        (pairs, times) array and each customer's pair.
        """
        pair_x, pair_T, pair_of = _distinct_pairs(x, T)
        if_alive = btyd.purchases_if_alive(
            self._params(), times[None, :], pair_x[:, None], pair_T[:, None], model=self.model
        )
        return if_alive, pair_of

    def clv(self, x, t_x, T, order_value, *, clv_months: int, discount_rate: float) -> np.ndarray:
        """Discounted CLV from model-unit histories and expected order values.

        Expected spend in month m is (E[purchases by the end of month m] -
        E[purchases by the end of month m-1]) x order value, discounted by
        ``(1 + discount_rate) ** (-m / 12)``; CLV sums months 1..clv_months.
        """
        self._require_fitted()
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        if int(clv_months) < 1:
            return np.zeros(np.size(x))
        if_alive, pair_of = self._if_alive_by_pair(x, T, _month_ends(clv_months, self.time_unit_))
        alive = btyd.p_alive(self._params(), x, t_x, T, model=self.model)
        return _discounted_clv(if_alive, pair_of, alive, np.asarray(order_value), discount_rate)

    # -------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """Return the fitted model as JSON-serialisable data (no pickle)."""
        self._require_fitted()
        return {
            "model": self.model,
            "time_unit": self.time_unit_,
            "params": dict(self.params_),
            "spend_params": dict(self.spend_params_),
            "standard_errors": dict(self.standard_errors_),
            "log_likelihood": self.log_likelihood_,
            "spend_log_likelihood": self.spend_log_likelihood_,
            "n_customers": self.n_customers_,
            "n_repeat_customers": self.n_repeat_customers_,
            "settings": {
                "penalizer": self.penalizer,
                "spend_penalizer": self.spend_penalizer,
                "tol": self.tol,
                "engine": self.engine,
            },
            "cx_models_version": __version__,
        }

    @classmethod
    def from_dict(cls, data: dict) -> CLVModel:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        try:
            settings = data.get("settings", {})
            model = cls(model=data["model"], **settings)
            model.params_ = {k: float(data["params"][k]) for k in _TRANSACTION_PARAMS}
            model.spend_params_ = {k: float(data["spend_params"][k]) for k in _SPEND_PARAMS}
            model.standard_errors_ = {k: float(v) for k, v in data["standard_errors"].items()}
            model.log_likelihood_ = float(data["log_likelihood"])
            model.spend_log_likelihood_ = float(data["spend_log_likelihood"])
            model.n_customers_ = int(data["n_customers"])
            model.n_repeat_customers_ = int(data.get("n_repeat_customers", 0))
            model.time_unit_ = check_time_unit(data["time_unit"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CXDataError(f"not a CLV model description: {exc}") from None
        model._check_settings()
        return model

    def save(self, path) -> Path:
        """Write :meth:`to_dict` as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path) -> CLVModel:
        """Read a model written by :meth:`save` (or ``cx-models clv fit``)."""
        path = Path(path)
        if not path.exists():
            raise CXDataError(f"{path}: CLV model file not found")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CXDataError(f"{path}: not JSON ({exc})") from None
        return cls.from_dict(data)
