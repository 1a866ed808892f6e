"""Payment providers: how money comes in (deposits) and goes out (payouts).

``Provider`` is the interface. Two implementations:

- ``ManualProvider`` (bank transfers): a deposit gets a reference for the payer to quote on their
  transfer, and nothing moves until finance staff record the transfer as received; a payout is
  sent by finance staff from the bank, who then record it as sent with the bank's reference.
- ``PspProvider`` (a card/PSP-style service over HTTP): a deposit creates a payment intent, a payout
  a transfer to a stored PSP token; the provider confirms both later by signed webhooks
  (``verify_signature``). Each call carries an ``Idempotency-Key``, so a retry after a timeout
  cannot create a second intent or payout. A timeout, a refused connection or a 5xx answer is
  ``503 provider_unavailable`` (the caller retries with the same key); nothing is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from questline.kit.errors import ServiceUnavailable, Unprocessable
from questline.kit.settings import Settings

_log = structlog.get_logger("questline.treasury")
SIGNATURE_HEADER = "Psp-Signature"


@dataclass(frozen=True)
class Started:
    """What a provider answered: its reference, its status, and what the payer needs to know."""

    reference: str
    status: str  # pending | processing | paid
    instructions: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str

    async def start_deposit(self, *, key: str, deposit_id: str, app_id: str, currency: str, amount: int,
                            token: str | None) -> Started: ...

    async def send_payout(self, *, key: str, payout_id: str, app_id: str, currency: str, amount: int,
                          destination: dict[str, str]) -> Started: ...


class ManualProvider:
    """Bank transfers recorded by finance staff: the provider itself moves nothing."""

    name = "manual"

    async def start_deposit(self, *, key: str, deposit_id: str, app_id: str, currency: str, amount: int,
                            token: str | None) -> Started:
        reference = "QL-" + deposit_id.split("_", 1)[1][-12:]
        return Started(reference, "pending", {
            "method": "bank_transfer", "reference": reference,
            "note": "quote this reference on the transfer; the deposit is credited once finance staff record it"})

    async def send_payout(self, *, key: str, payout_id: str, app_id: str, currency: str, amount: int,
                          destination: dict[str, str]) -> Started:
        return Started("", "awaiting_transfer", {"method": "bank_transfer"})


class PspProvider:
    """A card/PSP-style provider over HTTP (payment intents, payouts, signed webhooks)."""

    name = "psp"

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    async def _call(self, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": key}
        import httpx
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as client:
                reply = await client.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            _log.warning("psp_unreachable", path=path, error=type(exc).__name__)
            raise ServiceUnavailable("the payment provider did not answer in time; retry with the same "
                                     "Idempotency-Key", code="provider_unavailable",
                                     headers={"Retry-After": "5"}) from exc
        if reply.status_code >= 500:
            _log.warning("psp_error", path=path, status=reply.status_code)
            raise ServiceUnavailable(f"the payment provider answered {reply.status_code}; retry with the same "
                                     "Idempotency-Key", code="provider_unavailable", headers={"Retry-After": "5"})
        if reply.status_code >= 400:
            raise Unprocessable(f"the payment provider refused the request ({reply.status_code})",
                                code="provider_refused", extra={"provider_status": reply.status_code})
        try:
            answer = reply.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise ServiceUnavailable("the payment provider's answer was not understood", code="provider_unavailable")
        return answer

    async def start_deposit(self, *, key: str, deposit_id: str, app_id: str, currency: str, amount: int,
                            token: str | None) -> Started:
        body: dict[str, Any] = {"amount": amount, "currency": currency,
                                "metadata": {"app_id": app_id, "deposit_id": deposit_id}}
        if token is not None:
            body["payment_method"] = token
        answer = await self._call("/v1/payment_intents", key, body)
        instructions = {"method": "psp"}
        if isinstance(answer.get("client_secret"), str):
            instructions["client_secret"] = answer["client_secret"]
        return Started(answer["id"], "pending", instructions)

    async def send_payout(self, *, key: str, payout_id: str, app_id: str, currency: str, amount: int,
                          destination: dict[str, str]) -> Started:
        token = destination.get("token")
        if token is None:
            raise Unprocessable("the PSP pays out only to a psp_token payment method", code="invalid_payment_method")
        answer = await self._call("/v1/payouts", key, {"amount": amount, "currency": currency, "destination": token,
                                                       "metadata": {"app_id": app_id, "payout_id": payout_id}})
        status = answer.get("status")
        return Started(answer["id"], status if status in ("processing", "paid") else "processing")


def psp_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str | None, body: bytes, *, tolerance: int, now: float | None = None) -> bool:
    """A webhook signed ``t=<unix time>,v1=<hex HMAC-SHA256 of "t." + body>`` with the shared secret, recently."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    expected = psp_signature(secret, stamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def provider(settings: Settings, name: str) -> Provider:
    """The provider named ``name`` (``422 provider_not_configured`` when this install has none such)."""
    if name == "manual":
        return ManualProvider()
    if name == "psp" and settings.psp_url and settings.psp_api_key is not None:
        return PspProvider(settings.psp_url, settings.psp_api_key.get_secret_value(), settings.psp_timeout_seconds)
    raise Unprocessable(f"the payment provider {name!r} is not configured on this install",
                        code="provider_not_configured")
