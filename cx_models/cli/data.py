"""``cx-models features`` and ``cx-models generate``: customer features and synthetic bases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx_models._version import __version__
from cx_models.cli._app import app, err, report_table, say_quarantine, user_errors
from cx_models.cli.db_options import database_sources, database_targets, location
from cx_models.cli.options import (
    EVENT_FORMAT,
    FEATURE_SPEC,
    AsOfOpt,
    AttributesOpt,
    CategoricalOpt,
    QuarantineOut,
    SurveysOpt,
    attribute_input,
    settings_from,
)
from cx_models.cli.subscriptions import (
    SUBSCRIPTION_SPEC,
    OptionalSubscriptionsOpt,
    OptionalTransactionsOpt,
)
from cx_models.errors import CXDataError
from cx_models.settings import EventFormat, FeatureSpec
from cx_models.sources import source_name
from cx_models.timeutil import parse_as_of

__all__ = ["build", "features", "generate", "write_features"]


def build(
    transactions, surveys, *, as_of, spec: FeatureSpec, fmt: EventFormat, quarantine_out,
    attributes=None,
):
    """Validate and build features, report counts on stderr, write the quarantine file."""
    from cx_models.features import build_features
    from cx_models.io import table_format

    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    built = build_features(
        transactions, surveys, as_of=as_of, spec=spec, fmt=fmt, attributes=attributes
    )
    summary = built.summary()
    err.print(report_table(summary))
    say_quarantine(quarantine_out, built.transactions, built.surveys, built.attributes)
    orphans = summary["survey_customers_without_purchase"]
    if orphans:
        err.print(f"{orphans:,} survey respondents have no purchase by as_of and get no row")
    without = built.attribute_customers_without_purchase
    if without:
        err.print(f"{without:,} customers in the attributes have no purchase by as_of and get "
                  "no row")
    return built


@app.command()
@user_errors
@settings_from(spec=FEATURE_SPEC, fmt=EVENT_FORMAT, contract=SUBSCRIPTION_SPEC)
@database_sources("transactions", "surveys", "attributes", "subscriptions")
@database_targets("out", "quarantine_out")
def features(
    as_of: AsOfOpt,
    out: Annotated[Path, typer.Option(
        "--out", parser=location, metavar="<path|uri>",
        help="Feature table (.parquet or .csv), or a database URI with --out-table.")],
    transactions: OptionalTransactionsOpt = None,
    subscriptions: OptionalSubscriptionsOpt = None,
    horizon_days: Annotated[int, typer.Option(
        "--horizon-days", min=1,
        help="With subscriptions: the churn horizon the renewals due and retention "
        "baselines count.")] = 90,
    surveys: SurveysOpt = None,
    quarantine_out: QuarantineOut = None,
    attributes: AttributesOpt = None,
    categorical: CategoricalOpt = None,
    *,
    spec: FeatureSpec,
    fmt: EventFormat,
    contract,
) -> None:
    """Build one row of features per customer (per active relationship) as of a cutoff day."""
    if subscriptions is not None:
        from cx_models.cli.subscriptions import write_contract_features

        write_contract_features(
            subscriptions, surveys, transactions, as_of=parse_as_of(as_of, name="--as-of"),
            out=out, horizon_days=horizon_days, lookback_days=spec.lookback_days,
            contract=contract, fmt=fmt, quarantine_out=quarantine_out,
            attributes=attribute_input(attributes, categorical),
        )
        return
    if transactions is None:
        raise CXDataError("give --transactions, or --subscriptions for a subscription business")
    from dataclasses import replace

    from cx_models.cli.model_options import transaction_periods

    if (periods := transaction_periods(contract)) is not None:  # BG/BB's history too
        spec = replace(spec, period_days=periods)
    write_features(
        transactions,
        surveys,
        as_of=parse_as_of(as_of, name="--as-of"),
        out=out,
        spec=spec,
        fmt=fmt,
        quarantine_out=quarantine_out,
        attributes=attribute_input(attributes, categorical),
    )


def write_features(
    transactions, surveys, *, as_of, out, spec, fmt, quarantine_out, attributes=None
):
    """Build the feature table and write it with its definition as metadata."""
    from cx_models.io import table_format, write_table

    table_format(out, what="output")
    built = build(
        transactions, surveys, as_of=as_of, spec=spec, fmt=fmt, quarantine_out=quarantine_out,
        attributes=attributes,
    )
    summary = built.summary()
    write_table(
        built.features,
        out,
        metadata={
            "as_of": summary["as_of"],
            **built.spec.to_dict(),
            "cx_models_version": __version__,
            "validation": summary,
            **({"attributes": built.features.attrs["attributes"]}
               if "attributes" in built.features.attrs else {}),
        },
    )
    err.print(
        f"wrote {summary['customers']:,} customers x {built.features.shape[1]} columns "
        f"(as_of {summary['as_of']}, time unit {summary['time_unit']}) to {source_name(out)}"
    )


@app.command()
@user_errors
def generate(
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    attributes: Annotated[
        bool,
        typer.Option(
            "--attributes",
            help="Also write attributes.parquet (region, plan, channel; region changes the "
            "dropout odds, the others nothing).",
            metavar="",
        ),
    ] = False,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="transactions (non-contractual, BG/NBD) or subscriptions (contractual, sBG).",
        ),
    ] = "transactions",
) -> None:
    """Simulate a base with ground truth: transactions or subscriptions, surveys, truth."""
    from cx_models.synthetic import SyntheticParams, generate_customer_base, write_customer_base

    if kind not in ("transactions", "subscriptions"):
        raise CXDataError(f"--kind must be transactions or subscriptions, got {kind!r}")
    if kind == "subscriptions":
        if attributes:
            raise CXDataError("--attributes is for --kind transactions; a subscription base "
                              "carries its plan in subscriptions.parquet")
        _generate_subscriptions(customers, out, seed)
        return
    with err.status(f"simulating {customers:,} customers"):
        base = generate_customer_base(
            customers, seed=seed, params=SyntheticParams(attributes=attributes)
        )
        paths = write_customer_base(base, out)
    err.print(
        f"wrote {base.transactions.height:,} transactions and {base.surveys.height:,} survey "
        f"responses for {customers:,} customers ({base.params['start']} to "
        f"{base.params['end']}, seed {seed}) to {paths['transactions'].parent}"
    )


def _generate_subscriptions(customers: int, out: Path, seed: int) -> None:
    from cx_models.synthetic_subscriptions import (
        generate_subscription_base,
        write_subscription_base,
    )

    with err.status(f"simulating {customers:,} subscribers"):
        base = generate_subscription_base(customers, seed=seed)
        paths = write_subscription_base(base, out)
    active = base.subscriptions["end"].null_count()
    err.print(
        f"wrote {base.subscriptions.height:,} subscriptions ({active:,} active at "
        f"{base.params['end']}) and {base.surveys.height:,} survey responses "
        f"({base.params['start']} to {base.params['end']}, {base.params['period_days']}-day "
        f"periods, seed {seed}) to {paths['subscriptions'].parent}"
    )
