"""``cx-models report``: the retention team's self-contained HTML at-risk report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx_models.cli._app import app, err, read_frame, user_errors
from cx_models.cli.options import EVENT_FORMAT, settings_from
from cx_models.cli.subscriptions import SUBSCRIPTION_SPEC
from cx_models.errors import CXDataError
from cx_models.settings import EventFormat
from cx_models.sources import EventInputs

__all__ = ["report", "write_report"]


def write_report(
    scored_path: Path,
    out: Path,
    *,
    top: int = 500,
    segment: str | None = None,
    currency: str = "",
    history_from: EventInputs | None = None,
    plan_path: Path | None = None,
    subscriptions=None,
    contract=None,
):
    """Render the HTML report of a scored table (its metadata names the model and settings).

    ``history_from`` (the transactions) adds the observed churn rate of past windows;
    ``plan_path`` (``cx-models target``'s plan) adds the campaign; ``subscriptions``
    (read with ``contract``, a :class:`~cx_models.subscriptions.SubscriptionSpec`) the
    retention curves and the cohort matrix.
    """
    from cx_models.io import read_table_metadata, write_text_atomic
    from cx_models.outputs import check_distinct
    from cx_models.serving.report import ReportContext, render_report

    inputs = {"--scored": scored_path, "--plan": plan_path, "--subscriptions": subscriptions}
    if history_from is not None:
        inputs.update({f"--{k}": v for k, v in history_from.named().items()})
    check_distinct(inputs, {"--out": out})
    frame = read_frame(scored_path, "scored")
    context = ReportContext.from_metadata(read_table_metadata(scored_path), currency=currency)
    history = None if history_from is None else _history(history_from, context, scored_path)
    plan = None
    if plan_path is not None:
        plan = read_frame(plan_path, "plan")
        if not {"customer_id", "contact"} <= set(plan.columns):
            raise CXDataError(f"{plan_path}: expected a plan from `cx-models target`")
        plan.attrs["campaign"] = read_table_metadata(plan_path).get("campaign") or {}
    retention = None
    if subscriptions is not None:
        retention = _retention(subscriptions, contract, read_table_metadata(scored_path),
                               scored_path)
    page = render_report(
        frame, top=top, segment=segment, context=context, history=history, plan=plan,
        retention=retention,
    )
    write_text_atomic(out, page)
    return frame


def _retention(subscriptions, contract, meta: dict, scored_path: Path) -> str:
    from dataclasses import replace

    from cx_models.billing import BillingPeriod
    from cx_models.relationships import load_relationships
    from cx_models.serving.report_retention import retention_figures, retention_section
    from cx_models.subscriptions import SubscriptionSpec

    contract = contract or SubscriptionSpec()
    as_of = meta.get("as_of")
    if as_of is None:
        raise CXDataError(f"{scored_path}: its metadata does not say the as_of day it was scored "
                          "with; score it with `cx-models score --subscriptions`")
    if contract.period is None:
        days, calendar = meta.get("period_days"), meta.get("calendar_period")
        if days is None and calendar is None:
            contract.require_period()
        contract = replace(contract, period=BillingPeriod(
            days=None if days is None else int(days), calendar=calendar))
    rels, _ = load_relationships(subscriptions, as_of=as_of, spec=contract)
    figures = retention_figures(rels, as_of=as_of, period=contract.period)
    return retention_section(figures, period_label=contract.period.label)


def _history(inputs: EventInputs, context, scored_path: Path) -> list[dict]:
    from cx_models.realised import observed_churn_history
    from cx_models.schemas import validate_transactions

    if context.as_of is None or context.horizon_days is None:
        raise CXDataError(
            f"{scored_path}: its metadata does not say the as_of day and horizon it was scored "
            "with; score it with `cx-models score` to compare with past windows"
        )
    tx = validate_transactions(inputs.transactions, as_of=context.as_of, fmt=inputs.fmt)
    return observed_churn_history(
        tx.data, as_of=context.as_of, horizon_days=context.horizon_days
    )


@app.command()
@user_errors
@settings_from(fmt=EVENT_FORMAT, contract=SUBSCRIPTION_SPEC)
def report(
    scored: Annotated[Path, typer.Option("--scored", help="Scored table from `cx-models score`.")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    top: Annotated[int, typer.Option("--top", min=1, help="Rows in the at-risk list.")] = 500,
    segment: Annotated[
        str | None, typer.Option("--segment", help="Column for a per-segment table.")
    ] = None,
    currency: Annotated[
        str, typer.Option("--currency", help="Currency of the amounts, e.g. EUR (shown).")
    ] = "",
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions",
            help="Transactions up to the scoring day: adds the observed churn of past windows.",
        ),
    ] = None,
    plan: Annotated[
        Path | None, typer.Option("--plan", help="Campaign plan from `cx-models target`.")
    ] = None,
    subscriptions: Annotated[
        Path | None,
        typer.Option("--subscriptions",
                     help="Subscriptions up to the scoring day: adds the retention curves and "
                     "the cohort matrix (billing period from the scored table's model)."),
    ] = None,
    *,
    fmt: EventFormat,
    contract,
) -> None:
    """Write the retention team's self-contained HTML at-risk report."""
    history_from = None if transactions is None else EventInputs(transactions, None, fmt)
    frame = write_report(
        scored,
        out,
        top=top,
        segment=segment,
        currency=currency,
        history_from=history_from,
        plan_path=plan,
        subscriptions=subscriptions,
        contract=contract,
    )
    err.print(f"wrote the report ({min(top, len(frame)):,} customers listed) to {out}")
