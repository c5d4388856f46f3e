"""The REST API with a subscription scorer: POST /score/subscriptions, 422s, wrong kind."""

import time

import numpy as np
import pytest
from cx_models.serving.api import create_app
from fastapi.testclient import TestClient

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def client(contract_trained):
    _, result = contract_trained
    app = create_app(loader=lambda: (result.scorer, {"name": "subs", "version": "1"}))
    with TestClient(app) as c:
        for _ in range(100):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        yield c


def _body(base, customers):
    subs = base.subscriptions.filter(base.subscriptions["customer_id"].is_in(customers))
    surveys = base.surveys.filter(base.surveys["customer_id"].is_in(customers))
    return {
        "as_of": AS_OF,
        "subscriptions": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            for row in subs.iter_rows(named=True)
        ],
        "surveys": [
            {**row, "timestamp": row["timestamp"].isoformat()}
            for row in surveys.iter_rows(named=True)
        ],
    }


def test_scores_equal_the_batch_scores(client, contract_trained):
    base, result = contract_trained
    features = result.features
    active = features[~features["cancellation_pending"]]["customer_id"].head(5).tolist()
    res = client.post("/score/subscriptions", json=_body(base, active))
    assert res.status_code == 200, res.text
    scores = res.json()["scores"]
    assert [s["customer_id"] for s in scores] == active
    batch = result.scorer.score(features).set_index("customer_id").loc[active]
    got = np.array([s["churn_risk"] for s in scores])
    # one relationship alone scores as in the whole base: the retention models are the scorer's
    assert got == pytest.approx(batch["churn_risk"].to_numpy(), abs=1e-6)
    assert [s["clv"] for s in scores] == pytest.approx(batch["clv"].tolist(), rel=1e-9)
    meta = client.get("/metadata").json()
    assert meta["kind"] == "subscriptions" and meta["billing_period"] == "30 days"


def test_bad_contractual_records_are_one_422_with_field_paths(client):
    body = {
        "as_of": AS_OF,
        "subscriptions": [
            {"customer_id": 1, "start": "2025-01-01", "end": "2024-12-01"},
            {"customer_id": 2, "start": "not a day"},
            {"customer_id": 3, "start": "2025-01-01", "price": -5},
            {"customer_id": "", "start": "2025-01-01"},
        ],
    }
    res = client.post("/score/subscriptions", json=body)
    assert res.status_code == 422
    fields = {e["field"] for e in res.json()["errors"]}
    assert {"subscriptions.0", "subscriptions.1.start", "subscriptions.2.price",
            "subscriptions.3.customer_id"} <= fields
    # a duplicate row (what a file's quarantine would take) names the row
    dup = {"as_of": AS_OF, "subscriptions": [
        {"customer_id": 7, "start": "2025-01-01", "plan": "basic", "price": 9},
        {"customer_id": 7, "start": "2025-01-01", "plan": "basic", "price": 9}]}
    res = client.post("/score/subscriptions", json=dup)
    assert res.status_code == 422
    assert res.json()["errors"][0] == {
        "field": "subscriptions.1", "type": "duplicate_subscription",
        "message": "an earlier row has the same customer, start, end and plan"}


def test_nothing_active_or_the_wrong_endpoint_is_a_422_not_a_500(client):
    ended = {"as_of": AS_OF, "subscriptions": [
        {"customer_id": 1, "start": "2024-01-01", "end": "2024-06-30", "price": 9}]}
    res = client.post("/score/subscriptions", json=ended)
    assert res.status_code == 422 and "no relationship is active" in res.text
    later = {"as_of": AS_OF, "subscriptions": [
        {"customer_id": 1, "start": "2026-03-01", "price": 9}]}
    assert client.post("/score/subscriptions", json=later).status_code == 422
    res = client.post("/score/history", json={"as_of": AS_OF, "transactions": [
        {"customer_id": 1, "timestamp": "2025-01-01T10:00:00", "amount": 5}]})
    assert res.status_code == 422 and "/score/subscriptions" in res.text
