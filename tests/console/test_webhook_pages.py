"""The console's webhooks pages in process against a real local receiver, on SQLite and PostgreSQL:
an endpoint added (its secret shown once), its delivery log and attempts, a dead letter redelivered
with the button, an endpoint disabled; a viewer sees but cannot redeliver."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.relay import service as relay
from questline.tenancy.schemas import Role
from questline.webhooks import service, tasks
from tests.conftest import Factory
from tests.console.helpers import Console, text_of
from tests.delivery.receiver import receiving


async def announce(runtime: Runtime, app_id: str, type_: str) -> None:
    async with unit_of_work(runtime.sessions) as session:
        await event_log.add_outbox(session, [event_log.outbox_row(app_id, type_, "alice", {"n": 1},
                                                                  runtime.clock.now())])
    await relay.drain(runtime)


async def test_webhooks_are_added_watched_and_redelivered(runtime: Runtime, client: httpx.AsyncClient,
                                                          engine: FastAPI, factory: Factory,
                                                          clock: ManualClock) -> None:
    keys = await factory.app()
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    console = await Console(client, keys.app_id).sign_in(admin)
    async with receiving(default=503) as receiver:
        refused = await console.post("/webhooks", {"action": "create", "url": "ftp://nowhere"})
        assert refused.status_code == 422 and "url" in refused.text
        added = await console.post("/webhooks", {"action": "create", "url": receiver.url,
                                                 "description": "game server", "event_types": "level.*, badge.won"})
        assert added.status_code == 200, added.text
        secret = text_of(added.text, "new-webhook-secret").strip()
        assert secret.startswith("whsec_")
        endpoint = (await client.get("/v1/webhooks", headers=keys.server)).json()["items"][0]
        assert sorted(endpoint["event_types"]) == ["badge.won", "level.*"]
        assert secret not in (await console.get("/webhooks")).text  # shown once

        await announce(runtime, keys.app_id, "level.up")
        assert await tasks.send_due(runtime) == 1
        for wait in service.SCHEDULE[1:]:
            clock.advance(seconds=wait.total_seconds())
            assert await tasks.send_due(runtime) == 1
        await console.sign_in(admin)  # a day passed on the test clock: the session's token expired
        listing = await console.get("/webhooks")
        assert "level.up" in text_of(listing.text, "dead-letters")
        log = await console.get(f"/webhooks/{endpoint['id']}", status="dead")
        delivery_id = re.findall(r'id="delivery-([^"]+)"', log.text)
        assert len(delivery_id) == 1 and "dead" in text_of(log.text, f"delivery-{delivery_id[0]}")
        detail = await console.get(f"/webhooks/{endpoint['id']}/deliveries/{delivery_id[0]}")
        assert text_of(detail.text, "attempts").count("answer 503") == len(service.SCHEDULE)

        # A viewer sees the log, but the redeliver button is refused by the API.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=engine),
                                     base_url="http://questline.test") as other:
            viewer = await Console(other, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
            assert (await viewer.get(f"/webhooks/{endpoint['id']}")).status_code == 200
            denied = await viewer.post(f"/webhooks/{endpoint['id']}/deliveries/{delivery_id[0]}/redeliver", {})
            assert denied.status_code == 403
        forged = await client.post(f"{console.base}/webhooks/{endpoint['id']}/deliveries/{delivery_id[0]}/redeliver",
                                   data={"csrf": "forged"})
        assert forged.status_code == 403
        assert await tasks.send_due(runtime) == 0

        receiver.default = 204
        again = await console.post(f"/webhooks/{endpoint['id']}/deliveries/{delivery_id[0]}/redeliver", {})
        assert again.status_code == 303 and "redelivered=" in again.headers["location"]
        assert await tasks.send_due(runtime) == 1
        detail = await console.get(f"/webhooks/{endpoint['id']}/deliveries/{delivery_id[0]}")
        assert "delivered after" in detail.text and "manual" in text_of(detail.text, "attempts")
        assert "None: every message" in (await console.get("/webhooks")).text
        missing = await console.post(f"/webhooks/{endpoint['id']}/deliveries/nope/redeliver", {})
        assert missing.status_code == 404

        disabled = await console.post("/webhooks", {"action": "disable", "endpoint_id": endpoint["id"]})
        assert disabled.status_code == 200 and "disabled" in text_of(disabled.text, f"endpoint-{endpoint['id']}")
        assert (await client.get(f"/v1/webhooks/{endpoint['id']}", headers=keys.server)).json()["enabled"] is False
    assert len(receiver.unique_ids()) == 1
