"""The audit log: every change by a server key or an admin, recorded with the change, readable by owners."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from questline.kit.errors import Conflict
from questline.kit.routing import ClockDep, SessionDep, UnitOfWorkRoute
from questline.players import service as players
from questline.players.schemas import ProfileUpdate
from questline.tenancy.auth import SERVER, Caller, allow
from questline.tenancy.schemas import Role
from tests.conftest import AppKeys, Factory, problem
from tests.ledger.helpers import currency, grant


async def audit(client: httpx.AsyncClient, owner: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    resp = await client.get("/v1/audit", headers=owner, params=params)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def server_key_id(client: httpx.AsyncClient, owner: dict[str, str], keys: AppKeys) -> str:
    listed = (await client.get(f"/v1/apps/{keys.app_id}/keys", headers={"Authorization": owner["Authorization"]}))
    return str(next(k["id"] for k in listed.json()["items"] if k["kind"] == "server"))


async def test_changes_by_keys_and_admins_are_recorded_with_who_what_where(client: httpx.AsyncClient,
                                                                           factory: Factory) -> None:
    keys = await factory.app()
    owner = await factory.admin(keys.org_id, Role.OWNER)
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    await currency(client, keys)
    granted = await grant(client, keys, "ann", 50, key="grant-1")
    assert granted.status_code == 201
    adjusted = await client.post("/v1/ledger/adjustments", json={"player_id": "ann", "currency": "points",
                                                                  "amount": -20, "reason": "refund of order 7"},
                                 headers={**admin.headers(keys.app_id), "Idempotency-Key": "adj-1"})
    assert adjusted.status_code == 201, adjusted.text
    made_key = await client.post(f"/v1/apps/{keys.app_id}/keys", json={"kind": "server", "name": "ci"},
                                 headers={**admin.headers(), "Idempotency-Key": "key-1"})
    assert made_key.status_code == 201, made_key.text

    entries = await audit(client, owner.headers(keys.app_id))
    assert [e["action"] for e in entries] == ["tenancy_create_key", "ledger_adjust", "ledger_grant",
                                              "ledger_put_currency"]
    key_made, adjustment, grant_entry, put_currency = entries
    server = await server_key_id(client, owner.headers(), keys)
    assert (grant_entry["actor_kind"], grant_entry["actor_id"], grant_entry["status"]) == ("server", server, 201)
    assert grant_entry["target"] == {"id": granted.json()["id"]}
    assert grant_entry["request_id"] == granted.headers["x-request-id"] and grant_entry["address"]
    assert (adjustment["actor_kind"], adjustment["actor_id"]) == ("admin", admin.admin_id)
    assert adjustment["target"]["id"] == adjusted.json()["id"] and adjustment["app_id"] == keys.app_id
    # An admin-account route names the app in its path: the entry is the app's, with its organization.
    assert (key_made["app_id"], key_made["org_id"]) == (keys.app_id, keys.org_id)
    assert key_made["target"] == {"app_id": keys.app_id, "id": made_key.json()["id"]}
    assert put_currency["target"] == {"code": "points"} and put_currency["status"] in (200, 201)

    # Filters by actor and by action, newest first, cursor paged.
    assert [e["action"] for e in await audit(client, owner.headers(keys.app_id), actor=admin.admin_id)] == [
        "tenancy_create_key", "ledger_adjust"]
    assert [e["id"] for e in await audit(client, owner.headers(keys.app_id), action="ledger_grant")] == [
        grant_entry["id"]]
    first = (await client.get("/v1/audit", headers=owner.headers(keys.app_id), params={"limit": 3})).json()
    rest = await audit(client, owner.headers(keys.app_id), limit=3, cursor=first["next_cursor"])
    assert [e["id"] for e in first["items"] + rest] == [e["id"] for e in entries]


async def test_what_is_not_recorded(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    owner = (await factory.admin(keys.org_id, Role.OWNER)).headers(keys.app_id)
    alice = await factory.player_token(keys, "alice")  # minting a token: opted out
    await currency(client, keys)
    before = await audit(client, owner)
    # A player acting for themself; event ingest (the log of its own); a check sent as POST.
    assert (await client.patch("/v1/players/alice/account", headers=alice, json={"display_name": "A"})).is_success
    assert (await client.post("/v1/events", headers=keys.server,
                              json={"id": "e1", "player_id": "alice", "type": "won"})).status_code == 202
    assert (await client.post("/v1/gating/check", headers=keys.server,
                              json={"player_id": "alice", "requirement": {}})).status_code == 200
    # Refused changes: nothing changed, nothing recorded.
    problem(await grant(client, keys, "alice", 0), 422)
    problem(await grant(client, keys, "alice", 5, code="nope"), 422, "unknown_currency")
    # A replayed grant is one change, one entry.
    assert (await grant(client, keys, "alice", 5, key="same")).status_code == 201
    assert (await grant(client, keys, "alice", 5, key="same")).headers["idempotent-replayed"] == "true"
    after = await audit(client, owner)
    assert [e["action"] for e in after[: len(after) - len(before)]] == ["ledger_grant"]


async def test_only_the_owners_read_it_and_only_their_apps(client: httpx.AsyncClient, factory: Factory) -> None:
    keys, other = await factory.app(), await factory.app()
    owner = await factory.admin(keys.org_id, Role.OWNER)
    await currency(client, keys)
    await currency(client, other)
    problem(await client.get("/v1/audit", headers=(await factory.admin(keys.org_id, Role.ADMIN)).headers(keys.app_id)),
            403, "insufficient_role")
    problem(await client.get("/v1/audit", headers=keys.server), 403, "caller_not_allowed")
    problem(await client.get("/v1/audit", headers=owner.headers(other.app_id)), 404, "app_not_found")
    seen = {e["app_id"] for e in await audit(client, owner.headers(keys.app_id))}
    assert seen == {keys.app_id}


async def test_organization_actions_show_in_every_app_of_the_organization(client: httpx.AsyncClient,
                                                                         factory: Factory) -> None:
    owner = await factory.admin()
    org = await client.post("/v1/orgs", headers={**owner.headers(), "Idempotency-Key": uuid.uuid4().hex},
                            json={"name": "Audited Org"})
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    app = await client.post(f"/v1/orgs/{org_id}/apps", headers={**owner.headers(), "Idempotency-Key": "app"},
                            json={"name": "Audited Game"})
    assert app.status_code == 201, app.text
    app_id = app.json()["app"]["id"] if "app" in app.json() else app.json()["id"]
    entries = await audit(client, owner.headers(app_id))
    assert [(e["action"], e["org_id"]) for e in entries] == [("tenancy_create_app", org_id),
                                                             ("tenancy_create_org", org_id)]


# The entry is written in the change's own transaction: a change that fails to commit leaves none.

@pytest.fixture
async def engine(engine: FastAPI) -> FastAPI:
    router = APIRouter(prefix="/v1/test-audit", route_class=UnitOfWorkRoute)

    @router.post("/half", status_code=201)
    async def half(caller: Caller = allow(SERVER), session: SessionDep = None,  # type: ignore[assignment]
                   clock: ClockDep = None) -> dict[str, str]:  # type: ignore[assignment]
        await players.upsert_player(session, clock, caller.app, "half", ProfileUpdate(display_name="written"))
        await session.flush()
        raise Conflict("the change is refused after it was written", code="late_refusal")

    engine.include_router(router)
    return engine


async def test_a_change_rolled_back_leaves_no_entry(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    owner = (await factory.admin(keys.org_id, Role.OWNER)).headers(keys.app_id)
    problem(await client.post("/v1/test-audit/half", headers=keys.server), 409, "late_refusal")
    problem(await client.get("/v1/players/half/account", headers=keys.server), 404)
    assert await audit(client, owner) == []
