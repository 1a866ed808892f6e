"""Cursor pagination: opaque cursors, pages that never overlap, a bounded limit."""

from __future__ import annotations

import base64

import httpx
import orjson

from tests.conftest import Factory, problem


def cursor_of(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


async def test_pages_cover_everything_once(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    admin = await factory.admin(keys.org_id)  # admins are not held to the server key's budget
    wanted = [f"p{i:02d}" for i in range(7)]
    for pid in reversed(wanted):
        resp = await client.put(f"/v1/players/{pid}/account", headers=admin.headers(keys.app_id), json={})
        assert resp.status_code == 200

    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/players", headers=admin.headers(keys.app_id), params=params)).json()
        pages += 1
        assert len(page["items"]) <= 3
        seen.extend(p["player_id"] for p in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == wanted  # in order, no overlap, nothing missed


async def test_limit_is_bounded_and_cursors_are_checked(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    admin = await factory.admin(keys.org_id)
    h = admin.headers(keys.app_id)
    assert (await client.get("/v1/players", headers=h, params={"limit": 200})).status_code == 200
    for limit in (201, 0, -1, "ten"):
        problem(await client.get("/v1/players", headers=h, params={"limit": limit}), 422, "validation_failed")
    huge = base64.urlsafe_b64encode(b"[" + str(2**70).encode() + b"]").decode()
    for bad in ("!!!", "e30", cursor_of([]), cursor_of({"a": 1}), cursor_of([7]), cursor_of(["a", "b"]),
                cursor_of([[1]]), cursor_of(["x" * 300]), huge):
        problem(await client.get("/v1/players", headers=h, params={"cursor": bad}), 400, "invalid_cursor")
    problem(await client.get("/v1/players", headers=h, params={"cursor": "A" * 600}), 422, "validation_failed")
    # The same rules hold on every paginated list (here: an app's keys).
    problem(await client.get(f"/v1/apps/{keys.app_id}/keys", headers=admin.headers(), params={"cursor": "!!"}), 400,
            "invalid_cursor")
    problem(await client.get(f"/v1/apps/{keys.app_id}/keys", headers=admin.headers(), params={"limit": 500}), 422,
            "validation_failed")
