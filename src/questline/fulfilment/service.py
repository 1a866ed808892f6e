"""Reward fulfilment: records of rewards delivered outside the ledger, and the work that delivers them.

A record is made in the transaction that awards the reward (once per source and reference) and
moves ``pending -> processing -> completed``, or to ``failed`` with the error. Automatic kinds are
delivered by ``process_due`` (the fulfilment loop): ``webhook`` and ``in_game`` are POSTs signed
the Standard Webhooks way with ``webhook-id`` = the fulfilment id (the receiver deduplicates by
it), retried on the spec's schedule; ``token`` is a transfer on an EVM chain whose signed
transaction is recorded before it is broadcast (see ``chain.py``), then tracked until it has its
confirmations. ``external`` rewards wait for an admin (or the studio's server) to mark them
fulfilled with a reference. Every change of status writes a ``reward.status`` message to the
outbox, and tells the area that made the record (``listen``).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.fulfilment import outbound
from questline.fulfilment import repository as repo
from questline.fulfilment.chain import Chain, Web3Chain, checksum
from questline.fulfilment.models import Fulfilment, FulfilmentTarget
from questline.fulfilment.schemas import KINDS, FulfilmentOut, TargetIn, TargetOut, deliveries
from questline.kit import egress
from questline.kit.db import after_commit, unit_of_work
from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.players import service as players

if TYPE_CHECKING:
    import httpx  # imported where it is used: most processes never call out (idle memory)

__all__ = ["cancel", "create", "create_for", "fulfil", "get", "list_fulfilments", "listen", "process_due", "retry",
           "set_target", "targets"]

_log = structlog.get_logger("questline.fulfilment")
Listener = Callable[[AsyncSession, Runtime, Fulfilment], Awaitable[None]]
PhaseHook = Callable[[str], None]
LISTENERS = "fulfilment.listeners"
CHAIN = "fulfilment.chain"
WAKE = "fulfilment.wake"
TOKEN_LOCK = "fulfilment.token_lock"
# Seconds to wait before the next attempt, after attempt n (the Standard Webhooks schedule:
# immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); a record fails after the last.
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(SCHEDULE) + 1
LEASE = timedelta(seconds=120)
CONFIRM_POLL = timedelta(seconds=5)
AUTOMATIC = ("webhook", "in_game", "token")
NO_RETRY_EXCEPT = (408, 409, 429)


class Permanent(Exception):
    """A delivery that cannot succeed by retrying (refused URL, missing wallet, a 4xx answer)."""


def listen(runtime: Runtime, source: str, listener: Listener) -> None:
    """Tell ``listener`` (in the same transaction) of every status change of records from ``source``."""
    runtime.extensions.setdefault(LISTENERS, {})[source] = listener


def wake_event(runtime: Runtime) -> asyncio.Event:
    event: asyncio.Event = runtime.extensions.setdefault(WAKE, asyncio.Event())
    return event


def chain_of(runtime: Runtime) -> Chain | None:
    """The chain token rewards are paid on: set by the composition (tests), else from settings."""
    found: Chain | None = runtime.extensions.get(CHAIN)
    if found is None and runtime.settings.token_rpc_url and runtime.settings.token_signer_key:
        found = Web3Chain.from_url(runtime.settings.token_rpc_url,
                                   runtime.settings.token_signer_key.get_secret_value())
        runtime.extensions[CHAIN] = found
    return found


# Records -----------------------------------------------------------------------------------------


async def create(session: AsyncSession, runtime: Runtime, *, app_id: str, player_id: str, kind: str, source: str,
                 source_ref: str, spec: dict[str, Any]) -> Fulfilment:
    """Record a reward to deliver, once per (source, source_ref); returns the record (new or found)."""
    if kind not in KINDS:
        raise Unprocessable(f"unknown fulfilment kind {kind!r}", code="invalid_fulfilment_kind")
    now = runtime.clock.now()
    fresh = await repo.insert(session, {
        "id": new_id("ful"), "app_id": app_id, "player_id": player_id, "kind": kind, "source": source,
        "source_ref": source_ref, "spec": spec, "status": "pending", "attempts": 0,
        "next_attempt_at": now if kind in AUTOMATIC else None, "lease_until": None, "last_error": None,
        "result": None, "reference": None, "tx_hash": None, "tx_raw": None, "tx_nonce": None,
        "created_at": now, "updated_at": now, "completed_at": None,
    })
    record = await repo.by_source(session, app_id, source, source_ref)
    assert record is not None
    if fresh:
        await _announce(session, runtime, record, now)
        if kind in AUTOMATIC:
            after_commit(session, wake_event(runtime).set)
    return record


async def create_for(session: AsyncSession, runtime: Runtime, *, app_id: str, player_id: str, source: str,
                     source_ref: str, reward: Any) -> list[Fulfilment]:
    """Records for what a battle-pass tier or a challenge gives outside the ledger (``webhook``,
    ``in_game``, ``token``): one per kind, keyed ``{source_ref}:{kind}``, so a retried claim or a
    replayed completion finds the record it made and makes none twice."""
    return [await create(session, runtime, app_id=app_id, player_id=player_id, kind=kind, source=source,
                         source_ref=f"{source_ref}:{kind}", spec=spec) for kind, spec in deliveries(reward)]


async def _announce(session: AsyncSession, runtime: Runtime, record: Fulfilment, now: datetime) -> None:
    payload: dict[str, Any] = {"fulfilment_id": record.id, "kind": record.kind, "status": record.status,
                               "source": record.source, "source_ref": record.source_ref,
                               "attempts": record.attempts}
    for name in ("last_error", "reference", "tx_hash"):
        if getattr(record, name) is not None:
            payload[name.removeprefix("last_")] = getattr(record, name)
    await event_log.add_outbox(session, [event_log.outbox_row(record.app_id, "reward.status", record.player_id,
                                                              payload, now)])
    listener: Listener | None = runtime.extensions.get(LISTENERS, {}).get(record.source)
    if listener is not None:
        await listener(session, runtime, record)


async def _move(session: AsyncSession, runtime: Runtime, record: Fulfilment, *, expect: Sequence[str],
                **values: Any) -> Fulfilment | None:
    """Change a record from one of the expected statuses, announcing a change of status; None if it moved."""
    now = runtime.clock.now()
    before = record.status  # read now: the reload below refreshes ``record`` itself (one identity map)
    if not await repo.update(session, record.id, expect=expect, updated_at=now, **values):
        return None
    fresh = await repo.get(session, record.app_id, record.id)
    assert fresh is not None
    if fresh.status != before:
        await _announce(session, runtime, fresh, now)
    return fresh


async def cancel(session: AsyncSession, runtime: Runtime, app_id: str, source: str, source_ref: str) -> bool:
    """Withdraw a reward not delivered yet (its prize was rolled back); False if delivered or under way."""
    record = await repo.by_source(session, app_id, source, source_ref)
    if record is None or record.status in ("completed", "cancelled"):
        return False
    if record.tx_hash is not None:  # a signed transfer may be mined: it runs to its end
        return False
    moved = await _move(session, runtime, record, expect=("pending", "failed"), status="cancelled",
                        next_attempt_at=None, lease_until=None)
    return moved is not None


async def get(session: AsyncSession, app_id: str, fulfilment_id: str) -> FulfilmentOut:
    return FulfilmentOut.model_validate(await _get(session, app_id, fulfilment_id))


async def _get(session: AsyncSession, app_id: str, fulfilment_id: str) -> Fulfilment:
    record = await repo.get(session, app_id, fulfilment_id)
    if record is None:
        raise NotFound(f"fulfilment {fulfilment_id} not found", code="fulfilment_not_found")
    return record


async def list_fulfilments(session: AsyncSession, app_id: str, *, status: str | None, kind: str | None,
                           player_id: str | None, page: PageParams) -> Page[FulfilmentOut]:
    rows = await repo.page(session, app_id, status=status, kind=kind, player_id=player_id, before=page.after_str(),
                           limit=page.limit)
    built = build_page(list(rows), page.limit, lambda r: [r.id])
    return Page[FulfilmentOut](items=[FulfilmentOut.model_validate(r) for r in built.items],
                               next_cursor=built.next_cursor)


async def retry(session: AsyncSession, runtime: Runtime, app_id: str, fulfilment_id: str) -> FulfilmentOut:
    """Try a failed (or waiting) automatic delivery again now, with a fresh set of attempts."""
    record = await _get(session, app_id, fulfilment_id)
    if record.kind not in AUTOMATIC:
        raise Conflict(f"a {record.kind} reward is delivered by hand: mark it fulfilled with a reference",
                       code="fulfilment_not_automatic")
    if record.status not in ("pending", "failed"):
        raise Conflict(f"fulfilment {record.id} is {record.status}", code="fulfilment_not_retryable",
                       extra={"fulfilment_status": record.status})
    now = runtime.clock.now()
    moved = await _move(session, runtime, record, expect=("pending", "failed"), status="pending",
                        next_attempt_at=now, attempts=0)
    if moved is None:
        raise Conflict("this fulfilment changed meanwhile; reload it", code="fulfilment_changed")
    after_commit(session, wake_event(runtime).set)
    return FulfilmentOut.model_validate(moved)


async def fulfil(session: AsyncSession, runtime: Runtime, app_id: str, fulfilment_id: str,
                 reference: str) -> FulfilmentOut:
    """Mark a reward delivered by hand with a reference; the same reference again changes nothing."""
    record = await _get(session, app_id, fulfilment_id)
    if record.status == "completed":
        if record.reference == reference:
            return FulfilmentOut.model_validate(record)
        raise Conflict(f"fulfilment {record.id} is already completed", code="fulfilment_already_completed",
                       extra={"reference": record.reference})
    if record.status == "cancelled":
        raise Conflict(f"fulfilment {record.id} was cancelled", code="fulfilment_cancelled")
    if record.status == "processing" or record.tx_hash is not None:
        raise Conflict(f"fulfilment {record.id} is being delivered automatically", code="fulfilment_in_progress")
    now = runtime.clock.now()
    moved = await _move(session, runtime, record, expect=("pending", "failed"), status="completed",
                        reference=reference, completed_at=now, next_attempt_at=None, last_error=None)
    if moved is None:
        raise Conflict("this fulfilment changed meanwhile; reload it", code="fulfilment_changed")
    return FulfilmentOut.model_validate(moved)


# Targets -----------------------------------------------------------------------------------------


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def set_target(session: AsyncSession, runtime: Runtime, app_id: str, kind: str, body: TargetIn) -> TargetOut:
    """Set where an app's ``webhook`` or ``in_game`` rewards go; the signing secret is shown when made."""
    try:
        outbound.check_url_shape(body.url)
    except outbound.OutboundRefused as exc:
        raise Unprocessable(str(exc), code="invalid_url") from exc
    now = runtime.clock.now()
    secret = _new_secret()
    made = await repo.add_target(session, {"app_id": app_id, "kind": kind, "url": body.url, "secret": secret,
                                           "description": body.description, "created_at": now, "updated_at": now})
    if not made:
        values: dict[str, Any] = {"url": body.url, "description": body.description, "updated_at": now}
        if body.rotate_secret:
            values["secret"] = secret
        await repo.set_target(session, app_id, kind, **values)
    target = await repo.target(session, app_id, kind)
    assert target is not None
    return _target_out(target, shown=made or body.rotate_secret)


def _target_out(target: FulfilmentTarget, *, shown: bool) -> TargetOut:
    return TargetOut(kind=target.kind, url=target.url, description=target.description,
                     secret=target.secret if shown else None, created_at=target.created_at,
                     updated_at=target.updated_at)


async def targets(session: AsyncSession, app_id: str) -> list[TargetOut]:
    return [_target_out(t, shown=False) for t in await repo.targets(session, app_id)]


# Delivery ----------------------------------------------------------------------------------------


async def process_due(runtime: Runtime, *, limit: int = 50, on_phase: PhaseHook | None = None) -> int:
    """Deliver what is due (each record in its own short transactions); returns how many were worked on."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as session:
        claimed = []
        for record in await repo.due(session, now, limit):
            if await repo.claim(session, record, now, now + LEASE):
                claimed.append(record)
                if record.status == "pending":
                    fresh = await repo.get(session, record.app_id, record.id)
                    assert fresh is not None
                    await _announce(session, runtime, fresh, now)
    if not claimed:
        return 0
    settings = runtime.settings
    async with outbound.new_client(settings.outbound_timeout_seconds,
                                   allow_private=lambda: settings.outbound_private_allowed,
                                   resolver=egress.resolver_of(runtime.extensions)) as client:
        for record in claimed:
            await _deliver(runtime, client, record.id, record.app_id, on_phase)
    return len(claimed)


async def _deliver(runtime: Runtime, client: httpx.AsyncClient, fulfilment_id: str, app_id: str,
                   on_phase: PhaseHook | None) -> None:
    import httpx

    async with runtime.read_sessions() as session:
        record = await repo.get(session, app_id, fulfilment_id)
        target = await repo.target(session, app_id, record.kind) if record is not None else None
        traits = (await players.traits_of(session, app_id, [record.player_id])).get(record.player_id, {}) \
            if record is not None else {}
    if record is None or record.status != "processing":
        return
    try:
        if record.kind == "token":
            await _deliver_token(runtime, record, traits, on_phase)
            return
        answer = await _call(runtime, client, record, target)
    except Permanent as exc:
        await _finish(runtime, record, failed=str(exc), retry=False)
        return
    except (httpx.HTTPError, OSError) as exc:
        await _finish(runtime, record, failed=f"{type(exc).__name__}: {exc}"[:1000] or type(exc).__name__,
                      retry=True)
        return
    result = {"status": answer.status, "body": answer.body, "elapsed_ms": answer.elapsed_ms}
    if 200 <= answer.status < 300:
        await _finish(runtime, record, result=result)
    else:
        retry = answer.status >= 500 or answer.status in NO_RETRY_EXCEPT or answer.status < 200
        await _finish(runtime, record, failed=f"the receiver answered {answer.status}", retry=retry, result=result)


async def _call(runtime: Runtime, client: httpx.AsyncClient, record: Fulfilment,
                target: FulfilmentTarget | None) -> outbound.Answer:
    import httpx

    if target is None:
        raise httpx.TransportError(f"no {record.kind} target is set for this app "
                                   f"(PUT /v1/fulfilment-targets/{record.kind})")
    if record.kind == "in_game":
        payload: dict[str, Any] = {"type": "reward.in_game", "fulfilment_id": record.id,
                                   "player_id": record.player_id, "item": record.spec.get("item"),
                                   "quantity": record.spec.get("quantity", 1)}
    else:
        payload = {"type": "reward.webhook", "fulfilment_id": record.id, "player_id": record.player_id,
                   "source": record.source, "source_ref": record.source_ref, "reward": record.spec}
    try:
        return await outbound.post_signed(client, target.url, target.secret, record.id, runtime.clock.now(), payload)
    except outbound.OutboundRefused as exc:
        raise Permanent(str(exc)) from exc


async def _finish(runtime: Runtime, record: Fulfilment, *, failed: str | None = None, retry: bool = False,
                  result: dict[str, Any] | None = None, wait: timedelta | None = None,
                  **values: Any) -> None:
    """Record the outcome of one attempt (from ``processing``)."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as session:
        fresh = await repo.get(session, record.app_id, record.id)
        if fresh is None or fresh.status != "processing":
            return
        if result is not None:
            values["result"] = result
        if wait is not None:  # still under way (a transfer waiting for confirmations)
            values.update(lease_until=now + wait, last_error=failed)
            await _move(session, runtime, fresh, expect=("processing",), **values)
        elif failed is None:
            await _move(session, runtime, fresh, expect=("processing",), status="completed", completed_at=now,
                        last_error=None, lease_until=None, next_attempt_at=None, **values)
        elif retry and fresh.attempts < MAX_ATTEMPTS:
            delay = timedelta(seconds=SCHEDULE[fresh.attempts - 1])
            await _move(session, runtime, fresh, expect=("processing",), status="pending", last_error=failed,
                        next_attempt_at=now + delay, lease_until=None, **values)
        else:
            await _move(session, runtime, fresh, expect=("processing",), status="failed", last_error=failed,
                        next_attempt_at=None, lease_until=None, **values)
    if failed is not None:
        _log.warning("fulfilment_attempt_failed", fulfilment_id=record.id, kind=record.kind, error=failed)


def _phase(hook: PhaseHook | None, name: str) -> None:
    if hook is not None:
        hook(name)


async def _deliver_token(runtime: Runtime, record: Fulfilment, traits: dict[str, object],
                         on_phase: PhaseHook | None) -> None:
    import httpx

    chain = chain_of(runtime)
    if chain is None:
        raise Permanent("no chain is configured (QUESTLINE_TOKEN_RPC_URL and QUESTLINE_TOKEN_SIGNER_KEY)")
    lock: asyncio.Lock = runtime.extensions.setdefault(TOKEN_LOCK, asyncio.Lock())
    async with lock:  # one signer: this process signs one transfer at a time (nonces in order)
        tx_hash = record.tx_hash
        if tx_hash is None:
            trait = str(record.spec.get("address_trait", "wallet_address"))
            raw_address = traits.get(trait)
            try:
                to = checksum(str(raw_address)) if isinstance(raw_address, str) else None
            except ValueError:
                to = None
            if to is None:
                raise Permanent(f"the player has no valid EVM address in their trait {trait!r}")
            async with unit_of_work(runtime.sessions) as session:
                highest = await repo.highest_open_nonce(session)
            try:
                signed = await chain.sign_transfer(to, int(record.spec["amount"]), record.spec.get("contract"),
                                                   0 if highest is None else highest + 1)
            except Exception as exc:
                raise httpx.TransportError(f"the chain could not be reached: {exc}") from exc
            # Record before sending: whatever happens next, this one signed transaction is the payment.
            async with unit_of_work(runtime.sessions) as session:
                if not await repo.update(session, record.id, expect=("processing",), tx_hash=signed.hash,
                                         tx_raw=signed.raw, tx_nonce=signed.nonce, updated_at=runtime.clock.now(),
                                         result={"tx_hash": signed.hash, "to": to, "amount": record.spec["amount"],
                                                 "contract": record.spec.get("contract"), "confirmations": 0}):
                    return
            _phase(on_phase, "recorded")
            tx_hash, raw = signed.hash, signed.raw
            await _broadcast(chain, raw)
            _phase(on_phase, "sent")
        else:
            raw = record.tx_raw or ""
        await _track(runtime, chain, record, tx_hash, raw)


async def _broadcast(chain: Chain, raw: str) -> None:
    try:
        await chain.broadcast(raw)
    except Exception as exc:  # known already, or the node is away: the receipt decides
        _log.info("token_broadcast_refused", error=str(exc)[:200])


async def _superseded(chain: Chain, tx_hash: str, nonce: int) -> bool:
    try:
        if await chain.mined_nonce() <= nonce:
            return False
        return await chain.receipt(tx_hash) is None  # asked again: it may have been mined meanwhile
    except Exception:
        return False


async def _track(runtime: Runtime, chain: Chain, record: Fulfilment, tx_hash: str, raw: str) -> None:
    try:
        receipt = await chain.receipt(tx_hash)
        head = await chain.head()
    except Exception as exc:
        await _finish(runtime, record, failed=f"the chain could not be reached: {exc}"[:1000], retry=False,
                      wait=CONFIRM_POLL)
        return
    result = dict(record.result or {})
    if receipt is None:
        if record.tx_nonce is not None and await _superseded(chain, tx_hash, record.tx_nonce):
            # Another transaction of the signer took this nonce, so this one can never be mined:
            # forget it and sign afresh on the next attempt.
            await _finish(runtime, record, failed="the transfer's nonce was taken by another transaction",
                          retry=True, tx_hash=None, tx_raw=None, tx_nonce=None)
            return
        await _broadcast(chain, raw)  # the same signed bytes: mined at most once
        await _finish(runtime, record, wait=CONFIRM_POLL, result=result)
        return
    result.update(block=receipt.block, confirmations=max(0, head - receipt.block + 1))
    if not receipt.ok:
        await _finish(runtime, record, failed="the transfer was reverted", result=result)
    elif result["confirmations"] >= runtime.settings.token_confirmations:
        await _finish(runtime, record, result=result)
    else:
        await _finish(runtime, record, wait=CONFIRM_POLL, result=result)
