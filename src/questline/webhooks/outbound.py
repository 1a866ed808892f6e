"""Outbound HTTP for webhooks: refuse private addresses (SSRF, DNS pinning), follow no redirects, time out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from questline.kit import egress

if TYPE_CHECKING:
    import httpx  # imported where it is used: most processes never call out (idle memory)

EXCERPT = 500


# The address checks live in ``kit.egress``: resolved once, checked, and connected to (DNS pinning).
RefusedAddress = egress.Refused


async def check_url(url: str, *, allow_private: bool, resolver: egress.Resolver = egress.system_resolve) -> None:
    """Raise ``RefusedAddress`` unless every address the host resolves to may be called."""
    await egress.check_url(url, allow_private=allow_private, resolver=resolver)


@dataclass(frozen=True)
class Answer:
    status: int | None
    duration_ms: int
    excerpt: str | None
    error: str | None


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """One call with a guarded client (``kit.egress.client``: the address is checked where the connection
    is opened); never raises for the receiver's faults (they become the answer's ``error``)."""
    import httpx
    started = time.perf_counter()
    try:
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
