"""Cursor pagination: opaque cursors, pages that never overlap, a bounded limit."""

from __future__ import annotations

import base64

import httpx
import orjson

from questline.kit.runtime import Runtime
from questline.pipeline.worker import drain
from questline.tenancy.schemas import Role
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


async def walk(client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int) -> tuple[list[object], int]:
    """Every item of a paged list, following ``next_cursor`` with this page size; and the pages read."""
    items: list[object] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        resp = await client.get(url, headers=headers, params=params)
        assert resp.status_code == 200, f"{url}: {resp.text}"
        page = resp.json()
        assert len(page["items"]) <= limit, url
        items.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages <= 500, f"{url}: the cursors go round in circles"


async def test_a_page_of_one_walks_every_list_without_skipping_or_repeating(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    """``limit=1`` on the paged lists of several areas gives, one page at a time, exactly the
    list one large page gives: the same items in the same order, one per page. The fake clock
    stands still, so rows made one after another share their timestamps: the cursors must break
    those ties, not skip or repeat the rows that share one."""
    keys = await factory.app()
    owner = await factory.admin(keys.org_id, Role.OWNER)
    admin_app = owner.headers(keys.app_id)
    for pid in ("p04", "p01", "p03", "p00", "p02"):
        assert (await client.put(f"/v1/players/{pid}/account", headers=keys.server, json={})).status_code == 200
    for name in ("Second", "Third", "Fourth"):
        resp = await client.post(f"/v1/orgs/{keys.org_id}/apps", headers=owner.headers(), json={"name": name})
        assert resp.status_code == 201, resp.text
    for name in ("ci", "ops"):
        resp = await client.post(f"/v1/apps/{keys.app_id}/keys", headers=owner.headers(),
                                 json={"kind": "server", "name": name})
        assert resp.status_code == 201, resp.text
    stats = {f"s{i}": {"event_type": "match.won"} for i in range(4)}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": {"stat": stats}})
    assert resp.status_code == 200, resp.text
    for kind in ("match.lost", "match.drawn", "match.won"):
        resp = await client.put("/v1/definitions/stat/s0", headers=keys.server, json={"event_type": kind})
        assert resp.status_code in (200, 201), resp.text
    assert (await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})).status_code in (
        200, 201)
    for n in range(4):
        resp = await client.post("/v1/ledger/grants", headers={**keys.server, "Idempotency-Key": f"g{n}"},
                                 json={"player_id": "p00", "currency": "points", "amount": 10 + n})
        assert resp.status_code == 201, resp.text
    events = [{"id": f"e{n}", "player_id": "p00", "type": "match.won"} for n in range(5)]
    assert (await client.post("/v1/events", headers=keys.server, json={"events": events})).status_code == 202
    await drain(runtime)

    lists = {
        "/v1/players": keys.server,
        f"/v1/orgs/{keys.org_id}/apps": owner.headers(),
        f"/v1/apps/{keys.app_id}/keys": owner.headers(),
        "/v1/definitions/stat": keys.server,
        "/v1/definitions/stat/s0/versions": keys.server,
        "/v1/players/p00/transactions": keys.server,
        "/v1/players/p00/events": keys.server,
        "/v1/outbox": keys.server,
        "/v1/audit": admin_app,
    }
    for url, headers in lists.items():
        whole, pages = await walk(client, url, headers, 200)
        assert pages == 1 and len(whole) >= 3, (url, whole)
        one_by_one, pages = await walk(client, url, headers, 1)
        assert one_by_one == whole, url  # nothing skipped, nothing repeated, the same order
        assert pages in (len(whole), len(whole) + 1), url  # one item a page (a last page may be empty)
