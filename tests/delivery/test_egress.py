"""Outbound calls resolve a host once, check every address, and connect to that very address (DNS
pinning): a name that answers a public address to one lookup and a private one to the next (DNS
rebinding) never reaches the private one. Webhooks, fulfilment callbacks and the chat channels of
notifications all go through ``kit.egress``; the resolver here is a plain function of ours, injected
through the runtime, and the receivers are real local HTTP servers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from questline.fulfilment import service as fulfilment
from questline.kit import egress
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.notifications import service as notifications
from questline.webhooks import tasks
from tests.conftest import Factory
from tests.delivery import receiver as webhook_receiver
from tests.delivery.test_webhooks import _announce, _deliver, _log
from tests.fulfilment.helpers import records, target, won
from tests.notifications.helpers import channels_to, contacts, message, relay
from tests.receivers import receiving

PUBLIC = "93.184.216.34"


class Rebinding:
    """A resolver that answers each name from a script: the next answer on every lookup."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {host.replace("_", "."): iter(script) for host, script in answers.items()}
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        script: Iterator[list[str]] = self.answers[host]
        return next(script)


@pytest.fixture
def private_refused(runtime: Runtime) -> Iterator[None]:
    runtime.settings.webhooks_allow_private = False
    runtime.extensions.pop(tasks.CLIENT, None)  # a client made with these settings and resolver
    yield
    runtime.settings.webhooks_allow_private = None


async def test_a_webhook_host_that_rebinds_to_a_private_address_is_never_called(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, private_refused: None) -> None:
    keys = await factory.app()
    async with webhook_receiver.receiving() as receiver:
        # Saving looks once (public: accepted); the call looks once more and gets 127.0.0.1: refused there,
        # at the connection, with nothing left to look up again.
        resolver = Rebinding(rebind_example_test=[[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
        runtime.extensions[egress.RESOLVER] = resolver
        url = f"http://rebind.example.test:{receiver.port}/hooks"
        made = await client.post("/v1/webhooks", headers=keys.server, json={"url": url})
        assert made.status_code == 201, made.text
        await _announce(runtime, keys.app_id)
        await _deliver(runtime)
        assert receiver.requests == []
        [log] = await _log(client, keys, made.json()["id"])
        assert log["status"] == "dead" and "refused" in log["last_error"] and "127.0.0.1" in log["last_error"]
        assert resolver.lookups == ["rebind.example.test", "rebind.example.test"]  # one per step, never two


async def test_a_call_connects_to_the_address_its_one_lookup_answered(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    runtime.settings.webhooks_allow_private = True  # a local receiver: allowed outside production
    runtime.extensions.pop(tasks.CLIENT, None)
    async with webhook_receiver.receiving() as receiver:
        # No system resolver knows this name: reaching the receiver proves the connection went to the
        # address the guard's own lookup answered.
        resolver = Rebinding(hooks_example_test=[["127.0.0.1"]] * 3)
        runtime.extensions[egress.RESOLVER] = resolver
        made = await client.post("/v1/webhooks", headers=keys.server,
                                 json={"url": f"http://hooks.example.test:{receiver.port}/hooks"})
        assert made.status_code == 201
        await _announce(runtime, keys.app_id)
        await _deliver(runtime)
        assert len(receiver.requests) == 1
        assert receiver.requests[0].headers["host"] == f"hooks.example.test:{receiver.port}"  # the name is kept
        assert resolver.lookups == ["hooks.example.test", "hooks.example.test"]  # saved, then called once
    runtime.settings.webhooks_allow_private = None


async def test_a_fulfilment_callback_rebinding_to_a_private_address_fails_and_reaches_no_one(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, clock: ManualClock,
        private_refused: None) -> None:
    keys = await factory.app()
    async with receiving() as receiver:
        runtime.extensions[egress.RESOLVER] = Rebinding(game_example_test=[["10.1.2.3"]])
        port = receiver.base.rsplit(":", 1)[1]
        await target(client, keys, "in_game", f"http://game.example.test:{port}/grant")
        await won(client, keys, runtime, clock, [{"from_rank": 1, "in_game": {"item": "sword"}}], players=("ann",))
        assert await fulfilment.process_due(runtime) == 1
        assert receiver.to("/grant") == []
        [record] = await records(client, keys, kind="in_game")
        assert record["status"] == "failed" and "10.1.2.3" in record["last_error"]
        # Allowed (outside production), the same name is called at the address its lookup answered.
        runtime.settings.webhooks_allow_private = True
        runtime.extensions[egress.RESOLVER] = Rebinding(game_example_test=[["127.0.0.1"]])
        retried = await client.post(f"/v1/fulfilments/{record['id']}/retry", headers=keys.server)
        assert retried.status_code == 200, retried.text
        assert await fulfilment.process_due(runtime) == 1
        assert len(receiver.to("/grant")) == 1


async def test_notification_chat_channels_are_guarded_too(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, clock: ManualClock,
        private_refused: None) -> None:
    keys = await factory.app()
    async with receiving() as chat:
        port = chat.base.rsplit(":", 1)[1]
        channels_to(runtime, chat_base=f"http://chat.example.test:{port}")
        runtime.extensions[egress.RESOLVER] = Rebinding(chat_example_test=[["192.168.0.7"], ["127.0.0.1"]])
        await contacts(client, keys, "ada", telegram_chat_id="4242")
        resp = await client.put("/v1/players/ada/notification-preferences", headers=keys.server,
                                json={"defaults": {"telegram": True}})
        assert resp.status_code == 200
        await relay(runtime, [message(keys.app_id, 1, "level.up", "ada", clock.now(), track="xp", to=3)])
        assert await notifications.process_due(runtime) == 1
        assert chat.to("/telegram/bottg-token/sendMessage") == []
        async with unit_of_work(runtime.sessions) as session:
            [delivery] = await notifications.deliveries_of(session, keys.app_id, "ada")
        assert delivery["status"] == "pending" and "192.168.0.7" in str(delivery["error"])
