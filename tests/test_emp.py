"""The expected maximum profit measure: by hand on a perfect model, and against empulse."""

import numpy as np
import pytest
from scipy import stats

from cx_models.churn_eval import classification_metrics
from cx_models.emp import emp_score


def test_a_perfect_model_by_hand():
    y = np.array([1] * 50 + [0] * 50)
    r = emp_score(y, y + 0.0)
    # contact exactly the churners when gamma (1 - delta) > phi: profit CLV (gamma 0.95 - 0.005) pi0
    cut = 0.005 / 0.95
    a, b = 6, 14
    mean_above = stats.beta.expect(lambda g: g, args=(a, b), lb=cut)
    mass = stats.beta.sf(cut, a, b)
    expected = 200 * 0.5 * (0.95 * mean_above - 0.005 * mass)
    assert r["emp"] == pytest.approx(expected, rel=1e-6)
    assert r["emp_fraction"] == pytest.approx(0.5 * mass, rel=1e-6)
    # a model ranking backwards is worth what no model is: its hull is the diagonal
    assert emp_score(y, -y)["emp"] == pytest.approx(emp_score(y, np.zeros(100))["emp"])


def test_equals_empulse():
    empulse = pytest.importorskip("empulse.metrics")
    rng = np.random.default_rng(4)
    for n, rate, signal in ((300, 0.3, 0.5), (5000, 0.8, 1.5), (2000, 0.05, 0.2)):
        y = (rng.random(n) < rate).astype(int)
        s = y * signal + rng.random(n)
        ours = emp_score(y, s)
        assert ours["emp"] == pytest.approx(empulse.empc_score(y, s), rel=1e-6)
        assert ours["emp_fraction"] == pytest.approx(
            empulse.empc_score.optimal_rate(y, s), rel=1e-4
        )


def test_reported_beside_roc_auc():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 0])
    m = classification_metrics(y, np.linspace(1, 0, 10))
    assert {"emp", "emp_fraction"} <= set(m) and m["emp"] > 0
