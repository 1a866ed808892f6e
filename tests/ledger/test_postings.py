from __future__ import annotations

import httpx
import pytest

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import AccountRef
from tests.conftest import Factory, problem
from tests.ledger.helpers import balance, count_rows, currency, grant, key_headers, spend, verify


async def test_grant_and_spend_move_balances_with_double_entry(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)

    granted = await grant(client, keys, "alice", 500, source="level_up", description="Level 2",
                          reference={"level": 2})
    assert granted.status_code == 201, granted.text
    txn = granted.json()
    assert txn["id"].startswith("txn_") and txn["kind"] == "credit" and txn["source"] == "level_up"
    assert txn["reference"] == {"level": 2} and "replayed" not in txn
    by_owner = {(p["owner_kind"], p["owner_id"]): p for p in txn["postings"]}
    assert by_owner[("player", "alice")] | {} == {
        "owner_kind": "player", "owner_id": "alice", "currency": "points", "sub": "", "amount": 500,
        "balance_before": 0, "balance_after": 500, "seq": 1,
    }
    assert by_owner[("system", "issuance")]["amount"] == -500
    assert sum(p["amount"] for p in txn["postings"]) == 0

    spent = await spend(client, keys, "alice", 120, source="purchase")
    assert spent.status_code == 201, spent.text
    player_posting = next(p for p in spent.json()["postings"] if p["owner_kind"] == "player")
    assert (player_posting["balance_before"], player_posting["balance_after"], player_posting["seq"]) == (500, 380, 2)

    balances = (await client.get("/v1/players/alice/balances", headers=keys.server)).json()
    assert balances == {"player_id": "alice", "balances": [
        {"currency": "points", "balance": 380, "lifetime_earned": 500, "lifetime_spent": 120},
    ]}
    assert await verify(runtime, keys.app_id) == []


async def test_insufficient_funds_is_409_with_the_shortfall_and_changes_nothing(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    assert (await grant(client, keys, "bob", 2400)).status_code == 201
    before = await count_rows(runtime, keys.app_id)

    body = problem(await spend(client, keys, "bob", 100_000), 409, "insufficient_funds")
    assert (body["required"], body["current"], body["shortfall"]) == (100_000, 2400, 97_600)
    assert body["currency"] == "points" and "97,600" in body["detail"]
    assert await count_rows(runtime, keys.app_id) == before
    assert await balance(client, keys, "bob") == 2400


@pytest.mark.parametrize("amount", [0, -5, 1.5, 5.0, "5", True, None, 10**12 + 1, 10**30])
async def test_bad_amounts_are_refused_and_write_nothing(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime, amount: object) -> None:
    keys = await factory.app()
    await currency(client, keys)
    before = await count_rows(runtime, keys.app_id)
    for path in ("/v1/ledger/grants", "/v1/ledger/spends"):
        resp = await client.post(path, headers=key_headers(keys),
                                 json={"player_id": "carol", "currency": "points", "amount": amount})
        body = problem(resp, 422, "validation_failed")
        assert body["errors"][0]["loc"][-1] == "amount"
    assert await count_rows(runtime, keys.app_id) == before


async def test_other_bad_input_gets_a_precise_problem_and_writes_nothing(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    before = await count_rows(runtime, keys.app_id)

    body = problem(await grant(client, keys, "dave", 10, code="gems"), 422, "unknown_currency")
    assert body["currency"] == "gems"
    problem(await client.post("/v1/ledger/grants", headers=keys.server,
                              json={"player_id": "dave", "currency": "points", "amount": 10}),
            400, "idempotency_key_required")
    problem(await client.post("/v1/ledger/spends", headers=keys.server,
                              json={"player_id": "dave", "currency": "points", "amount": 10}),
            400, "idempotency_key_required")
    problem(await grant(client, keys, "not a player id!", 10), 422, "validation_failed")
    problem(await grant(client, keys, "dave", 10, code="Points"), 422, "validation_failed")
    problem(await grant(client, keys, "dave", 10, source="Level Up"), 422, "validation_failed")
    problem(await grant(client, keys, "dave", 10, surprise=True), 422, "validation_failed")
    problem(await grant(client, keys, "dave", 10, reference={"nested": {"no": 1}}), 422, "validation_failed")
    problem(await grant(client, keys, "dave", 10, key="x" * 256), 422, "invalid_idempotency_key")
    problem(await client.post("/v1/ledger/grants", headers={**key_headers(keys), "content-type": "application/json"},
                              content=b"{not json"), 400, "malformed_json")
    assert await count_rows(runtime, keys.app_id) == before


async def test_only_the_server_key_grants_and_spends(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await currency(client, keys)
    player = await factory.player_token(keys, "erin")
    for headers in (player, keys.client):
        resp = await client.post("/v1/ledger/grants", headers={**headers, "Idempotency-Key": "k"},
                                 json={"player_id": "erin", "currency": "points", "amount": 10})
        problem(resp, 403, "caller_not_allowed")
    problem(await client.post("/v1/ledger/grants", headers={"Idempotency-Key": "k"},
                              json={"player_id": "erin", "currency": "points", "amount": 10}), 401)


async def test_balances_and_history_are_private_to_the_player(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await grant(client, keys, "frank", 5)
    frank = await factory.player_token(keys, "frank")
    await factory.player_token(keys, "gina")

    own = await client.get("/v1/players/frank/balances", headers=frank)
    assert own.status_code == 200 and own.json()["balances"][0]["balance"] == 5
    problem(await client.get("/v1/players/gina/balances", headers=frank), 404)
    problem(await client.get("/v1/players/gina/transactions", headers=frank), 404)
    problem(await client.get("/v1/players/nobody/balances", headers=keys.server), 404, "player_not_found")
    other = await factory.app()
    problem(await client.get("/v1/players/frank/balances", headers=other.server), 404, "player_not_found")


async def test_service_replays_a_key_and_refuses_a_different_request(runtime: Runtime, factory: Factory,
                                                                     client: httpx.AsyncClient) -> None:
    keys = await factory.app()
    clock = runtime.clock
    async with unit_of_work(runtime.sessions) as session:
        await ledger.ensure_currency(session, clock, keys.app_id, "points")
        await ledger.ensure_currency(session, clock, keys.app_id, "points", "Ignored")  # idempotent
        assert await ledger.currency_exists(session, keys.app_id, "points")
        assert not await ledger.currency_exists(session, keys.app_id, "gems")
        first = await ledger.credit_player(session, clock, app_id=keys.app_id, player_id="hal", currency="points",
                                           amount=200, idempotency_key="level:hal:3", source="level_up")
    async with unit_of_work(runtime.sessions) as session:
        again = await ledger.credit_player(session, clock, app_id=keys.app_id, player_id="hal", currency="points",
                                           amount=200, idempotency_key="level:hal:3", source="level_up")
        assert again.replayed and again.id == first.id and again.postings == first.postings
        with pytest.raises(Exception) as reused:
            await ledger.credit_player(session, clock, app_id=keys.app_id, player_id="hal", currency="points",
                                       amount=300, idempotency_key="level:hal:3", source="level_up")
        assert getattr(reused.value, "code", None) == "idempotency_key_reused"
        # A refused posting leaves the caller's session usable: it rolled back to its savepoint.
        with pytest.raises(Exception) as short:
            await ledger.debit_player(session, clock, app_id=keys.app_id, player_id="hal", currency="points",
                                      amount=201, idempotency_key="buy:1", source="purchase")
        assert getattr(short.value, "code", None) == "insufficient_funds"
        ok = await ledger.debit_player(session, clock, app_id=keys.app_id, player_id="hal", currency="points",
                                       amount=200, idempotency_key="buy:1", source="purchase")
        assert ok.balance_of("player", "hal", "points") == 0
        balances = await ledger.player_balances(session, keys.app_id, "hal")
    assert balances["points"].balance == 0 and balances["points"].lifetime_earned == 200
    assert await verify(runtime, keys.app_id) == []


async def test_transfer_posts_any_balanced_movement_and_refuses_unbalanced(runtime: Runtime, factory: Factory,
                                                                           client: httpx.AsyncClient) -> None:
    keys = await factory.app()
    clock = runtime.clock
    async with unit_of_work(runtime.sessions) as session:
        await ledger.ensure_currency(session, clock, keys.app_id, "gems")
        await ledger.credit_player(session, clock, app_id=keys.app_id, player_id="ivy", currency="gems", amount=50,
                                   idempotency_key="seed", source="test")
        pool = AccountRef.system("prize_pool:t1", "gems")
        moved = await ledger.transfer(session, clock, app_id=keys.app_id, idempotency_key="entry:ivy",
                                      kind="entry_fee", source="tournament",
                                      entries=[(AccountRef.player("ivy", "gems"), -30), (pool, 30)])
        assert moved.balance_of("system", "prize_pool:t1", "gems") == 30
        for entries, code in [
            ([(AccountRef.player("ivy", "gems"), -5), (pool, 4)], "unbalanced_transaction"),
            ([(AccountRef.player("ivy", "gems"), 5)], "unbalanced_transaction"),
            ([(AccountRef.player("ivy", "gems"), -5), (AccountRef.player("ivy", "gems"), 5)], "duplicate_account"),
            ([(pool, -100), (AccountRef.player("ivy", "gems"), 100)], "insufficient_funds"),
            ([(AccountRef.player("ivy", "coins"), -5), (AccountRef.system("sink", "coins"), 5)], "unknown_currency"),
            ([(AccountRef.player("ivy", "gems"), -5.0), (pool, 5.0)], "invalid_amount"),  # type: ignore[list-item]
        ]:
            with pytest.raises(Exception) as refused:
                await ledger.transfer(session, clock, app_id=keys.app_id, idempotency_key="bad", kind="entry_fee",
                                      source="tournament", entries=entries)
            assert getattr(refused.value, "code", None) == code, entries
        with pytest.raises(Exception) as reserved:
            await ledger.transfer(session, clock, app_id=keys.app_id, idempotency_key="bad", kind="hold_release",
                                  source="x", entries=[(pool, -1), (AccountRef.player("ivy", "gems"), 1)])
        assert getattr(reserved.value, "code", None) == "invalid_kind"
    assert await verify(runtime, keys.app_id) == []
