"""The API's plain ASGI middleware: request ids, the body size limit, the request log.

Used by :func:`cx_models.serving.api.create_app`; no FastAPI import here.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

__all__ = ["RequestIdAndSize"]

log = logging.getLogger("cx_models.api")


class RequestIdAndSize:
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
        """Handle one ASGI event: tag it, bound its body, never let a failure out bare."""
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
        started = too_large = False
        received = 0

        async def send_with_id(message):
            nonlocal started, status
            if too_large:  # the 413 has been sent; the app's answer is dropped
                return
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        async def receive_limited():
            # the limit holds while reading, also for a chunked body without Content-Length
            nonlocal received, too_large, status
            message = await receive()
            if message["type"] == "http.request" and not too_large:
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if not started:
                        body = {"error": f"request body over {self.max_body_bytes:,} bytes"}
                        await _send_json(send, 413, {**body, "request_id": request_id}, id_header)
                        status = 413
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, receive_limited, send_with_id)
        except Exception:  # noqa: BLE001 - logged with its request id, never shown
            if not too_large:
                log.exception("request %s failed", request_id)
            if not started and not too_large:
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
