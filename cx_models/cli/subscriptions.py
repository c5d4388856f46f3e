"""``cx-models sbg fit | predict`` and ``cx-models rates``: retention from a subscriptions file.

The subscription options (columns, billing period, grace days) build one
:class:`~cx_models.subscriptions.SubscriptionSpec` (:data:`SUBSCRIPTION_SPEC`),
which the contractual verbs share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cx_models.cli._app import app, err, print_json, report_table, say_quarantine, user_errors
from cx_models.cli.db_options import database_sources, database_targets, location
from cx_models.cli.options import AsOfOpt, OptionGroup, QuarantineOut, settings_from
from cx_models.errors import CXDataError
from cx_models.sources import source_name
from cx_models.timeutil import parse_as_of

__all__ = [
    "SUBSCRIPTION_SPEC",
    "OptionalSubscriptionsOpt",
    "OptionalTransactionsOpt",
    "SubscriptionsOpt",
    "sbg_app",
    "write_contract_features",
]

sbg_app = typer.Typer(
    help="Shifted-beta-geometric retention model (Fader & Hardie 2007) on subscriptions.",
    no_args_is_help=True,
)
app.add_typer(sbg_app, name="sbg")

SubscriptionsOpt = Annotated[
    Path,
    typer.Option(
        "--subscriptions",
        parser=location,
        metavar="<path|uri>",
        help="Subscriptions (customer_id, start, end[, plan, price, cancelled_at]; .csv or "
        ".parquet), or a database URI with its table or query.",
    ),
]


#: ``--subscriptions`` on the verbs where it selects the contractual kind.
OptionalSubscriptionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--subscriptions", parser=location, metavar="<path|uri>",
        help="Subscriptions (customer_id, start, end; optional plan, price, cancelled_at): "
        "the contractual kind, with its billing period.",
    ),
]
#: ``--transactions`` where subscriptions may take its place (then: activity events).
OptionalTransactionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--transactions",
        parser=location,
        metavar="<path|uri>",
        help="Transactions file (.csv or .parquet) or database URI with its table or query; "
        "beside subscriptions: optional activity events (usage, payments).",
    ),
]



def _text(flag: str, help_text: str, default: Any) -> tuple[Any, Any]:
    return Annotated[type(default) if default is not None else str | None,
                     typer.Option(flag, help=help_text)], default


def _spec(values: dict):
    from cx_models.billing import BillingPeriod
    from cx_models.subscriptions import SubscriptionColumns, SubscriptionSpec

    days, calendar = values["period_days"], values["period"]
    if days is not None and calendar is not None:
        raise CXDataError("give --period-days or --period, not both")
    period = None
    if days is not None or calendar is not None:
        period = BillingPeriod(days=days) if days is not None else BillingPeriod(calendar=calendar)
    return SubscriptionSpec(
        columns=SubscriptionColumns(
            customer=values["subscription_customer_col"], start=values["start_col"],
            end=values["end_col"], plan=values["plan_col"], price=values["price_col"],
            cancelled_at=values["cancelled_col"],
        ),
        period=period,
        grace_days=values["grace_days"],
        time_format=values["subscription_time_format"],
    )


#: The subscription options: columns, date format, billing period, grace days.
SUBSCRIPTION_SPEC = OptionGroup(
    {
        "subscription_customer_col": _text(
            "--subscription-customer-col", "Subscriptions: customer id column.", "customer_id"
        ),
        "start_col": _text("--start-col", "Subscriptions: first day of service.", "start"),
        "end_col": _text(
            "--end-col", "Subscriptions: last day of service (empty while active).", "end"
        ),
        "plan_col": _text("--plan-col", "Subscriptions: plan column (optional).", "plan"),
        "price_col": _text(
            "--price-col", "Subscriptions: price per billing period (optional).", "price"
        ),
        "cancelled_col": _text(
            "--cancelled-col", "Subscriptions: cancellation date (optional).", "cancelled_at"
        ),
        "subscription_time_format": _text(
            "--subscription-time-format", "strptime format of non-ISO dates.", None
        ),
        "period_days": (
            Annotated[int | None, typer.Option(
                "--period-days", min=1,
                help="Billing period in days; with transactions only: the length of BG/BB's "
                "periods (discrete opportunities).")],
            None,
        ),
        "period": (
            Annotated[str | None, typer.Option(
                "--period", help="Calendar billing period: monthly or annual.")],
            None,
        ),
        "grace_days": (
            Annotated[int, typer.Option(
                "--grace-days", min=0,
                help="Longest gap without service (days) that still continues a relationship.",
            )],
            0,
        ),
    },
    _spec,
)


def load(subscriptions, as_of: str, spec, quarantine_out):
    """Validate, print the counts, write the quarantine; return (relationships, report)."""
    from cx_models.io import table_format
    from cx_models.relationships import load_relationships

    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    rels, report = load_relationships(
        subscriptions, as_of=parse_as_of(as_of, name="--as-of"), spec=spec
    )
    err.print(report_table({"subscriptions": report.to_dict()}))
    say_quarantine(quarantine_out, report)
    active = int(rels["active"].sum())
    err.print(
        f"{rels.height:,} relationships of {rels['customer_id'].n_unique():,} customers: "
        f"{active:,} active at {as_of}, {rels.height - active:,} lost"
    )
    return rels, report


@sbg_app.command("fit")
@user_errors
@settings_from(spec=SUBSCRIPTION_SPEC)
@database_sources("subscriptions")
@database_targets("quarantine_out")
def sbg_fit(
    subscriptions: SubscriptionsOpt,
    as_of: AsOfOpt,
    out: Annotated[Path, typer.Option("--out", help="Model file (.json).")],
    by: Annotated[str | None, typer.Option(
        "--by", help="Fit per group: plan, or cohort (the year a relationship began).")] = None,
    quarantine_out: QuarantineOut = None,
    *,
    spec,
) -> None:
    """Fit the sBG model on the relationships' renewals up to --as-of; write the JSON."""
    from cx_models.sbg import SBGModel

    if by not in (None, "plan", "cohort"):
        raise CXDataError(f"--by must be plan or cohort, got {by!r}")
    if out.suffix.lower() != ".json":
        raise CXDataError(f"--out {out}: the sBG model is written as .json")
    spec.require_period()
    rels, _ = load(subscriptions, as_of, spec, quarantine_out)
    model = SBGModel(spec.period).fit_relationships(rels, by=by)
    data = model.to_dict()
    data["as_of"] = str(parse_as_of(as_of))
    from cx_models.io import write_text_atomic

    write_text_atomic(out, json.dumps(data, indent=2) + "\n")
    for group, fit in model.groups_.items():
        err.print(
            f"{group}: alpha {fit.alpha:.4f} (se {fit.se['alpha']:.4f}), beta {fit.beta:.4f} "
            f"(se {fit.se['beta']:.4f}), {fit.n:,.0f} relationships, "
            f"log-likelihood {fit.log_likelihood:.2f}"
        )
    err.print(f"wrote the sBG model to {out}")
    print_json({"groups": data["groups"]})


@sbg_app.command("predict")
@user_errors
def sbg_predict(
    model: Annotated[Path, typer.Option("--model", help="sBG model file from `sbg fit`.")],
    out: Annotated[Path, typer.Option("--out", help="Curves (.csv or .parquet).")],
    periods: Annotated[int, typer.Option("--periods", min=1, help="Periods to project.")] = 12,
) -> None:
    """Write each group's survival and retention-rate curves for --periods periods."""
    from cx_models.io import table_format, write_table
    from cx_models.sbg import SBGModel

    table_format(out, what="curves output")
    fitted = SBGModel.load(model)
    curves = fitted.curves(periods)
    write_table(curves, out)
    err.print(f"wrote {curves.height:,} rows ({len(fitted.groups_)} groups) to {out}")


@app.command("rates")
@user_errors
@settings_from(spec=SUBSCRIPTION_SPEC)
@database_sources("subscriptions")
@database_targets("quarantine_out")
def rates(
    subscriptions: SubscriptionsOpt,
    as_of: AsOfOpt,
    out: Annotated[Path, typer.Option("--out", help="Rates (.csv or .parquet).")],
    km_out: Annotated[Path | None, typer.Option(
        "--km-out", help="Also write the Kaplan–Meier curve by tenure (.csv or .parquet).")] = None,
    quarantine_out: QuarantineOut = None,
    *,
    spec,
) -> None:
    """Observed churn and retention rates by calendar period and cohort (and Kaplan–Meier)."""
    from cx_models.io import table_format, write_table
    from cx_models.retention import kaplan_meier, retention_rates

    table_format(out, what="rates output")
    if km_out is not None:
        table_format(km_out, what="Kaplan–Meier output")
    spec.require_period()
    rels, _ = load(subscriptions, as_of, spec, quarantine_out)
    table = retention_rates(rels, as_of=parse_as_of(as_of), period=spec.period)
    write_table(table, out)
    overall = table.filter(table["cohort"].is_null())
    err.print(
        f"wrote {table.height:,} rows ({overall.height} complete {spec.period.label} periods) "
        f"to {out}; latest period churn rate {overall['churn_rate'][-1]:.3f}"
    )
    if km_out is not None:
        curve = kaplan_meier(rels["renewals"].to_numpy(), rels["lost"].to_numpy())
        write_table(curve, km_out)
        err.print(f"wrote the Kaplan–Meier curve ({curve.height} tenures) to {km_out}")


def write_contract_features(subscriptions, surveys, transactions, *, as_of, out, horizon_days,
                            lookback_days, contract, fmt, quarantine_out, attributes) -> None:
    """``cx-models features --subscriptions``: the relationships active at as_of, featured."""
    from cx_models._version import __version__
    from cx_models.contract_features import contract_features
    from cx_models.contract_inputs import validate_contract_inputs
    from cx_models.io import table_format, write_table

    table_format(out, what="output")
    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    period = contract.require_period()
    inputs = validate_contract_inputs(subscriptions, as_of=as_of, spec=contract, surveys=surveys,
                                      transactions=transactions, attributes=attributes, fmt=fmt)
    reports = inputs.reports()
    frames = inputs.frames()
    err.print(report_table({k: None if r is None else r.to_dict() for k, r in reports.items()}))
    say_quarantine(quarantine_out, *[r for r in reports.values() if r is not None])
    table = contract_features(
        inputs.subscriptions.data, day=as_of, horizon_days=horizon_days, period=period,
        grace_days=contract.grace_days, surveys=frames["surveys"],
        transactions=frames["transactions"], lookback_days=lookback_days,
        ces_higher_is_better=fmt.ces_higher_is_better,
    )
    if frames["attributes"] is not None:
        from cx_models.attributes import join_attributes

        table = join_attributes(table, frames["attributes"])
    write_table(table, out, metadata={
        "kind": "subscriptions", "as_of": as_of.isoformat(), "horizon_days": horizon_days,
        "period_days": period.days, "calendar_period": period.calendar,
        "grace_days": contract.grace_days, "lookback_days": lookback_days,
        "cx_models_version": __version__,
        "validation": {k: None if r is None else r.to_dict() for k, r in reports.items()},
    })
    err.print(f"wrote {table.height:,} active relationships x {table.width} columns "
              f"(as_of {as_of}) to {source_name(out)}")
