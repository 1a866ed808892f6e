"""Problems (RFC 9457) as typed exceptions: ``except NotFound as problem: problem.code``."""

from __future__ import annotations

from typing import Any

import httpx


class Problem(Exception):
    """An answer of 400 or more. ``code`` is the engine's stable problem code."""

    def __init__(self, status: int, code: str, title: str, detail: str, request_id: str | None,
                 body: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {detail or title}")
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.request_id, self.body = request_id, body


class BadRequest(Problem):
    """400, 408, 413, 414, 431: the request itself cannot be read."""


class Unauthorized(Problem):
    """401: no credential, or one that is unknown, expired or revoked."""


class Forbidden(Problem):
    """403: the caller may not do this."""


class NotFound(Problem):
    """404: no such thing, or not the caller's to see."""


class Conflict(Problem):
    """409: the state does not allow it (insufficient funds, already claimed, …)."""


class Gone(Problem):
    """410: too late (a claim window passed)."""


class ValidationFailed(Problem):
    """422: the request is well formed but refused; ``body["errors"]`` names the fields."""


class RateLimited(Problem):
    """429: retried by the client while ``Retry-After`` allows; raised when retries run out."""


class Unavailable(Problem):
    """503: the engine or its database is busy or away; retried like 429."""


class ServerError(Problem):
    """500 and other 5xx: a bug in the engine; the ``request_id`` finds it in the logs."""


_BY_STATUS: dict[int, type[Problem]] = {
    400: BadRequest, 408: BadRequest, 413: BadRequest, 414: BadRequest, 431: BadRequest,
    401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone, 422: ValidationFailed,
    429: RateLimited, 503: Unavailable,
}


def problem_of(response: httpx.Response) -> Problem:
    """The typed exception for a response of 400 or more (read first)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else Problem)
    return kind(status, str(body.get("code") or "http_error"), str(body.get("title") or response.reason_phrase),
                str(body.get("detail") or ""), body.get("request_id") or response.headers.get("x-request-id"),
                body)
