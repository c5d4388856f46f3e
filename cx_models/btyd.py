"""Compatibility: the BTYD maths now live in :mod:`cx_models.models` (one module per model).

:mod:`cx_models.models.bgnbd` (BG/NBD, MBG/NBD) and
:mod:`cx_models.models.gamma_gamma` (Gamma-Gamma); the names below keep working.
"""

from cx_models.models.bgnbd import (
    BGNBDPatterns,
    bgnbd_loglik,
    bgnbd_objective,
    conditional_expected_purchases,
    expected_purchases,
    p_alive,
    prob_no_purchase,
    purchases_if_alive,
)
from cx_models.models.gamma_gamma import (
    GammaGammaPatterns,
    gg_expected_spend,
    gg_loglik,
    gg_objective,
)

__all__ = [
    "BGNBDPatterns",
    "GammaGammaPatterns",
    "bgnbd_loglik",
    "bgnbd_objective",
    "conditional_expected_purchases",
    "expected_purchases",
    "gg_expected_spend",
    "gg_loglik",
    "gg_objective",
    "p_alive",
    "prob_no_purchase",
    "purchases_if_alive",
]
