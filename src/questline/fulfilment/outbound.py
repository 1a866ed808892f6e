"""Signed outbound calls: Standard Webhooks headers, no redirects, a timeout, and an address check.

A target may not resolve to a loopback, private, link-local or otherwise special address unless
the engine allows it (``QUESTLINE_WEBHOOKS_ALLOW_PRIVATE``; allowed in development, never in
production): a studio's URL must not become a way into the engine's own network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson
from standardwebhooks.webhooks import Webhook

from questline.kit import egress

if TYPE_CHECKING:
    import httpx  # imported where it is used: most processes never call out (idle memory)

BODY_EXCERPT = 500


class OutboundRefused(Exception):
    """The URL may not be called (scheme, or an address the engine does not reach)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    elapsed_ms: int


def check_url_shape(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise OutboundRefused("the URL must not carry credentials")


def sign(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for one message."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }


async def post_signed(client: httpx.AsyncClient, url: str, secret: str, msg_id: str, at: datetime,
                      payload: dict[str, object]) -> Answer:
    """POST ``payload`` signed with a guarded client (``new_client``: the address is checked where the
    connection is opened, one lookup); raises ``OutboundRefused`` or ``httpx.HTTPError`` when no answer came."""
    check_url_shape(url)
    body = orjson.dumps(payload)
    started = time.perf_counter()
    try:
        resp = await client.post(url, content=body, headers=sign(secret, msg_id, at, body))
    except egress.Refused as exc:
        raise OutboundRefused(str(exc)) from exc
    elapsed = int((time.perf_counter() - started) * 1000)
    return Answer(resp.status_code, resp.text[:BODY_EXCERPT], elapsed)


def new_client(timeout: float, *, allow_private: Callable[[], bool],
               resolver: egress.Resolver = egress.system_resolve) -> httpx.AsyncClient:
    return egress.client(timeout=timeout, allow_private=allow_private, resolver=resolver)
