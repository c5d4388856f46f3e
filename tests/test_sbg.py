"""The shifted-beta-geometric model: the paper's numbers, exact derivatives, predictions."""

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.errors import CXDataError
from cx_models.models import sbg as msbg
from cx_models.sbg import SBGModel
from cx_models.synthetic_subscriptions import generate_subscription_base, write_subscription_base

REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(("survivors", "alpha", "beta"), [
    (REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)])
def test_reproduces_fader_hardie_2007(survivors, alpha, beta):
    m = SBGModel().fit_survival(survivors)
    assert m.params_["alpha"] == pytest.approx(alpha, abs=6e-4)
    assert m.params_["beta"] == pytest.approx(beta, abs=6e-4)
    # the fitted curve stays close to the observed one over the 7 years
    s = m.survival(7) * 1000
    assert np.max(np.abs(s - np.array(survivors))) < 25


def test_derl_anchors_of_fader_hardie_2010():
    m = SBGModel().fit_survival(REGULAR)
    # the regular cohort at d = 0.10: 2.965 for n = 1 (0 renewals), 5.894 for n = 5
    got = msbg.derl(0.704, 1.182, [0, 4], 0.10)
    assert got == pytest.approx([2.965, 5.894], abs=5e-4)
    assert m.derl([0, 4], discount_rate=0.10) == pytest.approx([2.965, 5.894], abs=2e-3)


def test_derl_equals_its_series():
    a, b, k, d = 1.7, 3.2, 3, 0.05
    t = np.arange(k + 1, 20_000)
    series = np.sum(msbg.survival(a, b, t) / msbg.survival(a, b, k) * (1 + d) ** -(t - k - 1))
    assert msbg.derl(a, b, k, d) == pytest.approx(series, rel=1e-9)
    # the undiscounted series is the mean residual lifetime when alpha > 1
    mean = np.sum(msbg.survival(a, b, np.arange(k + 1, 2_000_000)) / msbg.survival(a, b, k))
    assert msbg.mean_residual_lifetime(a, b, k) == pytest.approx(mean, rel=1e-3)
    assert np.isinf(msbg.mean_residual_lifetime(0.704, 1.182, 0))


def test_gradient_and_hessian_are_exact():
    rng = np.random.default_rng(0)
    k = rng.integers(0, 30, 500)
    lost = rng.random(500) < 0.6
    w = rng.integers(1, 5, 500)
    p = np.array([0.8, 2.3])
    _, grad, hess = msbg.sbg_loglik(p, k, lost, w, derivatives=True)
    h = 1e-6
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        up = msbg.sbg_loglik(p + e, k, lost, w, derivatives=True)
        down = msbg.sbg_loglik(p - e, k, lost, w, derivatives=True)
        assert (up[0] - down[0]) / (2 * h) == pytest.approx(grad[i], rel=1e-6)
        assert (up[1] - down[1]) / (2 * h) == pytest.approx(hess[:, i], rel=1e-5)


def test_predictions_agree_with_their_definitions():
    m = SBGModel().fit_survival(HIGH_END)
    a, b = m.params_["alpha"], m.params_["beta"]
    s = m.survival(40)
    assert s[0] == 1 and np.all(np.diff(s) < 0)
    assert m.retention_rate(40) == pytest.approx(s[1:] / s[:-1], rel=1e-12)
    # retention rises with tenure (the sorting effect of heterogeneity)
    assert np.all(np.diff(m.retention_rate(40)) > 0)
    k = np.array([0, 3, 10])
    assert m.p_active(k, 4) == pytest.approx(s[k + 4] / s[k], rel=1e-12)
    assert m.churn_probability(k, 4) == pytest.approx(1 - s[k + 4] / s[k], rel=1e-12)
    expected = [sum(s[kk + j] / s[kk] for j in range(1, 7)) for kk in k]
    assert m.expected_renewals(k, 6) == pytest.approx(expected, rel=1e-12)
    # the median residual lifetime is the first m with S(k+m)/S(k) <= 1/2
    long = msbg.survival(a, b, np.arange(5_000))
    brute = [int(np.argmax(long[kk:] / long[kk] <= 0.5)) for kk in k]
    assert m.median_residual_lifetime(k).tolist() == brute
    # annual rate: the per-period rate of the model's billing period
    yearly = SBGModel(period="annual").fit_survival(HIGH_END)
    assert yearly.derl(0, annual_rate=0.10) == pytest.approx(yearly.derl(0, discount_rate=0.10))


def test_by_group_json_round_trip(tmp_path):
    base = generate_subscription_base(6_000, seed=4)
    m = SBGModel().fit(base.subscriptions, as_of="2025-12-31", period_days=30, by="plan")
    assert set(m.groups_) == {"basic", "plus", "premium"}
    path = m.save(tmp_path / "sbg.json")
    back = SBGModel.load(path)
    assert back.params_ == m.params_ and back.period.days == 30
    assert back.p_active([2, 5], 3, group=["plus", "basic"]) == pytest.approx(
        [m.p_active(2, 3, group="plus"), m.p_active(5, 3, group="basic")])
    with pytest.raises(CXDataError, match="unknown sBG group"):
        back.survival(3, group="gold")
    with pytest.raises(CXDataError, match="say which"):
        back.survival(3)


def test_recovers_the_generators_parameters():
    # fixed seed, 20,000 customers: the true alpha, beta inside the 95 % intervals
    base = generate_subscription_base(20_000, seed=0)
    m = SBGModel().fit(base.subscriptions, as_of="2025-12-31", period_days=30)
    se = m.standard_errors_
    assert abs(m.params_["alpha"] - 0.9) < 1.96 * se["alpha"]
    assert abs(m.params_["beta"] - 2.5) < 1.96 * se["beta"]
    assert 0 < se["alpha"] < 0.05 and 0 < se["beta"] < 0.2


def test_unidentified_fits_say_why():
    with pytest.raises(CXDataError, match="no relationship was lost"):
        SBGModel().fit_renewals([0, 3, 5], [False, False, False])
    with pytest.raises(CXDataError, match="every relationship was lost in its first period"):
        SBGModel().fit_renewals([0, 0], [True, True])
    with pytest.raises(CXDataError, match="non-increasing"):
        SBGModel().fit_survival([100, 120])
    with pytest.raises(CXDataError, match="not fitted"):
        SBGModel().survival(3)


def test_cli_fit_predict_and_rates(tmp_path):
    base = generate_subscription_base(4_000, seed=8)
    paths = write_subscription_base(base, tmp_path / "gen")
    model = tmp_path / "sbg.json"
    res = run("sbg", "fit", "--subscriptions", paths["subscriptions"], "--as-of", "2025-12-31",
              "--period-days", 30, "--out", model, "--by", "plan")
    assert res.exit_code == 0, res.stderr
    groups = json.loads(model.read_text())["groups"]
    assert set(groups) == {"basic", "plus", "premium"}
    assert set(groups["plus"]) >= {"alpha", "beta", "se", "n", "log_likelihood"}
    assert sum(g["n"] for g in groups.values()) == 4_000
    curves = tmp_path / "curves.csv"
    res = run("sbg", "predict", "--model", model, "--periods", 12, "--out", curves)
    assert res.exit_code == 0, res.stderr
    table = pl.read_csv(curves)
    assert table.columns == ["group", "period", "survival", "retention_rate"]
    assert table.height == 3 * 13
    plus = table.filter(pl.col("group") == "plus")
    fitted = SBGModel.load(model)
    assert plus["survival"].to_numpy() == pytest.approx(fitted.survival(12, group="plus"))
    # an output over its input is refused before any work
    res = run("sbg", "fit", "--subscriptions", paths["subscriptions"], "--as-of", "2025-12-31",
              "--period-days", 30, "--out", paths["subscriptions"])
    assert res.exit_code == 2 and "error:" in res.stderr
    res = run("sbg", "fit", "--subscriptions", paths["subscriptions"], "--as-of", "2025-12-31",
              "--out", model)
    assert res.exit_code == 2 and "--period-days" in res.stderr
