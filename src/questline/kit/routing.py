"""The request edge: one session per request, committed (or rolled back) here and only here.

``UnitOfWorkRoute`` wraps every endpoint: it opens the session the endpoint's services use,
commits it after the endpoint returns, stores the idempotent reply in the same transaction,
and turns any exception into a problem response after rolling back. Work queued with
``after_commit`` runs only once the commit succeeded and is dropped on rollback.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import fastapi.routing
import orjson
import structlog
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute

from questline.kit.clock import Clock
from questline.kit.db import after_commit, run_after_commit
from questline.kit.errors import Unprocessable, problem_response, to_problem
from questline.kit.idempotency import Claim, ReplayStored
from questline.kit.runtime import Runtime

_log = structlog.get_logger("questline.routing")
__all__ = [
    "ClockDep", "DeferredResponse", "ExposedRoute", "RuntimeDep", "SessionDep", "UnitOfWorkRoute", "after_commit",
    "exposed_api_routes", "run_after_commit",
]
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
class DeferredResponse(Response):
    """A reply produced only after the request's transaction has committed.

    For endpoints that must wait for committed work to be picked up elsewhere (``?wait=true``
    on event ingest). Its idempotent record is stored once the reply exists.
    """

    def __init__(self, produce: Callable[[], Awaitable[Response]]) -> None:
        super().__init__(status_code=202)
        self.produce = produce


class UnitOfWorkRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = super().get_route_handler()

        async def handler(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            factory = runtime.read_sessions if request.method in _READ_METHODS else runtime.sessions
            async with factory() as session:
                request.state.db = session
                try:
                    await _refuse_nul(request)
                    response = await endpoint(request)
                    claim: Claim | None = getattr(request.state, "idempotency_claim", None)
                    deferred = isinstance(response, DeferredResponse)
                    if claim is not None and not deferred:
                        await runtime.idempotency.complete(session, claim, response)
                    await session.commit()
                except ReplayStored as replay:
                    await _rollback(session)
                    return replay.stored.to_response()
                except (RequestValidationError, StarletteHTTPException):
                    await _rollback(session)
                    await _forget_claim(request, runtime)
                    raise
                except Exception as exc:
                    await _rollback(session)
                    return await _problem_reply(request, runtime, exc)
            await run_after_commit(session)
            if isinstance(response, DeferredResponse):
                try:
                    response = await response.produce()
                except Exception as exc:  # the work is committed; only the reply failed
                    return await _problem_reply(request, runtime, exc)
                if claim is not None:
                    await runtime.idempotency.complete_alone(claim, response)
            return response

        return handler


_JSON_NUL = re.compile(rb"\\u0000", re.IGNORECASE)


async def _refuse_nul(request: Request) -> None:
    """NUL characters in text are refused alike on every backend (PostgreSQL cannot store them).

    JSON can only carry one as the escape ``\\u0000``, so bodies are parsed to be sure only
    when that sequence appears at all.
    """
    if "\x00" in request.scope["path"] or b"%00" in request.scope.get("query_string", b""):
        raise Unprocessable("the URL contains a NUL character", code="validation_failed")
    if request.method in _READ_METHODS:
        return
    body = await request.body()
    if _JSON_NUL.search(body) is None:
        return
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # the route's own parsing answers 400 malformed_json
    if _contains_nul(parsed):
        raise Unprocessable("text in the request contains a NUL character (\\u0000)", code="validation_failed")


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


async def _rollback(session: AsyncSession) -> None:
    """Roll back; a connection that died mid-request must not turn the reply into a 500."""
    try:
        await session.rollback()
    except Exception as exc:  # the connection is gone; the pool discards it
        _log.warning("rollback_failed", error=str(exc))


async def _forget_claim(request: Request, runtime: Runtime) -> None:
    claim: Claim | None = getattr(request.state, "idempotency_claim", None)
    if claim is not None:
        request.state.idempotency_claim = None
        try:
            await runtime.idempotency.release(claim)
        except Exception as exc:  # the claim's lock expires on its own
            _log.warning("idempotency_claim_not_released", error=str(exc))


async def _problem_reply(request: Request, runtime: Runtime, exc: Exception) -> Response:
    problem = to_problem(exc)
    if problem.code == "internal_error":
        _log.exception("unhandled_error", path=request.url.path, exc_info=exc)
    response = problem_response(request, problem)
    claim: Claim | None = getattr(request.state, "idempotency_claim", None)
    if claim is not None:
        request.state.idempotency_claim = None
        try:
            if problem.status < 500:
                await runtime.idempotency.complete_alone(claim, response)
            else:
                await runtime.idempotency.release(claim)
        except Exception as store_exc:  # the database may be the thing that failed
            _log.warning("idempotency_claim_not_settled", error=str(store_exc))
    return response


@dataclass(frozen=True)
class ExposedRoute:
    """One API operation as the app serves it: its full path, methods and dependency tree."""

    path: str
    methods: frozenset[str]
    dependant: Dependant
    openapi_extra: dict[str, Any] | None
    route: APIRoute


def exposed_api_routes(routes: Sequence[BaseRoute]) -> list[ExposedRoute]:
    """Every API route reachable from ``app.routes``, with included routers flattened.

    FastAPI versions that keep included routers lazily (``_IncludedRouter``) expose them
    through ``iter_route_contexts``; older ones list the routes themselves.
    """
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    contexts: Iterable[Any] = iterate(routes) if iterate is not None else routes
    exposed = []
    for context in contexts:
        original = getattr(context, "original_route", context)
        if not isinstance(original, APIRoute):
            continue
        exposed.append(ExposedRoute(
            path=str(context.path), methods=frozenset(context.methods or ()), dependant=context.dependant,
            openapi_extra=context.openapi_extra, route=original,
        ))
    return exposed


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(request: Request) -> AsyncSession:
    session: AsyncSession | None = getattr(request.state, "db", None)
    if session is None:  # pragma: no cover - a wiring bug, not a user error
        raise RuntimeError("route is not a UnitOfWorkRoute; no request session")
    return session


def get_clock(request: Request) -> Clock:
    return get_runtime(request).clock


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(get_clock)]
