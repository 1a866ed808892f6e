"""A local stand-in for a card/PSP-style payment provider: a real HTTP server (uvicorn, on a free port)
with payment intents and payouts (deduplicated by Idempotency-Key, as real PSPs do), modes that time
out or answer 500, and webhooks it signs and delivers to the engine, as many times as asked."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from questline.treasury.providers import SIGNATURE_HEADER, psp_signature
from tests.serving import free_port

API_KEY = "sk_test_standin"
WEBHOOK_SECRET = "whsec_standin_0123456789"
SETTLES = {"payment_intent.succeeded": "succeeded", "payment_intent.payment_failed": "failed",
           "payout.paid": "paid", "payout.failed": "failed"}


@dataclass
class StandIn:
    base: str = ""
    mode: str = "ok"  # ok | timeout (creates, then answers too late) | error (500, creates nothing)
    now: Callable[[], float] = field(default=lambda: 0.0)
    deliver: httpx.AsyncClient | None = None  # the engine's client, to post webhooks to
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> intent or payout
    by_key: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> object id
    calls: int = 0
    _n: Any = field(default_factory=itertools.count)

    async def _create(self, request: Request, prefix: str) -> Response:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": "bad key"}, status_code=401)
        if self.mode == "error":
            return JSONResponse({"error": "internal"}, status_code=500)
        body = await request.json()
        key = request.headers.get("idempotency-key") or uuid.uuid4().hex
        if key not in self.by_key:
            object_id = f"{prefix}_{next(self._n)}_{uuid.uuid4().hex[:8]}"
            self.by_key[key] = object_id
            self.objects[object_id] = {"id": object_id, "status": "processing", "created": int(self.now()), **body}
        found = self.objects[self.by_key[key]]
        if self.mode == "timeout":
            await asyncio.sleep(3)
        return JSONResponse({**found, "client_secret": f"{found['id']}_secret"})

    async def intents(self, request: Request) -> Response:
        return await self._create(request, "pi")

    async def payouts(self, request: Request) -> Response:
        return await self._create(request, "po")

    async def send(self, object_id: str, kind: str, *, times: int = 1, **extra: Any) -> list[httpx.Response]:
        """Deliver one signed event about an object ``times`` times at once (a provider's redelivery)."""
        assert self.deliver is not None
        found = self.objects[object_id]
        settled = SETTLES.get(kind)
        if settled is not None:  # the provider's own record follows what it announces
            found.update(status=settled, settled_at=int(self.now()))
        data = {"id": object_id, "amount": found["amount"], "currency": found["currency"],
                "metadata": found["metadata"], **extra}
        body = orjson.dumps({"id": f"evt_{uuid.uuid4().hex[:12]}", "type": kind, "data": data})
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: psp_signature(WEBHOOK_SECRET, int(self.now()), body)}
        return list(await asyncio.gather(*(self.deliver.post("/v1/finance/webhooks/psp", content=body,
                                                             headers=headers) for _ in range(times))))

    async def listing(self, request: Request) -> Response:
        """The provider's records of one app (what reconciliation compares the ledger with)."""
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": "bad key"}, status_code=401)
        if self.mode == "error":
            return JSONResponse({"error": "internal"}, status_code=500)
        prefix = "pi_" if request.url.path.endswith("payment_intents") else "po_"
        app_id = request.query_params.get("app_id")
        return JSONResponse({"data": [o for o in self.objects.values() if o["id"].startswith(prefix)
                                      and (o.get("metadata") or {}).get("app_id") == app_id]})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/payment_intents", self.intents, methods=["POST"]),
                                 Route("/v1/payouts", self.payouts, methods=["POST"]),
                                 Route("/v1/payment_intents", self.listing, methods=["GET"]),
                                 Route("/v1/payouts", self.listing, methods=["GET"])])


@asynccontextmanager
async def running() -> AsyncIterator[StandIn]:
    stand_in = StandIn()
    port = free_port()
    stand_in.base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(stand_in.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # up to 10 s
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "the PSP stand-in did not start"
    try:
        yield stand_in
    finally:
        server.should_exit = True
        await task
