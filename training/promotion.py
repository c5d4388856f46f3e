"""The promotion job: compare a registered challenger with the champion, move the alias.

``cx-models promote`` and ``cx-models train --promote-if-better`` run it. The
challenger's training run holds its forward-evaluation window
(:func:`cx_models.promotion.evaluation_window`); the champion is scored on it
and the gate (:class:`cx_models.promotion.PromotionGate`) decides. The comparison
is recorded under the challenger's run (``promotion/…json``, ``promotion.*``
metrics, the ``promotion`` tag). The mlflow module comes from
:mod:`cx_models.training.tracking`, the one module that imports it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from cx_models.training import tracking
from cx_models.training.registry import load_model

from cx_models.errors import CXDataError
from cx_models.promotion import WINDOW_FILE, WINDOW_META, PromotionGate, compare_on_window

__all__ = ["NotPromoted", "promote"]

CHAMPION = "champion"


class NotPromoted(CXDataError):
    """The challenger did not pass the gate, or could not be compared (the reason says)."""


def _champion_version(client, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except Exception:  # noqa: BLE001 - MLflow raises its own RestException subclasses
        return None


def _window(mlflow, run_id: str, version: str) -> tuple[pd.DataFrame, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with tracking.quiet_mlflow():
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="evaluation", dst_path=tmp
                )
        except Exception:  # noqa: BLE001 - a missing artifact is an MlflowException or OSError
            raise NotPromoted(
                f"version {version} has no forward-evaluation window (its evaluation was "
                "skipped for lack of history, or it was trained by an older cx-models): there "
                "is nothing to compare the champion on"
            ) from None
        meta = json.loads((Path(local) / WINDOW_META).read_text())
        table = pd.read_parquet(Path(local) / WINDOW_FILE)
    table.attrs["time_unit"] = meta.get("time_unit", "D")
    return table, meta


def promote(
    model_name: str,
    challenger,
    *,
    tracking_uri: str | None = None,
    force: bool = False,
    gate: PromotionGate | None = None,
) -> dict:
    """Move ``champion`` to version ``challenger`` of ``model_name`` if it passes the gate.

    Without a champion the challenger becomes it. Otherwise both are compared on
    the challenger's evaluation window; ``force`` moves the alias whatever the
    outcome (the comparison, when possible, is still recorded).

    Returns
    -------
    dict
        ``promoted`` (bool), ``reason``, ``challenger`` and ``champion`` versions,
        and ``comparison`` (see :func:`cx_models.promotion.compare_on_window`).

    Raises
    ------
    NotPromoted
        When the challenger loses or cannot be compared, unless ``force``.
    """
    mlflow, resolved = tracking.use_store(tracking_uri)
    client = mlflow.MlflowClient()
    version = str(challenger)
    try:
        challenger_version = client.get_model_version(model_name, version)
    except Exception:  # noqa: BLE001 - MLflow raises its own RestException subclasses
        raise CXDataError(f"model {model_name!r} has no version {version} in {resolved}") from None
    out = {"model_name": model_name, "challenger": version, "champion": None, "comparison": None}
    current = _champion_version(client, model_name)
    if current is None:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return {**out, "promoted": True, "reason": "there was no champion yet"}
    out["champion"] = str(current.version)
    if out["champion"] == version:
        raise NotPromoted(f"version {version} of {model_name!r} is already the champion")
    reason = None
    try:
        table, meta = _window(mlflow, challenger_version.run_id, version)
        model = load_model(f"models:/{model_name}/{current.version}", tracking_uri=resolved)
        champion = model.unwrap_python_model().scorer
        comparison = compare_on_window(champion, table, window=meta, gate=gate)
        out["comparison"] = comparison
        reason = comparison["reason"]
        passed = comparison["promote"]
    except CXDataError as exc:
        if not force:
            raise NotPromoted(f"not compared: {exc}") from None
        reason, passed = f"not compared: {exc}", False
    promoted = passed or force
    _record(mlflow, challenger_version.run_id, out, promoted=promoted, forced=force and not passed)
    if not promoted:
        raise NotPromoted(f"version {version} stays challenger: {reason}")
    client.set_registered_model_alias(model_name, CHAMPION, version)
    return {**out, "promoted": True, "reason": reason + (" (forced)" if not passed else "")}


def _record(mlflow, run_id: str, out: dict, *, promoted: bool, forced: bool) -> None:
    """Log the comparison under the challenger's run."""
    comparison = out["comparison"]
    with tracking.quiet_mlflow(), mlflow.start_run(run_id=run_id):
        decision = "forced" if forced else ("promoted" if promoted else "rejected")
        mlflow.set_tag("promotion", f"{decision} vs champion v{out['champion']}")
        if comparison is None:
            return
        mlflow.log_dict(comparison, f"promotion/vs-v{out['champion']}.json")
        mlflow.log_metrics(
            {
                f"promotion.{who}.{key}": comparison[who][key]
                for who in ("challenger", "champion")
                for key in ("roc_auc", "brier")
            }
        )
