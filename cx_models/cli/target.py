"""``cx-models target``: whom to contact, and what the campaign is expected to return."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cx_models.cli._app import app, err, print_json, read_frame, user_errors
from cx_models.cli.options import ContactCostOpt, IncentiveCostOpt, MarginOpt, SaveRateOpt
from cx_models.errors import CXDataError

__all__ = ["target", "write_profit_curve"]


def _outcomes(path: Path | None, what: str):
    return None if path is None else read_frame(path, f"{what} outcomes")


def write_profit_curve(plan, chosen: int, path: Path) -> Path:
    """Draw expected profit against the number contacted (SVG), marking the plan's choice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cx_models.campaign import profit_curve
    from cx_models.outputs import atomic_output

    n, profit = profit_curve(plan)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(n, profit, color="#2b6cb0", label="expected profit, customers ranked by gain")
    ax.axvline(chosen, color="#c53030", linestyle="--", label=f"plan: {chosen:,} contacted")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("customers contacted (highest expected gain first)")
    ax.set_ylabel("expected profit (currency of the CLV)")
    ax.set_title("Retention campaign: expected profit by number contacted")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="svg")
    plt.close(fig)
    return path


@app.command()
@user_errors
def target(
    scored: Annotated[Path, typer.Option("--scored", help="Scored table from `cx-models score`.")],
    out: Annotated[Path, typer.Option("--out", help="The plan (.parquet or .csv).")],
    contact_cost: ContactCostOpt,
    save_rate: SaveRateOpt = None,
    save_rate_file: Annotated[
        Path | None,
        typer.Option("--save-rate-file", help="CSV/Parquet with columns segment, save_rate."),
    ] = None,
    segment_col: Annotated[
        str, typer.Option("--segment-col", help="Scored column the save-rate file's segments name.")
    ] = "nps_category",
    margin: MarginOpt = 1.0,
    incentive_cost: IncentiveCostOpt = 0.0,
    budget: Annotated[
        float | None, typer.Option("--budget", min=0.0, help="Spend at most this on contacts.")
    ] = None,
    max_contacts: Annotated[
        int | None, typer.Option("--max-contacts", min=0, help="Contact at most this many.")
    ] = None,
    control_share: Annotated[
        float,
        typer.Option(
            "--control-share", min=0.0, max=0.9, help="Share of the chosen kept uncontacted."
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the control draw.")] = 0,
    treated: Annotated[
        Path | None,
        typer.Option("--treated", help="Outcomes of contacted customers: customer_id, churned."),
    ] = None,
    control: Annotated[
        Path | None,
        typer.Option("--control", help="Outcomes of the control group: customer_id, churned."),
    ] = None,
) -> None:
    """Rank customers by the expected gain of a retention contact and choose whom to contact.

    Gain = churn_risk x save rate x (CLV x margin - incentive) - (1 - churn_risk) x incentive
    - contact cost: a lower bound, since CLV is already weighted by the chance of leaving.
    """
    from cx_models.campaign import CampaignSettings, estimate_save_rate, plan_campaign
    from cx_models.io import write_table
    from cx_models.outputs import check_distinct

    curve = out.parent / "profit_curve.svg"
    check_distinct({"--scored": scored, "--save-rate-file": save_rate_file, "--treated": treated,
                    "--control": control}, {"--out": out, "profit curve": curve})
    estimate = None
    if (treated is None) != (control is None):
        raise CXDataError("give both --treated and --control to estimate the save rate")
    if treated is not None:
        estimate = estimate_save_rate(_outcomes(treated, "treated"), _outcomes(control, "control"))
        if save_rate is not None or save_rate_file is not None:
            raise CXDataError("give a save rate or the outcomes to estimate it, not both")
        save_rate = estimate["save_rate"]
        if not 0.0 <= save_rate <= 1.0:
            raise CXDataError(
                f"the estimated save rate is {save_rate:.3f} (95 % interval "
                f"{estimate['interval_95'][0]:.3f} to {estimate['interval_95'][1]:.3f}): outside "
                "0 to 1, contacts did not lower churn in this experiment"
            )
    settings = CampaignSettings(
        contact_cost=contact_cost,
        save_rate=save_rate,
        margin=margin,
        incentive_cost=incentive_cost,
        budget=budget,
        max_contacts=max_contacts,
        control_share=control_share,
        seed=seed,
    )
    rates = None
    if save_rate_file is not None:
        table = read_frame(save_rate_file, "save-rate")
        if not {"segment", "save_rate"} <= set(table.columns):
            raise CXDataError(f"{save_rate_file}: expected columns segment, save_rate")
        if table["segment"].astype(str).duplicated().any():
            raise CXDataError(f"{save_rate_file}: a segment is listed twice")
        rates = dict(zip(table["segment"].astype(str), table["save_rate"], strict=True))
    frame = read_frame(scored, "scored")
    plan, summary = plan_campaign(frame, settings, save_rates=rates, segment=segment_col)
    if estimate is not None:
        summary["save_rate_estimate"] = estimate
    write_table(plan, out, metadata={"campaign": json.loads(json.dumps(summary, default=str))})
    write_profit_curve(plan, summary["chosen"], curve)
    err.print(
        f"plan for {summary['customers']:,} customers written to {out}: contact "
        f"{summary['contacted']:,} ({summary['control']:,} more kept as control), expected "
        f"profit {summary['expected_profit']:,.2f} for a cost of {summary['expected_cost']:,.2f}; "
        f"profit curve in {curve}",
        highlight=False,
        soft_wrap=True,
    )
    print_json(summary)
