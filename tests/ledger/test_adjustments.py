from __future__ import annotations

import httpx

from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem
from tests.ledger.helpers import balance, count_rows, currency, grant, verify


async def test_admins_adjust_balances_and_are_recorded(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await grant(client, keys, "alice", 100)
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    headers = {**admin.headers(keys.app_id), "Idempotency-Key": "adj-1"}

    up = await client.post("/v1/ledger/adjustments", headers=headers,
                           json={"player_id": "alice", "currency": "points", "amount": 25,
                                 "reason": "support ticket #42: missing reward"})
    assert up.status_code == 201, up.text
    assert up.json()["kind"] == "adjustment" and up.json()["actor"] == admin.admin_id
    assert up.json()["description"] == "support ticket #42: missing reward"
    down = await client.post("/v1/ledger/adjustments", headers={**headers, "Idempotency-Key": "adj-2"},
                             json={"player_id": "alice", "currency": "points", "amount": -60, "reason": "chargeback"})
    assert down.status_code == 201, down.text
    assert await balance(client, keys, "alice") == 65

    history = (await client.get("/v1/players/alice/transactions", headers=keys.server)).json()
    assert [(e["kind"], e["amount"], e["actor"]) for e in history["items"]] == [
        ("adjustment", -60, admin.admin_id), ("adjustment", 25, admin.admin_id), ("credit", 100, None),
    ]
    assert await verify(runtime, keys.app_id) == []


async def test_adjustments_need_the_admin_role_and_a_reason(client: httpx.AsyncClient, factory: Factory,
                                                            runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await grant(client, keys, "bob", 10)
    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    outsider = await factory.admin((await factory.app()).org_id, Role.OWNER)
    body = {"player_id": "bob", "currency": "points", "amount": 5, "reason": "goodwill"}
    before = await count_rows(runtime, keys.app_id)

    def key(headers: dict[str, str], k: str = "k") -> dict[str, str]:
        return {**headers, "Idempotency-Key": k}

    path = "/v1/ledger/adjustments"
    problem(await client.post(path, headers=key(viewer.headers(keys.app_id)), json=body), 403, "insufficient_role")
    problem(await client.post(path, headers=key(keys.server), json=body), 403, "caller_not_allowed")
    problem(await client.post(path, headers=key(outsider.headers(keys.app_id)), json=body), 404, "app_not_found")
    problem(await client.post(path, headers=admin.headers(keys.app_id), json=body), 400, "idempotency_key_required")
    a = admin.headers(keys.app_id)
    problem(await client.post(path, headers=key(a, "1"), json={**body, "amount": 0}), 422, "validation_failed")
    problem(await client.post(path, headers=key(a, "2"), json={**body, "reason": "no"}), 422, "validation_failed")
    problem(await client.post(path, headers=key(a, "3"), json={k: v for k, v in body.items() if k != "reason"}),
            422, "validation_failed")
    problem(await client.post(path, headers=key(a, "4"), json={**body, "amount": 1.5}), 422, "validation_failed")
    short = problem(await client.post(path, headers=key(a, "5"), json={**body, "amount": -11}), 409,
                    "insufficient_funds")
    assert (short["required"], short["current"], short["shortfall"]) == (11, 10, 1)
    assert await count_rows(runtime, keys.app_id) == before
