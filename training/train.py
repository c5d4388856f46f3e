"""The training job: read -> validate -> train -> validate CLV -> log, register, alias.

``cx-models train`` and :func:`train` run it. It reads like a story: the inputs
are validated with the data contracts (quarantine counts kept), the CX scorer is
trained (:func:`cx_models.training.pipeline.train_scorer`), the CLV model is
checked on a calibration/holdout split, and everything — configuration, data
fingerprints, metrics, figures, tables and the pyfunc model — goes to MLflow.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
from cx_models.training.pipeline import TrainingConfig, train_scorer
from cx_models.training.tracking import TrackingTarget, log_training_run

from cx_models.clv_validation import validate_clv
from cx_models.legacy_keywords import from_keywords
from cx_models.promotion import WINDOW_FILE, WINDOW_META, evaluation_window
from cx_models.schemas import validate_events
from cx_models.settings import EventFormat

__all__ = ["train"]


def _fingerprint(frame: pl.DataFrame) -> str:
    """Return a digest of every validated row (order-independent) for the tracking store."""
    if frame.height == 0:
        return "empty"
    return f"{int(frame.hash_rows(seed=0).sum()) & 0xFFFFFFFFFFFFFFFF:016x}"


def train(
    transactions,
    surveys=None,
    *,
    config: TrainingConfig,
    fmt: EventFormat | None = None,
    target: TrackingTarget | None = None,
    truth=None,
    clv_holdout_days: int = 180,
    progress: Callable[[str], None] | None = None,
    attributes=None,
    **keywords,
) -> dict:
    """Train the CX scorer on data up to ``config.as_of`` and log it to MLflow.

    ``fmt`` says how to read the inputs, ``target`` where to log and register
    (the embedded store by default); ``attributes`` is an optional customer
    attributes input (a path, frame, database source or
    :class:`~cx_models.attributes.AttributeInput`), used as churn features. Returns the
    :func:`~cx_models.training.tracking.log_training_run` summary plus
    ``evaluation`` (the forward churn evaluation) and ``result``.
    """
    tracking = {k: keywords.pop(k) for k in TrackingTarget.KEYWORDS if k in keywords}
    fmt, _ = from_keywords("train", keywords, fmt=fmt)
    target = target or TrackingTarget(**tracking)
    say = progress or (lambda message: None)
    say("validating inputs")
    extras = config.feature_spec.extras
    tx, sv = validate_events(transactions, surveys, as_of=config.as_of, fmt=fmt, extras=extras)
    attrs = None
    if attributes is not None:
        from cx_models.attributes import AttributeInput
        from cx_models.contract import feature_columns

        attrs = AttributeInput.of(attributes).validate(
            id_dtype=tx.data["customer_id"].dtype,
            reserved=[*feature_columns(), *config.feature_spec.added_columns()],
        )
    with tempfile.TemporaryDirectory() as tmp:
        plots_dir = Path(tmp) / "figures"
        result = train_scorer(
            tx.data,
            None if sv is None else sv.data,
            config,
            truth=truth,
            plots_dir=plots_dir,
            progress=say,
            attributes=None if attrs is None else attrs.data,
        )
        say("checking CLV on a calibration / holdout split")
        as_of = dt.date.fromisoformat(config.as_of)
        clv_report = None
        calibration_end = as_of - dt.timedelta(days=clv_holdout_days)
        if calibration_end > tx.data["timestamp"].min().date():
            clv_report = validate_clv(
                tx.data,
                calibration_end=calibration_end,
                holdout_end=as_of,
                model=result.scorer.clv.model,
                penalizer=config.penalizer,
                spec=config.feature_spec.core(),
                plots_dir=plots_dir,
            )
        plots = list(result.evaluation.get("plots", []))
        plots += [] if clv_report is None else list(clv_report.get("plots", []))
        plots.append(_importance_plot(result.scorer.churn, plots_dir))
        evaluation = {k: v for k, v in result.evaluation.items() if not k.startswith("_")}
        tables = {
            "churn_evaluation": evaluation,
            "snapshots": result.snapshot_counts,
            "clv_model": result.scorer.clv.to_dict(),
            "data_quality": {
                "transactions": tx.report.to_dict(),
                "surveys": None if sv is None else sv.report.to_dict(),
                **({} if attrs is None else {"attributes": attrs.report.to_dict()}),
            },
            "feature_importance": _importance(result.scorer.churn),
            "snapshot_design": result.design,
        }
        if result.clv_choice is not None:
            tables["clv_choice"] = result.clv_choice
        if clv_report is not None:
            tables["clv_validation"] = clv_report
        data = {
            "transactions": {
                "frame": tx.data,
                "report": tx.report.to_dict(),
                "source": tx.report.source,
                "digest": _fingerprint(tx.data),
            },
            "surveys": None
            if sv is None
            else {
                "frame": sv.data,
                "report": sv.report.to_dict(),
                "source": sv.report.source,
                "digest": _fingerprint(sv.data),
            },
        }
        if attrs is not None:
            data["attributes"] = {
                "frame": attrs.data,
                "report": attrs.report.to_dict(),
                "source": attrs.report.source,
                "digest": _fingerprint(attrs.data),
            }
        artifacts = _window_artifacts(result, Path(tmp))
        say("logging the run and registering the model")
        logged = log_training_run(
            result=result,
            data=data,
            clv_validation=clv_report,
            plots=plots,
            tables=tables,
            target=target,
            artifacts=artifacts,
        )
    logged["evaluation"] = evaluation
    logged["design"] = result.design
    logged["result"] = result
    logged["reports"] = {
        "transactions": tx.report,
        "surveys": None if sv is None else sv.report,
        "attributes": None if attrs is None else attrs.report,
    }
    return logged


def _window_artifacts(result, tmp: Path) -> dict[str, list[str]]:
    """Write the forward evaluation's window (features, outcomes, risk) for the gate."""
    import json

    window = evaluation_window(result.evaluation, random_state=result.config.random_state)
    if window is None:
        return {}
    folder = tmp / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    window.to_parquet(folder / WINDOW_FILE, index=False)
    spec = result.config.feature_spec
    meta = {
        "evaluation_day": result.evaluation["evaluation_day"],
        "horizon_days": int(result.config.horizon_days),
        "lookback_days": spec.lookback_days,
        "time_unit": window.attrs.get("time_unit", spec.time_unit),
        "customers": int(len(window)),
        "kind": getattr(result.scorer, "kind", "transactions"),
    }
    (folder / WINDOW_META).write_text(json.dumps(meta, indent=2) + "\n")
    return {"evaluation": [str(folder / WINDOW_FILE), str(folder / WINDOW_META)]}


def _importance(churn) -> dict:
    gain = churn.booster_.get_score(importance_type="total_gain")
    total = sum(gain.values()) or 1.0
    return dict(sorted(((k, v / total) for k, v in gain.items()), key=lambda kv: -kv[1]))


def _importance_plot(churn, out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cx_models.models.churn import FEATURE_LABELS

    share = list(_importance(churn).items())[:15][::-1]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh([FEATURE_LABELS.get(k, k) for k, _ in share], [v for _, v in share])
    ax.set_xlabel("share of total gain")
    ax.set_title("Churn model: feature importance")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "feature_importance.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
