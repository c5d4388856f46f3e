"""Every command-line option, defined once, and the settings objects built from them.

A verb asks for a settings object by parameter name and the decorator
:func:`settings_from` puts that group's options into the verb's signature (so
``--help`` lists them) and builds the object from them::

    @settings_from(fmt=EVENT_FORMAT, params=SCORE_PARAMS)
    def score(..., fmt: EventFormat, params: ScoreParams): ...

Renamed options keep their old spelling as a hidden alias that prints one
deprecation line (:func:`cx_models.cli._app.renamed`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from cx_models.cli.db_options import location
from cx_models.cli.model_options import (
    ChurnClvModelOpt,
    ClvModelOpt,
    ClvMonthsOpt,
    ContactCostOpt,
    DiscountRateOpt,
    DropoutCovariatesOpt,
    IncentiveCostOpt,
    LegacyModelOpt,
    MarginOpt,
    MaxSnapshotsOpt,
    MaxTrainingRowsOpt,
    NcoWeightsOpt,
    PenalizerOpt,
    PurchaseCovariatesOpt,
    SaveRateOpt,
    StepOpt,
)
from cx_models.cli.option_groups import OptionGroup, settings_from
from cx_models.contract import SurveyColumns, TransactionColumns
from cx_models.errors import CXDataError
from cx_models.settings import EventFormat, FeatureSpec, ScoreParams, TransactionExtras

__all__ = [
    "ContactCostOpt",
    "IncentiveCostOpt",
    "MarginOpt",
    "SaveRateOpt",
    "AsOfOpt",
    "AttributesOpt",
    "CategoricalOpt",
    "ChurnClvModelOpt",
    "DropoutCovariatesOpt",
    "PurchaseCovariatesOpt",
    "ClvModelOpt",
    "ClvMonthsOpt",
    "DiscountRateOpt",
    "HorizonDaysOpt",
    "LegacyModelOpt",
    "MaxSnapshotsOpt",
    "MaxTrainingRowsOpt",
    "NcoWeightsOpt",
    "PenalizerOpt",
    "PlotsOpt",
    "ReportOutOpt",
    "StepOpt",
    "TimeUnitOpt",
    "TruthOpt",
    "EVENT_FORMAT",
    "FEATURE_SPEC",
    "OptionGroup",
    "QuarantineOut",
    "SCORE_PARAMS",
    "SurveysOpt",
    "TRANSACTION_FORMAT",
    "TimeUnit",
    "attribute_input",
    "TrackingUriOpt",
    "TransactionsOpt",
    "flag",
    "settings_from",
]


class TimeUnit(StrEnum):
    """Time units of the BTYD columns."""

    D = "D"
    W = "W"


def flag(name: str, help: str) -> Any:  # noqa: A002 - typer's own keyword
    """Return a plain on/off flag (no ``<bool>`` in the help)."""
    return typer.Option(name, help=help, metavar="")


# --------------------------------------------------------------------------- single options
TransactionsOpt = Annotated[
    Path,
    typer.Option(
        "--transactions",
        parser=location,
        metavar="<path|uri>",
        help="Transactions file (.csv or .parquet), or a database URI (postgresql://…, "
        "duckdb:///path) with its table or query.",
    ),
]
SurveysOpt = Annotated[
    Path | None,
    typer.Option(
        "--surveys",
        parser=location,
        metavar="<path|uri>",
        help="Survey responses file (.csv or .parquet), or a database URI with its table "
        "or query.",
    ),
]
AttributesOpt = Annotated[
    Path | None,
    typer.Option(
        "--attributes",
        parser=location,
        metavar="<path|uri>",
        help="Customer attributes: customer_id plus static columns (.csv or .parquet, or a "
        "database URI with its table or query).",
    ),
]
CategoricalOpt = Annotated[
    str | None,
    typer.Option(
        "--categorical",
        help="Attribute columns that are categorical, comma-separated (the others: numeric "
        "when every cell is a number).",
    ),
]
AsOfOpt = Annotated[
    str,
    typer.Option("--as-of", help="Cutoff calendar day YYYY-MM-DD; events on it are included."),
]
QuarantineOut = Annotated[
    Path | None,
    typer.Option(
        "--quarantine-out",
        parser=location,
        metavar="<path|uri>",
        help="Write every rejected row (.csv or .parquet, or a database URI with its "
        "table).",
    ),
]
TrackingUriOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db).",
    ),
]


TimeUnitOpt = Annotated[
    TimeUnit,
    typer.Option(
        "--time-unit",
        case_sensitive=False,
        help="Unit of recency and T: D (days) or W (weeks of 7 days).",
    ),
]
HorizonDaysOpt = Annotated[
    int | None,
    typer.Option(
        "--horizon-days",
        min=1,
        help="Horizon in days: of the churn label when training; of expected purchases and "
        "P(no purchase) when predicting (scoring: default the trained churn horizon).",
    ),
]
PlotsOpt = Annotated[Path | None, typer.Option("--plots", help="Directory for PNG plots.")]
ReportOutOpt = Annotated[Path | None, typer.Option("--out", help="Report file (.json).")]
TruthOpt = Annotated[
    Path | None, typer.Option("--truth", help="truth.parquet of a synthetic base (ceiling).")
]
# --------------------------------------------------------------------------- option groups
def _column_list(flag_name: str, help_text: str) -> tuple[Any, Any]:
    option = typer.Option(flag_name, metavar="COLS", help=help_text)
    return Annotated[str | None, option], None


def _column(flag_name: str, help_text: str, default: str) -> tuple[Any, Any]:
    return Annotated[str, typer.Option(flag_name, help=help_text)], default


_TRANSACTION_OPTIONS = {
    "customer_col": _column("--customer-col", "Transactions: customer id column.", "customer_id"),
    "time_col": _column("--time-col", "Transactions: timestamp column.", "timestamp"),
    "amount_col": _column("--amount-col", "Transactions: amount column.", "amount"),
    "time_format": (
        Annotated[
            str | None,
            typer.Option(
                "--time-format", help="strptime format of non-ISO timestamps, e.g. %Y%m%d."
            ),
        ],
        None,
    ),
    "strict": (
        Annotated[bool, flag("--strict", "Fail instead of quarantining rows.")],
        False,
    ),
    "drop_duplicates": (
        Annotated[bool, flag("--drop-duplicates", "Quarantine exact duplicate rows.")],
        False,
    ),
}
_SURVEY_OPTIONS = {
    "survey_customer_col": _column(
        "--survey-customer-col", "Surveys: customer id column.", "customer_id"
    ),
    "survey_time_col": _column("--survey-time-col", "Surveys: timestamp column.", "timestamp"),
    "survey_col": _column("--survey-col", "Surveys: survey type column.", "survey"),
    "score_col": _column("--score-col", "Surveys: score column.", "score"),
    "survey_time_format": (
        Annotated[
            str | None,
            typer.Option(
                "--survey-time-format",
                help="strptime format of survey timestamps (default: --time-format).",
            ),
        ],
        None,
    ),
    "ces_higher_is_better": (
        Annotated[
            bool,
            flag(
                "--ces-higher-is-better",
                "Declare CES as 7 = best; by default 1 = very low effort is best.",
            ),
        ],
        False,
    ),
}


def _event_format(values: dict) -> EventFormat:
    return EventFormat(
        transactions=TransactionColumns(
            values["customer_col"], values["time_col"], values["amount_col"]
        ),
        surveys=SurveyColumns(
            values.get("survey_customer_col", "customer_id"),
            values.get("survey_time_col", "timestamp"),
            values.get("survey_col", "survey"),
            values.get("score_col", "score"),
        ),
        time_format=values["time_format"],
        survey_time_format=values.get("survey_time_format"),
        strict=values["strict"],
        drop_duplicates=values["drop_duplicates"],
        ces_higher_is_better=values.get("ces_higher_is_better", False),
    )


#: How to read a transactions export (verbs without surveys).
TRANSACTION_FORMAT = OptionGroup(_TRANSACTION_OPTIONS, _event_format)
#: How to read a transactions and a survey export.
EVENT_FORMAT = OptionGroup({**_TRANSACTION_OPTIONS, **_SURVEY_OPTIONS}, _event_format)

#: The feature definition.
FEATURE_SPEC = OptionGroup(
    {
        "time_unit": (TimeUnitOpt, TimeUnit.D),
        "lookback_days": (
            Annotated[
                int, typer.Option("--lookback-days", min=1, help="Survey look-back window in days.")
            ],
            365,
        ),
        "tx_numeric": _column_list(
            "--tx-numeric",
            "Numeric transaction columns to aggregate per customer (sum and mean per occasion, "
            "whole history and 30/90/180 days), comma-separated, e.g. quantity.",
        ),
        "tx_categorical": _column_list(
            "--tx-categorical",
            "Categorical transaction columns: share of occasions of each of the 10 most "
            "frequent levels (the rest pooled as other), comma-separated.",
        ),
    },
    lambda v: FeatureSpec(
        time_unit=v["time_unit"].value,
        lookback_days=v["lookback_days"],
        extras=TransactionExtras(numeric=v["tx_numeric"], categorical=v["tx_categorical"]),
    ),
)

#: How to score: every option left out means "as trained".
IntervalsOpt = Annotated[
    float | None,
    typer.Option(
        "--intervals",
        min=0.0,
        max=1.0,
        help="Central level, e.g. 0.9: adds purchases_lower/upper (predictive) and "
        "clv_lower/upper (parameter uncertainty).",
    ),
]
SCORE_PARAMS = OptionGroup(
    {
        "horizon_days": (HorizonDaysOpt, None),
        "intervals": (IntervalsOpt, None),
        "clv_months": (ClvMonthsOpt, None),
        "discount_rate": (DiscountRateOpt, None),
        "no_drivers": (
            Annotated[bool, flag("--no-drivers", "Skip the drivers text.")],
            False,
        ),
    },
    lambda v: ScoreParams(
        horizon_days=v["horizon_days"],
        clv_months=v["clv_months"],
        discount_rate=v["discount_rate"],
        explain=not v["no_drivers"],
        intervals=v["intervals"],
    ),
)


def attribute_input(attributes, categorical: str | None):
    """Return the ``--attributes`` input with its ``--categorical`` columns, or ``None``."""
    from cx_models.attributes import AttributeInput, AttributeSpec

    names = tuple(c.strip() for c in (categorical or "").split(",") if c.strip())
    if attributes is None:
        if names:
            raise CXDataError("--categorical names attribute columns: give --attributes too")
        return None
    return AttributeInput(attributes, AttributeSpec(categorical=names))
