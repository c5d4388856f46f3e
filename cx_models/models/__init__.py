"""The models, one module each, with the likelihood maths they share.

* :mod:`cx_models.models.bgnbd` — BG/NBD and MBG/NBD (purchases and dropout);
* :mod:`cx_models.models.pareto_nbd` — Pareto/NBD (its quadrature compiled in
  ``_kernels``, the only numba import);
* :mod:`cx_models.models.bgbb` — BG/BB (discrete opportunities);
* :mod:`cx_models.models.gamma_gamma` — Gamma-Gamma (spend per purchase);
* :mod:`cx_models.models.clv` — :class:`CLVModel`, the facade that fits a
  transaction model (listed by name in ``_families``) and Gamma-Gamma and
  predicts CLV; ``_lifetimes_engine`` fits with lifetimes, the reference (the
  only lifetimes import);
* :mod:`cx_models.models.churn` — :class:`ChurnModel`, the calibrated XGBoost
  churn classifier (the only xgboost import);
* ``_maths`` (rising factorials), ``_patterns`` (weighted unique patterns) and
  ``_clv_predict`` (CLV predictions) serve them.
"""

from cx_models.models.clv import CLVModel  # noqa: I001 - the CLV model first: churn needs it
from cx_models.models.churn import ChurnModel

__all__ = ["CLVModel", "ChurnModel"]
