"""An app's keys: make one (its secret shown once), rotate, revoke."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console.engine_api import Answer
from questline.console.session import Route, api, app_page, esc, forbidden, form, page


async def keys_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    return await app_page(request, app_id, "keys.html", {"keys": ("GET", f"/v1/apps/{app_id}/keys", None)})


async def keys_action(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    action, key_id = posted.get("action", "create"), posted.get("key_id", "")
    async with api(request, app_id) as engine:
        if action == "create":
            done = await engine.call("POST", f"/v1/apps/{app_id}/keys",
                                     json={"kind": posted.get("kind", "server"), "name": posted.get("name") or None})
        elif action in ("rotate", "revoke"):
            done = await engine.call("POST", f"/v1/apps/{app_id}/keys/{esc(key_id)}/{action}")
        else:
            done = Answer(422, {"code": "unknown_action", "detail": action})
        keys = await engine.call("GET", f"/v1/apps/{app_id}/keys")
    secret = done.body.get("secret") if done.ok and isinstance(done.body, dict) else None
    return page(request, "keys.html", 200 if done.ok else done.status, app_id=app_id, keys=keys,
                error=done.problem, secret=secret)


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/keys", keys_page),
    ("POST", "/console/apps/{app_id}/keys", keys_action),
]
