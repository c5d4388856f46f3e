"""The fit of a transaction model with covariates (see :mod:`cx_models.models.covariates`).

The likelihood of each customer is the model's own with per-customer parameters;
its gradient in the coefficients follows by the chain rule from the gradient in
the per-customer log-parameters. Customers sharing history and covariates are
one weighted pattern.
"""

from __future__ import annotations

import numpy as np

from cx_models.errors import CXDataError
from cx_models.models._families import family
from cx_models.models._fitting import inverse_hessian, minimise
from cx_models.models._patterns import weighted_patterns
from cx_models.models.covariates import blocks, with_theta

__all__ = ["CovariatePatterns", "fit_covariates"]


class CovariatePatterns:
    """Weighted (x, t_x, T, z) patterns: the objective of a model with covariates.

    ``links`` lists ``(param index, sign, column indices into Z)`` per coefficient
    block; ``theta`` is the four log-parameters followed by each block's slopes.

    Examples
    --------
    >>> data = CovariatePatterns([2, 0], [30.0, 0.0], [38.0, 38.0], [1, 1], [[1.0], [0.0]],
    ...                          model="pnbd", links=[(1, -1.0, [0])])
    >>> value, gradient = data.objective(np.log([0.5, 10.0, 0.6, 11.0]).tolist() + [0.0])
    >>> gradient.shape
    (5,)
    """

    def __init__(self, x, t_x, T, weights, Z, *, model: str, links):
        self.model = family(model)
        self.x = np.asarray(x).astype(np.int64)
        self.t_x = np.asarray(t_x, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.w = np.asarray(weights, dtype=float)
        self.total = self.w.sum()
        self.Z = np.asarray(Z, dtype=float).reshape(self.x.size, -1)
        self.links = [(i, s, np.asarray(c, dtype=np.intp)) for i, s, c in links]

    def objective(self, theta, penalizer: float = 0.0):
        """Return the penalised mean negative log-likelihood and its gradient in ``theta``."""
        theta = np.asarray(theta, dtype=float)
        base = np.exp(theta[:4])
        params: list = list(base)
        at = 4
        slopes = []
        for index, sign, cols in self.links:
            slope = theta[at:at + cols.size]
            slopes.append(slope)
            params[index] = base[index] * np.exp(sign * (self.Z[:, cols] @ slope))
            at += cols.size
        ll, g = self.model.loglik(params, self.x, self.t_x, self.T, grad=True)
        per_row = np.vstack([np.broadcast_to(p, self.x.shape) for p in params])
        g_log = g * per_row  # d ll / d log(parameter), per customer
        gradient = [-(g_log @ self.w) / self.total + 2.0 * penalizer * base**2]
        for (index, sign, cols), slope in zip(self.links, slopes, strict=True):
            d = sign * (self.Z[:, cols].T @ (self.w * g_log[index]))
            gradient.append(-d / self.total + 2.0 * penalizer * slope)
        value = -(self.w @ ll) / self.total + penalizer * (
            np.sum(base**2) + sum(float(s @ s) for s in slopes)
        )
        return value, np.concatenate(gradient)


class _Maker:
    """Builds :class:`CovariatePatterns` for :func:`~cx_models.models._fitting.minimise`."""

    def __init__(self, model: str, links):
        self.model, self.links = model, links
        if model == "pnbd":  # each evaluation costs a quadrature per pattern
            self.WARM_START_ABOVE, self.WARM_START_SAMPLE = 20_000, 10_000

    def __call__(self, x, t_x, T, w, Z):
        return CovariatePatterns(x, t_x, T, w, Z, model=self.model, links=self.links)


def fit_covariates(clv, x, t_x, T, w, Z, n: int) -> None:
    """Refit ``clv``'s transaction model with its covariates, from its fit without them.

    Sets ``params_`` (at covariates 0), ``coefficients_``, ``standard_errors_``
    (slopes as ``"block.column"``), ``log_likelihood_`` and the covariance of
    :func:`~cx_models.models.covariates.theta`.
    """
    model = family(clv.model)
    cov = clv.covariates
    names = cov.columns
    links = [(i, s, [names.index(c) for c in cols]) for _, i, s, cols in blocks(clv.model, cov)]
    (px, pr, pT, *pz), pw = weighted_patterns(x, t_x, T, *Z.T, weights=w)
    Zp = np.column_stack(pz) if pz else np.zeros((px.size, 0))
    mean = (pw @ Zp) / pw.sum()
    sd = np.sqrt((pw @ (Zp - mean) ** 2) / pw.sum())
    constant = [c for c, s in zip(names, sd, strict=True) if not s > 0]
    if constant:
        raise CXDataError(
            f"features: covariate column(s) {constant} take one value for every customer, so "
            "their effect cannot be told apart from the base rate; drop them"
        )
    scale = 1.0 / pT.max() if pT.max() > 0 else 1.0
    start = np.log([clv.params_[k] for k in model.params])
    start[list(model.time_params)] += np.log(scale)
    theta0 = np.concatenate([start, np.zeros(sum(len(c) for _, _, c in links))])
    label = f"{model.label} with covariates"
    theta_s, hessian = minimise(
        _Maker(clv.model, links), (px.astype(np.int64), pr * scale, pT * scale, pw,
                                   (Zp - mean) / sd),
        theta0, penalty=clv.penalizer, tol=clv.tol, what=label, n=n,
    )
    cov_s = inverse_hessian(hessian, label, n) / pw.sum()
    # back to raw covariates and the data's time axis: a linear map of theta
    J = np.eye(theta_s.size)
    at = 4
    for index, sign, cols in links:
        for k, c in enumerate(cols):
            J[at + k, at + k] = 1.0 / sd[c]
            J[index, at + k] = -sign * mean[c] / sd[c]
        at += len(cols)
    shift = np.zeros(theta_s.size)
    shift[list(model.time_params)] = -np.log(scale)
    theta_raw = J @ theta_s + shift
    covariance = J @ cov_s @ J.T
    with_theta(clv, theta_raw)
    params = np.exp(theta_raw[:4])
    se = np.sqrt(np.diag(covariance))
    clv.standard_errors_ = dict(zip(model.params, map(float, params * se[:4]), strict=True))
    at = 4
    for name, _, _, cols in blocks(clv.model, cov):
        for k, c in enumerate(cols):
            clv.standard_errors_[f"{name}.{c}"] = float(se[at + k])
        at += len(cols)
    clv.covariance_["transaction"] = covariance.tolist()
    per_customer = CovariatePatterns(px, pr, pT, pw, Zp, model=clv.model, links=links)
    clv.log_likelihood_ = -per_customer.objective(theta_raw)[0] * pw.sum()
