"""Compatibility: the CLV model now lives in :mod:`cx_models.models.clv`."""

from cx_models.models._patterns import DAYS_PER_MONTH, RFM_COLUMNS
from cx_models.models.clv import CLVModel

__all__ = ["CLVModel", "DAYS_PER_MONTH", "RFM_COLUMNS"]
