"""cx-models: churn, CLV and the Net Customer Outcome from transactions and surveys."""

from cx_models._version import __version__
from cx_models.errors import CXDataError, NotFittedError

__all__ = ["CXDataError", "NotFittedError", "__version__"]
