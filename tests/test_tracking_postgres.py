"""MLflow tracking on PostgreSQL: train, register, alias, load, score and serve (marked ``db``).

Runs against the server in ``CX_TEST_POSTGRES_URI`` in a database of its own,
dropped and created anew; the artifacts go to ``CX_MODELS_ARTIFACT_ROOT``.
"""

import json
import time
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pytest
from pg_server import POSTGRES, needs_postgres, require_server
from typer.testing import CliRunner

from cx_models.cli import app

DATABASE = "cx_mlflow_test"

pytestmark = [pytest.mark.db, pytest.mark.slow, needs_postgres]


@pytest.fixture(scope="module")
def store():
    """A fresh database on the test server for MLflow's tables."""
    from adbc_driver_postgresql import dbapi

    require_server()
    with dbapi.connect(POSTGRES, autocommit=True) as con, con.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DATABASE}")
    parts = urlsplit(POSTGRES)
    return urlunsplit((parts.scheme, parts.netloc, f"/{DATABASE}", "", ""))


def test_train_register_alias_load_score_and_serve_on_postgres(
    store, small_base_dir, tmp_path, monkeypatch
):
    from cx_models.serving.api import app_from_env
    from cx_models.training.tracking import load_model
    from fastapi.testclient import TestClient

    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv("CX_MODELS_ARTIFACT_ROOT", str(artifacts))
    runner = CliRunner()
    tx, sv = small_base_dir / "transactions.parquet", small_base_dir / "surveys.parquet"
    res = runner.invoke(app, [
        "train", "--transactions", str(tx), "--surveys", str(sv), "--as-of", "2025-06-30",
        "--max-snapshots", "2", "--tracking-uri", store,
    ])
    assert res.exit_code == 0, res.stderr
    run = json.loads(res.stdout)
    assert run["version"] == "1" and run["champion"] is True
    assert any(artifacts.rglob("MLmodel"))  # the model's files are where we said

    scored = tmp_path / "scored.parquet"
    res = runner.invoke(app, [
        "score", "--model", "models:/cx-scorer@champion", "--tracking-uri", store,
        "--transactions", str(tx), "--surveys", str(sv), "--as-of", "2025-12-31",
        "--out", str(scored),
    ])
    assert res.exit_code == 0, res.stderr
    assert "version 1" in res.stderr
    table = pd.read_parquet(scored)
    assert len(table) == 3000 and table["churn_risk"].between(0, 1).all()

    from cx_models.features import build_customer_features

    features = build_customer_features(
        pd.read_parquet(tx), pd.read_parquet(sv), as_of="2025-12-31"
    ).head(20)
    loaded = load_model("models:/cx-scorer@champion", tracking_uri=store)
    direct = pd.DataFrame(loaded.predict(features, params={"explain": False}))
    expected = table.set_index("customer_id").loc[features["customer_id"], "churn_risk"]
    # the pyfunc's own output is float32: the same scores to its precision
    np.testing.assert_allclose(direct["churn_risk"].to_numpy(), expected.to_numpy(), atol=1e-6)

    monkeypatch.setenv("CX_MODELS_MODEL_URI", "models:/cx-scorer@champion")
    monkeypatch.setenv("CX_MODELS_TRACKING_URI", store)
    import gc

    with TestClient(app_from_env()) as client:
        for _ in range(600):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        meta = client.get("/metadata").json()
        assert meta["model_version"] == "1" and meta["model_alias"] == "champion"
        row = features.head(1).replace({np.nan: None}).to_dict(orient="records")[0]
        response = client.post("/score", json={"customers": [row]})
        assert response.status_code == 200, response.text
        served = response.json()["scores"][0]["churn_risk"]
        assert abs(served - direct["churn_risk"].iloc[0]) < 1e-6
    gc.unfreeze()  # a server app freezes the heap once its model is loaded
