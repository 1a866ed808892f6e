"""The fast lane: the hottest GET routes answered in pure ASGI, before FastAPI's routing.

An area registers a handler for a route it already serves through FastAPI (``FastLane.get``);
the FastAPI route stays what OpenAPI, the SDKs and the access walk see. For a GET whose path
has that route's shape, the lane:

- checks the path and query parameters with the FastAPI route's own fields (pattern, bounds,
  defaults), so a value FastAPI would refuse never reaches a handler;
- calls the handler with those values and a session opened only if something is not cached
  (``LazySession``): the handler identifies the caller and reads through the same functions
  the route calls, and returns the reply's bytes with an ``admit`` step (the rate limits);
- runs ``admit``, then answers. From there on every error is the route's problem reply.

Anything the handler is not sure of falls through to FastAPI untouched: it returns None or
raises before ``admit`` (a credential the caches do not hold, a refusal, an unusual query, a
path another route could also match). So a handler must change nothing before ``admit``.

The lane sits inside ``EdgeMiddleware`` (``app.py``): the request id, body bounds, CORS,
rate-limit fields, metrics by route template and the access log are theirs on both paths.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import UnionType
from typing import Any, Union, cast, get_args, get_origin
from urllib.parse import parse_qsl

import structlog
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette._utils import get_route_path
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from questline.kit.db import run_after_commit
from questline.kit.errors import ProblemError, problem_response, to_problem
from questline.kit.routing import ExposedRoute, exposed_api_routes
from questline.kit.runtime import Runtime

__all__ = ["FastLane", "FastLaneMiddleware", "LaneAnswer", "LaneCall", "LaneHandler", "LazySession", "route_reply"]

_log = structlog.get_logger("questline.fastlane")
_JSON_HEADERS = (b"content-type", b"application/json")


class LazySession:
    """A read session opened on first use: a warm read answered from the caches opens none.

    ``info`` (where the caches find their hub) is the factory's, so a cache hit needs no session;
    anything else opens the real session and is delegated to it.
    """

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None
        self._info: dict[str, Any] = dict(factory.kw.get("info") or {})

    @property
    def info(self) -> dict[str, Any]:
        return self._session.info if self._session is not None else self._info

    @property
    def opened(self) -> AsyncSession | None:
        return self._session

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._factory()
            self._session.info.update(self._info)
        return getattr(self._session, name)

    def as_session(self) -> AsyncSession:
        return cast(AsyncSession, self)

    async def settle(self) -> None:
        """What the request edge does for a read: commit (nothing to commit), close, run the hooks."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            await session.commit()
        finally:
            await session.close()
        await run_after_commit(session)


class _Recorder:
    """The request body, read only when a handler asks for it and kept, so that a request the
    lane declines reaches FastAPI whole (``replay``)."""

    __slots__ = ("_body", "_messages", "_read", "_receive")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._messages: list[Message] = []
        self._body: bytes | None = None
        self._read = False

    async def body(self) -> bytes | None:
        """The whole body, or None if the client went away first."""
        if not self._read:
            self._read = True
            chunks = []
            while True:
                message = await self._receive()
                self._messages.append(message)
                if message["type"] != "http.request":
                    return None
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body

    def replay(self) -> Receive:
        """``receive`` as if nothing had been read: the messages read so far, then the rest."""
        if not self._messages:
            return self._receive
        pending = list(self._messages)
        rest = self._receive

        async def receive() -> Message:
            return pending.pop(0) if pending else await rest()

        return receive


@dataclass(slots=True)
class LaneCall:
    """One request in the lane: its validated parameters, a request view for the caller's
    identity, the runtime, a session opened only on first use, and (for writes) the body."""

    scope: Scope
    request: Request
    params: dict[str, Any]
    runtime: Runtime
    session: AsyncSession
    recorder: _Recorder
    admitted: bool = False

    async def body(self) -> bytes | None:
        return await self.recorder.body()

    async def admit(self, step: Callable[[], Awaitable[None]]) -> None:
        """For a write, before it changes anything: from here on the request is the lane's own
        (an error is answered as the route's problem, never passed on), then ``step`` (the rate
        limits) runs."""
        self.admitted = True
        await step()


@dataclass(slots=True)
class LaneAnswer:
    """A handler's reply: JSON bytes, once ``admit`` (the caller's rate limits) has let it through
    (None: a write that was admitted already, with ``LaneCall.admit``)."""

    body: bytes
    admit: Callable[[], Awaitable[None]] | None = None
    status: int = 200


LaneHandler = Callable[[LaneCall], Awaitable[LaneAnswer | None]]

# Given the FastAPI route it stands in for (its access policy, its parameters), makes the handler.
HandlerFactory = Callable[[ExposedRoute], LaneHandler]


def route_reply(route: APIRoute) -> Callable[[Any], bytes]:
    """The JSON bytes ``route`` answers for what its endpoint returns: its response model's
    validation and serialization, as FastAPI's own fast path does it (``serialize_response``)."""
    field = route.response_field
    if field is None:
        raise ValueError(f"{route.path} has no response model for the fast lane to serialize with")

    def reply(content: Any) -> bytes:
        value, errors = field.validate(content, {}, loc=("response",))
        if errors:
            raise ValueError(f"the reply of {route.path} does not match its response model: {errors}")
        body: bytes = field.serialize_json(
            value, include=route.response_model_include, exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias, exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none)
        return body

    return reply


@dataclass(frozen=True)
class _Route:
    template: str
    segments: tuple[str | None, ...]  # literal, or None for a parameter
    names: tuple[str, ...]  # the parameters, in path order
    route: APIRoute
    path_fields: tuple[Any, ...]
    query_fields: tuple[Any, ...]
    shadows: tuple[re.Pattern[str], ...]  # other routes that could take some of these paths
    handler: LaneHandler
    plain_path: tuple[_Param, ...] | None
    plain_query: tuple[_Param, ...] | None


def _segments(template: str) -> list[str]:
    return template.strip("/").split("/") if template != "/" else []


def _could_overlap(ours: list[str], other: str, *, prefix: bool) -> bool:
    """Whether a route (or a mount, ``prefix``) with template ``other`` could match a path of our shape."""
    theirs = _segments(other)
    if any(":path}" in segment for segment in theirs):
        return True
    if len(theirs) != len(ours) and not (prefix and len(theirs) <= len(ours)):
        return False
    return all("{" in a or "{" in b or a == b for a, b in zip(ours, theirs, strict=False))


class FastLane:
    """The registry of lane handlers, bound to the app's routes once they are all included."""

    def __init__(self, runtime: Runtime, *, enabled: bool = True) -> None:
        self.runtime = runtime
        self.enabled = enabled
        self._wanted: list[tuple[str, str, HandlerFactory]] = []
        self._by_shape: dict[tuple[str, int], list[_Route]] = {}  # (method, path segments) -> routes
        self.answered = 0  # requests the lane answered (tests and benchmarks read it)
        self.fell_through = 0

    def get(self, template: str, factory: HandlerFactory) -> None:
        """Answer ``GET template`` in the lane; the app must serve the same route through FastAPI."""
        self._wanted.append(("GET", template, factory))

    def post(self, template: str, factory: HandlerFactory) -> None:
        """Answer ``POST template`` in the lane. The handler reads the body with ``LaneCall.body``
        and calls ``LaneCall.admit`` before it changes anything. The lane runs no edge hooks, so
        the route must be one they leave alone (``x-audit: False``)."""
        self._wanted.append(("POST", template, factory))

    def bind(self, routes: list[BaseRoute]) -> None:
        """Find each registered template's FastAPI route, its parameters and the routes that could shadow it."""
        listed = exposed_api_routes(routes)  # once per bind: it walks every route (an app per test in the suite)
        exposed = {(r.path, method): r for r in listed for method in r.methods}
        candidates: dict[str, list[tuple[str, re.Pattern[str], bool, Any]]] = {}
        for method, template, factory in self._wanted:
            found = exposed.get((template, method))
            if found is None:
                raise LookupError(f"the fast lane stands in for {method} {template}, which the app does not serve")
            if method != "GET" and (found.route.openapi_extra or {}).get("x-audit") is not False:
                raise ValueError(f"{method} {template} is audited: the fast lane runs no edge hooks")
            ours = _segments(template)
            if method not in candidates:
                candidates[method] = self._candidates(listed, routes, method)
            shadows = tuple(regex for path, regex, prefix, route in candidates[method]
                            if route is not found.route and _could_overlap(ours, path, prefix=prefix))
            path_fields, query_fields = _fields(found.dependant)
            names = tuple(s[1:-1] for s in ours if s.startswith("{"))
            by_name = {f.name: f for f in path_fields}
            lane_route = _Route(
                template=template, segments=tuple(None if s.startswith("{") else s for s in ours), names=names,
                route=found.route, path_fields=tuple(by_name[n] for n in names),
                query_fields=tuple(query_fields), shadows=shadows, handler=factory(found),
                plain_path=_plain(tuple(by_name[n] for n in names)), plain_query=_plain(tuple(query_fields)))
            self._by_shape.setdefault((method, len(ours)), []).append(lane_route)

    @staticmethod
    def _candidates(listed: list[ExposedRoute], routes: list[BaseRoute],
                    method: str) -> list[tuple[str, re.Pattern[str], bool, Any]]:
        """Every route and mount of the app that may take ``method``: (template, regex, is a mount, route)."""
        out: list[tuple[str, re.Pattern[str], bool, Any]] = []
        for context in listed:
            if method in context.methods:
                out.append((context.path, compile_path(context.path)[0], False, context.route))
        for route in routes:
            path = getattr(route, "path", None)
            regex = getattr(route, "path_regex", None)
            if path is None or regex is None or isinstance(route, APIRoute):
                continue
            methods = getattr(route, "methods", None)
            mount = not hasattr(route, "endpoint")
            if mount or methods is None or method in methods:
                out.append((path, regex, mount, route))
        return out

    def match(self, method: str, path: str) -> tuple[_Route, tuple[str, ...]] | None:
        parts = path[1:].split("/") if path.startswith("/") else None
        if parts is None:
            return None
        for candidate in self._by_shape.get((method, len(parts)), ()):
            values = []
            for literal, part in zip(candidate.segments, parts, strict=True):
                if literal is None:
                    if not part:
                        break
                    values.append(part)
                elif literal != part:
                    break
            else:
                if any(regex.match(path) for regex in candidate.shadows):
                    return None
                return candidate, tuple(values)
        return None


def _fields(dependant: Dependant) -> tuple[list[Any], list[Any]]:
    """The path and query parameters of an endpoint and of every dependency it has, once each."""
    path: dict[str, Any] = {}
    query: dict[str, Any] = {}
    for field in dependant.path_params:
        path.setdefault(field.alias, field)
    for field in dependant.query_params:
        query.setdefault(field.alias, field)
    for sub in dependant.dependencies:
        sub_path, sub_query = _fields(sub)
        for field in sub_path:
            path.setdefault(field.alias, field)
        for field in sub_query:
            query.setdefault(field.alias, field)
    return list(path.values()), list(query.values())


_SCALARS = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class _Param:
    """A path or query parameter of a plain type: read by its alias, its default applied as FastAPI does."""

    name: str
    alias: str
    field: Any
    required: bool
    default: Any
    validate_default: bool


def _plain(fields: tuple[Any, ...]) -> tuple[_Param, ...] | None:
    """``fields`` read the simple way (one alias, a scalar or optional scalar, an immutable default),
    or None: then FastAPI's own extraction (``request_params_to_args``) reads them."""
    out = []
    for field in fields:
        info = field.field_info
        annotation = info.annotation
        kinds = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (
            Union, UnionType) else [annotation]
        default = info.default
        if (info.validation_alias is not None or len(kinds) != 1 or kinds[0] not in _SCALARS
                or not (default is None or isinstance(default, _SCALARS)
                        or (default is PydanticUndefined and info.is_required()))):
            return None
        out.append(_Param(field.name, field.alias, field, info.is_required(), default, bool(info.validate_default)))
    return tuple(out)


def _read(params: tuple[_Param, ...], given: dict[str, str], where: str, into: dict[str, Any]) -> bool:
    for param in params:
        raw = given.get(param.alias)
        if raw is None:
            if param.required:
                return False
            if not param.validate_default:
                into[param.name] = param.default
                continue
            raw = param.default
        value, errors = param.field.validate(raw, {}, loc=(where, param.alias))
        if errors:
            return False
        into[param.name] = value
    return True


def _validated(route: _Route, raw_path: tuple[str, ...], query: bytes) -> dict[str, Any] | None:
    """The endpoint's parameter values as FastAPI gives them, or None if it would refuse one."""
    path = dict(zip(route.names, raw_path, strict=True))
    if route.plain_path is not None and route.plain_query is not None:
        params: dict[str, Any] = {}
        # Starlette's QueryParams: the query string as latin-1, parse_qsl, the last of repeated keys.
        given = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {}
        if _read(route.plain_path, path, "path", params) and _read(route.plain_query, given, "query", params):
            return params
        return None
    params, errors = request_params_to_args(route.path_fields, path)
    if errors:
        return None
    values, errors = request_params_to_args(route.query_fields, QueryParams(query))
    if errors:
        return None
    params.update(values)
    return params


class FastLaneMiddleware:
    """Tries the lane for the routes it holds; everything else (and whatever the lane declines) goes on."""

    def __init__(self, app: ASGIApp, *, lane: FastLane) -> None:
        self.app = app
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        if scope["type"] != "http" or not lane.enabled:
            await self.app(scope, receive, send)
            return
        path = get_route_path(scope)
        found = lane.match(scope["method"], path)
        query: bytes = scope.get("query_string", b"")
        if found is None or "\x00" in path or b"%00" in query.lower():
            await self.app(scope, receive, send)
            return
        route, raw = found
        params = _validated(route, raw, query)
        if params is None:
            lane.fell_through += 1
            await self.app(scope, receive, send)
            return
        view = dict(scope)
        view["path_params"] = dict(zip(route.names, raw, strict=True))
        view["route"] = route.route
        session = LazySession(lane.runtime.read_sessions)
        recorder = _Recorder(receive)
        call = LaneCall(view, Request(view), params, lane.runtime, session.as_session(), recorder)
        failure: Exception | None = None
        try:
            answer = await route.handler(call)
        except ProblemError as exc:
            answer, failure = None, exc  # before admit: a refusal the route says in its own words
        except Exception as exc:
            answer, failure = None, exc
            if not call.admitted:
                _log.warning("fast_lane_fell_through", route=route.template, error=repr(exc))
        try:
            await session.settle()
        except Exception as exc:  # the read is done; a session that cannot close is the pool's to drop
            _log.warning("fast_lane_session_not_closed", error=repr(exc))
        if answer is None and not call.admitted:
            lane.fell_through += 1
            await self.app(scope, recorder.replay(), send)
            return
        scope["route"] = route.route  # the metrics' route template, as FastAPI would have set it
        scope["path_params"] = view["path_params"]
        lane.answered += 1
        try:
            if failure is not None:
                raise failure
            assert answer is not None
            if answer.admit is not None:
                await answer.admit()
        except Exception as exc:
            await _problem(scope, recorder.replay(), send, exc, path)
            return
        body = answer.body
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(b"content-length", str(len(body)).encode()), _JSON_HEADERS]})
        await send({"type": "http.response.body", "body": body})


async def _problem(scope: Scope, receive: Receive, send: Send, exc: Exception, path: str) -> None:
    """The route's problem reply for an error after admission (as ``kit.routing`` gives it)."""
    problem = to_problem(exc)
    if problem.code == "internal_error":
        _log.exception("unhandled_error", path=path, exc_info=exc)
    await problem_response(Request(scope), problem)(scope, receive, send)
