"""Webhooks: endpoints (add one, its secret shown once; disable, enable), each one's delivery log
with what was sent and every attempt, and a redeliver button; the app's dead letters."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from questline.console.engine_api import Answer
from questline.console.paging import Pager
from questline.console.session import Route, api, app_page, esc, forbidden, form, to_login

STATUSES = ("pending", "delivered", "dead")
PAGE = 50


async def webhooks_page(request: Request, status: int = 200, error: str = "", created: Answer | None = None
                        ) -> Response:
    app_id = str(request.path_params["app_id"])
    endpoints, dead = Pager.of(request), Pager.of(request, prefix="dead_")
    response = await app_page(request, app_id, "webhooks.html", {
        "endpoints": ("GET", "/v1/webhooks", endpoints.params(PAGE)),
        "dead": ("GET", "/v1/webhooks/dead-letters", dead.params(PAGE)),
    }, status, error=error, created=created.body if created is not None and created.ok else None,
        pager=endpoints, paged="endpoints", dead_pager=dead)
    return response


async def webhooks_action(request: Request) -> Response:
    """Add an endpoint (``action=create``), or disable/enable one."""
    app_id = str(request.path_params["app_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    action = posted.get("action", "create")
    async with api(request, app_id) as engine:
        if action == "create":
            types = [t.strip() for t in posted.get("event_types", "").replace(",", " ").split() if t.strip()]
            done = await engine.call("POST", "/v1/webhooks", json={
                "url": posted.get("url", ""), "description": posted.get("description", ""), "event_types": types})
        elif action in ("disable", "enable"):
            done = await engine.call("PATCH", f"/v1/webhooks/{esc(posted.get('endpoint_id', ''))}",
                                     json={"enabled": action == "enable"})
        else:
            done = Answer(422, {"code": "unknown_action", "detail": action})
    if done.status == 401:
        return to_login(request)
    return await webhooks_page(request, 200 if done.ok else done.status, done.problem,
                               done if action == "create" else None)


async def endpoint_page(request: Request, status: int = 200, error: str = "", note: str = "") -> Response:
    app_id = str(request.path_params["app_id"])
    endpoint_id = esc(str(request.path_params["endpoint_id"]))
    wanted = request.query_params.get("status", "")
    pager = Pager.of(request, "status")
    params = pager.params(PAGE, **({"status": wanted} if wanted in STATUSES else {}))
    return await app_page(request, app_id, "webhook.html", {
        "endpoint": ("GET", f"/v1/webhooks/{endpoint_id}", None),
        "deliveries": ("GET", f"/v1/webhooks/{endpoint_id}/deliveries", params),
    }, status, error=error, note=note, wanted=wanted, statuses=STATUSES, pager=pager, paged="deliveries")


async def redeliver(request: Request) -> Response:
    """Deliver a message again now (from the first step of the retry schedule)."""
    app_id = str(request.path_params["app_id"])
    endpoint_id = str(request.path_params["endpoint_id"])
    delivery_id = str(request.path_params["delivery_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    async with api(request, app_id) as engine:
        done = await engine.call("POST", f"/v1/webhooks/{esc(endpoint_id)}/deliveries/{esc(delivery_id)}/retry")
    if done.status == 401:
        return to_login(request)
    if not done.ok:
        return await endpoint_page(request, done.status, done.problem)
    return RedirectResponse(f"/console/apps/{app_id}/webhooks/{esc(endpoint_id)}?redelivered={esc(delivery_id)}",
                            status_code=303)


async def delivery_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    endpoint_id = esc(str(request.path_params["endpoint_id"]))
    delivery_id = esc(str(request.path_params["delivery_id"]))
    return await app_page(request, app_id, "delivery.html", {
        "delivery": ("GET", f"/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}", None),
    })


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/webhooks", webhooks_page),
    ("POST", "/console/apps/{app_id}/webhooks", webhooks_action),
    ("GET", "/console/apps/{app_id}/webhooks/{endpoint_id}", endpoint_page),
    ("GET", "/console/apps/{app_id}/webhooks/{endpoint_id}/deliveries/{delivery_id}", delivery_page),
    ("POST", "/console/apps/{app_id}/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", redeliver),
]
