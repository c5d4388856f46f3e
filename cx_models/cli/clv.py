"""``cx-models clv fit | predict | validate``: CLV on its own from a transaction file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cx_models._version import __version__
from cx_models.cli._app import app, err, print_json, renamed, user_errors
from cx_models.cli.data import build
from cx_models.cli.db_options import database_sources, database_targets
from cx_models.cli.options import (
    TRANSACTION_FORMAT,
    AsOfOpt,
    ClvModelOpt,
    ClvMonthsOpt,
    DiscountRateOpt,
    HorizonDaysOpt,
    IntervalsOpt,
    LegacyModelOpt,
    PenalizerOpt,
    PlotsOpt,
    QuarantineOut,
    ReportOutOpt,
    TimeUnit,
    TimeUnitOpt,
    TransactionsOpt,
    settings_from,
)
from cx_models.errors import CXDataError
from cx_models.settings import EventFormat, FeatureSpec, ScoreParams
from cx_models.timeutil import parse_as_of

__all__ = ["clv_app"]

clv_app = typer.Typer(
    help="CLV on its own: BG/NBD, MBG/NBD, Pareto/NBD or BG/BB (with --period-days) + "
    "Gamma-Gamma from a transaction file.",
    no_args_is_help=True,
)
app.add_typer(clv_app, name="clv")

PeriodDaysOpt = Annotated[
    int | None,
    typer.Option(
        "--period-days",
        min=1,
        help="Discrete opportunities of this many days (BG/BB): counts periods with a "
        "purchase after each customer's first.",
    ),
]


def _period_table(transactions, *, as_of, period_days: int, fmt, quarantine_out):
    """Validate the transactions and build BG/BB's period histories (with the counts)."""
    from cx_models.cli._app import report_table, say_quarantine
    from cx_models.io import table_format
    from cx_models.period_features import period_features
    from cx_models.schemas import validate_transactions

    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    validated = validate_transactions(transactions, as_of=as_of, fmt=fmt)
    err.print(report_table({"transactions": validated.report.to_dict(), "surveys": None}))
    say_quarantine(quarantine_out, validated.report, None)
    return period_features(validated.data, as_of=as_of, period_days=period_days)


@clv_app.command("fit")
@user_errors
@settings_from(fmt=TRANSACTION_FORMAT)
@database_sources("transactions")
@database_targets("quarantine_out")
def clv_fit(
    transactions: TransactionsOpt,
    as_of: AsOfOpt,
    out: Annotated[Path, typer.Option("--out", help="Model file (.json).")],
    time_unit: TimeUnitOpt = TimeUnit.D,
    clv_model: ClvModelOpt = "bgnbd",
    legacy_model: LegacyModelOpt = None,
    penalizer: PenalizerOpt = 0.0,
    quarantine_out: QuarantineOut = None,
    period_days: PeriodDaysOpt = None,
    *,
    fmt: EventFormat,
) -> None:
    """Fit the transaction model + Gamma-Gamma on transactions up to --as-of; write the JSON."""
    from cx_models.io import write_text_atomic
    from cx_models.models.clv import CLVModel

    family = renamed("--model", "--clv-model", legacy_model, clv_model)
    day = parse_as_of(as_of, name="--as-of")
    if period_days is not None:
        if family not in ("bgnbd", "bgbb"):  # bgnbd: the default, not a choice
            raise CXDataError(f"--period-days fits BG/BB; --clv-model {family} is continuous-time")
        family = "bgbb"
        table = _period_table(
            transactions, as_of=day, period_days=period_days, fmt=fmt,
            quarantine_out=quarantine_out,
        )
    elif family == "bgbb":
        raise CXDataError("BG/BB counts discrete opportunities: give --period-days")
    else:
        table = build(
            transactions, None, as_of=day, spec=FeatureSpec(time_unit=time_unit.value),
            fmt=fmt, quarantine_out=quarantine_out,
        ).features
    with err.status(f"fitting {family} + Gamma-Gamma on {len(table):,} customers"):
        fitted = CLVModel(model=family, penalizer=penalizer, period_days=period_days).fit(table)
    data = fitted.to_dict()
    data["as_of"] = table.attrs["as_of"]
    write_text_atomic(out, json.dumps(data, indent=2) + "\n")
    err.print(f"wrote the CLV model to {out}")
    print_json(data)


@clv_app.command("predict")
@user_errors
@settings_from(fmt=TRANSACTION_FORMAT)
@database_sources("transactions")
@database_targets("quarantine_out")
def clv_predict(
    transactions: TransactionsOpt,
    as_of: AsOfOpt,
    horizon_days: HorizonDaysOpt,
    out: Annotated[Path, typer.Option("--out", help="Predictions (.parquet or .csv).")],
    model_file: Annotated[
        Path | None, typer.Option("--model-file", help="Model file written by `clv fit`.")
    ] = None,
    legacy_model: LegacyModelOpt = None,
    clv_months: ClvMonthsOpt = 12,
    discount_rate: DiscountRateOpt = 0.10,
    quarantine_out: QuarantineOut = None,
    intervals: IntervalsOpt = None,
    *,
    fmt: EventFormat,
) -> None:
    """Predict P(alive), purchases over --horizon-days, order value and CLV per customer."""
    from cx_models.io import table_format, write_table
    from cx_models.models.clv import CLVModel

    path = renamed("--model", "--model-file", legacy_model and Path(legacy_model), model_file)
    if path is None:
        raise CXDataError("give the model file written by `cx-models clv fit` with --model-file")
    params = ScoreParams(
        horizon_days=horizon_days, clv_months=clv_months, discount_rate=discount_rate
    )
    table_format(out, what="output")
    fitted = CLVModel.load(path)
    day = parse_as_of(as_of, name="--as-of")
    if fitted.model == "bgbb":
        table = _period_table(
            transactions, as_of=day, period_days=int(fitted.period_days), fmt=fmt,
            quarantine_out=quarantine_out,
        )
    else:
        table = build(
            transactions, None, as_of=day, spec=FeatureSpec(time_unit=fitted.time_unit_),
            fmt=fmt, quarantine_out=quarantine_out,
        ).features
    pred = fitted.predict(
        table,
        horizon_days=params.horizon_days,
        clv_months=params.clv_months,
        discount_rate=params.discount_rate,
        intervals=intervals,
    )
    write_table(
        pred,
        out,
        metadata={
            "as_of": table.attrs["as_of"],
            "horizon_days": params.horizon_days,
            "clv_months": params.clv_months,
            "discount_rate": params.discount_rate,
            "intervals": intervals,
            "model": str(path),
            "cx_models_version": __version__,
        },
    )
    err.print(
        f"wrote predictions for {len(pred):,} customers to {out} (horizon "
        f"{params.horizon_days:g} days, CLV over {params.clv_months} months at "
        f"{params.discount_rate:.1%} a year)"
    )


@clv_app.command("validate")
@user_errors
@settings_from(fmt=TRANSACTION_FORMAT)
@database_sources("transactions")
def clv_validate(
    transactions: TransactionsOpt,
    calibration_end: Annotated[
        str, typer.Option("--calibration-end", help="Last day of the calibration period.")
    ],
    holdout_end: Annotated[str, typer.Option("--holdout-end", help="Last day of the holdout.")],
    time_unit: TimeUnitOpt = TimeUnit.D,
    clv_model: ClvModelOpt = "bgnbd",
    legacy_model: LegacyModelOpt = None,
    penalizer: PenalizerOpt = 0.0,
    plots: PlotsOpt = None,
    out: ReportOutOpt = None,
    period_days: PeriodDaysOpt = None,
    *,
    fmt: EventFormat,
) -> None:
    """Fit on the calibration period, predict the holdout, compare with what happened.

    --clv-model all compares BG/NBD, MBG/NBD and Pareto/NBD side by side, and BG/BB with
    --period-days (plots in one folder per model under --plots).
    """
    from cx_models.clv_choice import candidates_for
    from cx_models.clv_validation import validate_clv
    from cx_models.io import write_text_atomic

    family = renamed("--model", "--clv-model", legacy_model, clv_model)
    if family == "bgbb" and period_days is None:
        raise CXDataError("BG/BB counts discrete opportunities: give --period-days")
    models = candidates_for(period_days) if family == "all" else (family,)
    reports = {}
    for name in models:
        with err.status(f"{name}: fitting on the calibration period and predicting the holdout"):
            reports[name] = validate_clv(
                transactions,
                calibration_end=calibration_end,
                holdout_end=holdout_end,
                model=name,
                penalizer=penalizer,
                spec=FeatureSpec(time_unit=time_unit.value, period_days=period_days),
                fmt=fmt,
                plots_dir=None if plots is None else (plots / name if len(models) > 1 else plots),
            )
    for name, report in reports.items():
        h = report["holdout"]
        err.print(
            f"{name}: holdout {report['calibration_end']} -> {report['holdout_end']}: purchases "
            f"actual {h['purchases_actual']:,.0f} vs predicted {h['purchases_predicted']:,.1f} "
            f"(MAE {h['purchases_mae']:.3f}, corr {h['purchases_corr'] or float('nan'):.3f}); "
            f"spend actual {h['spend_actual']:,.2f} vs predicted {h['spend_predicted']:,.2f}",
            highlight=False, soft_wrap=True,
        )
    report = reports[family] if family != "all" else {
        "models": reports,
        "lowest_purchases_mae": min(reports, key=lambda k: reports[k]["holdout"]["purchases_mae"]),
    }
    if out is not None:
        write_text_atomic(out, json.dumps(report, indent=2) + "\n")
        err.print(f"wrote the report to {out}")
    else:
        print_json(report)
