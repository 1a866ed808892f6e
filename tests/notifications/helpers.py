"""Helpers for notification tests: outbox rows handed to the notifications subscriber, a local SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message as EmailMessage
from typing import Any

import httpx
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from questline.kit.db import unit_of_work
from questline.kit.pagination import PageParams
from questline.kit.runtime import Runtime
from questline.notifications import service as notifications
from questline.pipeline.models import OutboxMessage
from tests.conftest import AppKeys
from tests.serving import free_port


@dataclass(frozen=True)
class Msg:
    """An outbox row as the relay hands it to subscribers (id ``msg_<seq>``)."""

    id: str
    app_id: str
    type: str
    player_id: str | None
    payload: dict[str, Any]
    created_at: datetime


async def outbox_messages(runtime: Runtime, app_id: str) -> list[Msg]:
    async with unit_of_work(runtime.sessions) as session:
        rows = (await session.execute(sa.select(OutboxMessage).where(OutboxMessage.app_id == app_id)
                                      .order_by(OutboxMessage.seq))).scalars().all()
    return [Msg(f"msg_{r.seq}", r.app_id, r.type, r.player_id, r.payload, r.created_at) for r in rows]


async def relay(runtime: Runtime, messages: list[Msg]) -> None:
    """Hand messages to the notifications subscriber in one transaction, as the relay does."""
    async with unit_of_work(runtime.sessions) as session:
        await notifications.NotificationsSubscriber(runtime).handle(session, messages)


async def relay_outbox(runtime: Runtime, keys: AppKeys) -> list[Msg]:
    messages = await outbox_messages(runtime, keys.app_id)
    await relay(runtime, messages)
    return messages


def message(app_id: str, seq: int, type_: str, player_id: str | None, at: datetime, **payload: Any) -> Msg:
    return Msg(f"msg_{seq}", app_id, type_, player_id, payload, at)


async def contacts(client: httpx.AsyncClient, keys: AppKeys, player: str, timezone: str = "UTC",
                   **traits: str) -> None:
    resp = await client.put(f"/v1/players/{player}/account", headers=keys.server,
                            json={"timezone": timezone, "traits": traits})
    assert resp.status_code == 200, resp.text


@dataclass
class Mailbox:
    port: int
    received: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on a free local port (aiosmtpd), collecting what it receives."""
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def channels_to(runtime: Runtime, *, smtp_port: int | None = None, chat_base: str | None = None) -> None:
    settings = runtime.settings
    if smtp_port is not None:
        settings.smtp_host, settings.smtp_port = "127.0.0.1", smtp_port
    if chat_base is not None:
        settings.discord_api_url, settings.discord_bot_token = f"{chat_base}/discord", SecretStr("discord-token")
        settings.telegram_api_url, settings.telegram_bot_token = f"{chat_base}/telegram", SecretStr("tg-token")


async def settle_mail(box: Mailbox, count: int) -> None:
    for _ in range(200):
        if len(box.received) >= count:
            return
        await asyncio.sleep(0.01)


# Makers for the foundation's route walk (tests/foundation/test_access.py): a real inbox entry of
# alice in app A, and a notification type and locale.

async def make_notification(world: Any, client: httpx.AsyncClient) -> str:
    runtime: Runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    await relay(runtime, [message(world.a.app_id, 1, "level.up", "alice", runtime.clock.now(), track="xp", to=2)])
    async with unit_of_work(runtime.sessions) as session:
        page = await notifications.inbox(session, world.a.app_id, "player", "alice", None, _first())
    return page.items[0].id


def _first() -> PageParams:
    return PageParams(limit=1)


async def make_type(world: Any, client: httpx.AsyncClient) -> str:
    return "level_up"


async def make_locale(world: Any, client: httpx.AsyncClient) -> str:
    return "en"
