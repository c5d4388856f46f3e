"""``cx-models nco reference | score | summarise``: the Net Customer Outcome on its own."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cx_models._version import __version__
from cx_models.cli._app import app, err, read_frame, resolve_weights, user_errors
from cx_models.cli.options import ClvMonthsOpt, DiscountRateOpt, NcoWeightsOpt, flag
from cx_models.errors import CXDataError
from cx_models.settings import ScoreParams

__all__ = ["nco_app"]

nco_app = typer.Typer(
    help="Net Customer Outcome: one 0-100 score from surveys, CLV and churn risk.",
    no_args_is_help=True,
)
app.add_typer(nco_app, name="nco")

WeightsFileOpt = Annotated[
    Path | None,
    typer.Option("--config", help=escape("TOML or JSON file with NCO weights ([nco.weights]).")),
]


@nco_app.command("reference")
@user_errors
def nco_reference(
    clv_from: Annotated[Path, typer.Option("--clv-from", help="Table with a CLV column.")],
    out: Annotated[Path, typer.Option("--out", help="Reference file (.json).")],
    clv_col: Annotated[str, typer.Option("--clv-col", help="The CLV column.")] = "clv",
    clv_months: ClvMonthsOpt = 12,
    discount_rate: DiscountRateOpt = 0.10,
) -> None:
    """Save the CLV reference distribution the value score is measured against."""
    from cx_models.io import write_text_atomic
    from cx_models.nco import ValueReference

    settings = ScoreParams(clv_months=clv_months, discount_rate=discount_rate)
    frame = read_frame(clv_from, "CLV")
    if clv_col not in frame.columns:
        raise CXDataError(f"{clv_from}: column {clv_col!r} not found")
    ref = ValueReference.from_clv(
        frame[clv_col],
        settings={"clv_months": settings.clv_months, "discount_rate": settings.discount_rate},
    )
    write_text_atomic(out, json.dumps(ref.to_dict(), indent=2) + "\n")
    err.print(f"wrote a {len(ref.quantiles)}-point CLV reference from {len(frame):,} rows to {out}")


@nco_app.command("score")
@user_errors
def nco_score(
    input_path: Annotated[
        Path, typer.Option("--input", help="Features with clv and churn_risk columns.")
    ],
    reference: Annotated[Path, typer.Option("--reference", help="From `nco reference`.")],
    out: Annotated[Path, typer.Option("--out", help="Scored table (.parquet or .csv).")],
    nco_weights: NcoWeightsOpt = None,
    config: WeightsFileOpt = None,
    ces_higher_is_better: Annotated[
        bool,
        flag(
            "--ces-higher-is-better",
            "Declare CES as 7 = best; by default 1 = very low effort is best.",
        ),
    ] = False,
    clv_col: Annotated[str, typer.Option("--clv-col", help="The CLV column.")] = "clv",
    churn_col: Annotated[
        str, typer.Option("--churn-col", help="The churn probability column.")
    ] = "churn_risk",
) -> None:
    """Add the NCO components, composite, value at risk and priority rank to a table."""
    import pandas as pd

    from cx_models.io import write_table
    from cx_models.nco import ValueReference, score_nco

    weights = resolve_weights(config, nco_weights)
    if not reference.exists():
        raise CXDataError(f"{reference}: reference file not found")
    ref = ValueReference.from_dict(json.loads(reference.read_text()))
    frame = read_frame(input_path, "input")
    scored = score_nco(
        frame,
        reference=ref,
        weights=weights,
        ces_higher_is_better=ces_higher_is_better,
        clv_col=clv_col,
        churn_col=churn_col,
    )
    keep = [c for c in frame.columns if c not in scored.columns]
    result = pd.concat([scored, frame[keep]], axis=1).sort_values("priority_rank")
    write_table(result, out, metadata={"nco_weights": weights, "cx_models_version": __version__})
    err.print(f"scored {len(result):,} customers (weights {weights}) to {out}")


@nco_app.command("summarise")
@user_errors
def nco_summarise(
    scored: Annotated[Path, typer.Option("--scored", help="Scored table.")],
    by: Annotated[str | None, typer.Option("--by", help="Segment column.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Summary (.csv or .parquet).")] = None,
) -> None:
    """Portfolio (or per-segment) NPS, CSAT, CES, churn, CLV, value at risk and NCO."""
    from cx_models.io import write_table
    from cx_models.nco import summarise

    summary = summarise(read_frame(scored, "scored"), by=by)
    if out is not None:
        write_table(summary, out)
        err.print(f"wrote the summary of {len(summary)} segment(s) to {out}")
    else:
        sys.stdout.write(summary.to_json(orient="records", indent=2) + "\n")
