"""cx-models: churn, CLV and the Net Customer Outcome from transactions and surveys.

The public surface:

* :func:`build_customer_features` / :func:`build_features` — validated raw events to one
  row per customer as of a day (:mod:`cx_models.features`, :mod:`cx_models.schemas`);
* :class:`CLVModel` — BG/NBD + Gamma-Gamma (:mod:`cx_models.models.clv`);
* :class:`ChurnModel` — calibrated XGBoost churn classifier (:mod:`cx_models.models.churn`);
* :func:`score_nco` — the Net Customer Outcome (:mod:`cx_models.nco`);
* :func:`generate_customer_base` — synthetic data with ground truth.
"""

from cx_models.threads import configure_threads

configure_threads()  # before polars, numba or XGBoost size their pools (CX_MODELS_THREADS)

from cx_models._version import __version__  # noqa: E402
from cx_models.errors import ConvergenceError, CXDataError, NotFittedError  # noqa: E402
from cx_models.features import build_customer_features, build_features  # noqa: E402
from cx_models.models.churn import ChurnModel  # noqa: E402
from cx_models.models.clv import CLVModel  # noqa: E402
from cx_models.nco import score_nco  # noqa: E402
from cx_models.synthetic import generate_customer_base  # noqa: E402

__all__ = [
    "CLVModel",
    "ChurnModel",
    "ConvergenceError",
    "CXDataError",
    "NotFittedError",
    "__version__",
    "build_customer_features",
    "build_features",
    "generate_customer_base",
    "score_nco",
]
