"""Covariates in BG/NBD, MBG/NBD and Pareto/NBD: recovery, gradients, predictions, persistence."""

import numpy as np
import pandas as pd
import pytest
from btyd_sim import simulate_bgnbd, simulate_pnbd
from scipy.optimize import approx_fprime

from cx_models.errors import CXDataError
from cx_models.models._covariate_fit import CovariatePatterns
from cx_models.models.clv import CLVModel
from cx_models.models.covariates import Covariates

N = 8_000
PNBD_TRUTH = {"r": 0.6, "alpha": 8.0, "s": 0.8, "beta": 12.0}
BGNBD_TRUTH = {"r": 0.6, "alpha": 8.0, "a": 0.8, "b": 2.5}


def _covariates(rng, n):
    return (rng.random(n) < 0.4).astype(float), rng.normal(0.0, 1.0, n), rng.normal(0, 1, n)


@pytest.fixture(scope="module")
def pnbd_data():
    rng = np.random.default_rng(11)
    web, amount, noise = _covariates(rng, N)
    table = simulate_pnbd(rng, N, r=0.6, alpha0=8.0, s=0.8, beta0=12.0,
                          purchase={"web": (web, 0.7)}, dropout={"amount": (amount, -0.5)},
                          T=rng.uniform(26, 78, N))
    table["noise"] = noise  # unrelated to behaviour: its slopes must come out near 0
    table.attrs["time_unit"] = "W"
    return table


@pytest.fixture(scope="module")
def bgnbd_data():
    rng = np.random.default_rng(12)
    web, amount, noise = _covariates(rng, N)
    table = simulate_bgnbd(rng, N, r=0.6, alpha0=8.0, a0=0.8, b0=2.5,
                           purchase={"web": (web, 0.7)}, dropout={"amount": (amount, (0.4, -0.3))},
                           T=rng.uniform(26, 78, N))
    table["noise"] = noise
    table.attrs["time_unit"] = "W"
    return table


@pytest.fixture(scope="module")
def pnbd_fit(pnbd_data):
    spec = Covariates(purchase=("web", "noise"), dropout=("amount", "noise"))
    return CLVModel(model="pnbd", covariates=spec).fit(pnbd_data)


@pytest.fixture(scope="module")
def bgnbd_fit(bgnbd_data):
    spec = Covariates(purchase=("web",), dropout=("amount",))
    return CLVModel(covariates=spec).fit(bgnbd_data)


def _within(model, name, truth, k=4.0, max_se=0.15):
    se = model.standard_errors_[name]
    value = model.params_[name] if "." not in name else model.coefficients_[
        name.split(".")[0]][name.split(".")[1]]
    assert 0 < se < max_se * max(1.0, abs(truth)), (name, se)
    assert abs(value - truth) < k * se, (name, value, truth, se)


def test_pareto_nbd_recovers_the_simulated_slopes(pnbd_fit):
    _within(pnbd_fit, "purchase.web", 0.7)
    _within(pnbd_fit, "dropout.amount", -0.5)
    _within(pnbd_fit, "purchase.noise", 0.0)
    _within(pnbd_fit, "dropout.noise", 0.0)
    for name, truth in PNBD_TRUTH.items():
        _within(pnbd_fit, name, truth, max_se=0.3)
    assert list(pnbd_fit.coefficients_) == ["purchase", "dropout"]


def test_bgnbd_recovers_the_simulated_slopes(bgnbd_fit):
    _within(bgnbd_fit, "purchase.web", 0.7)
    _within(bgnbd_fit, "dropout_a.amount", 0.4)
    _within(bgnbd_fit, "dropout_b.amount", -0.3)
    for name, truth in BGNBD_TRUTH.items():
        _within(bgnbd_fit, name, truth, max_se=0.3)


def test_covariates_raise_the_likelihood_over_the_model_without(pnbd_data, pnbd_fit):
    plain = CLVModel(model="pnbd").fit(pnbd_data)
    # nested models: the likelihood-ratio statistic of two real effects is large
    assert 2 * (pnbd_fit.log_likelihood_ - plain.log_likelihood_) > 100


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pnbd"])
def test_objective_gradient_matches_finite_differences(model):
    rng = np.random.default_rng(3)
    n = 60
    x = rng.integers(0, 6, n)
    T = rng.uniform(0.5, 1.0, n)
    t_x = np.where(x > 0, T * rng.uniform(0.1, 1.0, n), 0.0)
    Z = rng.normal(size=(n, 2))
    links = [(1, -1.0, [0, 1]), (2, 1.0, [1]), (3, 1.0, [0])] if model != "pnbd" else [
        (1, -1.0, [0]), (3, -1.0, [0, 1])]
    data = CovariatePatterns(x, t_x, T, rng.integers(1, 4, n), Z, model=model, links=links)
    theta = np.concatenate([np.log([0.7, 0.3, 0.9, 1.6]), rng.normal(0, 0.3, 4 if model != "pnbd"
                                                                    else 3)])
    value, gradient = data.objective(theta, 0.01)
    numeric = approx_fprime(theta, lambda th: data.objective(th, 0.01)[0], 1e-7)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "which", [pytest.param("pnbd", marks=pytest.mark.slow), "bgnbd"]  # pnbd: 8 s of quadrature
)
def test_each_customer_is_predicted_with_their_own_parameters(which, request):
    model = request.getfixturevalue(f"{which}_fit")
    table = request.getfixturevalue(f"{which}_data").head(40)
    full = model.predict(table, horizon_days=182)
    pmf = model.purchase_distribution(table, horizon_days=182, n_max=8)
    later = model.p_alive_at(table, days=91)
    from cx_models.models.covariates import customer_params

    params = customer_params(model, table)
    for i in (0, 7, 23):
        own = CLVModel(model=model.model).from_dict({**model.to_dict(), "covariates": None})
        own.params_ = {k: float(np.broadcast_to(p, (len(table),))[i])
                       for k, p in zip(own.params_, params, strict=True)}
        row = table.iloc[[i]]
        alone = own.predict(row, horizon_days=182)
        for col in ("p_alive", "expected_purchases", "prob_no_purchase", "clv"):
            assert full[col].iloc[i] == pytest.approx(alone[col].iloc[0], rel=1e-10), col
        np.testing.assert_allclose(pmf[i], own.purchase_distribution(
            row, horizon_days=182, n_max=8)[0], rtol=1e-10)
        assert later[i] == pytest.approx(own.p_alive_at(row, days=91)[0], rel=1e-10)
    # the slopes move predictions the way they say: a new web customer expects more purchases
    new = pd.DataFrame({"frequency": 0, "recency": 0.0, "T": 0.0, "monetary_value": 0.0,
                        "web": [0.0, 1.0], "amount": 0.0, "noise": 0.0})
    new.attrs["time_unit"] = "W"
    first_year = model.predict(new, horizon_days=365)["expected_purchases"]
    assert first_year[1] > first_year[0] * 1.5


def test_round_trip_and_intervals_with_covariates(tmp_path, bgnbd_fit, bgnbd_data):
    loaded = CLVModel.load(bgnbd_fit.save(tmp_path / "clv.json"))
    assert loaded.covariates == bgnbd_fit.covariates
    assert loaded.coefficients_ == bgnbd_fit.coefficients_
    table = bgnbd_data.head(300)
    a = bgnbd_fit.predict(table, horizon_days=182, intervals=0.9)
    b = loaded.predict(table, horizon_days=182, intervals=0.9)
    pd.testing.assert_frame_equal(a, b)
    assert (a["purchases_interval_mass"] >= 0.9 - 1e-9).all()
    assert (a["clv_lower"] <= a["clv"] + 1e-9).all() and (a["clv"] <= a["clv_upper"] + 1e-9).all()
    assert len(loaded.covariance_["transaction"]) == 4 + 3


def test_a_text_covariate_is_its_indicators(bgnbd_data, bgnbd_fit, tmp_path):
    """Text levels give the fit of their 0/1 indicators; unseen and missing count as reference."""
    # "store" is the most frequent level (60 %): the reference, so "channel=web" is web
    text = bgnbd_data.assign(channel=np.where(bgnbd_data["web"] == 1, " web", "store"))
    fit = CLVModel(covariates={"purchase": ["channel"], "dropout": ["amount"]}).fit(text)
    assert fit.covariates.levels == (("channel", ("store", "web")),)
    assert fit.covariates.columns == ("channel=web", "amount")
    assert fit.log_likelihood_ == pytest.approx(bgnbd_fit.log_likelihood_, rel=1e-9)
    assert fit.coefficients_["purchase"]["channel=web"] == pytest.approx(
        bgnbd_fit.coefficients_["purchase"]["web"], rel=1e-6
    )
    head = text.head(200)
    np.testing.assert_allclose(
        fit.predict(head, horizon_days=182)["expected_purchases"],
        bgnbd_fit.predict(head, horizon_days=182)["expected_purchases"], rtol=1e-6,
    )
    loaded = CLVModel.load(fit.save(tmp_path / "clv.json"))
    assert loaded.covariates == fit.covariates
    odd = head.assign(channel=["app", None] * 100)  # unseen and missing: the reference
    as_store = head.assign(channel="store")
    pd.testing.assert_frame_equal(
        loaded.predict(odd, horizon_days=182), loaded.predict(as_store, horizon_days=182)
    )


def test_bad_covariates_are_named(bgnbd_data):
    with pytest.raises(CXDataError, match="'channel' missing"):
        CLVModel(covariates={"purchase": ["channel"]}).fit(bgnbd_data)
    text = bgnbd_data.assign(channel="web")
    with pytest.raises(CXDataError, match="'channel' takes one value"):
        CLVModel(covariates={"purchase": ["channel"]}).fit(text)
    stamps = bgnbd_data.assign(channel=pd.Timestamp("2024-01-01"))
    with pytest.raises(CXDataError, match="'channel' must be numeric"):
        CLVModel(covariates={"purchase": ["channel"]}).fit(stamps)
    holes = bgnbd_data.assign(web=bgnbd_data["web"].where(bgnbd_data.index > 2))
    with pytest.raises(CXDataError, match="'web' has 3 missing"):
        CLVModel(covariates={"purchase": ["web"]}).fit(holes)
    with pytest.raises(CXDataError, match=r"\['one'\] take one value"):
        CLVModel(covariates={"dropout": ["one"]}).fit(bgnbd_data.assign(one=1.0))
    with pytest.raises(CXDataError, match="model 'bgbb' takes none"):
        CLVModel(model="bgbb", covariates={"purchase": ["web"]}).fit(bgnbd_data)
    with pytest.raises(CXDataError, match="engine='fast'"):
        CLVModel(engine="lifetimes", covariates={"purchase": ["web"]}).fit(bgnbd_data)
    with pytest.raises(CXDataError, match="unknown key"):
        CLVModel(covariates={"spend": ["web"]}).fit(bgnbd_data)
    with pytest.raises(CXDataError, match="one row per customer"):
        CLVModel(covariates={"purchase": ["web"]}).fit_patterns(
            {"frequency": [1], "recency": [1.0], "T": [2.0], "count": [1]}, None)
