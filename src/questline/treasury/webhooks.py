"""The payment provider's webhooks: payments (deposits) and payouts (withdrawals) confirmed or failed."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.errors import NotFound, Unauthorized, Unprocessable
from questline.kit.runtime import Runtime
from questline.treasury import providers, service, withdrawals
from questline.treasury import repository as repo
from questline.treasury.schemas import WebhookOut

_log = structlog.get_logger("questline.treasury")
CHARGEBACK_PREFIX = "charge.dispute."
# A runtime extension (set by questline.finance): ``await handler(session, runtime, kind, data, deposit)``
# answers "applied", "duplicate" or "ignored".
CHARGEBACK_HANDLER = "treasury.chargeback_handler"


# Provider webhooks ----------------------------------------------------------------------------


def _event(body: bytes) -> tuple[str, str, dict[str, Any], str]:
    """(event id, type, data, app id) of a webhook's JSON body; 422 when it is not one."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        event = None
    data = event.get("data") if isinstance(event, dict) else None
    metadata = data.get("metadata") if isinstance(data, dict) else None
    app_id = metadata.get("app_id") if isinstance(metadata, dict) else None
    if not (isinstance(event, dict) and isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
            and isinstance(data, dict) and isinstance(data.get("id"), str) and isinstance(app_id, str)):
        raise Unprocessable("a webhook event has an id, a type and data with the object's id and metadata.app_id",
                            code="invalid_webhook")
    return event["id"][:128], event["type"][:64], data, app_id


async def psp_webhook(session: AsyncSession, runtime: Runtime, body: bytes, signature: str | None) -> WebhookOut:
    """A signed event from the PSP: a payment confirmed or failed, a payout paid or failed. A redelivered
    event (the same id) changes nothing; an event for an object not (yet) known answers 404, so the
    provider delivers it again later."""
    settings = runtime.settings
    if settings.psp_webhook_secret is None:
        raise NotFound("no payment provider webhooks are configured on this install", code="provider_not_configured")
    if not providers.verify_signature(settings.psp_webhook_secret.get_secret_value(), signature, body,
                                      tolerance=settings.psp_webhook_tolerance_seconds,
                                      now=runtime.clock.now().timestamp()):
        raise Unauthorized("the webhook's signature is missing, wrong or too old", code="invalid_signature")
    event_id, kind, data, app_id = _event(body)
    clock = runtime.clock
    if kind.startswith("payment_intent."):
        deposit = await repo.deposit_by_ref(session, app_id, "psp", data["id"])
        if deposit is None:
            raise NotFound(f"no deposit has the payment {data['id']}", code="deposit_not_found")
        if not await repo.claim_event(session, "psp", event_id, app_id, kind, clock.now()):
            return WebhookOut(outcome="duplicate")
        if kind == "payment_intent.succeeded":
            if data.get("amount") != deposit.amount or data.get("currency") != deposit.currency:
                _log.warning("psp_amount_mismatch", deposit=deposit.id, event=event_id)
                raise Unprocessable("the payment's amount or currency is not the deposit's", code="amount_mismatch")
            _, won = await service.credit(session, clock, deposit, confirmation=event_id, actor="provider:psp")
            return WebhookOut(outcome="applied" if won else "duplicate")
        if kind == "payment_intent.payment_failed":
            won = await repo.settle_deposit(session, app_id, deposit.id, status="failed", values={
                "failure_reason": str(data.get("failure_message") or "the payment failed")[:500],
                "settled_by": "provider:psp", "settled_at": clock.now()})
            return WebhookOut(outcome="applied" if won else "duplicate")
        return WebhookOut(outcome="ignored")
    if kind.startswith(CHARGEBACK_PREFIX):
        return await _chargeback(session, runtime, event_id, kind, data, app_id)
    return WebhookOut(outcome=await withdrawals.payout_event(session, runtime, event_id, kind, data, app_id))


async def _chargeback(session: AsyncSession, runtime: Runtime, event_id: str, kind: str, data: dict[str, Any],
                      app_id: str) -> WebhookOut:
    """A payer disputed a card payment with their bank: the handler the finance desk put on the runtime
    (``CHARGEBACK_HANDLER``) opens or settles its dispute. ``data.payment_intent`` (or ``data.id``) names the
    payment; one not known (yet) answers 404, so the provider delivers it again."""
    handler = runtime.extensions.get(CHARGEBACK_HANDLER)
    if handler is None:
        return WebhookOut(outcome="ignored")
    named = data.get("payment_intent")
    payment = named if isinstance(named, str) else str(data["id"])
    deposit = await repo.deposit_by_ref(session, app_id, "psp", payment)
    if deposit is None:
        raise NotFound(f"no deposit has the payment {payment}", code="deposit_not_found")
    if not await repo.claim_event(session, "psp", event_id, app_id, kind, runtime.clock.now()):
        return WebhookOut(outcome="duplicate")
    outcome = await handler(session, runtime, kind, data, deposit)
    return WebhookOut(outcome=outcome)
