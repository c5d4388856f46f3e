"""Compatibility: the churn classifier now lives in :mod:`cx_models.models.churn`."""

from cx_models.models.churn import FEATURE_LABELS, ChurnModel

__all__ = ["ChurnModel", "FEATURE_LABELS"]
