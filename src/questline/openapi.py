"""The OpenAPI document as the API behaves, derived from each route's declarations.

FastAPI documents what a route returns when it succeeds. What it answers otherwise follows
from shared mechanisms, so it is derived here from the same declarations those mechanisms
read, never written by hand per route:

- every route with an ``allow(...)`` policy: bearer authentication, and ``401`` (no or bad
  credential), ``403`` (wrong kind of caller, too low a role), ``429`` (rate limits, with the
  ``RateLimit`` fields on every answer), ``503`` (database or Redis unavailable) and ``400``
  (a request the edge cannot take: an admin without ``X-Questline-App``, a malformed cursor);
- routes that admit app admins: the ``X-Questline-App`` header and ``404 app_not_found``;
- path parameters: ``404``; any parameter or body: ``422`` (validation);
- bodies: ``400 malformed_json``, ``408`` (a body that stalls), ``413`` (too large);
- POST: the ``Idempotency-Key`` header (required where the policy says so) and ``409``/``422``
  for a key in flight or reused; every state-changing method: ``409`` (conflicts with state).

Every error is ``application/problem+json`` with the ``Problem`` schema. Schema names are
unique: pydantic qualifies a name that two areas use (``questline__ledger__schemas__GrantIn``)
and such names become ``LedgerGrantIn``; operation ids are ``<area>_<function>``.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute, Mount, Route

from questline.kit.errors import PROBLEM_CONTENT_TYPE
from questline.kit.routing import ExposedRoute, exposed_api_routes
from questline.tenancy.auth import ADMIN, ANONYMOUS, APP_HEADER, IDEMPOTENCY_HEADER, AccessPolicy, route_access

JSON = dict[str, Any]
_REF = "#/components/schemas/"
_QUALIFIED = re.compile(r"^questline__(?P<area>[a-z_]+?)__[a-z_]+__(?P<name>[A-Za-z0-9_]+)$")
_TITLES = {
    400: "Bad request: malformed JSON or cursor, a missing header the route needs",
    401: "No credential, or one that is not valid (invalid_token, key_revoked, …)",
    403: "This kind of caller, or this role, may not do this",
    404: "Not found (also: another app's resource, another player's data)",
    408: "The request body did not arrive in time",
    409: "Conflicts with the current state (or the Idempotency-Key is still in flight)",
    413: "The request body is too large",
    414: "The URL is too long (path and query beyond QUESTLINE_MAX_URL_BYTES)",
    422: "The request is invalid (validation_failed, idempotency_key_reused, …)",
    429: "Rate limited: retry after Retry-After seconds",
    503: "A dependency (database, Redis) is unavailable or busy: retry after Retry-After seconds",
}
PROBLEM_SCHEMA: JSON = {
    "title": "Problem",
    "description": "An RFC 9457 problem. Problems may carry more members (errors, rejected, unmet, …).",
    "type": "object",
    "properties": {
        "type": {"type": "string", "description": "a URI naming the problem kind"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "code": {"type": "string", "description": "a stable snake_case code, for a program"},
        "instance": {"type": "string", "description": "the path of the request"},
        "request_id": {"type": ["string", "null"], "description": "quote it when asking for help"},
        "errors": {"type": "array", "items": {"$ref": f"{_REF}ProblemError"}},
    },
    "required": ["type", "title", "status", "detail", "code", "instance", "request_id"],
    "additionalProperties": True,
}
PROBLEM_ERROR_SCHEMA: JSON = {
    "title": "ProblemError",
    "type": "object",
    "properties": {"loc": {"type": "array", "items": {"type": "string"}}, "msg": {"type": "string"},
                   "type": {"type": "string"}},
    "required": ["loc", "msg", "type"],
}
_HEADERS: JSON = {
    "RateLimit-Policy": {"description": "the rate-limit policies this request met (IETF HTTPAPI draft)",
                         "schema": {"type": "string"}, "example": '"caller";q=300000;w=60'},
    "RateLimit": {"description": "what is left of each policy's quota (r) and when it is whole again (t)",
                  "schema": {"type": "string"}, "example": '"caller";r=299999;t=1'},
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}},
}


# Documents already derived in this process, by what they are derived from: the app's metadata and
# its documentable routes, by identity (the API's routes are built once per process and shared by
# every app it makes, ``app._included_routes``). Each value keeps its routes alive, so an id in a
# key is never reused by another route. A server derives one document; a test process makes an app
# per test, and deriving took about a second of CPU each time.
_DERIVED: dict[tuple[Any, ...], tuple[tuple[BaseRoute, ...], JSON]] = {}


def install(app: FastAPI) -> None:
    """Serve the derived document at ``app.openapi_url`` (built once, on first request)."""

    def openapi() -> JSON:
        if app.openapi_schema is None:
            app.openapi_schema = derived(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def derived(app: FastAPI) -> JSON:
    """``describe(app)``, or a copy of the document derived for an app with the same metadata and
    the same documentable routes. Plain Starlette routes and mounts (``/docs``, the console, the
    widgets, the document itself) are made per app and never documented, so they are not compared."""
    routes = tuple(route for route in app.routes if type(route) not in (Route, Mount))
    key = (app.title, app.version, app.summary, app.description, tuple(id(route) for route in routes))
    if key not in _DERIVED:
        _DERIVED[key] = (routes, describe(app))
    # A copy each: a caller may change its app's document without changing another app's.
    return copy.deepcopy(_DERIVED[key][1])


def describe(app: FastAPI) -> JSON:
    spec = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                       routes=app.routes)
    spec = _unique_schema_names(spec)
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"], schemas["ProblemError"] = PROBLEM_SCHEMA, PROBLEM_ERROR_SCHEMA
    components["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "a server key (ql_sk_…), a client key (ql_pk_…), a player token or an admin's access token",
    }}
    components["headers"] = copy.deepcopy(_HEADERS)
    routes: dict[tuple[str, str], ExposedRoute] = {
        (route.path, method.lower()): route for route in exposed_api_routes(app.routes) for method in route.methods
    }
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            route = routes.get((path, method))
            access = route_access(route) if route is not None else ANONYMOUS
            _document(operation, method, access)
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"{_REF}{unused}"' not in json.dumps(spec):
            schemas.pop(unused, None)
    return spec


def _document(operation: JSON, method: str, access: AccessPolicy | str | None) -> None:
    parameters: list[JSON] = operation.setdefault("parameters", [])
    has_params = bool(parameters)
    has_path = any(p.get("in") == "path" for p in parameters)
    has_body = "requestBody" in operation
    changes = method in ("post", "put", "patch", "delete")
    statuses: set[int] = set()
    if has_params or has_body:
        statuses.add(422)
    if has_params:  # a path or query value can make the URL longer than the edge takes
        statuses.add(414)
    if has_path:
        statuses.add(404)
    if has_body:
        statuses |= {400, 408, 413}
    if isinstance(access, AccessPolicy):
        operation["security"] = [{"bearer": []}]
        statuses |= {400, 401, 403, 429, 503}
        if ADMIN in access.kinds and not access.account:
            statuses.add(404)
            parameters.append({"name": APP_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
                               "description": "admins name the app they act in"})
        declared = {p["name"].lower() for p in parameters if p.get("in") == "header"}
        if method == "post" and IDEMPOTENCY_HEADER.lower() not in declared:
            parameters.append({
                "name": IDEMPOTENCY_HEADER, "in": "header", "required": access.idempotency == "required",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
                "description": "retries with the same key get the first answer again (Stripe's semantics)",
            })
        if method == "post":
            statuses |= {409, 422}
        if changes:
            statuses.add(409)
    elif has_body:  # anonymous routes with a body carry credentials (sign-in): they are checked and limited
        statuses |= {401, 429, 503}
    if not parameters:
        operation.pop("parameters")
    responses: JSON = operation.setdefault("responses", {})
    for status in sorted(statuses | {int(s) for s in responses if s.isdigit() and int(s) >= 400}):
        documented = responses.setdefault(str(status), {})
        documented["description"] = documented.get("description") or _TITLES.get(status, "Error")
        if documented["description"] == "Validation Error":
            documented["description"] = _TITLES[422]
        documented["content"] = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": f"{_REF}Problem"}}}
        if status in (429, 503):
            documented["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    if isinstance(access, AccessPolicy):
        for code, answer in responses.items():
            if code.startswith("2"):
                answer.setdefault("headers", {}).update({
                    name: {"$ref": f"#/components/headers/{name}"} for name in ("RateLimit-Policy", "RateLimit")
                })


def _unique_schema_names(spec: JSON) -> JSON:
    """``questline__ledger__schemas__GrantIn`` becomes ``LedgerGrantIn`` (and its title too)."""
    schemas: JSON = spec.get("components", {}).get("schemas", {})
    renames: dict[str, str] = {}
    for name in schemas:
        match = _QUALIFIED.match(name)
        if match:
            area = "".join(part.title() for part in match["area"].split("_"))
            renames[name] = f"{area}{match['name']}"
    clash = set(renames.values()) & (set(schemas) - set(renames))
    if clash or len(set(renames.values())) != len(renames):  # pragma: no cover - a naming bug to fix at the source
        raise ValueError(f"schema names collide even when qualified by area: {sorted(clash)}")
    for name, schema in schemas.items():
        # pydantic splits a model whose input and output differ into ``X-Input`` and ``X-Output``
        # under one title; generators name classes by title, so each half gets its own.
        split = re.fullmatch(r"(?P<base>.+)-(?P<half>Input|Output)", name)
        if split:
            schema["title"] = f"{split['base']}{split['half']}"
    if not renames:
        return spec
    text = json.dumps(spec)
    for old, new in renames.items():
        text = text.replace(f'"{_REF}{old}"', f'"{_REF}{new}"')
    renamed: JSON = json.loads(text)
    table = renamed["components"]["schemas"]
    for old, new in renames.items():
        table[new] = table.pop(old)
        table[new]["title"] = new
    renamed["components"]["schemas"] = dict(sorted(table.items()))
    return renamed
