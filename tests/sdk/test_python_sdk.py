"""The Python SDK (sdk/python): every operation, keys and retries handled, problems typed, webhooks verified.

Issue 16 point 4. The generated layer must cover the engine's OpenAPI document exactly (a route
added without ``scripts/generate-sdk`` fails here); calls go through the real engine in process;
retries are checked against a real local HTTP server that answers 503 first.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import questline_sdk
import standardwebhooks
from fastapi import FastAPI
from questline_sdk import Conflict, InvalidWebhook, NotFound, Unavailable, connect, verify_webhook
from questline_sdk.generated import api as generated_api
from questline_sdk.generated.api.challenges import challenges_claim
from questline_sdk.generated.api.ledger import ledger_grant, ledger_put_currency, ledger_spend
from questline_sdk.generated.api.players import profiles_get_profile
from questline_sdk.generated.models import ChallengesClaimIn, CurrencyIn, LedgerGrantIn, SpendIn

from tests.conftest import Factory


def generated_operations() -> set[str]:
    return {info.name.rsplit(".", 1)[1] for info in pkgutil.walk_packages(generated_api.__path__,
                                                                          prefix=f"{generated_api.__name__}.")
            if not info.ispkg}


def test_the_sdk_covers_every_operation_of_the_api_and_no_other(engine: FastAPI) -> None:
    spec = engine.openapi()
    ids = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    have = generated_operations()
    assert ids - have == set(), f"run scripts/generate-sdk: operations missing from the SDK: {sorted(ids - have)}"
    assert have - ids == set(), f"run scripts/generate-sdk: the SDK has operations the API lost: {sorted(have - ids)}"
    for name in sorted(have)[:5]:
        module = importlib.import_module(next(
            info.name for info in pkgutil.walk_packages(generated_api.__path__, prefix=f"{generated_api.__name__}.")
            if info.name.endswith(f".{name}")))
        assert all(hasattr(module, f) for f in ("sync", "sync_detailed", "asyncio", "asyncio_detailed"))


async def test_calls_go_through_the_engine_with_keys_supplied_and_problems_raised(
        engine: FastAPI, factory: Factory) -> None:
    keys = await factory.app()
    client = connect("http://questline.test", keys.server_key, async_transport=httpx.ASGITransport(app=engine))
    await ledger_put_currency.asyncio(client=client, code="gems", body=CurrencyIn(name="Gems"))

    # No Idempotency-Key given: the SDK supplies one, so the grant the API requires one for goes through.
    first = await ledger_grant.asyncio(client=client, body=LedgerGrantIn(player_id="ann", currency="gems", amount=7))
    # The same key twice is one grant: the second answer replays the first transaction.
    again = [await ledger_grant.asyncio(client=client, idempotency_key="sdk-grant-1",
                                        body=LedgerGrantIn(player_id="ann", currency="gems", amount=5))
             for _ in range(2)]
    assert first is not None and again[0] is not None and again[1] is not None
    assert again[0].id == again[1].id != first.id
    profile = await profiles_get_profile.asyncio(client=client, player_id="ann")
    assert profile is not None
    assert profile.to_dict()["balances"]["gems"]["balance"] == 12

    with pytest.raises(Conflict) as overdraft:
        await ledger_spend.asyncio(client=client,
                                   body=SpendIn(player_id="ann", currency="gems", amount=100))
    assert overdraft.value.status == 409 and overdraft.value.code == "insufficient_funds"
    assert overdraft.value.body["shortfall"] == 88 and overdraft.value.request_id
    with pytest.raises(NotFound) as missing:
        await challenges_claim.asyncio(client=client, player_id="ann", key="no-such-challenge",
                                       body=ChallengesClaimIn.from_dict({"verification": {}}))
    assert missing.value.status == 404 and missing.value.code
    profile = await profiles_get_profile.asyncio(client=client, player_id="ann")
    assert profile is not None and profile.to_dict()["balances"]["gems"]["balance"] == 12  # refusals changed nothing


class Overloaded(BaseHTTPRequestHandler):
    """Answers 503 with ``Retry-After: 0`` to the first ``busy`` requests, then 201; remembers what it got."""

    seen: list[dict[str, str]] = []
    busy = 2
    retry_after = "0"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        if len(type(self).seen) <= type(self).busy:
            body, status = {"status": 503, "code": "database_busy", "title": "Busy", "detail": "try later"}, 503
            headers = {"Retry-After": type(self).retry_after, "Content-Type": "application/problem+json"}
        else:
            body, status = {"id": "tx-1", "idempotency_key": self.headers["idempotency-key"], "kind": "grant",
                            "source": "api", "reference": None, "description": None, "actor": None,
                            "created_at": "2026-12-04T00:00:00+00:00", "postings": []}, 201
            headers = {"Content-Type": "application/json"}
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def overloaded() -> Iterator[str]:
    Overloaded.seen, Overloaded.busy, Overloaded.retry_after = [], 2, "0"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_503_is_retried_after_retry_after_with_one_idempotency_key(overloaded: str) -> None:
    client = connect(overloaded, "ql_sk_test")
    answer = ledger_grant.sync_detailed(client=client,
                                        body=LedgerGrantIn(player_id="ann", currency="gems", amount=5))
    assert answer.status_code == 201
    assert len(Overloaded.seen) == 3
    keys = {headers["idempotency-key"] for headers in Overloaded.seen}
    assert len(keys) == 1 and uuid.UUID(keys.pop())  # one key the SDK made, kept through the retries


def test_a_wait_longer_than_allowed_raises_the_problem_at_once(overloaded: str) -> None:
    Overloaded.retry_after = "3600"
    client = connect(overloaded, "ql_sk_test", max_wait=5)
    with pytest.raises(Unavailable) as busy:
        ledger_grant.sync(client=client, idempotency_key="k-1",
                          body=LedgerGrantIn(player_id="ann", currency="gems", amount=5))
    assert busy.value.code == "database_busy" and len(Overloaded.seen) == 1


def test_webhooks_signed_by_the_standard_verify_and_tampering_does_not() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signer = standardwebhooks.Webhook(secret)
    body = json.dumps({"type": "level.up", "data": {"player_id": "ann", "level": 3}}).encode()
    now = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
               "webhook-signature": signer.sign("msg_1", _utc(now), body.decode())}
    assert verify_webhook(secret, headers, body)["data"]["level"] == 3
    assert questline_sdk.sign(secret, "msg_1", now, body) == headers["webhook-signature"]
    for bad_headers, bad_body in [
        (headers, body.replace(b"3", b"9")),
        ({**headers, "webhook-id": "msg_2"}, body),
        ({**headers, "webhook-timestamp": str(now - 3600)}, body),
        ({k: v for k, v in headers.items() if k != "webhook-signature"}, body),
    ]:
        with pytest.raises(InvalidWebhook):
            verify_webhook(secret, bad_headers, bad_body)


def _utc(stamp: int) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(stamp, tz=dt.UTC)
