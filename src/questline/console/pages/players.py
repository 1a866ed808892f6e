"""Players: the list, a player's state, a balance adjustment with its reason, export and erasure."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from questline.console.engine_api import Answer
from questline.console.paging import Pager
from questline.console.session import Route, api, app_page, esc, forbidden, form, page, to_login

SHOWN_ROWS = 25  # per table; the export has them all


async def players_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    q = request.query_params.get("q", "").strip()
    pager = Pager.of(request, "q")
    params = pager.params(50, **({"q": q} if q else {}))
    return await app_page(request, app_id, "players.html", {"players": ("GET", "/v1/players", params)}, q=q,
                          pager=pager, paged="players")


async def player_page(request: Request, status: int = 200, error: str = "") -> Response:
    app_id = str(request.path_params["app_id"])
    player_id = str(request.path_params["player_id"])
    pid = esc(player_id)
    return await app_page(request, app_id, "player.html", {
        "profile": ("GET", f"/v1/players/{pid}", None),
        "transactions": ("GET", f"/v1/players/{pid}/transactions", {"limit": 20}),
        "achievements": ("GET", f"/v1/players/{pid}/achievements", None),
        "inventory": ("GET", f"/v1/players/{pid}/inventory", None),
        # Everything else held about the player (stats, progress, claims, memberships, …), area by area.
        "held": ("GET", f"/v1/players/{pid}/export", None),
    }, status, player_id=player_id, error=error, shown=SHOWN_ROWS)


async def player_action(request: Request) -> Response:
    """A balance adjustment with its reason, or the player's erasure (the id typed again to confirm)."""
    app_id = str(request.path_params["app_id"])
    player_id = str(request.path_params["player_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    pid = esc(player_id)
    async with api(request, app_id) as engine:
        if posted.get("action") == "erase":
            if posted.get("confirm") != player_id:
                done = Answer(422, {"code": "not_confirmed", "detail": "type the player's id to confirm erasure"})
            else:
                done = await engine.call("DELETE", f"/v1/players/{pid}")
        else:
            try:
                amount = int(posted.get("amount", ""))
            except ValueError:
                amount = 0
            done = await engine.call("POST", "/v1/ledger/adjustments", json={
                "player_id": player_id, "currency": posted.get("currency", ""), "amount": amount,
                "reason": posted.get("reason", "")})
    if not done.ok:
        return await player_page(request, done.status, done.problem)
    note = "erased" if posted.get("action") == "erase" else "adjusted"
    return RedirectResponse(f"/console/apps/{app_id}/players/{pid}?done={note}", status_code=303)


async def player_export(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    player_id = str(request.path_params["player_id"])
    async with api(request, app_id) as engine:
        found = await engine.call("GET", f"/v1/players/{esc(player_id)}/export")
    if found.status == 401:
        return to_login(request)
    if not found.ok:
        return page(request, "error.html", found.status, message=found.problem)
    return Response(json.dumps(found.body, indent=2), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="player-{esc(player_id)}.json"',
        "Cache-Control": "no-store"})


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/players", players_page),
    ("GET", "/console/apps/{app_id}/players/{player_id}", player_page),
    ("POST", "/console/apps/{app_id}/players/{player_id}", player_action),
    ("GET", "/console/apps/{app_id}/players/{player_id}/export", player_export),
]
