"""``cx-models promote``: move ``champion`` to a challenger that beats it on its own window."""

from __future__ import annotations

from typing import Annotated

import typer

from cx_models.cli._app import app, err, print_json, user_errors
from cx_models.cli.options import TrackingUriOpt

__all__ = ["promote", "say_promotion"]


def say_promotion(result: dict) -> None:
    """Print the comparison behind a promotion on stderr."""
    comparison = result.get("comparison")
    if comparison is not None:
        err.print(
            f"compared on {comparison['customers']:,} customers of the "
            f"{comparison['horizon_days']} days after {comparison['evaluation_day']} "
            f"(observed churn rate {comparison['observed_churn_rate']:.3f})",
            highlight=False,
        )
    err.print(
        f"version {result['challenger']} is now the champion: {result['reason']}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
@user_errors
def promote(
    challenger: Annotated[
        int, typer.Option("--challenger", min=1, help="The registered version to promote.")
    ],
    model_name: Annotated[str, typer.Option("--model-name", help="Registered model name.")] = (
        "cx-scorer"
    ),
    tracking_uri: TrackingUriOpt = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Promote even if the gate says no.", metavar=""),
    ] = False,
) -> None:
    """Make a challenger the champion if it wins on its forward-evaluation window.

    The champion is scored on the challenger's evaluation window (the horizon before
    its as_of; the champion must have been trained at or before that window opened).
    The challenger wins with ROC-AUC at least 0.005 higher and a Brier score at most
    0.002 worse; otherwise the command exits 2 with the reason. The comparison is
    recorded under the challenger's MLflow run.
    """
    from cx_models.training.promotion import promote as promote_job

    result = promote_job(model_name, challenger, tracking_uri=tracking_uri, force=force)
    say_promotion(result)
    print_json({k: result[k] for k in ("model_name", "challenger", "champion", "promoted")})
