"""The ``cx-models`` command line.

Data goes to files; progress and summaries go to stderr. A problem with the
user's data or options prints one ``error:`` line (no traceback) and exits
with status 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cx_models._version import __version__
from cx_models.errors import CXDataError
from cx_models.timeutil import parse_as_of

__all__ = ["app", "main"]

app = typer.Typer(
    name="cx-models",
    help="Churn, CLV and Net Customer Outcome from transactions and surveys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Wide enough for the validation table when stderr is a log file, not a terminal.
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


class TimeUnit(StrEnum):
    """Time units of the BTYD columns."""

    D = "D"
    W = "W"


def user_errors(func):
    """Turn :class:`CXDataError` into one line on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CXDataError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


# Options shared by every verb that reads raw events --------------------------------------
TransactionsOpt = Annotated[
    Path, typer.Option("--transactions", help="Transactions file (.csv or .parquet).")
]
SurveysOpt = Annotated[
    Path | None, typer.Option("--surveys", help="Survey responses file (.csv or .parquet).")
]
AsOfOpt = Annotated[
    str,
    typer.Option("--as-of", help="Cutoff calendar day YYYY-MM-DD; events on it are included."),
]
TimeUnitOpt = Annotated[
    TimeUnit,
    typer.Option(
        "--time-unit", case_sensitive=False, help="Unit of recency and T: D (days) or W (weeks)."
    ),
]
CustomerCol = Annotated[str, typer.Option("--customer-col", help="Transactions: customer id.")]
TimeCol = Annotated[str, typer.Option("--time-col", help="Transactions: timestamp column.")]
AmountCol = Annotated[str, typer.Option("--amount-col", help="Transactions: amount column.")]
TimeFormat = Annotated[
    str | None,
    typer.Option("--time-format", help="strptime format of non-ISO timestamps, e.g. %Y%m%d."),
]
SurveyCustomerCol = Annotated[
    str, typer.Option("--survey-customer-col", help="Surveys: customer id column.")
]
SurveyTimeCol = Annotated[str, typer.Option("--survey-time-col", help="Surveys: timestamp.")]
SurveyCol = Annotated[str, typer.Option("--survey-col", help="Surveys: survey type column.")]
ScoreCol = Annotated[str, typer.Option("--score-col", help="Surveys: score column.")]
SurveyTimeFormat = Annotated[
    str | None,
    typer.Option("--survey-time-format", help="strptime format of survey timestamps."),
]
QuarantineOut = Annotated[
    Path | None,
    typer.Option("--quarantine-out", help="Write every rejected row (.csv or .parquet)."),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail instead of quarantining rows.")]
DropDuplicatesOpt = Annotated[
    bool, typer.Option("--drop-duplicates", help="Quarantine exact duplicate rows.")
]
LookbackOpt = Annotated[
    int, typer.Option("--lookback-days", min=1, help="Survey look-back window in days.")
]
CesHigherOpt = Annotated[
    bool,
    typer.Option(
        "--ces-higher-is-better",
        help="Declare CES as 7 = best; by default 1 = very low effort is best.",
    ),
]


def _report_table(summary: dict) -> Table:
    table = Table(title="Input validation", title_justify="left")
    for col in ("input", "rows in", "used", "quarantined", "after as_of", "duplicates", "reasons"):
        table.add_column(col, justify="right" if col not in {"input", "reasons"} else "left")
    for name in ("transactions", "surveys"):
        rep = summary.get(name)
        if not rep:
            continue
        reasons = ", ".join(f"{r}={n}" for r, n in rep["reasons"].items()) or "-"
        table.add_row(
            name,
            f"{rep['rows_in']:,}",
            f"{rep['rows_used']:,}",
            f"{rep['rows_quarantined']:,}",
            f"{rep['rows_after_as_of']:,}",
            f"{rep['duplicate_rows']:,}",
            reasons,
        )
    return table


@app.command()
@user_errors
def features(
    transactions: TransactionsOpt,
    as_of: AsOfOpt,
    out: Annotated[Path, typer.Option("--out", help="Feature table (.parquet or .csv).")],
    surveys: SurveysOpt = None,
    time_unit: TimeUnitOpt = TimeUnit.D,
    lookback_days: LookbackOpt = 365,
    quarantine_out: QuarantineOut = None,
    strict: StrictOpt = False,
    drop_duplicates: DropDuplicatesOpt = False,
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "timestamp",
    amount_col: AmountCol = "amount",
    time_format: TimeFormat = None,
    survey_customer_col: SurveyCustomerCol = "customer_id",
    survey_time_col: SurveyTimeCol = "timestamp",
    survey_col: SurveyCol = "survey",
    score_col: ScoreCol = "score",
    survey_time_format: SurveyTimeFormat = None,
    ces_higher_is_better: CesHigherOpt = False,
) -> None:
    """Build one row of features per customer as of a cutoff day."""
    from cx_models.io import table_format, write_table
    from cx_models.schemas import SurveyColumns, TransactionColumns

    table_format(out, what="output")
    build = _build(
        transactions,
        surveys,
        as_of=as_of,
        time_unit=time_unit.value,
        lookback_days=lookback_days,
        transaction_columns=TransactionColumns(customer_col, time_col, amount_col),
        survey_columns=SurveyColumns(survey_customer_col, survey_time_col, survey_col, score_col),
        time_format=time_format,
        survey_time_format=survey_time_format,
        drop_duplicates=drop_duplicates,
        strict=strict,
        ces_higher_is_better=ces_higher_is_better,
        quarantine_out=quarantine_out,
    )
    summary = build.summary()
    write_table(
        build.features,
        out,
        metadata={
            "as_of": summary["as_of"],
            "time_unit": summary["time_unit"],
            "lookback_days": lookback_days,
            "cx_models_version": __version__,
            "validation": summary,
        },
    )
    err.print(
        f"wrote {summary['customers']:,} customers x {build.features.shape[1]} columns "
        f"(as_of {summary['as_of']}, time unit {summary['time_unit']}) to {out}"
    )


def _build(transactions, surveys, *, quarantine_out, **options):
    """Validate and build features, report counts on stderr, write the quarantine file."""
    from cx_models.features import build_features
    from cx_models.io import table_format
    from cx_models.schemas import write_quarantine

    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    build = build_features(transactions, surveys, **options)
    summary = build.summary()
    err.print(_report_table(summary))
    if quarantine_out is not None:
        write_quarantine(quarantine_out, build.transactions, build.surveys)
        err.print(f"quarantined rows written to {quarantine_out}")
    orphans = summary["survey_customers_without_purchase"]
    if orphans:
        err.print(f"{orphans:,} survey respondents have no purchase by as_of and get no row")
    return build


# --------------------------------------------------------------------------- cx-models clv
clv_app = typer.Typer(
    help="CLV on its own: BG/NBD (or MBG/NBD) + Gamma-Gamma from a transaction file.",
    no_args_is_help=True,
)
app.add_typer(clv_app, name="clv")

ModelOpt = Annotated[str, typer.Option("--model", help="Transaction model: bgnbd or mbgnbd.")]
PenalizerOpt = Annotated[
    float, typer.Option("--penalizer", min=0.0, help="L2 penalty (lifetimes' penalizer_coef).")
]
HorizonOpt = Annotated[
    float, typer.Option("--horizon-days", min=0.0, help="Prediction horizon in DAYS.")
]
ClvMonthsOpt = Annotated[
    int, typer.Option("--clv-months", min=0, help="CLV horizon in months of 30.4375 days.")
]
DiscountOpt = Annotated[
    float, typer.Option("--discount-rate", help="ANNUAL discount rate, e.g. 0.10 for 10 %.")
]


def _print_json(data: dict) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@clv_app.command("fit")
@user_errors
def clv_fit(
    transactions: TransactionsOpt,
    as_of: AsOfOpt,
    out: Annotated[Path, typer.Option("--out", help="Model file (.json).")],
    time_unit: TimeUnitOpt = TimeUnit.D,
    model: ModelOpt = "bgnbd",
    penalizer: PenalizerOpt = 0.0,
    quarantine_out: QuarantineOut = None,
    strict: StrictOpt = False,
    drop_duplicates: DropDuplicatesOpt = False,
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "timestamp",
    amount_col: AmountCol = "amount",
    time_format: TimeFormat = None,
) -> None:
    """Fit BG/NBD + Gamma-Gamma on transactions up to --as-of; write and print the JSON."""
    from cx_models.clv import CLVModel
    from cx_models.schemas import TransactionColumns

    build = _build(
        transactions,
        None,
        as_of=as_of,
        time_unit=time_unit.value,
        transaction_columns=TransactionColumns(customer_col, time_col, amount_col),
        time_format=time_format,
        drop_duplicates=drop_duplicates,
        strict=strict,
        quarantine_out=quarantine_out,
    )
    with err.status(f"fitting {model} + Gamma-Gamma on {len(build.features):,} customers"):
        fitted = CLVModel(model=model, penalizer=penalizer).fit(build.features)
    data = fitted.to_dict()
    data["as_of"] = build.features.attrs["as_of"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    err.print(f"wrote the CLV model to {out}")
    _print_json(data)


@clv_app.command("predict")
@user_errors
def clv_predict(
    model_path: Annotated[Path, typer.Option("--model", help="Model file from `clv fit`.")],
    transactions: TransactionsOpt,
    as_of: AsOfOpt,
    horizon_days: HorizonOpt,
    out: Annotated[Path, typer.Option("--out", help="Predictions (.parquet or .csv).")],
    clv_months: ClvMonthsOpt = 12,
    discount_rate: DiscountOpt = 0.10,
    quarantine_out: QuarantineOut = None,
    strict: StrictOpt = False,
    drop_duplicates: DropDuplicatesOpt = False,
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "timestamp",
    amount_col: AmountCol = "amount",
    time_format: TimeFormat = None,
) -> None:
    """Predict P(alive), purchases over --horizon-days, order value and CLV per customer."""
    from cx_models.clv import CLVModel
    from cx_models.io import table_format, write_table
    from cx_models.schemas import TransactionColumns

    table_format(out, what="output")
    fitted = CLVModel.load(model_path)
    build = _build(
        transactions,
        None,
        as_of=as_of,
        time_unit=fitted.time_unit_,
        transaction_columns=TransactionColumns(customer_col, time_col, amount_col),
        time_format=time_format,
        drop_duplicates=drop_duplicates,
        strict=strict,
        quarantine_out=quarantine_out,
    )
    pred = fitted.predict(
        build.features,
        horizon_days=horizon_days,
        clv_months=clv_months,
        discount_rate=discount_rate,
    )
    write_table(
        pred,
        out,
        metadata={
            "as_of": build.features.attrs["as_of"],
            "horizon_days": horizon_days,
            "clv_months": clv_months,
            "discount_rate": discount_rate,
            "model": str(model_path),
            "cx_models_version": __version__,
        },
    )
    err.print(
        f"wrote predictions for {len(pred):,} customers to {out} (horizon {horizon_days:g} days, "
        f"CLV over {clv_months} months at {discount_rate:.1%} a year)"
    )


@clv_app.command("validate")
@user_errors
def clv_validate(
    transactions: TransactionsOpt,
    calibration_end: Annotated[
        str, typer.Option("--calibration-end", help="Last day of the calibration period.")
    ],
    holdout_end: Annotated[str, typer.Option("--holdout-end", help="Last day of the holdout.")],
    time_unit: TimeUnitOpt = TimeUnit.D,
    model: ModelOpt = "bgnbd",
    penalizer: PenalizerOpt = 0.0,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for PNG plots.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Report file (.json).")] = None,
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "timestamp",
    amount_col: AmountCol = "amount",
    time_format: TimeFormat = None,
) -> None:
    """Fit on the calibration period, predict the holdout, compare with what happened."""
    from cx_models.clv_validation import validate_clv
    from cx_models.schemas import TransactionColumns

    with err.status("fitting on the calibration period and predicting the holdout"):
        report = validate_clv(
            transactions,
            calibration_end=calibration_end,
            holdout_end=holdout_end,
            time_unit=time_unit.value,
            model=model,
            penalizer=penalizer,
            columns=TransactionColumns(customer_col, time_col, amount_col),
            time_format=time_format,
            plots_dir=plots,
        )
    h = report["holdout"]
    err.print(
        f"holdout {report['calibration_end']} -> {report['holdout_end']}: purchases actual "
        f"{h['purchases_actual']:,.0f} vs predicted {h['purchases_predicted']:,.1f} "
        f"(corr {h['purchases_corr'] or float('nan'):.3f}); spend actual {h['spend_actual']:,.2f} "
        f"vs predicted {h['spend_predicted']:,.2f}"
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        err.print(f"wrote the report to {out}")
    else:
        _print_json(report)


# --------------------------------------------------------------------------- cx-models train
@app.command()
@user_errors
def train(
    transactions: TransactionsOpt,
    as_of: AsOfOpt,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", min=1, help="Churn horizon in days.")
    ] = 90,
    surveys: SurveysOpt = None,
    time_unit: TimeUnitOpt = TimeUnit.D,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment.")] = (
        "cx-models"
    ),
    model_name: Annotated[str, typer.Option("--model-name", help="Registered model name.")] = (
        "cx-scorer"
    ),
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
            "else sqlite:///mlruns/mlflow.db).",
        ),
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Move the 'champion' alias to the new version.")
    ] = False,
    config: ConfigOpt = None,
    nco_weights: NcoWeightsOpt = None,
    step_days: StepOpt = None,
    max_snapshots: MaxSnapshotsOpt = None,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="truth.parquet of a synthetic base (ceiling).")
    ] = None,
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "timestamp",
    amount_col: AmountCol = "amount",
    time_format: TimeFormat = None,
    survey_customer_col: SurveyCustomerCol = "customer_id",
    survey_time_col: SurveyTimeCol = "timestamp",
    survey_col: SurveyCol = "survey",
    score_col: ScoreCol = "score",
    survey_time_format: SurveyTimeFormat = None,
    ces_higher_is_better: CesHigherOpt = False,
) -> None:
    """Train, evaluate, log and register the CX scorer; print the run id and model URI."""
    run = _train(**locals())
    _print_json({k: run[k] for k in ("run_id", "model_uri", "version", "champion", "tracking_uri")})


def _train(
    *,
    transactions,
    as_of,
    horizon_days,
    surveys,
    time_unit,
    experiment,
    model_name,
    tracking_uri,
    promote,
    config,
    nco_weights,
    step_days,
    max_snapshots,
    truth,
    customer_col,
    time_col,
    amount_col,
    time_format,
    survey_customer_col,
    survey_time_col,
    survey_col,
    score_col,
    survey_time_format,
    ces_higher_is_better,
):
    import pandas as pd

    from cx_models.schemas import SurveyColumns, TransactionColumns
    from cx_models.training.pipeline import TrainingConfig, load_config_file
    from cx_models.training.train import train as train_job

    settings = load_config_file(config) if config is not None else {}
    settings.update(as_of=as_of, horizon_days=horizon_days, time_unit=time_unit.value)
    if step_days is not None:
        settings["step_days"] = step_days
    if max_snapshots is not None:
        settings["max_snapshots"] = max_snapshots
    if ces_higher_is_better:
        settings["ces_higher_is_better"] = True
    settings["nco_weights"] = resolve_weights(config, nco_weights)
    truth_frame = None
    if truth is not None:
        if not truth.exists():
            raise CXDataError(f"{truth}: truth file not found")
        truth_frame = pd.read_parquet(truth)
    with err.status("training") as status:
        run = train_job(
            transactions,
            surveys,
            config=TrainingConfig(**settings),
            transaction_columns=TransactionColumns(customer_col, time_col, amount_col),
            survey_columns=SurveyColumns(
                survey_customer_col, survey_time_col, survey_col, score_col
            ),
            time_format=time_format,
            survey_time_format=survey_time_format,
            experiment=experiment,
            model_name=model_name,
            tracking_uri=tracking_uri,
            promote=promote,
            truth=truth_frame,
            progress=lambda message: (err.print(f"  {message}"), status.update(message)),
        )
    metrics = run["evaluation"]["metrics"]
    gap = run["evaluation"]["beats"]["bgnbd_prob_no_purchase"]["roc_auc"]
    err.print(
        f"churn ROC-AUC {metrics['model']['roc_auc']:.4f} on the {horizon_days} days after "
        f"{run['evaluation']['evaluation_day']} ({gap:+.4f} against BG/NBD P(no purchase))"
    )
    err.print(
        f"run {run['run_id']}; model {run['model_uri']} (alias challenger"
        f"{', champion' if run['champion'] else ''}) in {run['tracking_uri']}"
    )
    return run


# --------------------------------------------------------------------------- cx-models score
@app.command()
@user_errors
def score(
    model: Annotated[
        str, typer.Option("--model", help="Model URI, e.g. models:/cx-scorer@champion.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Scored table (.parquet or .csv).")],
    features_path: Annotated[
        Path | None, typer.Option("--features", help="Feature table instead of raw events.")
    ] = None,
    transactions: Annotated[
        Path | None, typer.Option("--transactions", help="Transactions file (.csv or .parquet).")
    ] = None,
    surveys: SurveysOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Cutoff day YYYY-MM-DD.")] = None,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri")] = None,
    horizon_days: Annotated[
        float | None, typer.Option("--horizon-days", help="Horizon of expected purchases (days).")
    ] = None,
    clv_months: Annotated[int | None, typer.Option("--clv-months", min=0)] = None,
    discount_rate: Annotated[float | None, typer.Option("--discount-rate")] = None,
    no_drivers: Annotated[bool, typer.Option("--no-drivers", help="Skip the drivers text.")] = (
        False
    ),
    chunk_customers: Annotated[
        int, typer.Option("--chunk-customers", min=1, help="Customers per chunk.")
    ] = 200_000,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress or summaries.")] = False,
    strict: StrictOpt = False,
    drop_duplicates: DropDuplicatesOpt = False,
    quarantine_out: QuarantineOut = None,
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "timestamp",
    amount_col: AmountCol = "amount",
    time_format: TimeFormat = None,
    survey_customer_col: SurveyCustomerCol = "customer_id",
    survey_time_col: SurveyTimeCol = "timestamp",
    survey_col: SurveyCol = "survey",
    score_col: ScoreCol = "score",
    survey_time_format: SurveyTimeFormat = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="single: this machine, streamed in chunks; spark: on Spark (writes a Parquet "
            "dataset directory; needs cx-models[spark]).",
        ),
    ] = "single",
    spark_master: Annotated[
        str, typer.Option("--spark-master", help="Spark master URL for --engine spark.")
    ] = "local[*]",
) -> None:
    """Score a whole customer base with a logged CX scorer, in chunks of whole customers."""
    from cx_models.io import read_features, table_format, write_table
    from cx_models.schemas import SurveyColumns, TransactionColumns
    from cx_models.serving.batch import score_features
    from cx_models.training.tracking import describe_model, load_model

    if engine not in ("single", "spark"):
        raise CXDataError(f"--engine must be 'single' or 'spark', got {engine!r}")
    fmt = table_format(out, what="output")
    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    if (features_path is None) == (transactions is None):
        raise CXDataError("give either --features or --transactions (with --as-of)")
    if transactions is not None and as_of is None:
        raise CXDataError("--as-of is required when scoring from --transactions")
    job = {
        "model": model,
        "out": out,
        "transactions": transactions,
        "surveys": surveys,
        "as_of": as_of,
        "tracking_uri": tracking_uri,
        "horizon_days": horizon_days,
        "clv_months": clv_months,
        "discount_rate": discount_rate,
        "explain": not no_drivers,
        "quiet": quiet,
        "strict": strict,
        "drop_duplicates": drop_duplicates,
        "quarantine_out": quarantine_out,
        "transaction_columns": TransactionColumns(customer_col, time_col, amount_col),
        "survey_columns": SurveyColumns(
            survey_customer_col, survey_time_col, survey_col, score_col
        ),
        "time_format": time_format,
        "survey_time_format": survey_time_format,
    }
    if engine == "spark":
        if fmt != "parquet":
            raise CXDataError(
                f"{out}: --engine spark writes Parquet; give an --out ending .parquet"
            )
        _score_on_spark(**job, features_path=features_path, master=spark_master)
        return
    if transactions is not None:
        _score_streamed(**job, chunk_customers=chunk_customers)
        return
    with _chunked_gc() as (freeze, collect_after):
        loaded = load_model(model, tracking_uri=tracking_uri)
        freeze()
        described = describe_model(model, tracking_uri=tracking_uri)
        options = {
            "horizon_days": horizon_days,
            "clv_months": clv_months,
            "discount_rate": discount_rate,
            "explain": not no_drivers,
            "chunk_customers": chunk_customers,
        }
        with _progress(quiet) as advance:
            table = read_features(features_path)
            scored = score_features(loaded, table, progress=collect_after(advance), **options)
            metadata = _score_metadata(
                model,
                described,
                as_of=table.attrs.get("as_of"),
                horizon_days=horizon_days,
                trained_horizon_days=_trained_horizon(loaded),
                clv_months=clv_months,
                discount_rate=discount_rate,
            )
            write_table(scored, out, metadata=metadata)
            n_scored = len(scored)
    if not quiet:
        count = f"{n_scored:,} customers" if n_scored is not None else "the customers"
        err.print(f"scored {count} with {model} (version {described.get('version', '?')}) to {out}")


def _score_streamed(*, model, out, transactions, quiet, quarantine_out, **kw):
    """``cx-models score --transactions``: streamed chunks; the model loads meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    from cx_models.schemas import write_quarantine
    from cx_models.serving.batch import score_files
    from cx_models.training.tracking import describe_model, load_model

    tracking_uri = kw.pop("tracking_uri")
    as_of = kw.pop("as_of")
    horizon_days = kw["horizon_days"]

    described: dict = {}

    def metadata(loaded) -> dict:
        described.update(describe_model(model, tracking_uri=tracking_uri))
        return _score_metadata(
            model,
            described,
            as_of=str(parse_as_of(as_of)),
            horizon_days=horizon_days,
            trained_horizon_days=_trained_horizon(loaded),
            clv_months=kw["clv_months"],
            discount_rate=kw["discount_rate"],
        )

    # loading the model is mostly Python (GIL) work; scanning the ids and reading the
    # first chunk is polars (outside the GIL): do both at once
    with (
        _chunked_gc() as (freeze, collect_after),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="cx-load") as pool,
    ):
        loading = pool.submit(load_model, model, tracking_uri=tracking_uri)
        loading.add_done_callback(lambda _: freeze())
        with _progress(quiet) as advance:
            try:
                result = score_files(
                    loading,
                    transactions,
                    kw.pop("surveys"),
                    as_of=as_of,
                    out=out,
                    metadata=metadata,
                    progress=collect_after(advance),
                    **kw,
                )
            finally:
                if not loading.done():
                    loading.cancel()
        loading.result()  # a model that failed to load fails the job even with no chunk
    if not quiet:
        err.print(
            _report_table(
                {
                    "transactions": result.transactions.to_dict(),
                    "surveys": None if result.surveys is None else result.surveys.to_dict(),
                }
            )
        )
    if quarantine_out is not None:
        write_quarantine(quarantine_out, result.transactions, result.surveys)
    if not quiet:
        err.print(
            f"scored {result.customers:,} customers with {model} "
            f"(version {described.get('version', '?')}) to {out}"
        )


def _score_on_spark(*, model, out, features_path, transactions, quiet, quarantine_out, **kw):
    """``cx-models score --engine spark``: features and scores computed by Spark."""
    try:
        from cx_models.serving import spark as cx_spark
    except ModuleNotFoundError as exc:
        raise CXDataError(
            f"--engine spark needs pyspark ({exc.name} is not installed): "
            "pip install 'cx-models[spark]'"
        ) from None
    from cx_models.io import read_table_metadata
    from cx_models.training.tracking import describe_model

    tracking_uri = kw["tracking_uri"]
    described = describe_model(model, tracking_uri=tracking_uri)
    metadata = _score_metadata(
        model,
        described,
        as_of=None if kw["as_of"] is None else str(parse_as_of(kw["as_of"])),
        horizon_days=kw["horizon_days"],
        trained_horizon_days=None,
        clv_months=kw["clv_months"],
        discount_rate=kw["discount_rate"],
    )
    common = {
        k: kw[k]
        for k in (
            "master",
            "tracking_uri",
            "horizon_days",
            "clv_months",
            "discount_rate",
            "explain",
        )
    }
    if features_path is not None:
        meta = read_table_metadata(features_path)
        metadata["as_of"] = meta.get("as_of")
        result = cx_spark.score_feature_file(
            model,
            features_path,
            out=out,
            time_unit=meta.get("time_unit", "D"),
            metadata=metadata,
            progress=not quiet,
            **common,
        )
    else:
        result = cx_spark.score_files(
            model,
            transactions,
            kw["surveys"],
            as_of=kw["as_of"],
            out=out,
            transaction_columns=kw["transaction_columns"],
            survey_columns=kw["survey_columns"],
            time_format=kw["time_format"],
            survey_time_format=kw["survey_time_format"],
            drop_duplicates=kw["drop_duplicates"],
            strict=kw["strict"],
            quarantine_out=quarantine_out,
            metadata=metadata,
            progress=not quiet,
            **common,
        )
        if not quiet:
            err.print(
                _report_table(
                    {"transactions": result["transactions"], "surveys": result["surveys"]}
                )
            )
    if not quiet:
        err.print(
            f"scored {result['customers']:,} customers on Spark with {model} "
            f"(version {described.get('version', '?')}) to {out}"
        )


def _score_metadata(
    model: str,
    described: dict,
    *,
    as_of,
    horizon_days,
    trained_horizon_days,
    clv_months,
    discount_rate,
) -> dict:
    """Key-value metadata of a scored table: the model, as_of, horizons, version."""
    return {
        "model_uri": model,
        **described,
        "as_of": as_of,
        "horizon_days": horizon_days or trained_horizon_days,
        "trained_horizon_days": trained_horizon_days,
        "clv_months": clv_months,
        "discount_rate": discount_rate,
        "cx_models_version": __version__,
    }


def _trained_horizon(loaded):
    try:
        return int(loaded.metadata.get_params_schema().to_dict()[0]["default"])
    except Exception:  # noqa: BLE001 - not a pyfunc with our signature
        return None


@contextlib.contextmanager
def _chunked_gc():
    """Collect garbage after each scored chunk instead of whenever Python decides.

    A scoring process holds ~360k long-lived objects (MLflow, pandas, polars,
    the model) and each automatic full collection scans them all: ~0.2 s
    holding the GIL that the pipeline's threads wait for (0.4-1.4 s of a
    1 M-customer job, measured). For the job, automatic collection is paused; ``freeze()``
    (once the model is loaded) moves the objects alive then out of the
    collector's sight (they live until the process ends anyway), and
    ``collect_after(progress)`` wraps the progress callback so that a
    collection over the newer objects only follows each chunk: memory stays flat.
    """
    import gc

    enabled = gc.isenabled()
    gc.disable()

    def collect_after(progress):
        def advance(done: int, total: int) -> None:
            progress(done, total)
            gc.collect()

        return advance

    try:
        yield gc.freeze, collect_after
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _progress(quiet: bool):
    """Show a progress bar on stderr (customers done / total, rate); nothing with --quiet."""
    if quiet:
        yield lambda done, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    started = time.perf_counter()
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("customers"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task("score", total=None, rate="")

        def advance(done: int, total: int) -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}/s")

        yield advance


@app.command()
@user_errors
def report(
    scored: Annotated[Path, typer.Option("--scored", help="Scored table from `cx-models score`.")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    top: Annotated[int, typer.Option("--top", min=1, help="Rows in the at-risk list.")] = 500,
    segment: Annotated[
        str | None, typer.Option("--segment", help="Column for a per-segment table.")
    ] = None,
) -> None:
    """Write the retention team's self-contained HTML at-risk report."""
    from cx_models.io import read_table_metadata, write_text_atomic
    from cx_models.serving.report import render_report

    frame = _read_frame(scored, "scored")
    meta = read_table_metadata(scored)
    about = {k: meta.get(k) for k in ("model_uri", "version", "as_of", "horizon_days")}
    write_text_atomic(out, render_report(frame, top=top, segment=segment, metadata=about))
    err.print(f"wrote the report ({min(top, len(frame)):,} customers listed) to {out}")


@app.command()
@user_errors
def serve(
    model: Annotated[str, typer.Option("--model", help="Model URI to serve.")],
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri")] = None,
    host: Annotated[str, typer.Option("--host", help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
) -> None:
    """Serve the REST API (FastAPI): /healthz, /readyz, /metadata, /score, /score/history."""
    import os

    try:
        import uvicorn
    except ModuleNotFoundError:
        raise CXDataError("the API needs the serve extra: pip install 'cx-models[serve]'") from None
    os.environ["CX_MODELS_MODEL_URI"] = model
    if tracking_uri:
        os.environ["CX_MODELS_TRACKING_URI"] = tracking_uri
    err.print(f"serving {model} on http://{host}:{port} ({workers} worker(s))")
    uvicorn.run(
        "cx_models.serving.api:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


# --------------------------------------------------------------------------- cx-models churn
churn_app = typer.Typer(
    help="Churn: leakage-safe snapshots, calibrated XGBoost, forward evaluation.",
    no_args_is_help=True,
)
app.add_typer(churn_app, name="churn")

StepOpt = Annotated[
    int | None,
    typer.Option("--step-days", min=1, help="Days between snapshots (default: horizon)."),
]
MaxSnapshotsOpt = Annotated[
    int | None, typer.Option("--max-snapshots", min=2, help="At most this many snapshots.")
]


def _validated_events(
    transactions,
    surveys,
    as_of,
    columns,
    survey_columns,
    time_format,
    survey_time_format,
    quarantine_out,
):
    """Validate both inputs once (counts on stderr, quarantine written) for the churn verbs."""
    from cx_models.schemas import validate_events, write_quarantine

    tx, sv = validate_events(
        transactions,
        surveys,
        as_of=as_of,
        transaction_columns=columns,
        survey_columns=survey_columns,
        time_format=time_format,
        survey_time_format=survey_time_format,
    )
    err.print(
        _report_table(
            {
                "transactions": tx.report.to_dict(),
                "surveys": None if sv is None else sv.report.to_dict(),
            }
        )
    )
    if quarantine_out is not None:
        write_quarantine(quarantine_out, tx.report, None if sv is None else sv.report)
    return tx.data, None if sv is None else sv.data


@churn_app.command("evaluate")
@user_errors
def churn_evaluate(
    transactions: TransactionsOpt,
    as_of: AsOfOpt,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", min=1, help="Churn horizon, days.")
    ],
    surveys: SurveysOpt = None,
    step_days: StepOpt = None,
    max_snapshots: MaxSnapshotsOpt = None,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="truth.parquet of a synthetic base (ceiling).")
    ] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for PNG plots.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Report file (.json).")] = None,
    quarantine_out: QuarantineOut = None,
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "timestamp",
    amount_col: AmountCol = "amount",
    time_format: TimeFormat = None,
    survey_customer_col: SurveyCustomerCol = "customer_id",
    survey_time_col: SurveyTimeCol = "timestamp",
    survey_col: SurveyCol = "survey",
    score_col: ScoreCol = "score",
    survey_time_format: SurveyTimeFormat = None,
) -> None:
    """Train up to as_of - horizon and evaluate on the window after it, against baselines."""
    import pandas as pd

    from cx_models.churn_eval import evaluate_churn
    from cx_models.schemas import SurveyColumns, TransactionColumns

    tx, sv = _validated_events(
        transactions,
        surveys,
        as_of,
        TransactionColumns(customer_col, time_col, amount_col),
        SurveyColumns(survey_customer_col, survey_time_col, survey_col, score_col),
        time_format,
        survey_time_format,
        quarantine_out,
    )
    truth_frame = None
    if truth is not None:
        if not truth.exists():
            raise CXDataError(f"{truth}: truth file not found")
        truth_frame = pd.read_parquet(truth)
    with err.status("building snapshots, training and evaluating forward in time"):
        report = evaluate_churn(
            tx,
            sv,
            as_of=as_of,
            horizon_days=horizon_days,
            step_days=step_days,
            max_snapshots=max_snapshots,
            truth=truth_frame,
            plots_dir=plots,
        )
    for key in ("_model", "_scores", "_labels"):
        report.pop(key)
    table = Table(title=f"Churn within {horizon_days} days after {report['evaluation_day']}")
    for col in ("scorer", "ROC-AUC", "PR-AUC", "Brier", "lift@10%", "model beats by (AUC)"):
        table.add_column(col, justify="left" if col == "scorer" else "right")
    for name, m in report["metrics"].items():
        gap = report["beats"].get(name, {}).get("roc_auc")
        table.add_row(
            name,
            f"{m['roc_auc']:.4f}",
            f"{m['pr_auc']:.4f}",
            "-" if m["brier"] is None else f"{m['brier']:.4f}",
            f"{m['lift_top_decile']:.2f}",
            "" if gap is None else f"{gap:+.4f}",
        )
    err.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        err.print(f"wrote the report to {out}")
    else:
        _print_json(report)


# --------------------------------------------------------------------------- cx-models nco
nco_app = typer.Typer(
    help="Net Customer Outcome: one 0-100 score from surveys, CLV and churn risk.",
    no_args_is_help=True,
)
app.add_typer(nco_app, name="nco")

NcoWeightsOpt = Annotated[
    str | None,
    typer.Option(
        "--nco-weights",
        help="Component weights, e.g. 'csat=0.2,nps=0.2,ces=0.1,retention=0.25,value=0.25'.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML or JSON file with NCO weights ([nco.weights])."),
]


def resolve_weights(config: Path | None, text: str | None) -> dict:
    """Weights from the defaults, then a config file, then --nco-weights."""
    from cx_models.nco import load_weights, parse_weights

    return parse_weights(text or "", base=load_weights(config) if config is not None else None)


def _read_frame(path: Path, what: str):
    import pandas as pd

    from cx_models.io import table_format

    fmt = table_format(path, what=what)
    if not path.exists():
        raise CXDataError(f"{path}: {what} file not found")
    try:
        return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise CXDataError(f"{path}: cannot read the {what} file ({exc})") from None


@nco_app.command("reference")
@user_errors
def nco_reference(
    clv_from: Annotated[Path, typer.Option("--clv-from", help="Table with a CLV column.")],
    out: Annotated[Path, typer.Option("--out", help="Reference file (.json).")],
    clv_col: Annotated[str, typer.Option("--clv-col")] = "clv",
    clv_months: ClvMonthsOpt = 12,
    discount_rate: DiscountOpt = 0.10,
) -> None:
    """Save the CLV reference distribution the value score is measured against."""
    from cx_models.nco import ValueReference

    frame = _read_frame(clv_from, "CLV")
    if clv_col not in frame.columns:
        raise CXDataError(f"{clv_from}: column {clv_col!r} not found")
    ref = ValueReference.from_clv(
        frame[clv_col], settings={"clv_months": clv_months, "discount_rate": discount_rate}
    )
    out.write_text(json.dumps(ref.to_dict(), indent=2) + "\n")
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
    config: ConfigOpt = None,
    ces_higher_is_better: CesHigherOpt = False,
    clv_col: Annotated[str, typer.Option("--clv-col")] = "clv",
    churn_col: Annotated[str, typer.Option("--churn-col")] = "churn_risk",
) -> None:
    """Add the NCO components, composite, value at risk and priority rank to a table."""
    import pandas as pd

    from cx_models.io import write_table
    from cx_models.nco import ValueReference, score_nco

    weights = resolve_weights(config, nco_weights)
    if not reference.exists():
        raise CXDataError(f"{reference}: reference file not found")
    ref = ValueReference.from_dict(json.loads(reference.read_text()))
    frame = _read_frame(input_path, "input")
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

    summary = summarise(_read_frame(scored, "scored"), by=by)
    if out is not None:
        write_table(summary, out)
        err.print(f"wrote the summary of {len(summary)} segment(s) to {out}")
    else:
        sys.stdout.write(summary.to_json(orient="records", indent=2) + "\n")


@app.command()
@user_errors
def generate(
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Simulate a customer base with ground truth (transactions, surveys, truth, params)."""
    from cx_models.synthetic import generate_customer_base, write_customer_base

    with err.status(f"simulating {customers:,} customers"):
        base = generate_customer_base(customers, seed=seed)
        paths = write_customer_base(base, out)
    err.print(
        f"wrote {base.transactions.height:,} transactions and {base.surveys.height:,} survey "
        f"responses for {customers:,} customers ({base.params['start']} to "
        f"{base.params['end']}, seed {seed}) to {paths['transactions'].parent}"
    )


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("cx-demo"),
    customers: Annotated[int, typer.Option("--customers", min=1000)] = 20_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="Default: sqlite:///mlruns/mlflow.db.")
    ] = None,
) -> None:
    """Run the main job end to end: synthetic base -> tracked model -> scored table."""
    from cx_models.synthetic import SyntheticParams

    data = out / "data"
    as_of = SyntheticParams().end
    err.rule("1. generate a synthetic customer base")
    generate(customers=customers, out=data, seed=seed)
    err.rule(f"2. customer features as of {as_of}")
    features(
        transactions=data / "transactions.parquet",
        surveys=data / "surveys.parquet",
        as_of=as_of,
        out=out / "features.parquet",
        quarantine_out=out / "quarantine.csv",
    )
    err.rule("3. train, evaluate, log to MLflow and register the CX scorer")
    run = _train(
        transactions=data / "transactions.parquet",
        as_of=as_of,
        horizon_days=90,
        surveys=data / "surveys.parquet",
        time_unit=TimeUnit.D,
        experiment="cx-models",
        model_name="cx-scorer",
        tracking_uri=tracking_uri,
        promote=False,
        config=None,
        nco_weights=None,
        step_days=None,
        max_snapshots=None,
        truth=data / "truth.parquet",
        customer_col="customer_id",
        time_col="timestamp",
        amount_col="amount",
        time_format=None,
        survey_customer_col="customer_id",
        survey_time_col="timestamp",
        survey_col="survey",
        score_col="score",
        survey_time_format=None,
        ces_higher_is_better=False,
    )
    evaluation = run["evaluation"]
    (out / "churn_evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    err.rule("4. score every customer with the registered champion")
    from cx_models.io import read_features, write_table, write_text_atomic
    from cx_models.nco import summarise
    from cx_models.serving.batch import score_features
    from cx_models.serving.report import render_report
    from cx_models.training.tracking import load_model

    model_uri = "models:/cx-scorer@champion"
    model = load_model(model_uri, tracking_uri=run["tracking_uri"])
    table = read_features(out / "features.parquet")
    scored = score_features(model, table).sort_values("priority_rank")
    write_table(
        scored,
        out / "scored.parquet",
        metadata={
            "as_of": as_of,
            "model_uri": model_uri,
            "horizon_days": 90,
            "cx_models_version": __version__,
        },
    )
    summary = summarise(scored).iloc[0]
    write_text_atomic(
        out / "report.html",
        render_report(
            scored, metadata={"model_uri": model_uri, "version": run["version"], "as_of": as_of}
        ),
    )
    err.print(
        f"{len(scored):,} customers scored: NPS {summary['nps']:.1f} "
        f"({summary['nps_respondents']:,} respondents), predicted 90-day churn rate "
        f"{summary['predicted_churn_rate']:.1%}, value at risk "
        f"{summary['total_value_at_risk']:,.0f} of 12-month CLV {summary['total_clv']:,.0f}"
    )
    err.rule("outputs")
    err.print(f"  synthetic data      {data}/ (transactions, surveys, truth, params)")
    err.print(f"  features            {out / 'features.parquet'}")
    err.print(f"  churn evaluation    {out / 'churn_evaluation.json'}")
    err.print(f"  scored customers    {out / 'scored.parquet'} (ranked by value at risk)")
    err.print(f"  at-risk report      {out / 'report.html'} (open it in a browser)")
    err.print(f"  model               {run['model_uri']} (alias champion: {model_uri})")
    err.print(f"  tracking store      {run['tracking_uri']}")
    err.print(f"  MLflow UI           mlflow ui --backend-store-uri {run['tracking_uri']}")


@app.command()
def version() -> None:
    """Print the cx-models version."""
    sys.stdout.write(json.dumps({"cx_models": __version__}) + "\n")


def main() -> None:
    """Entry point of the ``cx-models`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
