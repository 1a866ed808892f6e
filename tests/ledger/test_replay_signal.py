"""Issue 10, point 6: a retried posting says it is a replay in one place, the
``Idempotent-Replayed`` header, whichever layer recognises the retry; the body never contradicts it."""

from __future__ import annotations

import httpx

from questline.kit.clock import ManualClock
from tests.conftest import Factory
from tests.factories import balance, currency
from tests.ledger.helpers import grant, spend


async def test_a_replayed_grant_has_one_signal(client: httpx.AsyncClient, factory: Factory,
                                               clock: ManualClock) -> None:
    keys = await factory.app()
    await currency(client, keys)
    first = await grant(client, keys, "alice", 70, key="grant-1")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    assert "replayed" not in first.json()

    # The HTTP layer replays the stored answer: the header says so and the body cannot disagree.
    again = await grant(client, keys, "alice", 70, key="grant-1")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert "replayed" not in again.json() and again.json() == first.json()

    # Days later the HTTP key has expired, but the ledger's key has not: the ledger recognises the
    # retry, posts nothing, and the answer carries the same header.
    clock.advance(days=3)
    late = await grant(client, keys, "alice", 70, key="grant-1")
    assert late.status_code == 201 and late.headers.get("idempotent-replayed") == "true", late.headers
    assert late.json()["id"] == first.json()["id"] and "replayed" not in late.json()
    assert await balance(client, keys, "alice") == 70

    spent = await spend(client, keys, "alice", 20, key="spend-1")
    clock.advance(days=3)
    late_spend = await spend(client, keys, "alice", 20, key="spend-1")
    assert late_spend.headers.get("idempotent-replayed") == "true" and "idempotent-replayed" not in spent.headers
    assert await balance(client, keys, "alice") == 50
    # The OpenAPI document does not promise a body field that no reply carries.
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert all("replayed" not in s.get("properties", {}) for name, s in schema.items()
               if name.startswith("TransactionOut"))
