"""Concurrency is tested, not assumed: parallel spends and parallel duplicates of one key."""

from __future__ import annotations

import asyncio

import httpx

from questline.kit.db import unit_of_work
from questline.kit.errors import ProblemError
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import TransactionOut
from tests.conftest import Factory, problem
from tests.ledger.helpers import balance, count_rows, currency, grant, spend, verify

N, K, PRICE = 20, 7, 10


async def test_parallel_spends_succeed_exactly_as_often_as_the_balance_covers(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    assert (await grant(client, keys, "alice", K * PRICE + PRICE - 1)).status_code == 201

    replies = await asyncio.gather(*(spend(client, keys, "alice", PRICE, key=f"spend-{i}") for i in range(N)))

    ok = [r for r in replies if r.status_code == 201]
    refused = [r for r in replies if r.status_code != 201]
    assert len(ok) == K, [r.text for r in replies]
    assert len(refused) == N - K
    for reply in refused:
        body = problem(reply, 409, "insufficient_funds")
        assert body["required"] == PRICE and body["current"] == PRICE - 1 and body["shortfall"] == 1
    assert await balance(client, keys, "alice") == PRICE - 1
    # Each success saw a distinct balance: the conditional update serialized them.
    afters = sorted(next(p["balance_after"] for p in r.json()["postings"] if p["owner_kind"] == "player") for r in ok)
    assert afters == [PRICE - 1 + PRICE * i for i in range(K)]
    rows = await count_rows(runtime, keys.app_id)
    assert rows["ledger_transactions"] == 1 + K and rows["ledger_postings"] == 2 * (1 + K)
    assert await verify(runtime, keys.app_id) == []


async def test_one_key_sent_in_parallel_posts_once_and_replies_alike(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)

    replies = await asyncio.gather(*(grant(client, keys, "bob", 250, key="grant-once") for _ in range(10)))
    done = [r for r in replies if r.status_code == 201]
    # Duplicates that arrive while the first is running are told to retry; none posts again.
    for reply in replies:
        if reply.status_code != 201:
            problem(reply, 409, "idempotency_key_in_flight")
    assert done and len({r.content for r in done}) == 1
    again = await grant(client, keys, "bob", 250, key="grant-once")
    assert again.status_code == 201 and again.content == done[0].content
    assert again.headers.get("idempotent-replayed") == "true"

    problem(await grant(client, keys, "bob", 999, key="grant-once"), 422, "idempotency_key_reused")
    assert await balance(client, keys, "bob") == 250
    assert (await count_rows(runtime, keys.app_id))["ledger_transactions"] == 1
    assert await verify(runtime, keys.app_id) == []


async def test_parallel_service_calls_with_one_key_post_one_transaction(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    """The ledger's own guard (unique key + ON CONFLICT), without the HTTP idempotency layer."""
    keys = await factory.app()
    await currency(client, keys)

    async def credit() -> TransactionOut:
        async with unit_of_work(runtime.sessions) as session:
            return await ledger.credit_player(
                session, runtime.clock, app_id=keys.app_id, player_id="carol", currency="points", amount=40,
                idempotency_key="level-up:xp:carol:2", source="level_up", reference={"level": 2},
            )

    results = await asyncio.gather(*(credit() for _ in range(8)))
    assert len({r.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert all(r.postings == results[0].postings for r in results)
    assert await balance(client, keys, "carol") == 40
    assert await verify(runtime, keys.app_id) == []


async def test_parallel_service_spends_across_sessions_never_overdraw(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    assert (await grant(client, keys, "dan", 35)).status_code == 201

    async def debit(i: int) -> bool:
        try:
            async with unit_of_work(runtime.sessions) as session:
                await ledger.debit_player(session, runtime.clock, app_id=keys.app_id, player_id="dan",
                                          currency="points", amount=5, idempotency_key=f"d{i}", source="test")
        except ProblemError as exc:
            assert exc.code == "insufficient_funds"
            return False
        return True

    outcomes = await asyncio.gather(*(debit(i) for i in range(12)))
    assert sum(outcomes) == 7
    assert await balance(client, keys, "dan") == 0
    assert await verify(runtime, keys.app_id) == []
