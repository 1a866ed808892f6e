"""A community's referral links: clicks, visitors, joins and conversion by day (charted) and by member,
over a range of UTC days, and the same as CSV (fetched for the admin: the API needs their token)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from questline.console import charts
from questline.console.session import Route, api, app_page, esc, page, to_login


def _range(request: Request) -> dict[str, str]:
    return {k: request.query_params[k].strip() for k in ("first_day", "last_day") if request.query_params.get(k)}


async def links_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    community = request.query_params.get("community", "").strip()
    calls: dict[str, tuple[str, str, Any]] = {"communities": ("GET", "/v1/communities", {"limit": 200})}
    if community:
        calls["stats"] = ("GET", f"/v1/communities/{esc(community)}/links/analytics", _range(request))
    return await app_page(request, app_id, "links.html", calls, community=community, days=_range(request),
                          charts=charts, by_day=by_day)


async def links_csv(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    community = request.query_params.get("community", "").strip()
    async with api(request, app_id) as engine:
        answer = await engine.call("GET", f"/v1/communities/{esc(community)}/links/analytics",
                                   params={**_range(request), "format": "csv"})
    if answer.status == 401:
        return to_login(request)
    if not answer.ok:
        return page(request, "error.html", answer.status, app_id=app_id, message=answer.problem)
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in community)
    return Response(str(answer.body), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}-links.csv"', "Cache-Control": "no-store"})


def by_day(stats: dict[str, Any], field: str) -> list[tuple[str, int]]:
    return [(str(d["day"])[5:], int(d[field])) for d in stats["by_day"]]


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/links", links_page),
    ("GET", "/console/apps/{app_id}/links.csv", links_csv),
]
