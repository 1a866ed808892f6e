"""One competition's standings, live: the page's own script (``static/standings.js``) listens on the
``competition:<id>`` channel with the signed-in admin's token and reads the top ten again when it moves."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console.session import SESSION, Route, app_page, esc


async def standings_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    competition_id = str(request.path_params["competition_id"])
    calls = {"competition": ("GET", f"/v1/competitions/{esc(competition_id)}", None),
             "standings": ("GET", f"/v1/competitions/{esc(competition_id)}/leaderboard", {"limit": 10})}
    # As on the live page: the WebSocket cannot carry the cookie's token in a header, so the page does.
    return await app_page(request, app_id, "standings.html", calls, competition_id=competition_id,
                          token=request.cookies.get(SESSION, ""), connect=True)


ROUTES: list[Route] = [("GET", "/console/apps/{app_id}/competitions/{competition_id}/live", standings_page)]
