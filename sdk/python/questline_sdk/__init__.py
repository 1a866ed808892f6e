"""The Questline SDK for Python: every operation of the API, sync and async, typed.

    from questline_sdk import connect, NotFound
    from questline_sdk.generated.api.ledger import ledger_grant
    from questline_sdk.generated.models import LedgerGrantIn

    client = connect("http://127.0.0.1:8000", token=SERVER_KEY)
    tx = ledger_grant.sync(client=client, body=LedgerGrantIn(player_id="ann", currency="points", amount=5))

Each operation is a module under ``questline_sdk.generated.api.<area>`` with ``sync``,
``sync_detailed``, ``asyncio`` and ``asyncio_detailed``; bodies and replies are the classes of
``questline_sdk.generated.models``. A client made by :func:`connect` adds an ``Idempotency-Key``
to every POST that lacks one, retries 429/503 after ``Retry-After``, and raises every answer of
400 or more as a typed :class:`Problem` (``NotFound``, ``Conflict``, …) carrying its ``code``.
"""

from __future__ import annotations

import httpx

from questline_sdk.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    Problem,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    problem_of,
)
from questline_sdk.generated.client import AuthenticatedClient, Client
from questline_sdk.transport import AsyncRetryTransport, RetryTransport
from questline_sdk.webhooks import InvalidWebhook, sign, verify_webhook

__all__ = [
    "AuthenticatedClient", "BadRequest", "Client", "Conflict", "Forbidden", "Gone", "InvalidWebhook", "NotFound",
    "Problem", "RateLimited", "ServerError", "Unauthorized", "Unavailable", "ValidationFailed", "connect",
    "connect_anonymous", "sign", "verify_webhook",
]


def _raise_problem(response: httpx.Response) -> None:
    if response.status_code >= 400:
        response.read()
        raise problem_of(response)


async def _araise_problem(response: httpx.Response) -> None:
    if response.status_code >= 400:
        await response.aread()
        raise problem_of(response)


def _httpx_clients(base_url: str, headers: dict[str, str], timeout: float, attempts: int, max_wait: float,
                   transport: httpx.BaseTransport | None, async_transport: httpx.AsyncBaseTransport | None,
                   ) -> tuple[httpx.Client, httpx.AsyncClient]:
    sync = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, follow_redirects=False,
                        transport=RetryTransport(transport, attempts=attempts, max_wait=max_wait),
                        event_hooks={"response": [_raise_problem]})
    asynchronous = httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout, follow_redirects=False,
        transport=AsyncRetryTransport(async_transport, attempts=attempts, max_wait=max_wait),
        event_hooks={"response": [_araise_problem]})
    return sync, asynchronous


def connect(base_url: str, token: str, *, app: str | None = None, timeout: float = 10.0, attempts: int = 4,
            max_wait: float = 30.0, transport: httpx.BaseTransport | None = None,
            async_transport: httpx.AsyncBaseTransport | None = None) -> AuthenticatedClient:
    """A client for a server key, client key, player token or admin access token.

    ``app`` names the app for an admin's token (``X-Questline-App``). ``transport`` and
    ``async_transport`` replace the network (an ``httpx.ASGITransport`` to call an engine in process).
    """
    headers = {"Authorization": f"Bearer {token}"}
    if app:
        headers["X-Questline-App"] = app
    client = AuthenticatedClient(base_url=base_url, token=token)
    sync, asynchronous = _httpx_clients(base_url, headers, timeout, attempts, max_wait, transport, async_transport)
    return client.set_httpx_client(sync).set_async_httpx_client(asynchronous)


def connect_anonymous(base_url: str, *, timeout: float = 10.0, attempts: int = 4, max_wait: float = 30.0,
                      transport: httpx.BaseTransport | None = None,
                      async_transport: httpx.AsyncBaseTransport | None = None) -> Client:
    """A client without a credential: health, sign-in, sign-up and public media."""
    client = Client(base_url=base_url)
    sync, asynchronous = _httpx_clients(base_url, {}, timeout, attempts, max_wait, transport, async_transport)
    return client.set_httpx_client(sync).set_async_httpx_client(asynchronous)
