"""The transaction models behind :class:`~cx_models.models.clv.CLVModel`, one entry each.

Each entry names its parameters (the literature's names, in order), the indices of
those measured in time units (rescaled when the fit works on a unit time axis),
and the functions every model gives: the per-customer log-likelihood, weighted
patterns with an ``objective`` for :func:`~cx_models.models._fitting.minimise`,
P(alive), expected purchases if alive (a function of frequency and ``T`` only),
P(no purchase in a horizon), the expected purchases of a new customer, P(alive at
a later day) and the distribution of the number of purchases in a horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cx_models.errors import CXDataError
from cx_models.models import _purchase_counts as counts
from cx_models.models import bgbb, bgnbd, pareto_nbd

__all__ = ["FAMILIES", "TransactionFamily", "family"]


@dataclass(frozen=True)
class TransactionFamily:
    """One transaction model: its parameters and its functions (see the module docstring)."""

    name: str
    label: str
    params: tuple[str, ...]
    time_params: tuple[int, ...]
    loglik: Callable
    patterns: Callable
    p_alive: Callable
    purchases_if_alive: Callable
    prob_no_purchase: Callable
    expected_purchases: Callable
    p_alive_at: Callable
    purchase_pmf: Callable  # (params, t, x, t_x, T, n_max, *, alive) -> (customers, n_max + 1)


def _bgnbd(name: str, label: str) -> TransactionFamily:
    return TransactionFamily(
        name=name,
        label=label,
        params=("r", "alpha", "a", "b"),
        time_params=(1,),
        loglik=partial(bgnbd.bgnbd_loglik, model=name),
        patterns=partial(bgnbd.BGNBDPatterns, model=name),
        p_alive=partial(bgnbd.p_alive, model=name),
        purchases_if_alive=partial(bgnbd.purchases_if_alive, model=name),
        prob_no_purchase=partial(bgnbd.prob_no_purchase, model=name),
        expected_purchases=partial(bgnbd.expected_purchases, model=name),
        p_alive_at=partial(bgnbd.p_alive_at, model=name),
        purchase_pmf=partial(counts.bgnbd_pmf, model=name),
    )


FAMILIES: dict[str, TransactionFamily] = {
    "bgnbd": _bgnbd("bgnbd", "BG/NBD"),
    "mbgnbd": _bgnbd("mbgnbd", "MBG/NBD"),
    "pnbd": TransactionFamily(
        name="pnbd",
        label="Pareto/NBD",
        params=pareto_nbd.PARAMS,
        time_params=(1, 3),
        loglik=pareto_nbd.pnbd_loglik,
        patterns=pareto_nbd.ParetoNBDPatterns,
        p_alive=pareto_nbd.p_alive,
        purchases_if_alive=pareto_nbd.purchases_if_alive,
        prob_no_purchase=pareto_nbd.prob_no_purchase,
        expected_purchases=pareto_nbd.expected_purchases,
        p_alive_at=pareto_nbd.p_alive_at,
        purchase_pmf=counts.pnbd_pmf,
    ),
    "bgbb": TransactionFamily(  # discrete periods: frequency, recency and T count periods
        name="bgbb",
        label="BG/BB",
        params=bgbb.PARAMS,
        time_params=(),
        loglik=bgbb.bgbb_loglik,
        patterns=bgbb.BGBBPatterns,
        p_alive=bgbb.p_alive,
        purchases_if_alive=bgbb.purchases_if_alive,
        prob_no_purchase=bgbb.prob_no_purchase,
        expected_purchases=bgbb.expected_purchases,
        p_alive_at=bgbb.p_alive_at,
        purchase_pmf=counts.bgbb_pmf,
    ),
}


def family(name: str) -> TransactionFamily:
    """Return the transaction model called ``name``, or an error listing the valid ones.

    Examples
    --------
    >>> family("pnbd").params
    ('r', 'alpha', 's', 'beta')
    >>> family("nbd")
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: model must be one of bgnbd, mbgnbd, pnbd, bgbb; got 'nbd'
    """
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise CXDataError(
            f"model must be one of {', '.join(FAMILIES)}; got {name!r}"
        ) from None
