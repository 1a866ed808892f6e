"""``ledger verify`` finds tampering, and the CLI fails when it does."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from questline.cli.main import app as cli
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.conftest import Factory
from tests.ledger.helpers import currency, grant, spend, verify


def run_cli(runtime: Runtime, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"QUESTLINE_DATABASE_URL": runtime.settings.database_url,
                                                      "COLUMNS": "200"})
    return result.exit_code, result.output


async def test_verify_is_clean_then_catches_a_tampered_posting(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await grant(client, keys, "alice", 300)
    await spend(client, keys, "alice", 100)
    h = (await client.post("/v1/ledger/holds", headers=keys.server,
                           json={"player_id": "alice", "currency": "points", "amount": 50})).json()
    assert (await client.post(f"/v1/ledger/holds/{h['id']}/release", headers=keys.server)).status_code == 200
    assert await verify(runtime, keys.app_id) == []
    code, output = await asyncio.to_thread(run_cli, runtime, "ledger", "verify", "--app", keys.app_id)
    assert code == 0, output
    assert "ledger verified" in output and keys.app_id in output

    # Someone edits a posting by hand: the first grant now says 1,300 (amount and after kept consistent).
    async with unit_of_work(runtime.sessions) as session:
        await session.execute(sa.text(
            "UPDATE ledger_postings SET amount = amount + 1000, balance_after = balance_after + 1000 "
            "WHERE id = (SELECT min(p.id) FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id "
            "WHERE a.app_id = :app AND a.owner_kind = 'player')"), {"app": keys.app_id})

    checks = {v.check for v in await verify(runtime, keys.app_id)}
    assert {"transaction_balanced", "account_chain", "account_totals"} <= checks
    code, output = await asyncio.to_thread(run_cli, runtime, "ledger", "verify", "--app", keys.app_id)
    assert code == 1, output
    assert "transaction_balanced" in output and "account_chain" in output

    other = await factory.app()
    await currency(client, other)
    await grant(client, other, "bob", 5)
    assert await verify(runtime, other.app_id) == []


async def test_verify_catches_a_balance_changed_outside_the_ledger(client: httpx.AsyncClient, factory: Factory,
                                                                  runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await grant(client, keys, "carol", 10)
    async with unit_of_work(runtime.sessions) as session:
        await session.execute(sa.text(
            "UPDATE ledger_accounts SET balance = balance + 5 WHERE app_id = :app AND owner_kind = 'player'"),
            {"app": keys.app_id})
    violations = await verify(runtime, keys.app_id)
    assert [v.check for v in violations] == ["account_totals"]
    assert "balance 15 vs postings 10" in violations[0].detail
