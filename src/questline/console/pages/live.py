"""The live view: events per second, the backlog and the relay's lag from ``admin:monitor``, and a
leaderboard whose standings update as it moves. The page's own small script (``static/live.js``)
listens on the engine's WebSocket with the signed-in admin's token."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console.session import SESSION, Route, app_page, esc


async def live_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    board = request.query_params.get("board", "").strip()
    calls = {"boards": ("GET", "/v1/definitions/leaderboard", {"limit": 200})}
    if board:
        calls["standings"] = ("GET", f"/v1/leaderboards/{esc(board)}", {"limit": 10})
    # The page's script needs the admin's token for the WebSocket (a browser cannot send headers
    # there); the cookie itself stays HttpOnly, and the script is the console's own, under CSP.
    return await app_page(request, app_id, "live.html", calls, board=board,
                          token=request.cookies.get(SESSION, ""), connect=True)


ROUTES: list[Route] = [("GET", "/console/apps/{app_id}/live", live_page)]
