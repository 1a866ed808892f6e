"""The rules of webhooks: endpoints and their secrets, which messages go where, the retry schedule.

Deliveries follow the Standard Webhooks specification: each call carries ``webhook-id`` (the
relay's stable message id: receivers deduplicate by it), ``webhook-timestamp`` and
``webhook-signature`` (HMAC-SHA256 by the ``standardwebhooks`` package; during a secret rotation's
overlap, a signature by each secret). A failed call is retried on the spec's schedule
(``SCHEDULE``); a 4xx other than 408, 409 and 429 is final; a delivery that runs out of attempts is
a dead letter, listed and redeliverable. An endpoint failing for ``DISABLE_AFTER`` is disabled and a
``webhook.endpoint_disabled`` message goes to the outbox (its owner's notification).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from questline.kit import egress
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, ProblemError
from questline.kit.ids import ID_PATTERN, new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline import repository as event_log
from questline.relay.service import RelayMessage
from questline.sponsors import sealing
from questline.webhooks import outbound
from questline.webhooks import repository as repo
from questline.webhooks.models import WebhookDelivery, WebhookEndpoint
from questline.webhooks.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointUpdate,
    Requeued,
    RotateIn,
    SecretRotated,
)

# The Standard Webhooks schedule: the wait before each attempt (the first is immediate).
SCHEDULE = (timedelta(0), timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
            timedelta(hours=5), timedelta(hours=10), timedelta(hours=10))
RETRYABLE_4XX = frozenset({408, 409, 429})
DISABLE_AFTER = timedelta(days=5)
DISABLED_TYPE = "webhook.endpoint_disabled"


def allow_private(settings: Settings) -> bool:
    """May webhooks call loopback, private and link-local addresses? Never in production; elsewhere
    ``QUESTLINE_WEBHOOKS_ALLOW_PRIVATE``, by default yes."""
    if settings.env == "production":
        return False
    return True if settings.webhooks_allow_private is None else settings.webhooks_allow_private


def _context(endpoint: WebhookEndpoint | Any) -> str:
    return f"{endpoint.app_id}/{endpoint.id}/webhook-secret"


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _seal(runtime_settings: Settings, endpoint: WebhookEndpoint, secret: str) -> str:
    return sealing.seal(sealing.data_key(runtime_settings), secret.encode(), _context(endpoint))


def secrets_of(settings: Settings, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    key = sealing.data_key(settings)
    found = [sealing.unseal(key, endpoint.secret_sealed, _context(endpoint)).decode()]
    if endpoint.previous_secret_sealed and endpoint.previous_secret_until and now < endpoint.previous_secret_until:
        found.append(sealing.unseal(key, endpoint.previous_secret_sealed, _context(endpoint)).decode())
    return found


def sign(secrets: Sequence[str], message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for one call."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures, "content-type": "application/json",
            "user-agent": "Questline-Webhooks/1"}


def _out(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "description": endpoint.description,
            "event_types": list(endpoint.event_types), "enabled": endpoint.disabled_at is None,
            "disabled_at": endpoint.disabled_at, "disabled_reason": endpoint.disabled_reason,
            "failing_since": endpoint.failing_since, "previous_secret_until": endpoint.previous_secret_until,
            "created_at": endpoint.created_at, "updated_at": endpoint.updated_at}


async def _check_reachable(runtime: Runtime, url: str) -> None:
    try:
        await outbound.check_url(url, allow_private=allow_private(runtime.settings),
                                 resolver=egress.resolver_of(runtime.extensions))
    except outbound.RefusedAddress as exc:
        raise ProblemError(f"webhooks may not call {url}: {exc}", code="url_not_allowed", status=422) from exc


async def create_endpoint(session: AsyncSession, runtime: Runtime, app_id: str, body: EndpointIn) -> EndpointCreated:
    await _check_reachable(runtime, body.url)
    now = runtime.clock.now()
    endpoint = WebhookEndpoint(id=new_id("whe"), app_id=app_id, url=body.url, description=body.description,
                               event_types=sorted(set(body.event_types)), created_at=now, updated_at=now)
    secret = _new_secret()
    endpoint.secret_sealed = _seal(runtime.settings, endpoint, secret)
    await repo.add_endpoint(session, endpoint)
    return EndpointCreated(**_out(endpoint), secret=secret)


async def _endpoint(session: AsyncSession, app_id: str, endpoint_id: str, *,
                    for_update: bool = False) -> WebhookEndpoint:
    found = await repo.endpoint(session, app_id, endpoint_id, for_update=for_update) \
        if re.match(ID_PATTERN, endpoint_id) else None
    if found is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found", code="endpoint_not_found")
    return found


async def get_endpoint(session: AsyncSession, app_id: str, endpoint_id: str) -> EndpointOut:
    return EndpointOut(**_out(await _endpoint(session, app_id, endpoint_id)))


async def list_endpoints(session: AsyncSession, app_id: str, page: PageParams) -> Page[EndpointOut]:
    rows = [EndpointOut(**_out(e)) for e in await repo.endpoints_page(session, app_id, page.after_str(), page.limit)]
    return build_page(rows, page.limit, lambda e: [e.id])


async def update_endpoint(session: AsyncSession, runtime: Runtime, app_id: str, endpoint_id: str,
                          body: EndpointUpdate) -> EndpointOut:
    endpoint = await _endpoint(session, app_id, endpoint_id, for_update=True)
    now = runtime.clock.now()
    if body.url is not None:
        await _check_reachable(runtime, body.url)
        endpoint.url = body.url
    if body.description is not None:
        endpoint.description = body.description
    if body.event_types is not None:
        endpoint.event_types = sorted(set(body.event_types))
    if body.enabled is False and endpoint.disabled_at is None:
        endpoint.disabled_at, endpoint.disabled_reason = now, "disabled by hand"
    elif body.enabled is True:
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    endpoint.updated_at = now
    await session.flush()
    return EndpointOut(**_out(endpoint))


async def delete_endpoint(session: AsyncSession, app_id: str, endpoint_id: str) -> None:
    await _endpoint(session, app_id, endpoint_id)
    await repo.delete_endpoint(session, app_id, endpoint_id)


async def rotate_secret(session: AsyncSession, runtime: Runtime, app_id: str, endpoint_id: str,
                        body: RotateIn) -> SecretRotated:
    """A new secret signs from now on; the old one also signs until the overlap ends."""
    endpoint = await _endpoint(session, app_id, endpoint_id, for_update=True)
    now = runtime.clock.now()
    secret = _new_secret()
    if body.overlap_seconds:
        endpoint.previous_secret_sealed = endpoint.secret_sealed
        endpoint.previous_secret_until = now + timedelta(seconds=body.overlap_seconds)
    else:
        endpoint.previous_secret_sealed = endpoint.previous_secret_until = None
    endpoint.secret_sealed = _seal(runtime.settings, endpoint, secret)
    endpoint.updated_at = now
    await session.flush()
    return SecretRotated(secret=secret, previous_secret_until=endpoint.previous_secret_until)


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    types = endpoint.event_types
    if not types:
        return True
    return any(t == event_type or (t.endswith(".*") and event_type.startswith(t[:-1])) for t in types)


def body_of(message: RelayMessage) -> bytes:
    """The payload as sent: the Standard Webhooks shape (type, timestamp, data)."""
    data = {**message.payload, "app_id": message.app_id}
    if message.player_id is not None:
        data.setdefault("player_id", message.player_id)
    return orjson.dumps({"type": message.type, "timestamp": message.created_at.isoformat(), "data": data})


async def enqueue(session: AsyncSession, clock: Clock, messages: Sequence[RelayMessage]) -> int:
    """Make a delivery for every (enabled endpoint, message) that it wants; a redelivered message
    makes none twice (unique per endpoint and message id)."""
    endpoints = await repo.active_endpoints(session, sorted({m.app_id for m in messages}))
    if not endpoints:
        return 0
    by_app: dict[str, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        by_app.setdefault(endpoint.app_id, []).append(endpoint)
    now = clock.now()
    rows = []
    for message in messages:
        body: str | None = None
        for endpoint in by_app.get(message.app_id, ()):
            if not wants(endpoint, message.type):
                continue
            body = body or body_of(message).decode()
            rows.append({"id": new_id("whd"), "app_id": message.app_id, "endpoint_id": endpoint.id,
                         "message_id": message.id, "event_type": message.type, "body": body,
                         "status": "pending", "attempts": 0, "manual": False, "next_attempt_at": now,
                         "created_at": now})
    await repo.add_deliveries(session, rows)
    return len(rows)


def _retryable(answer: outbound.Answer) -> bool:
    if answer.status is None:
        return not (answer.error or "").startswith("refused")
    return answer.status >= 500 or answer.status in RETRYABLE_4XX or 300 <= answer.status < 400


async def record(session: AsyncSession, runtime: Runtime, delivery: WebhookDelivery, endpoint: WebhookEndpoint,
                 answer: outbound.Answer, at: datetime) -> str:
    """Log one attempt and decide what follows: delivered, the next attempt, or a dead letter.
    Returns the delivery's new status."""
    ok = answer.status is not None and 200 <= answer.status < 300 and answer.error is None
    attempts = delivery.attempts + 1
    await repo.add_attempt(session, {
        "app_id": delivery.app_id, "endpoint_id": delivery.endpoint_id, "delivery_id": delivery.id,
        "attempted_at": at, "status_code": answer.status, "duration_ms": answer.duration_ms,
        "response_excerpt": answer.excerpt, "error": answer.error, "trigger": "manual" if delivery.manual else "auto",
    })
    values: dict[str, Any] = {"attempts": attempts, "manual": False, "last_attempt_at": at,
                              "last_status": answer.status, "last_error": answer.error}
    if ok:
        values.update(status="delivered", delivered_at=at, next_attempt_at=None)
        await repo.update_endpoint(session, endpoint.id, {"failing_since": None},
                                   where=WebhookEndpoint.failing_since.is_not(None))
    else:
        if _retryable(answer) and attempts < len(SCHEDULE):
            values.update(next_attempt_at=at + SCHEDULE[attempts])
        else:
            values.update(status="dead", next_attempt_at=None)
        await _note_failure(session, endpoint, at)
    await repo.update_delivery(session, delivery.id, values)
    return str(values.get("status", "pending"))


async def _note_failure(session: AsyncSession, endpoint: WebhookEndpoint, at: datetime) -> None:
    await repo.update_endpoint(session, endpoint.id, {"failing_since": at},
                               where=WebhookEndpoint.failing_since.is_(None))
    since = endpoint.failing_since
    if since is None or at - since < DISABLE_AFTER:
        return
    changed = await repo.update_endpoint(session, endpoint.id, {
        "disabled_at": at, "updated_at": at,
        "disabled_reason": f"failing since {since.isoformat()} ({DISABLE_AFTER.days} days)"},
        where=WebhookEndpoint.disabled_at.is_(None))
    if changed:
        await event_log.add_outbox(session, [event_log.outbox_row(
            endpoint.app_id, DISABLED_TYPE, None,
            {"endpoint_id": endpoint.id, "url": endpoint.url, "failing_since": since.isoformat()}, at)])


def _delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(id=d.id, endpoint_id=d.endpoint_id, message_id=d.message_id, event_type=d.event_type,
                       status=d.status,
                       attempts=d.attempts, next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                       last_attempt_at=d.last_attempt_at, last_status=d.last_status, last_error=d.last_error,
                       created_at=d.created_at, delivered_at=d.delivered_at)


async def deliveries(session: AsyncSession, app_id: str, endpoint_id: str | None, status: str | None,
                     page: PageParams) -> Page[DeliveryOut]:
    if endpoint_id is not None:
        await _endpoint(session, app_id, endpoint_id)
    rows = await repo.deliveries_page(session, app_id, endpoint_id, status, page.after_str(), page.limit)
    return build_page([_delivery_out(d) for d in rows], page.limit, lambda d: [d.id])


async def _delivery(session: AsyncSession, app_id: str, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
    found = await repo.delivery(session, app_id, endpoint_id, delivery_id) \
        if re.match(ID_PATTERN, delivery_id) else None
    if found is None:
        raise NotFound(f"delivery {delivery_id} not found", code="delivery_not_found")
    return found


async def delivery_detail(session: AsyncSession, app_id: str, endpoint_id: str, delivery_id: str) -> DeliveryDetail:
    await _endpoint(session, app_id, endpoint_id)
    found = await _delivery(session, app_id, endpoint_id, delivery_id)
    log = [AttemptOut(attempted_at=a.attempted_at, status_code=a.status_code, duration_ms=a.duration_ms,
                      response_excerpt=a.response_excerpt, error=a.error, trigger=a.trigger)
           for a in await repo.attempts_of(session, found.id)]
    return DeliveryDetail(**_delivery_out(found).model_dump(), body=found.body, log=log)


async def _enabled(session: AsyncSession, app_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await _endpoint(session, app_id, endpoint_id)
    if endpoint.disabled_at is not None:
        raise Conflict(f"webhook endpoint {endpoint_id} is disabled; enable it first", code="endpoint_disabled")
    return endpoint


async def retry(session: AsyncSession, clock: Clock, app_id: str, endpoint_id: str, delivery_id: str) -> DeliveryOut:
    """Deliver one message again now (a dead letter, a delivered one, or one waiting for its retry)."""
    await _enabled(session, app_id, endpoint_id)
    await _delivery(session, app_id, endpoint_id, delivery_id)
    await repo.requeue(session, app_id, endpoint_id, clock.now(), delivery_id=delivery_id)
    return _delivery_out(await _delivery(session, app_id, endpoint_id, delivery_id))


async def replay(session: AsyncSession, clock: Clock, app_id: str, endpoint_id: str, since: datetime) -> Requeued:
    """Deliver again everything made for this endpoint since a time."""
    await _enabled(session, app_id, endpoint_id)
    return Requeued(requeued=await repo.requeue(session, app_id, endpoint_id, clock.now(), since=since))
