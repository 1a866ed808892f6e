"""Signed outbound calls: Standard Webhooks headers, no redirects, a timeout, and an address check.

A target may not resolve to a loopback, private, link-local or otherwise special address unless
the engine allows it (``QUESTLINE_WEBHOOKS_ALLOW_PRIVATE``; allowed in development, never in
production): a studio's URL must not become a way into the engine's own network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

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


def _special(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                or ip.is_unspecified)


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host resolves to an address the engine must not call."""
    check_url_shape(url)
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"the host {host!r} does not resolve") from exc
    for info in infos:
        if _special(str(info[4][0])):
            raise OutboundRefused(f"the host {host!r} resolves to a private or special address")


def sign(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for one message."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }


async def post_signed(client: httpx.AsyncClient, url: str, secret: str, msg_id: str, at: datetime,
                      payload: dict[str, object], *, allow_private: bool) -> Answer:
    """POST ``payload`` signed; raises ``OutboundRefused`` or ``httpx.HTTPError`` when no answer came."""
    await check_destination(url, allow_private=allow_private)
    body = orjson.dumps(payload)
    started = time.perf_counter()
    resp = await client.post(url, content=body, headers=sign(secret, msg_id, at, body))
    elapsed = int((time.perf_counter() - started) * 1000)
    return Answer(resp.status_code, resp.text[:BODY_EXCERPT], elapsed)


def new_client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False)
