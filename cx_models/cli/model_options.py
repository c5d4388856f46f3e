"""The options of the models, re-exported by :mod:`cx_models.cli.options`.

The transaction model, its penalty and covariates, the churn snapshots, the NCO
weights and a retention campaign's economics.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "ChurnClvModelOpt",
    "ClvModelOpt",
    "ClvMonthsOpt",
    "ContactCostOpt",
    "DiscountRateOpt",
    "DropoutCovariatesOpt",
    "IncentiveCostOpt",
    "LegacyModelOpt",
    "MarginOpt",
    "MaxSnapshotsOpt",
    "MaxTrainingRowsOpt",
    "NcoWeightsOpt",
    "PenalizerOpt",
    "PurchaseCovariatesOpt",
    "SaveRateOpt",
    "StepOpt",
    "transaction_periods",
]

ClvMonthsOpt = Annotated[
    int | None,
    typer.Option("--clv-months", min=0, help="CLV horizon in months of 30.4375 days."),
]
DiscountRateOpt = Annotated[
    float | None,
    typer.Option("--discount-rate", help="ANNUAL discount rate of the CLV, e.g. 0.10 for 10 %."),
]
ClvModelOpt = Annotated[
    str,
    typer.Option(
        "--clv-model",
        help="Transaction model: bgnbd, mbgnbd, pnbd (Pareto/NBD), bgbb (BG/BB, with "
        "--period-days); train also takes auto (the lowest holdout error; its default), clv "
        "validate all (side by side).",
    ),
]
ChurnClvModelOpt = Annotated[
    str | None,
    typer.Option(
        "--churn-clv-model",
        help="Transaction model whose P(alive), expected purchases, P(no purchase) and CLV "
        "are churn features: bgnbd (default, whatever --clv-model chooses), mbgnbd, pnbd, "
        "or same (the CLV model).",
    ),
]
PurchaseCovariatesOpt = Annotated[
    str | None,
    typer.Option(
        "--purchase-covariates",
        metavar="COLS",
        help="Customer attributes (--attributes) that scale the CLV model's purchase rate, "
        "comma-separated (text columns become indicators of their levels).",
    ),
]
DropoutCovariatesOpt = Annotated[
    str | None,
    typer.Option(
        "--dropout-covariates",
        metavar="COLS",
        help="Customer attributes that move the CLV model's dropout, comma-separated.",
    ),
]
#: The old spelling of --clv-model (and of --model-file in `clv predict`).
LegacyModelOpt = Annotated[str | None, typer.Option("--model", hidden=True)]
PenalizerOpt = Annotated[
    float, typer.Option("--penalizer", min=0.0, help="L2 penalty (lifetimes' penalizer_coef).")
]
StepOpt = Annotated[
    int | None,
    typer.Option("--step-days", min=1, help="Days between snapshots (default: the horizon)."),
]
MaxSnapshotsOpt = Annotated[
    int | None, typer.Option("--max-snapshots", min=1, help="At most this many snapshots.")
]
MaxTrainingRowsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-training-rows",
        min=0,
        help="At most this many (snapshot, customer) training rows: above it every snapshot "
        "keeps the same seeded random share of its customers (default 250000; 0: all rows).",
    ),
]
NcoWeightsOpt = Annotated[
    str | None,
    typer.Option(
        "--nco-weights",
        help="Component weights, e.g. 'csat=0.2,nps=0.2,ces=0.1,retention=0.25,value=0.25'.",
    ),
]

# the economics of a retention campaign (``target``, and the replay of ``train``)
ContactCostOpt = Annotated[
    float | None, typer.Option("--contact-cost", min=0.0, help="Cost of one contact.")
]
SaveRateOpt = Annotated[
    float | None,
    typer.Option(
        "--save-rate", min=0.0, max=1.0, help="Share of would-be churners a contact keeps."
    ),
]
MarginOpt = Annotated[
    float | None,
    typer.Option("--margin", min=0.0, max=1.0, help="Gross margin on CLV (1: revenue)."),
]
IncentiveCostOpt = Annotated[
    float | None,
    typer.Option("--incentive-cost", min=0.0, help="Paid by each customer who accepts."),
]


def transaction_periods(contract) -> int | None:
    """BG/BB's period length from ``--period-days`` on a transactions (non-contractual) run.

    The flag is the subscriptions' billing period too (the same name, days either way);
    a calendar ``--period`` has no fixed length in days, so it is refused here.
    """
    period = getattr(contract, "period", None)
    if period is None:
        return None
    if period.days is None:
        from cx_models.errors import CXDataError

        raise CXDataError(
            f"--period {period.calendar} is a subscription billing period; BG/BB's periods "
            "of transactions are a number of days: --period-days N"
        )
    return int(period.days)
