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

import contextlib
import gc
import logging
import threading
import time

import pandas as pd
from cx_models.serving.api_middleware import RequestIdAndSize
from cx_models.serving.api_models import (
    MAX_BODY_BYTES,
    HistoryRequest,
    ScoreRequest,
    SubscriptionRequest,
    attribute_errors,
    column_records,
    cross_field_errors,
    field_path,
    json_records,
    request_frame,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cx_models.contract import feature_columns
from cx_models.errors import CXDataError
from cx_models.settings import ScoreParams
from cx_models.threads import thread_count

__all__ = ["create_app"]

log = logging.getLogger("cx_models.api")

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


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    """Run at most as many scoring requests at once as there are threads to run them.

    Scoring is CPU-bound and holds the GIL between its numeric steps: forty
    requests in forty threads (anyio's default) only share the cores, make every
    answer late and starve the event loop that answers the probes. The others
    wait their turn, holding nothing.
    """
    from anyio import to_thread

    to_thread.current_default_thread_limiter().total_tokens = max(thread_count(), 2)
    yield


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
    app = FastAPI(title="cx-models scoring API", version="1", lifespan=_lifespan)
    threading.Thread(target=state.load, name="cx-model-loader", daemon=True).start()

    app.add_middleware(RequestIdAndSize, max_body_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors, seen = [], set()
        for e in exc.errors():
            field = field_path(e.get("loc", ()))
            if field in seen:  # one message per field (unions report each member)
                continue
            seen.add(field)
            errors.append(
                {"field": field, "message": e.get("msg", "invalid"), "type": e.get("type", "")}
            )
        body = getattr(exc, "body", None)
        extras = cross_field_errors(body)
        customers = body.get("customers") if isinstance(body, dict) else None
        if isinstance(customers, list):  # extra fields: the served model's attributes only
            scorer = state.scorer
            categories = getattr(getattr(scorer, "churn", None), "categories_", None) or {}
            attributes = _declared_fields(scorer) if scorer is not None else []
            rows = [c for c in customers if isinstance(c, dict)]
            if len(rows) == len(customers):
                extras += attribute_errors(rows, categories, attributes)
        for extra in extras:
            if extra["field"] not in seen:
                seen.add(extra["field"])
                errors.append(extra)
        request_id = getattr(request.state, "request_id", "")
        log.debug("request %s rejected: %d validation errors", request_id, len(errors))
        return JSONResponse({"errors": errors, "request_id": request_id}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        request_id = getattr(request.state, "request_id", "")
        if exc.status_code == 400:  # a body FastAPI could not parse (e.g. nested too deep)
            error = {"field": "body", "message": f"cannot read the JSON body: {exc.detail}",
                     "type": "json_invalid"}
            return JSONResponse({"errors": [error], "request_id": request_id}, status_code=422)
        return JSONResponse(
            {"error": str(exc.detail), "request_id": request_id},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    def ready_or_503(request: Request):
        if state.scorer is None:
            message = "model failed to load" if state.error else "model is loading"
            return JSONResponse(
                {"error": message, "request_id": request.state.request_id}, status_code=503
            )
        return None

    # the probes answer on the event loop (async), never queued behind scoring threads
    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "uptime_s": round(time.time() - state.started, 3)}

    @app.get("/readyz")
    async def readyz(request: Request):
        not_ready = ready_or_503(request)
        return not_ready or {"status": "ready"}

    @app.get("/metadata")
    def metadata(request: Request):
        not_ready = ready_or_503(request)
        if not_ready:
            return not_ready
        scorer = state.scorer
        if getattr(scorer, "kind", None) == "subscriptions":
            return {
                "kind": "subscriptions",
                "model_name": state.info.get("name"),
                "model_version": state.info.get("version"),
                "model_alias": state.info.get("alias"),
                "model_uri": state.info.get("model_uri"),
                "trained_horizon_days": scorer.horizon_days,
                "billing_period": scorer.period.label,
                "churn_features": scorer.churn.features_,
                "nco_weights": scorer.weights,
            }
        return {
            "kind": "transactions",
            "model_name": state.info.get("name"),
            "model_version": state.info.get("version"),
            "model_alias": state.info.get("alias"),
            "model_uri": state.info.get("model_uri"),
            "time_unit": scorer.time_unit,
            "trained_horizon_days": scorer.horizon_days,
            "features": [*feature_columns(), *scorer.period_columns],
            "clv_model": scorer.clv.model,
            "period_days": scorer.clv.period_days,  # BG/BB's periods ("time_unit": "P")
            "churn_features": scorer.churn.features_,
            "nco_weights": scorer.weights,
        }

    def score_frame(request: Request, frame: pd.DataFrame, intervals: float | None = None):
        not_ready = ready_or_503(request) or wrong_kind(request)
        if not_ready:
            return not_ready
        try:
            columns, drivers = state.scorer.score_columns(frame, ScoreParams(intervals=intervals))
            columns["drivers"] = drivers().to_pylist()
        except CXDataError as exc:
            return JSONResponse(
                {
                    "errors": [{"field": "body", "message": str(exc)}],
                    "request_id": request.state.request_id,
                },
                status_code=422,
            )
        # a ready JSON response: FastAPI's generic encoder costs more than the scoring
        return JSONResponse({"scores": column_records(columns)})

    @app.post("/score")
    def score(body: ScoreRequest, request: Request):
        extra = any(c.model_extra for c in body.customers)
        categories, fields = {}, []
        if extra:  # customer attributes (and BG/BB's period history): the served model's
            not_ready = ready_or_503(request)
            if not_ready:
                return not_ready
            wrong = wrong_kind(request)
            if wrong:
                return wrong
            categories = getattr(state.scorer.churn, "categories_", None) or {}
            fields = _declared_fields(state.scorer)
            errors = attribute_errors(body.customers, categories, fields)
            if errors:
                return JSONResponse(
                    {"errors": errors, "request_id": request.state.request_id}, status_code=422
                )
        frame = request_frame(body.customers, fields, categories)
        if fields:  # the attributes are carried into the scores
            frame.attrs["attributes"] = {
                a: "categorical" if a in categories else "numeric"
                for a in state.scorer.attribute_columns
            }
        return score_frame(request, frame, body.intervals)

    def wrong_kind(request: Request):
        if getattr(state.scorer, "kind", None) != "subscriptions":
            return None
        return JSONResponse(
            {"errors": [{"field": "body", "message": "the served model is a subscription "
                         "scorer: POST /score/subscriptions"}],
             "request_id": request.state.request_id},
            status_code=422,
        )

    @app.post("/score/subscriptions")
    def score_subscriptions(body: SubscriptionRequest, request: Request):
        from cx_models.serving.subscription_requests import score_subscription_request

        not_ready = ready_or_503(request)
        if not_ready:
            return not_ready
        scored, errors = score_subscription_request(state.scorer, body)
        if errors:
            return JSONResponse({"errors": errors, "request_id": request.state.request_id},
                                status_code=422)
        return JSONResponse({"scores": json_records(scored)})

    @app.post("/score/history")
    def score_history(body: HistoryRequest, request: Request):
        from cx_models.features import build_customer_features

        not_ready = ready_or_503(request) or wrong_kind(request)
        if not_ready:
            return not_ready
        extras = state.scorer.feature_spec.extras
        errors = attribute_errors(
            body.transactions, dict.fromkeys(extras.categorical), list(extras.columns),
            "transactions", what="extra transaction columns",
        )
        if errors:
            return JSONResponse(
                {"errors": errors, "request_id": request.state.request_id}, status_code=422
            )
        tx = pd.DataFrame([t.model_dump() for t in body.transactions])
        tx["timestamp"] = pd.to_datetime(tx["timestamp"])  # naive UTC (see api_models)
        for column in extras.categorical:  # a record without the field: missing, not "nan"
            if column in tx.columns:
                tx[column] = [None if pd.isna(v) else str(v) for v in tx[column]]
        sv = None
        if body.surveys:
            sv = pd.DataFrame([s.model_dump() for s in body.surveys])
            sv["timestamp"] = pd.to_datetime(sv["timestamp"])
        attributes = None
        if body.attributes:
            categories = getattr(state.scorer.churn, "categories_", None) or {}
            errors = attribute_errors(
                body.attributes, categories, state.scorer.attribute_columns, "attributes"
            )
            if errors:
                return JSONResponse(
                    {"errors": errors, "request_id": request.state.request_id}, status_code=422
                )
            attributes = pd.DataFrame([a.model_dump() for a in body.attributes])
        try:
            # the features the model was trained on (its survey look-back)
            spec = state.scorer.feature_spec
            if attributes is None:
                frame = build_customer_features(tx, sv, as_of=body.as_of, spec=spec)
            else:
                from cx_models.attributes import AttributeInput, AttributeSpec
                from cx_models.features import build_features

                given = AttributeInput(attributes, AttributeSpec(categorical=tuple(
                    c for c in categories if c in attributes.columns)))
                frame = build_features(
                    tx, sv, as_of=body.as_of, spec=spec, attributes=given
                ).features
        except CXDataError as exc:
            return JSONResponse(
                {
                    "errors": [{"field": "transactions", "message": str(exc)}],
                    "request_id": request.state.request_id,
                },
                status_code=422,
            )
        return score_frame(request, frame, body.intervals)

    app.state.model_state = state
    return app


def _declared_fields(scorer) -> list[str]:
    """Return the fields a feature row may carry beyond the standard ones."""
    return [*scorer.attribute_columns, *getattr(scorer, "period_columns", [])]


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
    import sys

    uri = os.environ.get("CX_MODELS_MODEL_URI")
    if not uri:
        raise CXDataError("set CX_MODELS_MODEL_URI to the model to serve")
    _log_to_stderr()
    # the probes answer on the event loop while scoring threads hold the GIL: a shorter
    # switch interval bounds how long a probe waits for it (benchmarks/README.md)
    sys.setswitchinterval(float(os.environ.get("CX_MODELS_SWITCH_INTERVAL", "0.001")))
    return create_app(
        uri, tracking_uri=os.environ.get("CX_MODELS_TRACKING_URI") or None, freeze_heap=True
    )
