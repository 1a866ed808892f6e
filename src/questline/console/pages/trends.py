"""Trends: a stat added up over every player per day, week or month, charted (a ``count`` stat of an
event type is that event over time)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console import charts
from questline.console.session import Route, app_page, esc

PERIODS = ("day", "week", "month")


async def trends_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    stat = request.query_params.get("stat", "").strip()
    period = request.query_params.get("period", "day")
    period = period if period in PERIODS else "day"
    calls: dict[str, tuple[str, str, dict[str, object]]] = {
        "stats": ("GET", "/v1/definitions/stat", {"limit": 200})}
    if stat:
        calls["series"] = ("GET", f"/v1/stats/{esc(stat)}/totals", {"period": period, "limit": 30})
    return await app_page(request, app_id, "trends.html", calls, stat=stat, period=period, periods=PERIODS,
                          charts=charts, pairs=pairs)


def pairs(items: list[dict[str, object]]) -> list[tuple[str, int]]:
    return [(str(item["period_key"]), int(str(item["total"]))) for item in items]


ROUTES: list[Route] = [("GET", "/console/apps/{app_id}/trends", trends_page)]
