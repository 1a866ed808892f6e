"""Chat moderation: the open reports (the message, who reported it, its author) with their actions
(delete the message, mute or ban its author for N minutes, dismiss), and the app's word filter."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from questline.console.engine_api import Answer, EngineApi
from questline.console.session import Route, api, esc, forbidden, form, page, to_login

ACTIONS = ("delete", "mute", "ban", "dismiss")
QUEUE = {"status": "open", "limit": 100}
HISTORY = 200  # a room's newest messages read to show a reported message's text


async def _state(engine: EngineApi) -> dict[str, Any]:
    """The open reports with their messages' text, and the chat settings."""
    reports = await engine.call("GET", "/v1/chat/reports", params=QUEUE)
    texts: dict[str, str | None] = {}
    if reports.ok:
        for room in sorted({r["room"] for r in reports.body["items"]}):
            messages = await engine.call("GET", f"/v1/chat/{esc(room)}/messages", params={"limit": HISTORY})
            if messages.ok:
                texts.update({m["id"]: m["body"] for m in messages.body["items"]})
    settings = await engine.call("GET", "/v1/chat/settings")
    return {"reports": reports, "texts": texts, "settings": settings}


async def moderation_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    async with api(request, app_id) as engine:
        state = await _state(engine)
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
        state = await _state(engine)
    return page(request, "moderation.html", 200 if done.ok else done.status, app_id=app_id, actions=ACTIONS,
                error=done.problem, done=f"{report_id}: {action} done." if done.ok else "", **state)


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
    ("POST", "/console/apps/{app_id}/moderation/{report_id}", resolve),
]
