"""Errors as RFC 9457 problem details.

Hierarchy (each carries its HTTP status and a stable ``code``)::

    ProblemError                 400 bad_request
    ├── Unauthorized             401 unauthorized
    ├── Forbidden                403 forbidden
    ├── NotFound                 404 not_found
    ├── Conflict                 409 conflict
    ├── Unprocessable            422 invalid_request
    ├── RateLimited              429 rate_limited        (Retry-After)
    └── ServiceUnavailable       503 service_unavailable (Retry-After)

Services raise these; the handlers installed by ``install_problem_handlers`` render them.
``to_problem`` also maps what the infrastructure raises: an unreachable database is
``503 database_unavailable``, an unreachable Redis ``503 redis_unavailable`` (both with
Retry-After), a value the database refuses to store (NUL in text, out-of-range number)
``422 invalid_value``. Anything else that escapes is a bug and is answered with a 500 problem.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from questline.kit.db import is_bad_value, is_busy, is_connection_error

PROBLEM_CONTENT_TYPE = "application/problem+json"
_log = structlog.get_logger("questline.errors")


class ProblemError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


class Unauthorized(ProblemError):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "a valid bearer credential is required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(ProblemError):
    status, code, title = 422, "invalid_request", "Unprocessable request"


class RateLimited(ProblemError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kw)


class ServiceUnavailable(ProblemError):
    status, code, title = 503, "service_unavailable", "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(detail, **kw)


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem_body(
    *, status: int, code: str, title: str, detail: str, instance: str, request_id: str | None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "type": f"https://questline.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
        "request_id": request_id,
    }
    if extra:
        body.update(extra)
    return orjson.dumps(body)


def problem_response(request: Request, error: ProblemError) -> Response:
    body = problem_body(
        status=error.status, code=error.code, title=error.title, detail=error.detail,
        instance=request.url.path, request_id=request_id_of(request), extra=error.extra,
    )
    return Response(body, status_code=error.status, media_type=PROBLEM_CONTENT_TYPE, headers=error.headers)


def to_problem(exc: BaseException) -> ProblemError:
    """Map any exception to the problem it is shown as."""
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, ClientDisconnect):
        # Nobody is listening for this answer; it is not the engine's fault.
        return ProblemError("the client closed the connection before sending its request",
                            code="client_disconnected")
    if is_connection_error(exc):
        return ServiceUnavailable(
            "the database is unreachable; retry shortly", code="database_unavailable", retry_after=5
        )
    if is_busy(exc):
        return ServiceUnavailable("the database is busy; retry shortly", code="database_busy", retry_after=1)
    if is_bad_value(exc):
        return Unprocessable("a value in the request cannot be stored (bad characters, too long or out of range)",
                             code="invalid_value")
    redis_errors = sys.modules.get("redis.exceptions")  # not loaded: the error cannot be Redis's
    if redis_errors is not None and isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return ServiceUnavailable("Redis is unreachable; retry shortly", code="redis_unavailable", retry_after=5)
    return ProblemError(
        "an internal error occurred; it has been logged", status=500, code="internal_error",
        title="Internal server error",
    )


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited",
}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        errors.append({
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        })
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        problem = to_problem(exc)
        if problem.status >= 500 and problem.code == "internal_error":
            _log.exception("unhandled_error", path=request.url.path, exc_info=exc)
        elif problem.status >= 500:
            _log.warning("service_unavailable", path=request.url.path, error=str(exc))
        return problem_response(request, problem)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            problem = ProblemError("the request body is not valid JSON", code="malformed_json",
                                   extra={"errors": errors})
        else:
            first = errors[0] if errors else {"loc": [], "msg": "invalid"}
            where = ".".join(p for p in first["loc"] if p != "body") or "request"
            problem = Unprocessable(f"{where}: {first['msg']}", code="validation_failed",
                                    extra={"errors": errors})
        return problem_response(request, problem)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        problem = ProblemError(detail, status=exc.status_code, code=code, title=code.replace("_", " ").capitalize(),
                               headers=dict(exc.headers or {}))
        return problem_response(request, problem)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_problem)
