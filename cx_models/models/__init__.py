"""The models, one module each, with the likelihood maths they share.

* :mod:`cx_models.models.bgnbd` — BG/NBD and MBG/NBD (purchases and dropout);
* :mod:`cx_models.models.gamma_gamma` — Gamma-Gamma (spend per purchase);
* :mod:`cx_models.models.clv` — :class:`CLVModel`, the facade that fits a
  transaction model and Gamma-Gamma and predicts CLV (the only lifetimes fitter
  import);
* :mod:`cx_models.models.churn` — :class:`ChurnModel`, the calibrated XGBoost
  churn classifier (the only xgboost import);
* ``_maths`` (rising factorials), ``_patterns`` (weighted unique patterns) and
  ``_clv_predict`` (CLV predictions) serve them.
"""

from cx_models.models.clv import CLVModel  # noqa: I001 - the CLV model first: churn needs it
from cx_models.models.churn import ChurnModel

__all__ = ["CLVModel", "ChurnModel"]
