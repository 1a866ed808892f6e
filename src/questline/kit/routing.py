"""The request edge: one unit of work per request, committed (or rolled back) here and only here.

``UnitOfWorkRoute`` wraps every endpoint:

- it checks what the framework lets through: NUL characters in the URL, and every JSON body
  with ``kit.jsonvalue`` (integers beyond 64 bits, NaN, lone surrogates, NUL, deep nesting),
  parsed once and handed on to FastAPI;
- it gives the endpoint a lazily opened session (``SessionDep``): a request that never asks
  for one opens none. Reads (GET, HEAD, OPTIONS) get a session without a transaction; writes
  get one transaction, committed after the endpoint returns, with the idempotent reply and
  the edge hooks' rows (the audit log) in it, and rolled back on any exception;
- a pooled connection that turns out dead (the database restarted since it was last used) is
  discarded and the request run once more from the start, so the pool needs no pre-ping;
- any exception becomes a problem response. Work queued with ``after_commit`` runs only once
  the commit succeeded and is dropped on rollback.

Routes tune the edge through ``openapi_extra`` (so the document says it too):
``{"x-json-values": "per-item"}`` leaves the JSON value check to the route (event batches
reject bad items one by one); ``{"x-audit": false}`` keeps a state-changing route out of the
audit log (see the ``audit`` area).
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import fastapi.routing
import sqlalchemy as sa
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
from questline.kit.errors import ProblemError, Unprocessable, problem_response, to_problem
from questline.kit.idempotency import Claim, ReplayStored
from questline.kit.jsonvalue import find_json_problem
from questline.kit.runtime import Runtime

_log = structlog.get_logger("questline.routing")
__all__ = [
    "PER_ITEM_JSON", "ClockDep", "DeferredResponse", "EdgeHook", "ExposedRoute", "RequestUnit", "RuntimeDep",
    "SessionDep", "UnitOfWorkRoute", "after_commit", "exposed_api_routes", "operation_id", "run_after_commit",
]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# ``openapi_extra`` of a route whose items are checked one by one by the route itself.
PER_ITEM_JSON: dict[str, Any] = {"x-json-values": "per-item"}


class DeferredResponse(Response):
    """A reply produced only after the request's transaction has committed.

    For endpoints that must wait for committed work to be picked up elsewhere (``?wait=true``
    on event ingest). Its idempotent record is stored once the reply exists.
    """

    def __init__(self, produce: Callable[[], Awaitable[Response]]) -> None:
        super().__init__(status_code=202)
        self.produce = produce


class RequestUnit:
    """The request's unit of work: a session opened on first use, settled by the edge."""

    __slots__ = ("_session", "runtime", "writes")

    def __init__(self, runtime: Runtime, *, writes: bool) -> None:
        self.runtime = runtime
        self.writes = writes
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            factory = self.runtime.sessions if self.writes else self.runtime.read_sessions
            self._session = factory()
        return self._session

    @property
    def opened(self) -> AsyncSession | None:
        return self._session

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.commit()

    async def discard(self) -> None:
        """Roll back and close; a connection that died mid-request must not turn the reply into a 500."""
        if self._session is None:
            return
        self._session.info.pop("after_commit", None)
        try:
            await self._session.rollback()
        except Exception as exc:  # the connection is gone; the pool discards it
            _log.warning("rollback_failed", error=str(exc))
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            try:
                await self._session.close()
            except Exception as exc:  # as above: a dead connection is the pool's to drop
                _log.warning("session_close_failed", error=str(exc))


# Run for every successful state-changing request, inside its transaction, before commit.
EdgeHook = Callable[[RequestUnit, Request, APIRoute, Response], Awaitable[None]]


class UnitOfWorkRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = super().get_route_handler()
        route = self
        checks_json = (self.openapi_extra or {}).get("x-json-values") != "per-item"

        async def attempt(request: Request, runtime: Runtime, writes: bool, retried: bool) -> Response:
            unit = RequestUnit(runtime, writes=writes)
            request.state.unit = unit
            committing = False
            try:
                response = await endpoint(request)
                claim: Claim | None = getattr(request.state, "idempotency_claim", None)
                if writes and response.status_code < 400:
                    for hook in runtime.edge_hooks:
                        await hook(unit, request, route, response)
                if claim is not None and not isinstance(response, DeferredResponse):
                    await runtime.idempotency.complete(unit.session, claim, response)
                committing = True
                await unit.commit()
            except BaseException as exc:
                await unit.discard()
                if not retried and not committing and _dead_connection(exc) and await _forget_claim(request, runtime):
                    _log.warning("retrying_on_a_fresh_connection", path=request.url.path, error=str(exc))
                    return await attempt(request, runtime, writes, retried=True)
                raise
            session = unit.opened
            await unit.close()
            if session is not None:
                await run_after_commit(session)
            return response

        async def handler(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            writes = request.method not in READ_METHODS
            try:
                await _check_request(request, checks_json)
                response = await attempt(request, runtime, writes, retried=False)
            except ReplayStored as replay:
                return replay.stored.to_response()
            except (RequestValidationError, StarletteHTTPException):
                await _forget_claim(request, runtime)
                raise
            except Exception as exc:
                return await _problem_reply(request, runtime, exc)
            if isinstance(response, DeferredResponse):
                claim: Claim | None = getattr(request.state, "idempotency_claim", None)
                try:
                    response = await response.produce()
                except Exception as exc:  # the work is committed; only the reply failed
                    return await _problem_reply(request, runtime, exc)
                if claim is not None:
                    await runtime.idempotency.complete_alone(claim, response)
            return response

        return handler


def _dead_connection(exc: BaseException) -> bool:
    """A pooled connection found dead on use: SQLAlchemy invalidated it (and the pool's older ones)."""
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


async def _check_request(request: Request, checks_json: bool) -> None:
    """Refuse what no route can store: NUL in the URL; in JSON bodies, values ``kit.jsonvalue`` refuses.

    The body is parsed here once and left where FastAPI looks for it, so it is not parsed again.
    """
    scope = request.scope
    if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
        raise Unprocessable("the URL contains a NUL character", code="validation_failed")
    if request.method in READ_METHODS or not is_json_body(request):
        return
    body = await request.body()
    if not body:
        return
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProblemError(f"the request body is not valid JSON ({reason})", code="malformed_json") from None
    if checks_json:
        problem = find_json_problem(parsed)
        if problem is not None:
            errors = [{"loc": ["body", *map(str, problem.loc)], "msg": problem.reason, "type": "json_value"}]
            raise Unprocessable(problem.message("body"), code="validation_failed", extra={"errors": errors})
    request._json = parsed  # Starlette's cache of request.json(): FastAPI reads the body from it


def is_json_body(request: Request) -> bool:
    content_type = request.headers.get("content-type")
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def _forget_claim(request: Request, runtime: Runtime) -> bool:
    """Release this request's idempotency claim (so a retry may take it); False if that failed."""
    claim: Claim | None = getattr(request.state, "idempotency_claim", None)
    if claim is None:
        return True
    request.state.idempotency_claim = None
    try:
        await runtime.idempotency.release(claim)
    except Exception as exc:  # the claim's lock expires on its own
        _log.warning("idempotency_claim_not_released", error=str(exc))
        return False
    return True


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


def operation_id(route: APIRoute) -> str:
    """``<area>_<function>`` (``ledger_grant``): the OpenAPI operation id, and the audit log's action."""
    module = route.endpoint.__module__.split(".")
    area = module[1] if len(module) > 2 and module[0] == "questline" else module[-1]
    return f"{area}_{route.name}"


# Dependencies are ``async def``: a plain ``def`` would run in the thread pool on every request.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_session(request: Request) -> AsyncSession:
    unit: RequestUnit | None = getattr(request.state, "unit", None)
    if unit is None:  # pragma: no cover - a wiring bug, not a user error
        raise RuntimeError("route is not a UnitOfWorkRoute; no request session")
    return unit.session


async def get_clock(request: Request) -> Clock:
    runtime: Runtime = request.app.state.runtime
    return runtime.clock


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(get_clock)]
