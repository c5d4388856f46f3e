"""Online scoring API (FastAPI + pydantic v2): the one module that imports FastAPI.

``create_app(model_uri)`` returns an app that accepts connections at once and
loads the model in the background:

* ``GET /healthz`` — 200 while the process is up;
* ``GET /readyz`` — 503 while the model loads (or failed to), 200 once ready;
* ``GET /metadata`` — model name, version, alias, time unit, trained horizon,
  feature list, NCO weights;
* ``POST /score`` — ``{"customers": [...]}``, 1 to 10,000 feature records (rows of
  the table ``cx-models features`` writes, in days) → ``{"scores": [...]}`` in the
  scoring contract, same order;
* ``POST /score/history`` — ``{"as_of", "transactions", "surveys"}`` for up to 1,000
  customers; features are computed server-side.

Bad input gets **one 422 listing every error with its field path**; bodies over
the size limit get 413; errors never carry a stack trace and every response has an
``X-Request-ID`` (also in the logs).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import math
import threading
import time
import uuid
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cx_models.contract import NPS_BANDS, SURVEY_SCALES, feature_columns
from cx_models.errors import CXDataError

__all__ = ["create_app"]

log = logging.getLogger("cx_models.api")

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_CUSTOMERS = 10_000
MAX_HISTORY_CUSTOMERS = 1_000

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]


def _on_scale(survey: str):
    """Return the type of a score or mean on the scale of ``survey`` (missing allowed)."""
    scale = SURVEY_SCALES[survey]
    return Annotated[float, Field(ge=scale.low, le=scale.high)] | None


NpsBand = Literal[tuple(name for name, _ in NPS_BANDS)]  # type: ignore[valid-type]


class CustomerFeatures(BaseModel):
    """One row of the customer feature table (days), as ``cx-models features`` writes it."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int | str
    frequency: Count
    recency: NonNegative
    T: NonNegative
    monetary_value: NonNegative
    n_transactions: Count = 1
    total_spend: NonNegative = 0.0
    mean_spend: NonNegative = 0.0
    days_since_last_purchase: NonNegative
    tenure_days: NonNegative
    mean_gap_days: NonNegative | None = None
    std_gap_days: NonNegative | None = None
    gap_ratio: NonNegative | None = None
    purchases_30d: Count = 0
    spend_30d: NonNegative = 0.0
    purchases_trend_30d: int = 0
    spend_trend_30d: Finite = 0.0
    purchases_90d: Count = 0
    spend_90d: NonNegative = 0.0
    purchases_trend_90d: int = 0
    spend_trend_90d: Finite = 0.0
    purchases_180d: Count = 0
    spend_180d: NonNegative = 0.0
    purchases_trend_180d: int = 0
    spend_trend_180d: Finite = 0.0
    nps_latest: _on_scale("nps") = None
    nps_mean: _on_scale("nps") = None
    nps_count: Count = 0
    nps_days_since: NonNegative | None = None
    csat_latest: _on_scale("csat") = None
    csat_mean: _on_scale("csat") = None
    csat_count: Count = 0
    csat_days_since: NonNegative | None = None
    ces_latest: _on_scale("ces") = None
    ces_mean: _on_scale("ces") = None
    ces_count: Count = 0
    ces_days_since: NonNegative | None = None
    nps_category: NpsBand | None = None

    @model_validator(mode="after")
    def _rfm_rules(self):
        if self.recency > self.T:
            raise ValueError("recency must be <= T")
        if self.frequency == 0 and self.recency > 0:
            raise ValueError("customers with frequency 0 must have recency 0")
        return self


class ScoreRequest(BaseModel):
    """Body of ``POST /score``."""

    model_config = ConfigDict(extra="forbid")
    customers: Annotated[list[CustomerFeatures], Field(min_length=1, max_length=MAX_CUSTOMERS)]


class TransactionRecord(BaseModel):
    """One order in the default column contract."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int | str
    timestamp: dt.datetime | dt.date
    amount: NonNegative

    @field_validator("customer_id")
    @classmethod
    def _id_present(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("customer_id must not be empty")
        return value


class SurveyRecord(BaseModel):
    """One survey answer in the default column contract."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int | str
    timestamp: dt.datetime | dt.date
    survey: str
    score: Annotated[float, Field(allow_inf_nan=False)]

    @field_validator("survey")
    @classmethod
    def _known_survey(cls, value: str) -> str:
        kind = value.strip().lower()
        if kind not in SURVEY_SCALES:
            raise ValueError(f"survey must be one of {', '.join(SURVEY_SCALES)}")
        return kind

    @model_validator(mode="after")
    def _in_scale(self):
        scale = SURVEY_SCALES[self.survey]
        low, high = scale.low, scale.high
        if not (low <= self.score <= high) or self.score != int(self.score):
            raise ValueError(f"{self.survey} score must be a whole number from {low} to {high}")
        return self


class HistoryRequest(BaseModel):
    """Body of ``POST /score/history``."""

    model_config = ConfigDict(extra="forbid")
    as_of: dt.date
    transactions: Annotated[list[TransactionRecord], Field(min_length=1)]
    surveys: list[SurveyRecord] = []

    @model_validator(mode="after")
    def _few_customers(self):
        customers = {t.customer_id for t in self.transactions}
        if len(customers) > MAX_HISTORY_CUSTOMERS:
            raise ValueError(f"at most {MAX_HISTORY_CUSTOMERS} customers per request")
        return self


_UNION_TAGS = {"datetime", "date", "int", "str", "float", "bool", "none", "list", "dict"}


def _field_path(loc) -> str:
    """Return the dotted path of a field; union member tags such as ``datetime`` are left out."""
    parts = [
        str(p)
        for p in loc
        if p != "body" and not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p))
    ]
    return ".".join(parts) if parts else "body"


def _cross_field_errors(body) -> list[dict]:
    """Check the RFM rules of records that other errors kept pydantic from checking.

    A record with a missing or malformed field never reaches its model validator;
    its ``recency`` and ``T`` (and ``frequency``) are still checked here when they
    are numbers, so one 422 lists every problem.
    """
    customers = body.get("customers") if isinstance(body, dict) else None
    if not isinstance(customers, list):
        return []

    def number(value):
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    found = []
    for i, record in enumerate(customers):
        if not isinstance(record, dict):
            continue
        recency, t, freq = (number(record.get(k)) for k in ("recency", "T", "frequency"))
        if recency is not None and t is not None and recency > t:
            found.append(
                {
                    "field": f"customers.{i}.recency",
                    "message": "recency must be <= T",
                    "type": "value_error",
                }
            )
        elif freq == 0 and recency is not None and recency > 0:
            found.append(
                {
                    "field": f"customers.{i}.recency",
                    "message": "customers with frequency 0 must have recency 0",
                    "type": "value_error",
                }
            )
    return found


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


class _ModelState:
    def __init__(self, loader, *, freeze_heap: bool = False):
        self.loader = loader
        self.freeze_heap = freeze_heap
        self.scorer = None
        self.info: dict = {}
        self.error: str | None = None
        self.started = time.time()

    def load(self) -> None:
        try:
            scorer, info = self.loader()
        except Exception as exc:  # noqa: BLE001 - reported by /readyz, never raised at a client
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error("model failed to load: %s", self.error)
            return
        if self.freeze_heap:
            # the ~360k objects alive now (libraries, the model) live as long as the
            # server: out of the collector's sight, a full collection no longer scans
            # them (it paused requests now and then; figures: benchmarks/README.md)
            gc.freeze()
        self.info = info
        self.scorer = scorer  # ready from here on


class _RequestIdAndSize:
    """Pure ASGI middleware: request ids, the body size limit, no stack trace at a client.

    Every response carries ``X-Request-ID`` (the client's, else a new one), which
    handlers read as ``request.state.request_id`` and the logs carry. Plain ASGI
    rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware``
    costs milliseconds per request.
    """

    def __init__(self, app, *, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        began = time.perf_counter()
        status = 0
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            body = {"error": f"request body over {self.max_body_bytes:,} bytes"}
            await _send_json(send, 413, {**body, "request_id": request_id}, id_header)
            _log_request(scope, request_id, 413, began)
            return
        started = False

        async def send_with_id(message):
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - logged with its request id, never shown
            log.exception("request %s failed", request_id)
            if not started:
                status = 500
                body = {"error": "internal error", "request_id": request_id}
                await _send_json(send, 500, body, id_header)
        _log_request(scope, request_id, status, began)


def _log_request(scope, request_id: str, status: int, began: float) -> None:
    """One structured line per request: id, method, path, status, latency."""
    if not log.isEnabledFor(logging.INFO):
        return
    record = {
        "request_id": request_id,
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "latency_ms": round((time.perf_counter() - began) * 1000.0, 3),
    }
    log.info(json.dumps(record))


async def _send_json(send, status: int, body: dict, *extra_headers) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _mlflow_loader(model_uri: str, tracking_uri: str | None):
    def load():
        from cx_models.training.tracking import describe_model, load_model

        pyfunc = load_model(model_uri, tracking_uri=tracking_uri)
        scorer = pyfunc.unwrap_python_model().scorer
        info = describe_model(model_uri, tracking_uri=tracking_uri)
        if "@" in model_uri:
            info["alias"] = model_uri.rsplit("@", 1)[1]
        return scorer, info

    return load


def create_app(
    model_uri: str | None = None,
    *,
    tracking_uri: str | None = None,
    loader=None,
    max_body_bytes: int = MAX_BODY_BYTES,
    freeze_heap: bool = False,
) -> FastAPI:
    """Build the API; the model loads in a background thread at startup.

    ``loader`` (for tests and embedding) returns ``(CXScorer, info dict)``; by
    default the model is loaded from MLflow by ``model_uri``. ``freeze_heap``
    (server processes: :func:`app_from_env`) moves every object alive once the
    model is loaded out of the garbage collector's scans (:func:`gc.freeze`).
    """
    if loader is None:
        if model_uri is None:
            raise CXDataError("create_app needs a model URI or a loader")
        loader = _mlflow_loader(model_uri, tracking_uri)
    state = _ModelState(loader, freeze_heap=freeze_heap)
    app = FastAPI(title="cx-models scoring API", version="1")
    threading.Thread(target=state.load, name="cx-model-loader", daemon=True).start()

    app.add_middleware(_RequestIdAndSize, max_body_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors, seen = [], set()
        for e in exc.errors():
            field = _field_path(e.get("loc", ()))
            if field in seen:  # one message per field (unions report each member)
                continue
            seen.add(field)
            errors.append(
                {"field": field, "message": e.get("msg", "invalid"), "type": e.get("type", "")}
            )
        for extra in _cross_field_errors(getattr(exc, "body", None)):
            if extra["field"] not in seen:
                seen.add(extra["field"])
                errors.append(extra)
        request_id = getattr(request.state, "request_id", "")
        log.debug("request %s rejected: %d validation errors", request_id, len(errors))
        return JSONResponse({"errors": errors, "request_id": request_id}, status_code=422)

    def ready_or_503(request: Request):
        if state.scorer is None:
            message = "model failed to load" if state.error else "model is loading"
            return JSONResponse(
                {"error": message, "request_id": request.state.request_id}, status_code=503
            )
        return None

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "uptime_s": round(time.time() - state.started, 3)}

    @app.get("/readyz")
    def readyz(request: Request):
        not_ready = ready_or_503(request)
        return not_ready or {"status": "ready"}

    @app.get("/metadata")
    def metadata(request: Request):
        not_ready = ready_or_503(request)
        if not_ready:
            return not_ready
        scorer = state.scorer
        return {
            "model_name": state.info.get("name"),
            "model_version": state.info.get("version"),
            "model_alias": state.info.get("alias"),
            "model_uri": state.info.get("model_uri"),
            "time_unit": scorer.time_unit,
            "trained_horizon_days": scorer.horizon_days,
            "features": feature_columns(),
            "churn_features": scorer.churn.features_,
            "nco_weights": scorer.weights,
        }

    def score_frame(request: Request, frame: pd.DataFrame):
        not_ready = ready_or_503(request)
        if not_ready:
            return not_ready
        try:
            scored = state.scorer.score(frame)
        except CXDataError as exc:
            return JSONResponse(
                {
                    "errors": [{"field": "body", "message": str(exc)}],
                    "request_id": request.state.request_id,
                },
                status_code=422,
            )
        # a ready JSON response: FastAPI's generic encoder costs more than the scoring
        return JSONResponse({"scores": _records(scored)})

    @app.post("/score")
    def score(body: ScoreRequest, request: Request):
        frame = pd.DataFrame([c.model_dump() for c in body.customers])
        for col in feature_columns():
            if col not in frame.columns:
                frame[col] = np.nan
        frame = frame[feature_columns()]
        frame.attrs["time_unit"] = "D"
        return score_frame(request, frame)

    @app.post("/score/history")
    def score_history(body: HistoryRequest, request: Request):
        from cx_models.features import build_customer_features

        not_ready = ready_or_503(request)
        if not_ready:
            return not_ready
        tx = pd.DataFrame([t.model_dump() for t in body.transactions])
        tx["timestamp"] = pd.to_datetime(tx["timestamp"].astype(str), format="ISO8601")
        sv = None
        if body.surveys:
            sv = pd.DataFrame([s.model_dump() for s in body.surveys])
            sv["timestamp"] = pd.to_datetime(sv["timestamp"].astype(str), format="ISO8601")
        try:
            # the features the model was trained on (its survey look-back)
            spec = state.scorer.feature_spec
            frame = build_customer_features(tx, sv, as_of=body.as_of, spec=spec)
        except CXDataError as exc:
            return JSONResponse(
                {
                    "errors": [{"field": "transactions", "message": str(exc)}],
                    "request_id": request.state.request_id,
                },
                status_code=422,
            )
        return score_frame(request, frame)

    app.state.model_state = state
    return app


def _log_to_stderr() -> None:
    """Send the API's log lines (one per request, JSON) to stderr, once per process."""
    import sys

    if not any(getattr(h, "_cx_models", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler._cx_models = True
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` (and ``cx-models serve``) from the environment.

    ``CX_MODELS_MODEL_URI`` names the model; ``CX_MODELS_TRACKING_URI`` (else
    ``MLFLOW_TRACKING_URI``, else the embedded store) where to find it.
    """
    import os

    uri = os.environ.get("CX_MODELS_MODEL_URI")
    if not uri:
        raise CXDataError("set CX_MODELS_MODEL_URI to the model to serve")
    _log_to_stderr()
    return create_app(
        uri, tracking_uri=os.environ.get("CX_MODELS_TRACKING_URI") or None, freeze_heap=True
    )
