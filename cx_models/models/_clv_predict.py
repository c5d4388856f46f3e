"""CLV predictions: P(alive), expected purchases, order value and discounted CLV.

The prediction half of :class:`cx_models.models.clv.CLVModel` (a mixin over its
fitted state: ``params_``, ``spend_params_``, ``time_unit_``, ``model``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_models.errors import CXDataError, NotFittedError
from cx_models.models import gamma_gamma
from cx_models.models._families import family
from cx_models.models._patterns import (
    DAYS_PER_MONTH,
    SPEND_PARAMS,
    discounted_clv,
    distinct_pairs,
    fit_table,
    month_ends,
    rfm_arrays,
    table_unit,
)
from cx_models.timeutil import DAYS_PER_UNIT

__all__ = ["CLVPredictions"]


class CLVPredictions:
    """Predictions of a fitted CLV model (mixed into :class:`~cx_models.models.clv.CLVModel`)."""

    def _require_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("this CLVModel is not fitted yet: call fit(features) first")

    def _params(self, features=None) -> tuple:
        """Return the transaction parameters (per customer of ``features`` with covariates)."""
        if getattr(self, "covariates", None) is None:
            return tuple(self.params_[k] for k in family(self.model).params)
        if features is None:
            raise CXDataError("a CLV model with covariates predicts from a feature table")
        from cx_models.models.covariates import customer_params

        return customer_params(self, features)

    def _unit_days(self) -> float:
        """Days per model time unit (a BG/BB period: ``period_days``)."""
        if self.time_unit_ != "P":
            return DAYS_PER_UNIT[self.time_unit_]
        if self.period_days is None:
            raise CXDataError(
                "BG/BB predictions over days need the period length: "
                "CLVModel(model='bgbb', period_days=...)"
            )
        return float(self.period_days)

    def _period_table(self, features):
        """Return a BG/BB model's table: the features' period history, or the table itself.

        A customer feature table built with ``period_days`` holds the history in
        periods beside the continuous one (:func:`~cx_models.period_features.btyd_view`);
        one recorded in days or weeks without it is refused (it would be read as periods).
        """
        from cx_models.period_features import btyd_view

        view = btyd_view(features, period_days=self.period_days)
        if view is not None:
            if self.period_days is None:
                self.period_days = view.attrs["period_days"]
            return view
        unit = getattr(features, "attrs", {}).get("time_unit")
        if unit is not None and unit != "P":
            raise CXDataError(
                f"BG/BB counts discrete periods but this feature table's history is in "
                f"time unit {unit!r}: build the features with period_days=N (--period-days N), "
                "which adds each customer's history in periods"
            )
        return features

    def _in_model_units(self, features) -> dict[str, np.ndarray]:
        if self.time_unit_ == "P":
            features = self._period_table(features)
        table, _, _ = fit_table(features, allow_no_spend=not self.spend_params_)
        rfm = rfm_arrays(table)
        if self.time_unit_ == "P":  # BG/BB tables count periods already
            return rfm
        factor = DAYS_PER_UNIT[table_unit(features)] / DAYS_PER_UNIT[self.time_unit_]
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
        intervals: float | None = None,
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
        intervals : float, optional
            A central level (e.g. 0.9): adds ``purchases_lower``, ``purchases_upper``
            (a predictive interval of the purchase occasions in the horizon),
            ``purchases_interval_mass`` (its exact probability, counts being whole),
            ``clv_lower`` and ``clv_upper`` (the expected CLV's interval from
            parameter uncertainty); see :mod:`cx_models.models._intervals`.

        Returns
        -------
        pandas.DataFrame
            ``customer_id`` (when the table has it), ``p_alive``,
            ``expected_purchases``, ``prob_no_purchase``,
            ``expected_order_value`` and ``clv`` (the last two only when the
            model was fitted with spend), and the intervals when asked.
        """
        columns = self.predict_arrays(
            features,
            horizon_days=horizon_days,
            clv_months=clv_months,
            discount_rate=discount_rate,
        )
        if intervals is not None:
            from cx_models.models._intervals import prediction_intervals

            columns.update(prediction_intervals(
                self, features, horizon_days=horizon_days, clv_months=clv_months,
                discount_rate=discount_rate, level=float(intervals),
                expected=columns["expected_purchases"], point_clv=columns.get("clv"),
            ))
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
        params = self._params(features)
        horizon = horizon_days / self._unit_days()
        model = family(self.model)
        alive = model.p_alive(params, x, t_x, T)
        # at the horizon and at the end of every CLV month, in one evaluation per pair
        times = np.concatenate([[horizon], self._month_ends(clv_months)])
        if_alive, pair_of = self._if_alive_by_pair(x, T, times, params)
        out = {
            "p_alive": alive,
            "expected_purchases": if_alive[pair_of, 0] * alive,
            "prob_no_purchase": model.prob_no_purchase(
                params, horizon, x, t_x, T, alive=alive
            ),
        }
        if not self.spend_params_:  # fitted without spend: purchases only
            return out
        spend = tuple(self.spend_params_[k] for k in SPEND_PARAMS)
        eov = gamma_gamma.gg_expected_spend(spend, np.where(x > 0, x, 0), rfm["monetary_value"])
        out["expected_order_value"] = eov
        out["clv"] = discounted_clv(if_alive[:, 1:], pair_of, alive, eov, discount_rate)
        return out

    def total_purchases(self, features, *, horizon_days: float, level: float = 0.95) -> dict:
        """Total purchase occasions of the customers in the horizon, with a predictive interval.

        ``expected``, ``lower`` and ``upper`` (the central ``level`` interval, from
        the customers' count distributions and the parameters' uncertainty; see
        :func:`cx_models.models._intervals.total_interval`).

        Examples
        --------
        >>> from cx_models.datasets import load_cdnow_summary
        >>> from cx_models.models.clv import CLVModel
        >>> table = load_cdnow_summary()  # weeks, calibration to 1997-09-30
        >>> total = CLVModel().fit(table).total_purchases(table, horizon_days=39 * 7)
        >>> {k: round(v) for k, v in total.items()}
        {'expected': 1653, 'lower': 1471, 'upper': 1861}
        """
        from cx_models.models._intervals import total_interval

        self._require_fitted()
        return total_interval(self, features, horizon_days=horizon_days, level=level)

    def p_alive_at(self, features, *, days: float) -> np.ndarray:
        """Probability that each customer is alive ``days`` after the table's as-of day.

        Every model: BG/NBD and MBG/NBD through the posterior of the dropout
        probability, Pareto/NBD through that of the dropout rate, BG/BB in periods
        (``days / period_days``). ``days = 0`` gives ``p_alive``.

        Examples
        --------
        >>> from cx_models.datasets import load_donations
        >>> from cx_models.models.clv import CLVModel
        >>> m = CLVModel(model="bgbb", period_days=365.25).fit(load_donations())
        >>> import pandas as pd
        >>> who = pd.DataFrame({"frequency": [0, 2, 6], "recency": [0, 4, 6], "periods": 6})
        >>> m.p_alive_at(who, days=365.25).round(2)  # alive in 2002 (the paper: 0.11, 0.59, 0.93)
        array([0.11, 0.59, 0.93])
        """
        self._require_fitted()
        if not np.isfinite(days) or days < 0:
            raise CXDataError(f"days must be a number of days >= 0, got {days}")
        rfm = self._in_model_units(features)
        return family(self.model).p_alive_at(
            self._params(features), days / self._unit_days(), rfm["frequency"], rfm["recency"],
            rfm["T"],
        )

    def purchase_distribution(self, features, *, horizon_days: float, n_max: int = 20):
        """P(N = n) of each customer's purchases in the horizon, n = 0..n_max (every model).

        Returns an array (customers, n_max + 1); ``1 − row sum`` is the mass above
        ``n_max``. See :mod:`cx_models.models._purchase_counts`.

        Examples
        --------
        >>> from cx_models.datasets import load_cdnow_summary
        >>> from cx_models.models.clv import CLVModel
        >>> table = load_cdnow_summary().head(2)
        >>> pmf = CLVModel().fit(load_cdnow_summary()).purchase_distribution(
        ...     table, horizon_days=39 * 7, n_max=3)
        >>> pmf.round(3)
        array([[0.445, 0.239, 0.144, 0.081],
               [0.883, 0.068, 0.028, 0.012]])
        """
        self._require_fitted()
        if not np.isfinite(horizon_days) or horizon_days <= 0:
            raise CXDataError(f"horizon_days must be a positive number of days, got {horizon_days}")
        if int(n_max) != n_max or n_max < 0:
            raise CXDataError(f"n_max must be a whole number >= 0, got {n_max}")
        rfm = self._in_model_units(features)
        model = family(self.model)
        params = self._params(features)
        x, t_x, T = rfm["frequency"], rfm["recency"], rfm["T"]
        alive = model.p_alive(params, x, t_x, T)
        horizon = horizon_days / self._unit_days()
        step = max(1, 4_000_000 // (int(n_max) + 1) // 64)  # rows per block: ~32 MB of nodes

        def rows(i):
            return tuple(p[i:i + step] if np.ndim(p) else p for p in params)

        return np.vstack([
            model.purchase_pmf(rows(i), horizon, x[i:i + step], t_x[i:i + step], T[i:i + step],
                               int(n_max), alive=alive[i:i + step])
            for i in range(0, max(x.size, 1), step)
        ]) if x.size else np.zeros((0, int(n_max) + 1))

    def _month_ends(self, clv_months: int) -> np.ndarray:
        """Return the end of each CLV month 1..clv_months, in model time units."""
        if self.time_unit_ != "P":
            return month_ends(clv_months, self.time_unit_)
        return np.arange(1, int(clv_months) + 1) * DAYS_PER_MONTH / self._unit_days()

    def _if_alive_by_pair(self, x, T, times: np.ndarray, params=None):
        """Return expected purchases by each of ``times`` if alive, per distinct (x, T) pair.

        They depend on the history through frequency and T only (not the
        recency): one evaluation per pair, not per customer (per customer when
        covariates give each their own parameters). Returns the (pairs, times)
        array and each customer's pair.
        """
        params = self._params() if params is None else params
        purchases_if_alive = family(self.model).purchases_if_alive
        if any(np.ndim(p) for p in params):
            columns = tuple(np.asarray(p)[:, None] if np.ndim(p) else p for p in params)
            return (purchases_if_alive(columns, times[None, :], x[:, None], T[:, None]),
                    np.arange(x.size))
        pair_x, pair_T, pair_of = distinct_pairs(x, T)
        if_alive = purchases_if_alive(params, times[None, :], pair_x[:, None], pair_T[:, None])
        return if_alive, pair_of

    def clv(self, x, t_x, T, order_value, *, clv_months: int, discount_rate: float) -> np.ndarray:
        """Discounted CLV from model-unit histories and expected order values.

        Expected spend in month m is (E[purchases by the end of month m] -
        E[purchases by the end of month m-1]) x order value, discounted by
        ``(1 + discount_rate) ** (-m / 12)``; CLV sums months 1..clv_months.
        """
        self._require_fitted()
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        if not self.spend_params_:
            raise CXDataError("this CLV model was fitted without spend (no monetary_value)")
        self._params(None)  # a model with covariates needs their table: predict()
        if int(clv_months) < 1:
            return np.zeros(np.size(x))
        if_alive, pair_of = self._if_alive_by_pair(x, T, self._month_ends(clv_months))
        alive = family(self.model).p_alive(self._params(), x, t_x, T)
        return discounted_clv(if_alive, pair_of, alive, np.asarray(order_value), discount_rate)

    # -------------------------------------------------------------- persistence
