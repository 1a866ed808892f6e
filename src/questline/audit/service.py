"""The audit log's rules: what is recorded (at the request edge), and who may read it.

``record_request`` is an edge hook (``kit.routing.EdgeHook``): the request edge calls it for
every successful state-changing request, inside that request's transaction, so an entry exists
exactly when the change does. It records requests of the trusted callers (server keys and
admins), identified by the route's operation; a route opts out with ``{"x-audit": false}``
in its ``openapi_extra`` when it changes nothing worth auditing (event ingest: the events are
their own log; minting player tokens; read-only checks sent as POST).
"""

from __future__ import annotations

from datetime import datetime

import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from questline.audit import repository as repo
from questline.audit.models import AuditEntry
from questline.kit.errors import request_id_of
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.routing import RequestUnit, operation_id
from questline.kit.runtime import Runtime
from questline.tenancy import service as tenancy
from questline.tenancy.auth import Caller


def install(runtime: Runtime) -> None:
    if record_request not in runtime.edge_hooks:
        runtime.edge_hooks.append(record_request)


async def record_request(unit: RequestUnit, request: Request, route: APIRoute, response: Response) -> None:
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None or not caller.is_trusted or (route.openapi_extra or {}).get("x-audit") is False:
        return
    target = {name: str(value) for name, value in request.path_params.items()}
    created = _created_id(response)
    if created is not None:
        target["id"] = created
    app_id = caller.app_id or target.get("app_id") or _prefixed(created, "app_")
    org_id = caller.org_id or target.get("org_id") or _prefixed(created, "org_")
    session = unit.session
    if org_id is None and app_id is not None:
        app = await tenancy.find_app(session, app_id)
        org_id = app.org_id if app is not None else None
    await repo.insert(session, {
        "app_id": app_id, "org_id": org_id, "actor_kind": caller.kind.value,
        "actor_id": caller.key_id or caller.admin_id or caller.identity, "action": operation_id(route),
        "target": target, "status": response.status_code,
        "address": request.client.host if request.client else None,
        "request_id": request_id_of(request) or "", "created_at": unit.runtime.clock.now(),
    })


def _created_id(response: Response) -> str | None:
    """The ``id`` of what a 201 created, when its JSON reply names one."""
    if response.status_code != 201 or not (response.media_type or "").endswith("json"):
        return None
    try:
        body = orjson.loads(bytes(response.body))
    except (orjson.JSONDecodeError, AttributeError):
        return None
    found = body.get("id") if isinstance(body, dict) else None
    return found if isinstance(found, str) else None


def _prefixed(value: str | None, prefix: str) -> str | None:
    return value if value is not None and value.startswith(prefix) else None


async def entries(session: AsyncSession, caller: Caller, *, actor: str | None, action: str | None,
                  paging: PageParams) -> Page[AuditEntry]:
    rows = await repo.page(session, caller.app, caller.org_id, actor=actor, action=action,
                           before=paging.after_int(), limit=paging.limit)
    return build_page(list(rows), paging.limit, lambda entry: [entry.id])


async def record_step(session: AsyncSession, *, app_id: str, actor_kind: str, actor_id: str, action: str,
                      target: dict[str, str], now: datetime) -> None:
    """Record a domain step (e.g. ``withdrawal.requested``) in the audit log, in the caller's transaction.

    For steps no trusted request records by itself (a streamer's request, a provider's webhook) and for
    the business meaning of those that one does.
    """
    app = await tenancy.find_app(session, app_id)
    await repo.insert(session, {
        "app_id": app_id, "org_id": app.org_id if app is not None else None, "actor_kind": actor_kind[:16],
        "actor_id": actor_id[:64], "action": action[:100], "target": target, "status": 200, "address": None,
        "request_id": "", "created_at": now,
    })
