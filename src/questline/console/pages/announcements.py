"""Announcements: the app's list, a new one to the app, a community or a competition (now or at a UTC
time), editing its words or a scheduled one's time, and withdrawing it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from questline.console.engine_api import Answer
from questline.console.paging import Pager
from questline.console.session import Route, api, esc, forbidden, form, page, to_login

KINDS = ("app", "community", "competition")
PAGE = 50  # announcements a page


def _send_at(given: str) -> str | Answer | None:
    """A ``datetime-local`` value read as UTC (the form says so), or None for now."""
    given = given.strip()
    if not given:
        return None
    try:
        when = datetime.fromisoformat(given)
    except ValueError:
        return Answer(422, {"code": "invalid_send_at", "detail": "send at is a date and time, e.g. 2030-01-31T18:00"})
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


async def _render(request: Request, app_id: str, done: Answer | None = None, message: str = "",
                  posted: dict[str, str] | None = None) -> Response:
    pager = Pager.of(request)
    async with api(request, app_id) as engine:
        items = await engine.call("GET", "/v1/announcements", params=pager.params(PAGE))
    if items.status == 401:
        return to_login(request)
    status = 200 if done is None or done.ok else done.status
    return page(request, "announcements.html", status, app_id=app_id, items=items, kinds=KINDS,
                pager=pager.after(items.body),
                error=done.problem if done else "", done=message if done and done.ok else "",
                posted=posted if done and not done.ok else {})


async def announcements_page(request: Request) -> Response:
    return await _render(request, str(request.path_params["app_id"]))


async def create(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    kind = posted.get("kind", "app")
    send_at = _send_at(posted.get("send_at", ""))
    if isinstance(send_at, Answer):
        return await _render(request, app_id, send_at, posted=posted)
    body: dict[str, Any] = {"target": {"kind": kind, "id": posted.get("target_id", "").strip() or None},
                            "title": posted.get("title", ""), "body": posted.get("body", ""), "send_at": send_at}
    async with api(request, app_id) as engine:
        done = await engine.call("POST", "/v1/announcements", json=body)
    if done.status == 401:
        return to_login(request)
    message = f"“{done.body['title']}” is {done.body['status']}." if done.ok else ""
    return await _render(request, app_id, done, message, posted)


async def change(request: Request) -> Response:
    """Save an announcement's edits, or withdraw it."""
    app_id, ann_id = str(request.path_params["app_id"]), str(request.path_params["announcement_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    action = posted.get("action", "")
    done: Answer
    if action == "withdraw":
        async with api(request, app_id) as engine:
            done = await engine.call("POST", f"/v1/announcements/{esc(ann_id)}/withdraw")
    elif action == "save":
        body: dict[str, Any] = {"title": posted.get("title", ""), "body": posted.get("body", "")}
        send_at = _send_at(posted.get("send_at", ""))
        if isinstance(send_at, Answer):
            return await _render(request, app_id, send_at)
        if send_at is not None:
            body["send_at"] = send_at
        async with api(request, app_id) as engine:
            done = await engine.call("PATCH", f"/v1/announcements/{esc(ann_id)}", json=body)
    else:
        done = Answer(422, {"code": "unknown_action", "detail": action})
    if done.status == 401:
        return to_login(request)
    return await _render(request, app_id, done, f"{ann_id}: {action} done.")


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/announcements", announcements_page),
    ("POST", "/console/apps/{app_id}/announcements", create),
    ("POST", "/console/apps/{app_id}/announcements/{announcement_id}", change),
]
