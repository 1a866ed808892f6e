"""Home (the admin's organizations and their apps) and an app's overview."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console.session import Route, api, app_page, page, to_login


async def home(request: Request) -> Response:
    async with api(request) as engine:
        me = await engine.call("GET", "/v1/auth/me")
        if me.status == 401:
            return to_login(request)
        orgs = []
        for org in me.body.get("organizations", []):
            apps = await engine.call("GET", f"/v1/orgs/{org['id']}/apps", params={"limit": 200})
            orgs.append({**org, "apps": apps.body.get("items", []) if apps.ok else []})
    return page(request, "home.html", me=me.body, orgs=orgs)


async def app_home(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    return await app_page(request, app_id, "app.html", {
        "kinds": ("GET", "/v1/definition-kinds", None),
        "claims": ("GET", "/v1/challenge-claims", {"status": "pending", "limit": 5}),
    })


ROUTES: list[Route] = [
    ("GET", "/console", home),
    ("GET", "/console/apps/{app_id}", app_home),
]
