"""Retention: weekly cohorts (players by the week they were first seen) and the share of each still
sending events in every later week, as a heat table (``GET /v1/events/retention``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console.session import Route, app_page

SPANS = (4, 8, 12, 26)


async def retention_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    wanted = request.query_params.get("weeks", "8")
    weeks = int(wanted) if wanted.isdigit() and int(wanted) in SPANS else 8
    return await app_page(request, app_id, "retention.html",
                          {"retention": ("GET", "/v1/events/retention", {"weeks": weeks})},
                          weeks=weeks, spans=SPANS, heat=heat)


def heat(percent: float) -> str:
    """A CSS class by tenths of the share (an inline style would break the pages' style policy)."""
    return f"heat-{min(int(percent // 10), 10)}"


ROUTES: list[Route] = [("GET", "/console/apps/{app_id}/retention", retention_page)]
