import time

import numpy as np
import pytest
from cx_models.serving.api import create_app
from cx_models.training.pipeline import TrainingConfig, train_scorer
from fastapi.testclient import TestClient

from cx_models.features import build_customer_features
from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.synthetic import generate_customer_base

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def trained():
    base = generate_customer_base(4_000, seed=41)
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    scorer = train_scorer(tx, sv, TrainingConfig(as_of=AS_OF, max_snapshots=3)).scorer
    features = build_customer_features(base.transactions, base.surveys, as_of=AS_OF)
    return base, scorer, features


@pytest.fixture(scope="module")
def client(trained):
    _, scorer, _ = trained
    app = create_app(
        loader=lambda: (scorer, {"name": "cx-scorer", "version": "3", "alias": "champion"})
    )
    with TestClient(app) as c:
        for _ in range(100):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        yield c


def records(features, n):
    rows = features.head(n).replace({np.nan: None}).to_dict(orient="records")
    return [{k: (int(v) if k == "customer_id" else v) for k, v in r.items()} for r in rows]


def test_health_ready_metadata(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json() == {"status": "ready"}
    meta = client.get("/metadata").json()
    assert meta["model_name"] == "cx-scorer" and meta["model_version"] == "3"
    assert meta["model_alias"] == "champion" and meta["time_unit"] == "D"
    assert meta["trained_horizon_days"] == 90
    assert "clv" in meta["churn_features"] and meta["nco_weights"]["value"] == 0.25


def test_readyz_503_while_loading_and_on_failure():
    release = []

    def slow():
        while not release:
            time.sleep(0.01)
        raise RuntimeError("boom")

    app = create_app(loader=slow)
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200  # accepts connections at once
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["error"] == "model is loading"
        assert c.post("/score", json={"customers": []}).status_code == 422  # validation first
        release.append(True)
        for _ in range(100):
            if app.state.model_state.error:
                break
            time.sleep(0.01)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["error"] == "model failed to load"
        assert "boom" not in r.text  # no internals leak


def test_score_matches_the_scorer_in_order(client, trained):
    _, scorer, features = trained
    body = {"customers": records(features, 25)}
    r = client.post("/score", json=body)
    assert r.status_code == 200, r.text
    scores = r.json()["scores"]
    direct = scorer.score(features.head(25))
    assert [s["customer_id"] for s in scores] == direct["customer_id"].tolist()
    np.testing.assert_allclose([s["churn_risk"] for s in scores], direct["churn_risk"])
    np.testing.assert_allclose([s["clv"] for s in scores], direct["clv"])
    assert list(scores[0]) == list(direct.columns)
    assert r.headers["x-request-id"]


def test_every_error_with_its_field_path_in_one_422(client, trained):
    _, _, features = trained
    rows = records(features, 3)
    rows[0]["nps_latest"] = 11
    rows[1]["csat_latest"] = 0
    rows[2]["monetary_value"] = -5
    rows[2]["loyalty"] = "high"
    r = client.post("/score", json={"customers": rows})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {
        "customers.0.nps_latest",
        "customers.1.csat_latest",
        "customers.2.monetary_value",
        "customers.2.loyalty",
    } <= fields
    assert "Traceback" not in r.text and r.json()["request_id"]


def test_rfm_rules_and_limits(client, trained):
    _, _, features = trained
    row = records(features, 1)[0]
    row["recency"] = row["T"] + 5
    r = client.post("/score", json={"customers": [row]})
    assert r.status_code == 422 and "recency must be <= T" in r.text
    assert client.post("/score", json={"customers": []}).status_code == 422
    assert client.post("/score", json={"rows": [row]}).status_code == 422
    assert (
        client.post(
            "/score", content=b"not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_oversized_body_is_413(trained):
    _, scorer, _ = trained
    app = create_app(loader=lambda: (scorer, {}), max_body_bytes=1000)
    with TestClient(app) as c:
        r = c.post("/score", content=b"x" * 5000, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "request_id" in r.json()


def test_history_endpoint_builds_features_server_side(client, trained):
    base, scorer, features = trained
    ids = features["customer_id"].head(5).tolist()
    tx = base.transactions.filter(base.transactions["customer_id"].is_in(ids)).to_pandas()
    sv = base.surveys.filter(base.surveys["customer_id"].is_in(ids)).to_pandas()
    body = {
        "as_of": AS_OF,
        "transactions": [
            {
                "customer_id": int(r.customer_id),
                "timestamp": r.timestamp.isoformat(),
                "amount": float(r.amount),
            }
            for r in tx.itertuples()
        ],
        "surveys": [
            {
                "customer_id": int(r.customer_id),
                "timestamp": r.timestamp.isoformat(),
                "survey": r.survey.upper(),
                "score": int(r.score),
            }
            for r in sv.itertuples()
        ],
    }
    r = client.post("/score/history", json=body)
    assert r.status_code == 200, r.text
    got = {s["customer_id"]: s for s in r.json()["scores"]}
    direct = scorer.score(features[features["customer_id"].isin(ids)], explain=False)
    for row in direct.itertuples():
        assert got[row.customer_id]["churn_risk"] == pytest.approx(row.churn_risk, rel=1e-6)
    bad = dict(
        body,
        surveys=[{"customer_id": 1, "timestamp": "2025-01-01", "survey": "nps", "score": 11}],
        transactions=[{"customer_id": 1, "timestamp": "not a date", "amount": -1}],
    )
    r = client.post("/score/history", json=bad)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"transactions.0.timestamp", "transactions.0.amount", "surveys.0"} <= fields


def test_unexpected_failure_is_a_500_with_the_request_id_and_no_internals(trained):
    _, scorer, features = trained

    class Broken:
        time_unit, horizon_days = scorer.time_unit, scorer.horizon_days

        def score(self, frame):
            raise RuntimeError("secret internals at line 42")

    app = create_app(loader=lambda: (Broken(), {}))
    with TestClient(app) as c:
        for _ in range(100):
            if app.state.model_state.scorer is not None:
                break
            time.sleep(0.01)
        r = c.post(
            "/score", json={"customers": records(features, 1)}, headers={"x-request-id": "abc123"}
        )
    assert r.status_code == 500
    assert r.json() == {"error": "internal error", "request_id": "abc123"}
    assert r.headers["x-request-id"] == "abc123"
    assert "secret" not in r.text and "Traceback" not in r.text


def test_server_freezes_the_heap_once_the_model_is_loaded(trained):
    # a server process (app_from_env) moves the objects alive after loading out of the
    # collector's scans; embedded apps (the default) leave the host's GC alone
    import gc

    _, scorer, features = trained
    assert gc.get_freeze_count() == 0
    try:
        for freeze in (False, True):
            app = create_app(loader=lambda: (scorer, {}), freeze_heap=freeze)
            with TestClient(app) as c:
                for _ in range(100):
                    if c.get("/readyz").status_code == 200:
                        break
                    time.sleep(0.05)
                assert (gc.get_freeze_count() > 0) == freeze
                r = c.post("/score", json={"customers": records(features, 2)})
                assert r.status_code == 200 and len(r.json()["scores"]) == 2
    finally:
        gc.unfreeze()


def test_a_record_with_missing_fields_still_gets_its_cross_field_checks(client, trained):
    _, _, features = trained
    rows = records(features, 2)
    del rows[0]["days_since_last_purchase"]  # a missing field: the model validator never runs
    rows[0]["recency"], rows[0]["T"] = 50.0, 10.0
    rows[1]["frequency"], rows[1]["recency"] = 0, 5.0
    del rows[1]["tenure_days"]
    r = client.post("/score", json={"customers": rows})
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert "customers.0.days_since_last_purchase" in errors
    assert errors["customers.0.recency"] == "recency must be <= T"
    assert errors["customers.1.recency"] == "customers with frequency 0 must have recency 0"


def test_one_structured_log_line_per_request_with_its_id(trained, caplog):
    import json
    import logging

    _, scorer, features = trained
    app = create_app(loader=lambda: (scorer, {}))
    with caplog.at_level(logging.INFO, logger="cx_models.api"), TestClient(app) as c:
        while c.get("/readyz").status_code != 200:
            pass
        caplog.clear()
        ok = c.post(
            "/score", json={"customers": records(features, 1)}, headers={"x-request-id": "r-1"}
        )
        bad = c.post("/score", json={"customers": []}, headers={"x-request-id": "r-2"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cx_models.api"]
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["r-1"]["status"] == ok.status_code == 200
    assert by_id["r-2"]["status"] == bad.status_code == 422
    assert by_id["r-1"]["path"] == "/score" and by_id["r-1"]["method"] == "POST"
    assert by_id["r-1"]["latency_ms"] > 0


def test_extreme_values_are_422_never_500(client, trained):
    _, _, features = trained
    for field, value in (("monetary_value", 1e308), ("total_spend", 1e39), ("T", 1e31)):
        row = records(features, 2)
        row[1][field] = value
        r = client.post("/score", json={"customers": row})
        assert r.status_code == 422, (field, r.text)
        assert {e["field"] for e in r.json()["errors"]} == {f"customers.1.{field}"}
    row = records(features, 1)
    row[0]["monetary_value"] = 1e14  # large but within bounds: scored
    r = client.post("/score", json={"customers": row})
    assert r.status_code == 200 and r.json()["scores"][0]["clv"] > 1e13


def test_history_timestamps_mixed_zones_and_numbers(client, trained):
    tx = [
        {"customer_id": 1, "timestamp": "2025-03-01T10:00:00", "amount": 20.0},
        {"customer_id": 1, "timestamp": "2025-06-01T10:00:00+02:00", "amount": 30.0},
        {"customer_id": 2, "timestamp": "2025-05-01", "amount": 1e39},
        {"customer_id": 2, "timestamp": "2025-07-01", "amount": 10.0},
    ]
    r = client.post("/score/history", json={"as_of": AS_OF, "transactions": tx})
    assert r.status_code == 422  # above MAX_AMOUNT, as a file's row would be quarantined
    assert [e["field"] for e in r.json()["errors"]] == ["transactions.2.amount"]
    tx[2]["amount"] = 1e14
    r = client.post("/score/history", json={"as_of": AS_OF, "transactions": tx})
    assert r.status_code == 200, r.text
    assert [s["customer_id"] for s in r.json()["scores"]] == [1, 2]
    epoch = [*tx[:2], {"customer_id": 3, "timestamp": 1735689600, "amount": 5.0}]
    r = client.post("/score/history", json={"as_of": AS_OF, "transactions": epoch})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["transactions.2.timestamp"]


def test_a_chunked_body_over_the_limit_is_413_while_reading(trained):
    import asyncio

    _, scorer, _ = trained
    app = create_app(loader=lambda: (scorer, {}), max_body_bytes=10_000)
    read, sent = [], []

    async def receive():  # a chunked body: no Content-Length, 1,000 chunks of 1 kB
        read.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": len(read) < 1000}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/score", "raw_path": b"/score",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"content-type", b"application/json")]}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert len(read) <= 11  # stopped reading once over the limit
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413]


def test_deeply_nested_json_is_the_documented_422(client):
    body = b'{"customers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body" and r.json()["request_id"]


def test_intervals_on_request(client, trained):
    _, scorer, features = trained
    body = {"customers": records(features, 10), "intervals": 0.9}
    r = client.post("/score", json=body)
    assert r.status_code == 200, r.text
    scores = r.json()["scores"]
    direct = scorer.clv.predict(features.head(10), horizon_days=scorer.horizon_days,
                                clv_months=scorer.clv_months, discount_rate=scorer.discount_rate,
                                intervals=0.9)
    assert [s["purchases_upper"] for s in scores] == direct["purchases_upper"].tolist()
    np.testing.assert_allclose([s["clv_upper"] for s in scores], direct["clv_upper"])
    bad = client.post("/score", json={"customers": records(features, 1), "intervals": 1.5})
    assert bad.status_code == 422 and "intervals" in bad.text
