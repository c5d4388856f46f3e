"""``cx-models score --engine spark``: features and scores computed by Spark."""

from __future__ import annotations

from cx_models.cli._app import err, report_table
from cx_models.errors import CXDataError

__all__ = ["score_on_spark"]


def score_on_spark(*, model, out, features_path, inputs, as_of, tracking_uri, params, **job):
    """Score on Spark with the model pinned to one version and its feature definition."""
    try:
        from cx_models.serving import spark as cx_spark
    except ModuleNotFoundError as exc:
        raise CXDataError(
            f"--engine spark needs pyspark ({exc.name} is not installed): "
            "pip install 'cx-models[spark]'"
        ) from None
    from cx_models.cli.score import resolve_and_load, score_metadata, scored_line
    from cx_models.io import read_table_metadata
    from cx_models.serving.batch import feature_spec_of

    quiet, quarantine_out, master = job["quiet"], job["quarantine_out"], job["master"]
    loaded, info = resolve_and_load(model, tracking_uri)  # on the driver: the spec, the metadata
    spec = feature_spec_of(loaded)
    run = cx_spark.SparkRun(master=master, tracking_uri=tracking_uri, progress=not quiet)
    if features_path is not None:
        meta = read_table_metadata(features_path)
        built = meta.get("lookback_days")
        if built is not None and int(built) != spec.lookback_days:
            raise CXDataError(
                f"{features_path}: built with --lookback-days {built} but the model was "
                f"trained with {spec.lookback_days}; rebuild the features with "
                f"--lookback-days {spec.lookback_days}"
            )
        _check_feature_columns(loaded, features_path, meta)
        metadata = score_metadata(info, loaded, as_of=meta.get("as_of"), params=params)
        result = cx_spark.score_feature_file(
            info["model_uri"],
            features_path,
            out=out,
            time_unit=meta.get("time_unit", "D"),
            run=run,
            params=params,
            metadata=metadata,
        )
        if result["feature_out_of_range"] and not quiet:
            err.print(
                f"{result['feature_out_of_range']:,} customers quarantined (feature_out_of_range:"
                " an infinite feature value or one above 1e30); the others are scored"
            )
    else:
        metadata = score_metadata(info, loaded, as_of=as_of.isoformat(), params=params)
        result = cx_spark.score_files(
            info["model_uri"],
            inputs,
            as_of=as_of,
            out=out,
            spec=spec,
            run=run,
            params=params,
            metadata=metadata,
        )
        quarantine = result.pop("quarantine")
        if quarantine_out is not None and quarantine is not None:
            cx_spark.write_quarantine(quarantine, quarantine_out)
        if not quiet:
            err.print(report_table({k: result[k] for k in ("transactions", "surveys")}))
    if not quiet:
        err.print(scored_line(result["customers"], info, out, engine=" on Spark"))


def _check_feature_columns(loaded, features_path, meta: dict) -> None:
    """Refuse, on the driver, a feature file without the columns the model reads.

    The model's period history (BG/BB), extra-column aggregates and customer
    attributes: found missing on the executors they would fail the Spark job with
    a worker's stack trace instead of one line.
    """
    import pandas as pd

    from cx_models.serving.predictors import as_predictor

    scorer = getattr(as_predictor(loaded), "scorer", None)
    columns = _file_columns(features_path)
    if scorer is None or columns is None:
        return
    empty = pd.DataFrame(columns=columns)
    empty.attrs = {k: meta[k] for k in ("lookback_days",) if k in meta}
    try:
        scorer.check_features(empty)
    except CXDataError as exc:
        raise CXDataError(f"{features_path}: {exc}") from None
    missing = [c for c in scorer.attribute_columns if c not in columns]
    if missing:
        raise CXDataError(
            f"{features_path}: the model was trained with customer attributes "
            f"({', '.join(missing)}), missing here: build the features with --attributes"
        )


def _file_columns(path) -> list[str] | None:
    """Return the column names of a Parquet file or dataset or a CSV file (or ``None``)."""
    try:
        if str(path).lower().endswith(".csv"):
            import polars as pl

            return pl.read_csv(path, n_rows=0).columns
        import pyarrow.dataset as ds

        return ds.dataset(str(path), format="parquet").schema.names
    except Exception:  # noqa: BLE001 - unreadable here: Spark's own reading says why
        return None
