"""Progression: how the players who earned XP on a track spread over its levels and over total XP, as
bar charts (``GET /v1/progression/tracks/{track}/distribution``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console import charts
from questline.console.session import Route, app_page, esc


async def progression_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    track = request.query_params.get("track", "").strip()
    calls: dict[str, tuple[str, str, dict[str, object] | None]] = {
        "tracks": ("GET", "/v1/definitions/xp_track", {"limit": 200})}
    if track:
        calls["spread"] = ("GET", f"/v1/progression/tracks/{esc(track)}/distribution", {"buckets": 12})
    return await app_page(request, app_id, "progression.html", calls, track=track, charts=charts,
                          level_bars=level_bars, xp_bars=xp_bars)


def level_bars(levels: list[dict[str, object]]) -> list[tuple[str, int]]:
    return [(f"L{item['level']}", int(str(item["players"]))) for item in levels]


def xp_bars(buckets: list[dict[str, object]]) -> list[tuple[str, int]]:
    return [(f"{int(str(b['from_xp'])):,}", int(str(b["players"]))) for b in buckets]


ROUTES: list[Route] = [("GET", "/console/apps/{app_id}/progression", progression_page)]
