"""Outbound HTTP for webhooks: refuse private addresses (SSRF), follow no redirects, time out."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

EXCERPT = 500


class RefusedAddress(ValueError):
    """The url resolves to an address webhooks may not call."""


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _forbidden(ip.ipv4_mapped)
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise ``RefusedAddress`` unless every address the host resolves to may be called."""
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        port = urlsplit(url).port or 443
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise RefusedAddress(f"{host} does not resolve: {exc}") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    bad = [str(a) for a in addresses if _forbidden(a)]
    if bad or not addresses:
        raise RefusedAddress(f"{host} resolves to a private, loopback or link-local address ({', '.join(bad)})")


@dataclass(frozen=True)
class Answer:
    status: int | None
    duration_ms: int
    excerpt: str | None
    error: str | None


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], *,
               allow_private: bool) -> Answer:
    """One call; never raises for the receiver's faults (they become the answer's ``error``)."""
    started = time.perf_counter()
    try:
        await check_url(url, allow_private=allow_private)
        resp = await client.post(url, content=body, headers=headers)
        text = resp.text[:EXCERPT] if resp.content else None
        error = None
        if resp.is_redirect:
            error = f"redirect to {resp.headers.get('location', '?')[:200]} not followed"
        return Answer(resp.status_code, _ms(started), text, error)
    except RefusedAddress as exc:
        return Answer(None, _ms(started), None, f"refused: {exc}"[:EXCERPT])
    except httpx.TimeoutException:
        return Answer(None, _ms(started), None, "timed out")
    except httpx.HTTPError as exc:
        return Answer(None, _ms(started), None, f"{type(exc).__name__}: {exc}"[:EXCERPT])


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
