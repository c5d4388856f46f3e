"""``cx-models score``: scores for a whole base, from raw events or a feature table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx_models._version import __version__
from cx_models.cli._app import (
    app,
    chunked_gc,
    err,
    progress_bar,
    report_table,
    say_quarantine,
    user_errors,
)
from cx_models.cli.db_options import database_sources, database_targets, location
from cx_models.cli.options import (
    EVENT_FORMAT,
    SCORE_PARAMS,
    AttributesOpt,
    CategoricalOpt,
    QuarantineOut,
    SurveysOpt,
    TrackingUriOpt,
    attribute_input,
    settings_from,
)
from cx_models.cli.subscriptions import SUBSCRIPTION_SPEC
from cx_models.errors import CXDataError
from cx_models.settings import EventFormat, ScoreParams
from cx_models.sources import EventInputs
from cx_models.timeutil import parse_as_of

__all__ = [
    "resolve_and_load",
    "score",
    "score_metadata",
    "score_table_file",
    "scored_line",
]

ModelUriOpt = Annotated[
    str,
    typer.Option(
        "--model", help="Registered model URI, e.g. models:/cx-scorer@champion or models:/NAME/3."
    ),
]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-modified-model",
        help="Load the model even if its files differ from those logged (they run on load).",
        metavar="",
    ),
]


def trust_modified(trust: bool) -> None:
    """Let this process (and its server workers) load models whose files were changed."""
    import os

    if trust:
        os.environ["CX_TRUST_MODIFIED_MODEL"] = "1"


def resolve_and_load(model: str, tracking_uri: str | None):
    """Resolve the URI once to its version and load that version: ``(pyfunc, info)``."""
    from cx_models.training.tracking import describe_model, load_model

    info = {"model_uri": model, "requested_uri": model}
    info.update(describe_model(model, tracking_uri=tracking_uri))
    return load_model(info["model_uri"], tracking_uri=tracking_uri), info


def score_metadata(info: dict, loaded, *, as_of, params: ScoreParams) -> dict:
    """Key-value metadata of a scored table: the model pinned to a version, the settings used."""
    from cx_models.serving.batch import as_predictor

    scorer = getattr(as_predictor(loaded), "scorer", None)
    meta = {
        "model_uri": info.get("model_uri"),
        "requested_uri": info.get("requested_uri"),
        "name": info.get("name"),
        "version": info.get("version"),
        "alias": info.get("alias"),
        "run_id": info.get("run_id"),
        "as_of": as_of,
        "horizon_days": params.horizon_days,
        "clv_months": params.clv_months,
        "discount_rate": params.discount_rate,
        "cx_models_version": __version__,
    }
    if scorer is not None:
        used = params.resolved(
            horizon_days=scorer.horizon_days,
            clv_months=scorer.clv_months,
            discount_rate=scorer.discount_rate,
        )
        meta.update(
            horizon_days=used.horizon_days,
            trained_horizon_days=scorer.horizon_days,
            clv_months=used.clv_months,
            discount_rate=used.discount_rate,
            **scorer.feature_spec.to_dict(),
        )
    return meta


def _quarantine_extremes(table, quarantine_out, quiet: bool):
    """Take the customers with infinite or huge features out of ``table``; say how many."""
    import pandas as pd

    from cx_models.io import write_table
    from cx_models.scoring import extreme_cells

    _, bad_cell = extreme_cells(table)
    bad = bad_cell.any(axis=1) if bad_cell.size else None
    rejected = table.iloc[0:0] if bad is None else table[bad]
    if len(rejected) and not quiet:
        err.print(
            f"{len(rejected):,} of {len(table):,} customers quarantined (feature_out_of_range: "
            "an infinite feature value or one above 1e30); the others are scored"
        )
    if quarantine_out is not None:
        rows = pd.DataFrame({"source": "features", "row": rejected.index.astype("int64"),
                             "reason": "feature_out_of_range"})
        values = rejected.reset_index(drop=True).astype(str)
        write_table(pd.concat([rows.reset_index(drop=True), values], axis=1), quarantine_out)
    if not len(rejected):
        return table
    kept = table[~bad]
    kept.attrs = dict(table.attrs)
    return kept


def scored_line(customers: int, info: dict, out, engine: str = "") -> str:
    """Return the console line naming the version that really scored."""
    version = info.get("version", "?")
    asked = info.get("requested_uri")
    pinned = info.get("model_uri")
    via = f" (resolved from {asked})" if asked and asked != pinned else ""
    from cx_models.sources import source_name

    return (
        f"scored {customers:,} customers{engine} with {pinned}{via}, version {version}, "
        f"to {source_name(out)}"
    )


def score_table_file(
    model, features_path, out, *, tracking_uri, params, chunk_customers, quiet, quarantine_out=None
):
    """Score a feature table file (``--features``; also the demo): the metadata, then the file.

    Customers with an infinite or huge feature value are quarantined
    (``feature_out_of_range``), not scored: one such row never fails the table.
    """
    from cx_models.io import read_features, write_table
    from cx_models.serving.batch import score_features

    with chunked_gc() as (freeze, collect_after):
        loaded, info = resolve_and_load(model, tracking_uri)
        freeze()
        table = _quarantine_extremes(read_features(features_path), quarantine_out, quiet)
        with progress_bar(quiet) as advance:
            scored = score_features(
                loaded,
                table,
                params=params,
                chunk_customers=chunk_customers,
                progress=collect_after(advance),
            )
        metadata = score_metadata(info, loaded, as_of=table.attrs.get("as_of"), params=params)
        write_table(scored, out, metadata=metadata)
    if not quiet:
        err.print(scored_line(len(scored), info, out))
    return scored, metadata


@app.command()
@user_errors
@settings_from(fmt=EVENT_FORMAT, params=SCORE_PARAMS, contract=SUBSCRIPTION_SPEC)
@database_sources("transactions", "surveys", "attributes", "subscriptions")
@database_targets("out", "quarantine_out")
def score(
    model: ModelUriOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            parser=location,
            metavar="<path|uri>",
            help="Scored table (.parquet or .csv), or a database URI with its table.",
        ),
    ],
    features_path: Annotated[
        Path | None, typer.Option("--features", help="Feature table instead of raw events.")
    ] = None,
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions",
            parser=location,
            metavar="<path|uri>",
            help="Transactions file (.csv or .parquet), or a database URI with its table "
            "or query.",
        ),
    ] = None,
    surveys: SurveysOpt = None,
    attributes: AttributesOpt = None,
    categorical: CategoricalOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Cutoff day YYYY-MM-DD (with --transactions).")
    ] = None,
    subscriptions: Annotated[
        Path | None,
        typer.Option(
            "--subscriptions", parser=location, metavar="<path|uri>",
            help="Subscriptions, for a subscription model (transactions are then optional "
            "activity events): one scored row per relationship active on the as-of day.",
        ),
    ] = None,
    tracking_uri: TrackingUriOpt = None,
    chunk_customers: Annotated[
        int, typer.Option("--chunk-customers", min=1, help="Customers per chunk.")
    ] = 200_000,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress or summaries.", metavar="")
    ] = False,
    quarantine_out: QuarantineOut = None,
    trust: TrustOpt = False,
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
    *,
    fmt: EventFormat,
    params: ScoreParams,
    contract,
) -> None:
    """Score a whole customer base with a logged CX scorer, in chunks of whole customers."""
    trust_modified(trust)
    from cx_models.io import table_format
    from cx_models.sources import source_name

    if engine not in ("single", "spark"):
        raise CXDataError(f"--engine must be 'single' or 'spark', got {engine!r}")
    fmt_out = table_format(out, what="output")
    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    if subscriptions is not None:
        from cx_models.cli.score_contract import score_contract

        if features_path is not None or engine != "single":
            raise CXDataError("--subscriptions scores from the raw subscriptions on this "
                              "machine: leave out --features and --engine spark")
        if as_of is None:
            raise CXDataError("--as-of is required when scoring from --subscriptions")
        score_contract(
            model, out, subscriptions, surveys=surveys, transactions=transactions,
            attributes=attribute_input(attributes, categorical),
            as_of=parse_as_of(as_of, name="--as-of"), spec=contract, fmt=fmt, params=params,
            tracking_uri=tracking_uri, quiet=quiet, quarantine_out=quarantine_out,
        )
        return
    if (features_path is None) == (transactions is None):
        raise CXDataError("give either --features or --transactions (with --as-of)")
    if transactions is not None and as_of is None:
        raise CXDataError("--as-of is required when scoring from --transactions")
    day = None if as_of is None else parse_as_of(as_of, name="--as-of")
    attrs = attribute_input(attributes, categorical)
    if attrs is not None and transactions is None:
        raise CXDataError(
            "--attributes joins the features built from --transactions; a --features table "
            "carries its attributes already (cx-models features --attributes)"
        )
    inputs = None if transactions is None else EventInputs(transactions, surveys, fmt, attrs)
    if engine == "spark":
        if fmt_out != "parquet":
            raise CXDataError(
                f"{source_name(out)}: --engine spark writes Parquet; give an --out ending "
                ".parquet"
            )
        databases = [source_name(v) for v in (transactions, surveys, attributes, quarantine_out)
                     if v is not None and not isinstance(v, Path)]
        if databases:
            raise CXDataError(
                f"{databases[0]}: --engine spark reads and writes files; score a database "
                "with --engine single"
            )
        from cx_models.cli.spark import score_on_spark

        score_on_spark(
            model=model,
            out=out,
            features_path=features_path,
            inputs=inputs,
            as_of=day,
            tracking_uri=tracking_uri,
            master=spark_master,
            params=params,
            quiet=quiet,
            quarantine_out=quarantine_out,
        )
        return
    if transactions is not None:
        _score_streamed(
            model=model,
            out=out,
            inputs=inputs,
            as_of=day,
            tracking_uri=tracking_uri,
            params=params,
            chunk_customers=chunk_customers,
            quiet=quiet,
            quarantine_out=quarantine_out,
        )
        return
    score_table_file(
        model,
        features_path,
        out,
        tracking_uri=tracking_uri,
        params=params,
        chunk_customers=chunk_customers,
        quiet=quiet,
        quarantine_out=quarantine_out,
    )


def _score_streamed(*, model, out, inputs, as_of, tracking_uri, params, quarantine_out, **job):
    """``cx-models score --transactions``: streamed chunks; the model loads meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    from cx_models.serving.batch import score_files

    info: dict = {}

    def load():
        loaded, resolved = resolve_and_load(model, tracking_uri)
        info.update(resolved)
        return loaded

    def metadata(loaded) -> dict:
        return score_metadata(info, loaded, as_of=as_of.isoformat(), params=params)

    quiet = job.pop("quiet")
    # loading the model is mostly Python (GIL) work; scanning the ids and validating the
    # first chunks is polars (outside the GIL): do both at once
    with (
        chunked_gc() as (freeze, collect_after),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="cx-load") as pool,
    ):
        loading = pool.submit(load)
        loading.add_done_callback(lambda _: freeze())
        with progress_bar(quiet) as advance:
            try:
                result = score_files(
                    loading,
                    inputs,
                    as_of=as_of,
                    out=out,
                    params=params,
                    metadata=metadata,
                    progress=collect_after(advance),
                    **job,
                )
            finally:
                if not loading.done():
                    loading.cancel()
        loading.result()  # a model that failed to load fails the job even with no chunk
    reports = (result.transactions, result.surveys, result.attributes)
    if not quiet:
        named = dict(zip(("transactions", "surveys", "attributes"), reports, strict=True))
        err.print(report_table({k: None if r is None else r.to_dict() for k, r in named.items()}))
    if quiet:
        if quarantine_out is not None:
            from cx_models.schemas import write_quarantine

            write_quarantine(quarantine_out, *reports)
    else:
        say_quarantine(quarantine_out, *reports)
        unseen = {k: n for k, n in result.unseen_levels.items() if n}
        if unseen:
            listing = ", ".join(f"{k}: {n:,}" for k, n in unseen.items())
            err.print(f"attribute values not seen in training, scored as missing: {listing}")
        err.print(scored_line(result.customers, info, out))
