"""The CX scorer as an MLflow pyfunc model, logged with models-from-code (no pickle).

MLflow runs this file when it loads the model: it defines :class:`CXPyfuncModel`
and hands an instance to ``mlflow.models.set_model``. The fitted state lives in
the model's ``scorer`` artifact — JSON files and the XGBoost booster as UBJ —
read by :meth:`CXPyfuncModel.load_context`.

Input: the customer feature table (one row per customer, as ``cx-models
features`` writes it, in days unless the frame's ``attrs`` say otherwise).
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
        from cx_models.scoring import CXScorer

        self.scorer = CXScorer.load(context.artifacts["scorer"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        """Score a customer feature table; ``params`` override the trained settings."""
        params = dict(params or {})
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        # categories do not survive a signature; nothing here needs them, but cast defensively
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(str)
        horizon = params.get("horizon_days")
        months = params.get("clv_months")
        rate = params.get("discount_rate")
        return self.scorer.score(
            frame,
            horizon_days=None if horizon in (None, 0) else float(horizon),
            clv_months=None if months is None else int(months),
            discount_rate=None if rate is None else float(rate),
            explain=bool(params.get("explain", True)),
        )


mlflow.models.set_model(CXPyfuncModel())
