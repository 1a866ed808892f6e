"""Chat moderation: the open reports (the message, who reported it, its author) with their actions
(delete the message, mute or ban its author for N minutes, dismiss); a room's mutes and bans in force,
each with a Lift button; and the app's word filter."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from questline.console.engine_api import Answer, EngineApi
from questline.console.paging import Pager
from questline.console.session import Route, api, esc, forbidden, form, page, to_login

ACTIONS = ("delete", "mute", "ban", "dismiss")
KINDS = ("mute", "ban")
ROOM = re.compile(r"(community|competition):[A-Za-z0-9_-]{1,40}")  # as the chat API's rooms
PAGE = 50  # open reports a page
HISTORY = 200  # a room's newest messages read to show a reported message's text


def _room(given: str | None) -> str:
    """A room named in a query or form (``community:…`` or ``competition:…``), else empty."""
    given = (given or "").strip()
    return given if ROOM.fullmatch(given) else ""


async def _state(engine: EngineApi, room: str = "", pager: Pager | None = None) -> dict[str, Any]:
    """A page of the open reports with their messages' text, the chat settings, and ``room``'s mutes and
    bans (after an action: the first page of reports again)."""
    pager = pager or Pager()
    reports = await engine.call("GET", "/v1/chat/reports", params=pager.params(PAGE, status="open"))
    pager.after(reports.body)
    texts: dict[str, str | None] = {}
    if reports.ok:
        for reported in sorted({r["room"] for r in reports.body["items"]}):
            messages = await engine.call("GET", f"/v1/chat/{esc(reported)}/messages", params={"limit": HISTORY})
            if messages.ok:
                texts.update({m["id"]: m["body"] for m in messages.body["items"]})
    settings = await engine.call("GET", "/v1/chat/settings")
    held = await engine.call("GET", f"/v1/chat/{esc(room)}/restrictions") if room else None
    rooms = sorted({r["room"] for r in reports.body["items"]} | ({room} if room else set())) if reports.ok else []
    return {"reports": reports, "texts": texts, "settings": settings, "room": room, "restrictions": held,
            "rooms": rooms, "pager": pager}


async def moderation_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    async with api(request, app_id) as engine:
        state = await _state(engine, _room(request.query_params.get("room")), Pager.of(request, "room"))
    if state["reports"].status == 401:
        return to_login(request)
    return page(request, "moderation.html", app_id=app_id, actions=ACTIONS, **state)


def _minutes(posted: dict[str, str]) -> int | Answer | None:
    given = posted.get("minutes", "").strip()
    if not given:
        return None  # until lifted
    if not given.isdigit() or int(given) < 1:
        return Answer(422, {"code": "invalid_minutes", "detail": "minutes is a whole number of at least 1"})
    return int(given)


async def resolve(request: Request) -> Response:
    app_id, report_id = str(request.path_params["app_id"]), str(request.path_params["report_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    action = posted.get("action", "")
    minutes = _minutes(posted) if action in ("mute", "ban") else None
    async with api(request, app_id) as engine:
        if action not in ACTIONS:
            done = Answer(422, {"code": "unknown_action", "detail": action})
        elif isinstance(minutes, Answer):
            done = minutes
        else:
            body: dict[str, Any] = {"action": action, "note": posted.get("note") or None}
            if minutes is not None:
                body["seconds"] = minutes * 60
            done = await engine.call("POST", f"/v1/chat/reports/{esc(report_id)}/resolve", json=body)
        if done.status == 401:
            return to_login(request)
        # After a mute or ban, the room's mutes and bans are shown, the new one with its Lift button.
        room = str(done.body.get("room", "")) if done.ok and isinstance(done.body, dict) else ""
        state = await _state(engine, _room(room))
    return page(request, "moderation.html", 200 if done.ok else done.status, app_id=app_id, actions=ACTIONS,
                error=done.problem, done=f"{report_id}: {action} done." if done.ok else "", **state)


async def lift(request: Request) -> Response:
    """Lift a player's mute or ban in a room (``DELETE /v1/chat/<room>/restrictions/<player>?kind=``:
    an admin's, audited like every change through the API)."""
    app_id = str(request.path_params["app_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    room, player, kind = _room(posted.get("room")), posted.get("player_id", ""), posted.get("kind", "")
    async with api(request, app_id) as engine:
        if not room:
            done = Answer(422, {"code": "unknown_room", "detail": "name the room: community:<id> or competition:<id>"})
        elif kind not in KINDS:
            done = Answer(422, {"code": "unknown_kind", "detail": "mute or ban"})
        else:
            done = await engine.call("DELETE", f"/v1/chat/{esc(room)}/restrictions/{esc(player)}",
                                     params={"kind": kind})
        if done.status == 401:
            return to_login(request)
        state = await _state(engine, room)
    return page(request, "moderation.html", 200 if done.ok else done.status, app_id=app_id, actions=ACTIONS,
                error=done.problem, done=f"{player}'s {kind} in {room} is lifted." if done.ok else "", **state)


async def words(request: Request) -> Response:
    """Replace the blocked words (one per line); the other chat settings stay as they are."""
    app_id = str(request.path_params["app_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    blocked = [w.strip() for w in posted.get("blocked_words", "").splitlines() if w.strip()]
    async with api(request, app_id) as engine:
        current = await engine.call("GET", "/v1/chat/settings")
        if current.ok:
            kept = {k: current.body[k] for k in ("max_length", "rate_count", "rate_seconds")}
            done = await engine.call("PUT", "/v1/chat/settings", json={**kept, "blocked_words": blocked})
        else:
            done = current
        if done.status == 401:
            return to_login(request)
        state = await _state(engine)
    return page(request, "moderation.html", 200 if done.ok else done.status, app_id=app_id, actions=ACTIONS,
                error=done.problem, done="The word filter is saved." if done.ok else "", **state)


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/moderation", moderation_page),
    ("POST", "/console/apps/{app_id}/moderation/words", words),
    ("POST", "/console/apps/{app_id}/moderation/lift", lift),
    ("POST", "/console/apps/{app_id}/moderation/{report_id}", resolve),
]
