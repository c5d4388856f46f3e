"""A CLV fit that must not stop training: larger penalizers while the fit is degenerate."""

import numpy as np
import pytest

from cx_models import clv_fallback
from cx_models.clv_fallback import FALLBACK_PENALIZERS, fit_snapshot_clv
from cx_models.datasets import load_cdnow_summary
from cx_models.errors import ConvergenceError
from cx_models.models.clv import CLVModel

# BG/NBD at a boundary seen on a shape with no dropout (uniform purchases over two years):
# a and b near 0, where the hypergeometric term of the expectation overflows
DEGENERATE = {"r": 7.82, "alpha": 574.2, "a": 1.6e-23, "b": 1.9e-16}


@pytest.fixture(scope="module")
def summary():
    return load_cdnow_summary()


def test_the_boundary_overflows_and_is_caught(summary):
    model = CLVModel().fit(summary)
    assert clv_fallback._non_finite(model, summary) == 0
    model.params_ = dict(DEGENERATE)
    pred = model.predict_arrays(summary, horizon_days=90)
    assert not np.isfinite(pred["expected_purchases"]).all()  # the failure is real
    assert clv_fallback._non_finite(model, summary) == int(
        (~np.isfinite(pred["expected_purchases"]) | ~np.isfinite(pred["p_alive"])
         | ~np.isfinite(pred["prob_no_purchase"])).sum()
    )


def test_penalizers_are_tried_in_turn(summary, monkeypatch):
    real = CLVModel.fit
    seen = []

    def degenerate_without_enough_penalty(self, features):
        seen.append(self.penalizer)
        real(self, features)
        if self.penalizer < 0.01:
            self.params_ = dict(DEGENERATE)
        return self

    monkeypatch.setattr(CLVModel, "fit", degenerate_without_enough_penalty)
    kept = fit_snapshot_clv(summary)
    assert kept.penalizer == 0.01 and seen == [0.0, 0.001, 0.01]
    assert clv_fallback._non_finite(kept, summary) == 0
    seen.clear()
    assert fit_snapshot_clv(summary, penalizer=0.05).penalizer == 0.05 and seen == [0.05]

    def never(self, features):
        raise ConvergenceError("not identified")

    monkeypatch.setattr(CLVModel, "fit", never)
    tried = ", ".join(f"{p:g}" for p in (0.0, *FALLBACK_PENALIZERS))
    with pytest.raises(ConvergenceError, match=rf"not identified \(penalizers tried: {tried}\)"):
        fit_snapshot_clv(summary)
