"""The CX scorer as an MLflow pyfunc model, logged with models-from-code (no pickle).

MLflow runs this file when it loads the model: it defines :class:`CXPyfuncModel`
and hands an instance to ``mlflow.models.set_model``. The fitted state lives in
the model's ``scorer`` artifact — JSON files and the XGBoost booster as UBJ —
read by :meth:`CXPyfuncModel.load_context`.

Input: the customer feature table (one row per customer, as ``cx-models
features`` writes it, in days unless the frame's ``attrs`` say otherwise); for a
subscription scorer (``"kind": "subscriptions"`` in ``scorer.json``) the
relationships' contractual features.
Params: ``horizon_days``, ``clv_months``, ``discount_rate``, ``explain``.
Output: the scoring contract (:data:`cx_models.scoring.SCORE_COLUMNS`).
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class CXPyfuncModel(PythonModel):
    """Pyfunc wrapper around :class:`cx_models.scoring.CXScorer`."""

    def load_context(self, context):
        """Read the scorer from the model's ``scorer`` artifact directory."""
        import json
        from pathlib import Path

        directory = Path(context.artifacts["scorer"])
        meta = json.loads((directory / "scorer.json").read_text())
        if meta.get("kind") == "subscriptions":
            from cx_models.contract_scoring import ContractScorer

            self.scorer = ContractScorer.load(directory)
        else:
            from cx_models.scoring import CXScorer

            self.scorer = CXScorer.load(directory)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        """Score a customer feature table; ``params`` override the trained settings.

        ``params`` are read by :meth:`cx_models.settings.ScoreParams.from_pyfunc`
        (a horizon of 0 is an error, as everywhere).
        """
        from cx_models.settings import ScoreParams

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        # categories do not survive a signature; nothing here needs them, but cast defensively
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(str)
        return self.scorer.score(frame, ScoreParams.from_pyfunc(params))


mlflow.models.set_model(CXPyfuncModel())
