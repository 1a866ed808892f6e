"""Definitions: a kind's list, and one definition edited as JSON."""

from __future__ import annotations

import json
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from questline.console.session import Route, api, app_page, esc, forbidden, form, page, to_login


async def definitions_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    kind = str(request.path_params["kind"])
    return await app_page(request, app_id, "definitions.html", {
        "items": ("GET", f"/v1/definitions/{esc(kind)}", {"limit": 200}),
    }, kind=kind)


async def definition_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    kind = str(request.path_params["kind"])
    key = str(request.path_params["key"])
    async with api(request, app_id) as engine:
        found = await engine.call("GET", f"/v1/definitions/{esc(kind)}/{esc(key)}")
    if found.status == 401:
        return to_login(request)
    body = json.dumps(found.body.get("body", {}), indent=2) if found.ok else "{\n}"
    return page(request, "definition.html", app_id=app_id, kind=kind, key=key, text=body,
                version=found.body.get("version") if found.ok else None, new=found.status == 404)


async def save_definition(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    kind = str(request.path_params["kind"])
    key = str(request.path_params["key"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    text = posted.get("body", "")
    try:
        parsed = json.loads(text)
    except ValueError as bad:
        return page(request, "definition.html", 422, app_id=app_id, kind=kind, key=key, text=text,
                    error=f"not JSON: {bad}")
    async with api(request, app_id) as engine:
        saved = await engine.call("PUT", f"/v1/definitions/{esc(kind)}/{esc(key)}", json=parsed)
    if not saved.ok:
        return page(request, "definition.html", saved.status, app_id=app_id, kind=kind, key=key, text=text,
                    error=saved.problem)
    return RedirectResponse(f"/console/apps/{app_id}/definitions/{quote(kind)}/{quote(key)}?saved=1",
                            status_code=303)


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/definitions/{kind}", definitions_page),
    ("GET", "/console/apps/{app_id}/definitions/{kind}/{key}", definition_page),
    ("POST", "/console/apps/{app_id}/definitions/{kind}/{key}", save_definition),
]
