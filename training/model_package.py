"""What a logged CX scorer ships with: its pip requirements, its code and an input example.

No MLflow here: :mod:`cx_models.training.tracking` (the adapter) passes these to
``mlflow.pyfunc.log_model``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["input_example", "package_dir", "pip_requirements"]


def pip_requirements() -> list[str]:
    """Return the pip requirements logged with the model (lower bounds, as pyproject)."""
    return [
        "mlflow>=3.0",
        "numpy>=2.0",
        "scipy>=1.13",
        "pandas>=2.2",
        "polars>=2.0",
        "pyarrow>=17.0",
        "scikit-learn>=1.6",
        "xgboost>=2.1",
        "lifetimes>=0.11.3",
        "pydantic>=2.7",
        "numba>=0.60",  # the Pareto/NBD quadrature kernel
    ]


def package_dir() -> str:
    """Return the installed cx_models package dir, shipped with the model (code_paths).

    So the model also loads where cx-models is not installed, provided the
    pip requirements are.
    """
    import cx_models

    return str(Path(cx_models.__file__).resolve().parent)


def input_example(features: pd.DataFrame) -> pd.DataFrame:
    """Return a few real rows, with missing survey and gap values among them.

    The signature is inferred from it, so every column that can be missing must
    be missing somewhere here.
    """
    no_survey = features["nps_latest"].isna() & features["csat_latest"].isna()
    once = features["frequency"] == 0
    rows = pd.concat(
        [
            features[~no_survey & ~once].head(2),  # repeat buyers who answered surveys
            features[no_survey & ~once].head(1),  # no survey answers: survey columns missing
            features[once].head(2),  # one-time buyers: gap columns missing too
        ]
    )
    example = rows.reset_index(drop=True).copy()
    example.attrs = dict(features.attrs)
    return example
