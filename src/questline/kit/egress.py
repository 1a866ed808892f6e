"""Outbound HTTP to addresses someone else chose (webhook endpoints, fulfilment targets, chat APIs),
guarded against SSRF and DNS rebinding.

The guard sits where the connection is opened: the host is resolved **once**, every address it
resolves to is checked (loopback, private, link-local, multicast, reserved and other non-global
addresses are refused unless private calls are allowed), and the socket connects to one of those very
addresses. No second lookup happens between the check and the connection, so a name that answers a
public address to the check and a private one a moment later (DNS rebinding) cannot slip through.
TLS still verifies the certificate for the URL's host name (the name stays the server name).

The resolver is a plain async function ``(host, port) -> [address, ...]``; ``RESOLVER`` in a runtime's
extensions replaces the system's (a stub resolver in tests, a split-horizon one in a deployment).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
RESOLVER = "egress.resolver"


class Refused(ValueError):
    """The destination may not be called (it resolves to a private or special address, or not at all)."""


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host`` (one lookup)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"{host} does not resolve: {exc}") from exc
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if address not in seen:
            seen.append(address)
    return seen


def special(address: str) -> bool:
    """Whether an address is one outbound calls must not reach (anything but a global unicast address)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


async def vetted(host: str, port: int, *, allow_private: bool, resolver: Resolver) -> list[str]:
    """Resolve ``host`` once and return its addresses, all of them allowed; raises ``Refused``."""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        addresses = await resolver(host, port)
    if not addresses:
        raise Refused(f"{host} does not resolve")
    if not allow_private:
        bad = [a for a in addresses if special(a)]
        if bad:
            raise Refused(f"{host} resolves to a private or special address ({', '.join(bad)})")
    return addresses


async def check_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolve) -> None:
    """Refuse a URL whose host may not be called (when it is saved; every call checks again)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    await vetted(host, parts.port or (443 if parts.scheme == "https" else 80), allow_private=allow_private,
                 resolver=resolver)


@functools.cache
def _transport_class() -> Callable[..., httpx.AsyncHTTPTransport]:
    """httpx's transport whose every connection goes through the guard.

    Made on first use, so that a process that never calls out never imports httpx (about 5 MB)."""
    import httpcore
    import httpx

    class GuardedBackend(httpcore.AsyncNetworkBackend):
        """Opens TCP connections only to vetted addresses: one lookup, then connect to what it answered."""

        def __init__(self, allow_private: Callable[[], bool], resolver: Resolver) -> None:
            self._allow_private = allow_private
            self._resolver = resolver
            self._inner = httpcore.AnyIOBackend()

        async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's)
                              local_address: str | None = None,
                              socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
            addresses = await vetted(host, port, allow_private=self._allow_private(), resolver=self._resolver)
            last: Exception | None = None
            for address in addresses:
                try:
                    return await self._inner.connect_tcp(address, port, timeout=timeout,
                                                         local_address=local_address, socket_options=socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            assert last is not None
            raise last

        async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                      socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
            raise Refused("outbound calls do not use unix sockets")

        async def sleep(self, seconds: float) -> None:
            await self._inner.sleep(seconds)

    class GuardedTransport(httpx.AsyncHTTPTransport):
        """httpx's transport over a connection pool whose every connection goes through the guard."""

        def __init__(self, *, allow_private: Callable[[], bool], resolver: Resolver, limits: httpx.Limits) -> None:
            super().__init__(trust_env=False, limits=limits)
            # The pool httpx made above, rebuilt with the guarded network backend (httpx has no argument for it).
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
                network_backend=GuardedBackend(allow_private, resolver))

    return GuardedTransport


def resolver_of(extensions: dict[str, Any]) -> Resolver:
    found: Resolver | None = extensions.get(RESOLVER)
    return found or system_resolve


def client(*, timeout: float | httpx.Timeout, allow_private: Callable[[], bool], resolver: Resolver = system_resolve,
           limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    """A client for outbound calls: guarded connections, no redirects followed, no proxies from the
    environment, every call timed out. A refused destination raises ``Refused`` from the call."""
    import httpx

    transport = _transport_class()(allow_private=allow_private, resolver=resolver, limits=limits or httpx.Limits())
    return httpx.AsyncClient(transport=transport,
                             follow_redirects=False, timeout=timeout, trust_env=False)
