"""Campaigns: the app's campaigns by status, one campaign's spend and impressions as charts, and its
impressions and spend live (``static/campaign.js`` follows ``campaign:<id>`` with the admin's token)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console import charts
from questline.console.paging import Pager
from questline.console.session import SESSION, Route, app_page, esc

PAGE = 50
STATUSES = ("draft", "pending_review", "active", "paused", "rejected", "completed", "cancelled")


async def campaigns_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    wanted = request.query_params.get("status", "")
    pager = Pager.of(request, "status")
    params = pager.params(PAGE, **({"status": wanted} if wanted in STATUSES else {}))
    return await app_page(request, app_id, "campaigns.html", {"campaigns": ("GET", "/v1/campaigns", params)},
                          wanted=wanted, statuses=STATUSES, pager=pager, paged="campaigns")


async def campaign_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    campaign_id = esc(str(request.path_params["campaign_id"]))
    granularity = "hour" if request.query_params.get("by") == "hour" else "day"
    response = await app_page(request, app_id, "campaign.html", {
        "campaign": ("GET", f"/v1/campaigns/{campaign_id}", None),
        "metrics": ("GET", f"/v1/campaigns/{campaign_id}/metrics", {"granularity": granularity}),
    }, granularity=granularity, charts=charts, timeline=timeline_points)
    return response


async def campaign_live_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    campaign_id = str(request.path_params["campaign_id"])
    # As on the other live pages: a WebSocket cannot carry the cookie's token in a header, so the page does.
    return await app_page(request, app_id, "campaign_live.html",
                          {"campaign": ("GET", f"/v1/campaigns/{esc(campaign_id)}", None)},
                          campaign_id=campaign_id, token=request.cookies.get(SESSION, ""), connect=True)


def timeline_points(timeline: list[dict[str, object]], field: str, granularity: str) -> list[tuple[str, int]]:
    """(label, value) per bucket: ``MM-DD`` by day, ``DD HH:00`` by hour."""
    cut = slice(5, 10) if granularity == "day" else slice(8, 13)
    return [(str(p["at"])[cut].replace("T", " ") + ("" if granularity == "day" else ":00"), int(str(p[field])))
            for p in timeline]


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/campaigns", campaigns_page),
    ("GET", "/console/apps/{app_id}/campaigns/{campaign_id}", campaign_page),
    ("GET", "/console/apps/{app_id}/campaigns/{campaign_id}/live", campaign_live_page),
]
