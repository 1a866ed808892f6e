"""Withdrawals: a streamer (or a brand) cashes out.

- **Limits** per app and currency (``TreasurySettingsBody``): a minimum, a maximum per request, and
  totals per UTC day and month over the withdrawals not rejected or failed. The owner's available
  account is locked first, so one owner's requests queue and racing requests cannot slip past a
  limit together.
- **Hold at request**: the amount moves from available to ``hold:wd:<id>`` in the ledger; racing
  requests can never overdraw (the ledger's conditional update refuses the one that would).
- **Approval**: above ``approval_above`` a finance approval is needed, above ``two_approvers_above``
  two by different people (the withdrawal's row is locked while an approval is counted).
- **Payout**: an approved withdrawal is sent through the provider its payment method needs (a PSP
  token: the PSP, keyed by the withdrawal's id so a retry never pays twice; a bank account or
  e-mail: finance staff pay it and record it ``paid`` with the bank's reference). Paid moves the
  hold to ``external``; failed or rejected releases it to available.
- **KYC**: above the currency's ``kyc_required_above`` the owner needs a verified, unexpired KYC case
  (``409 kyc_required``).
- Every step is written to the audit log (``withdrawal.requested``, ``.approved``, ``.sent``,
  ``.paid``, ``.failed``, ``.rejected``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.audit import service as audit
from questline.kit.errors import Conflict, NotFound, ProblemError, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import AccountRef, WalletOwnerKind
from questline.pipeline import repository as event_log
from questline.tenancy.auth import Caller
from questline.treasury import kyc, providers
from questline.treasury import repository as repo
from questline.treasury.models import Withdrawal
from questline.treasury.schemas import (
    FailIn,
    PaidIn,
    TreasurySettingsBody,
    WithdrawalIn,
    WithdrawalLimits,
    WithdrawalOut,
)
from questline.treasury.service import authorize_owner, method_details, owned_method

OPEN = ("awaiting_approval", "approved")


# Settings -------------------------------------------------------------------------------------


async def settings_of(session: AsyncSession, app_id: str) -> TreasurySettingsBody:
    stored = await repo.get_settings(session, app_id)
    return TreasurySettingsBody() if stored is None else TreasurySettingsBody.model_validate(stored)


async def put_settings(session: AsyncSession, runtime: Runtime, app_id: str,
                       body: TreasurySettingsBody) -> TreasurySettingsBody:
    for code, limits in {"default": body.default_limits, **body.limits}.items():
        _check_limits(code, limits)
    await repo.put_settings(session, app_id, body.model_dump(mode="json"), runtime.clock.now())
    return body


def _check_limits(code: str, limits: WithdrawalLimits) -> None:
    if not limits.min <= limits.max_per_request <= limits.per_day <= limits.per_month:
        raise Unprocessable(f"{code}: limits must satisfy min <= max_per_request <= per_day <= per_month",
                            code="invalid_limits")
    if limits.two_approvers_above < limits.approval_above:
        raise Unprocessable(f"{code}: two_approvers_above must be at least approval_above", code="invalid_limits")


# Requests -------------------------------------------------------------------------------------


def _out(found: Withdrawal) -> WithdrawalOut:
    return WithdrawalOut.model_validate(found)


def _hold(withdrawal_id: str) -> str:
    return f"wd:{withdrawal_id}"


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def _audit(session: AsyncSession, runtime: Runtime, found: Withdrawal, action: str, actor: str) -> None:
    kind, _, ident = actor.partition(":")
    await audit.record_step(session, app_id=found.app_id, actor_kind=kind if ident else "system",
                            actor_id=ident or actor, action=f"withdrawal.{action}",
                            target={"withdrawal_id": found.id, "owner": f"{found.owner_kind}:{found.owner_id}",
                                    "amount": str(found.amount), "currency": found.currency},
                            now=runtime.clock.now())


async def request(session: AsyncSession, runtime: Runtime, caller: Caller, owner_kind: WalletOwnerKind,
                  owner_id: str, body: WithdrawalIn) -> WithdrawalOut:
    """Ask to be paid out: checked against the limits, held at once, then approved or sent."""
    await authorize_owner(session, caller, owner_kind, owner_id)
    clock = runtime.clock
    app_id = caller.app
    method = await owned_method(session, app_id, owner_kind, owner_id, body.payment_method_id)
    settings = await settings_of(session, app_id)
    limits = settings.limits.get(body.currency, settings.default_limits)
    if body.amount < limits.min or body.amount > limits.max_per_request:
        raise Unprocessable(f"a withdrawal of {body.currency} is {limits.min} to {limits.max_per_request} "
                            "(minor units)", code="withdrawal_out_of_bounds",
                            extra={"min": limits.min, "max_per_request": limits.max_per_request})
    if body.amount > limits.kyc_required_above:
        status = await kyc.is_verified(session, runtime, app_id, owner_kind, owner_id)
        if status != "verified":
            raise Conflict(f"a withdrawal above {limits.kyc_required_above} needs a verified identity (KYC is "
                           f"{status})", code="kyc_required",
                           extra={"kyc_status": status, "kyc_required_above": limits.kyc_required_above})
    # Queue this owner's requests on their available account, so the totals read below stay true.
    await ledger.ensure_currency(session, clock, app_id, body.currency)
    await ledger.lock_accounts(session, clock, app_id=app_id,
                               accounts=[AccountRef.wallet(owner_kind, owner_id, body.currency)])
    now = clock.now()
    day = await repo.withdrawn_since(session, app_id, owner_kind, owner_id, body.currency,
                                     now.replace(hour=0, minute=0, second=0, microsecond=0))
    month = await repo.withdrawn_since(session, app_id, owner_kind, owner_id, body.currency, _month_start(now))
    for name, used, limit in (("per_day", day, limits.per_day), ("per_month", month, limits.per_month)):
        if used + body.amount > limit:
            raise Unprocessable(f"this would take the {name.replace('_', ' ')} withdrawals to {used + body.amount}, "
                                f"over the limit of {limit}", code="withdrawal_limit_reached",
                                extra={"limit": name, "used": used, "allowed": max(0, limit - used)})
    withdrawal_id = new_id("wd")
    held = await ledger.hold_funds(session, clock, app_id=app_id, owner_kind=owner_kind, owner_id=owner_id,
                                   currency=body.currency, amount=body.amount, hold=_hold(withdrawal_id),
                                   idempotency_key=f"treasury:withdrawal:{withdrawal_id}:hold",
                                   reference={"withdrawal_id": withdrawal_id}, actor=caller.identity)
    needed = 2 if body.amount > limits.two_approvers_above else 1 if body.amount > limits.approval_above else 0
    await repo.insert_withdrawal(session, {
        "id": withdrawal_id, "app_id": app_id, "owner_kind": owner_kind, "owner_id": owner_id,
        "currency": body.currency, "amount": body.amount, "payment_method_id": method.id,
        "provider": "psp" if method.kind == "psp_token" else "manual",
        "status": "awaiting_approval" if needed else "approved", "approvals_needed": needed, "approvals": [],
        "provider_ref": None, "reference": None, "failure_reason": None, "last_error": None,
        "hold_transaction_id": held.id, "settle_transaction_id": None, "created_by": caller.identity,
        "created_at": now, "updated_at": now, "settled_at": None})
    found = await _get(session, app_id, withdrawal_id)
    await _audit(session, runtime, found, "requested", caller.identity)
    if not needed:
        found = await _send(session, runtime, found)
    return _out(found)


async def _get(session: AsyncSession, app_id: str, withdrawal_id: str, *, lock: bool = False) -> Withdrawal:
    found = await repo.get_withdrawal(session, app_id, withdrawal_id, lock=lock)
    if found is None:
        raise NotFound(f"withdrawal {withdrawal_id} not found", code="withdrawal_not_found")
    return found


async def get(session: AsyncSession, caller: Caller, withdrawal_id: str) -> WithdrawalOut:
    return _out(await _get(session, caller.app, withdrawal_id))


async def listing(session: AsyncSession, caller: Caller, *, owner: tuple[WalletOwnerKind, str] | None,
                  status: str | None, paging: PageParams) -> Page[WithdrawalOut]:
    if owner is not None:
        await authorize_owner(session, caller, owner[0], owner[1])
    rows = await repo.list_withdrawals(session, caller.app, owner=owner, status=status, before=paging.after_str(),
                                       limit=paging.limit)
    page = build_page(list(rows), paging.limit, lambda w: [w.id])
    return Page[WithdrawalOut](items=[_out(w) for w in page.items], next_cursor=page.next_cursor)


# Finance steps --------------------------------------------------------------------------------


async def approve(session: AsyncSession, runtime: Runtime, caller: Caller, withdrawal_id: str) -> WithdrawalOut:
    """One finance approval; the last one needed sends the payout. Each approver counts once."""
    found = await _get(session, caller.app, withdrawal_id, lock=True)
    if found.status != "awaiting_approval":
        raise Conflict(f"withdrawal {withdrawal_id} is {found.status}, not awaiting approval",
                       code="withdrawal_not_awaiting_approval", extra={"withdrawal_status": found.status})
    if found.created_by == caller.identity:
        raise Conflict("whoever asked for a withdrawal may not approve it", code="approver_is_requester")
    if any(a["by"] == caller.identity for a in found.approvals):
        raise Conflict("this approver already approved it; another person must", code="already_approved")
    now = runtime.clock.now()
    approvals = [*found.approvals, {"by": caller.identity, "at": now.isoformat()}]
    done = len(approvals) >= found.approvals_needed
    await repo.update_withdrawal(session, caller.app, withdrawal_id, from_status=["awaiting_approval"], values={
        "approvals": approvals, "status": "approved" if done else "awaiting_approval", "updated_at": now})
    found = await _get(session, caller.app, withdrawal_id)
    await _audit(session, runtime, found, "approved", caller.identity)
    if done:
        found = await _send(session, runtime, found)
    return _out(found)


async def _send(session: AsyncSession, runtime: Runtime, found: Withdrawal) -> Withdrawal:
    """Hand an approved withdrawal to its provider. A provider that cannot be reached leaves it approved
    with the error (``POST …/send`` tries again, with the same key: never paid twice)."""
    if found.provider == "manual":
        return found  # finance staff pay it from the bank and record it paid
    method = await owned_method(session, found.app_id, found.owner_kind, found.owner_id, found.payment_method_id)
    provider = providers.provider(runtime.settings, found.provider)
    now = runtime.clock.now()
    try:
        started = await provider.send_payout(key=f"payout:{found.id}", payout_id=found.id, app_id=found.app_id,
                                             currency=found.currency, amount=found.amount,
                                             destination=method_details(runtime, method))
    except ProblemError as exc:
        await repo.update_withdrawal(session, found.app_id, found.id, from_status=["approved"],
                                     values={"last_error": exc.detail[:500], "updated_at": now})
        return await _get(session, found.app_id, found.id)
    await repo.update_withdrawal(session, found.app_id, found.id, from_status=["approved"], values={
        "status": "processing", "provider_ref": started.reference, "last_error": None, "updated_at": now})
    found = await _get(session, found.app_id, found.id)
    await _audit(session, runtime, found, "sent", f"provider:{found.provider}")
    return found


async def send(session: AsyncSession, runtime: Runtime, caller: Caller, withdrawal_id: str) -> WithdrawalOut:
    found = await _get(session, caller.app, withdrawal_id, lock=True)
    if found.status != "approved" or found.provider == "manual":
        raise Conflict(f"withdrawal {withdrawal_id} is {found.status} ({found.provider}); only an approved PSP "
                       "payout is sent again", code="withdrawal_not_sendable")
    return _out(await _send(session, runtime, found))


async def _paid(session: AsyncSession, runtime: Runtime, found: Withdrawal, reference: str, actor: str) -> bool:
    now = runtime.clock.now()
    won = await repo.update_withdrawal(session, found.app_id, found.id, from_status=["approved", "processing"],
                                       values={"status": "paid", "reference": reference, "updated_at": now,
                                               "settled_at": now})
    if not won:
        return False
    hold = AccountRef.wallet(found.owner_kind, found.owner_id, found.currency,  # type: ignore[arg-type]
                             ledger.hold_sub(_hold(found.id)))
    txn = await ledger.transfer(session, runtime.clock, app_id=found.app_id, entries=[
        (hold, -found.amount), (AccountRef.system(ledger.EXTERNAL, found.currency), found.amount)],
        idempotency_key=f"treasury:withdrawal:{found.id}:paid", kind="payout", source="withdrawal",
        reference={"withdrawal_id": found.id, "reference": reference}, actor=actor)
    await repo.update_withdrawal(session, found.app_id, found.id, from_status=["paid"],
                                 values={"settle_transaction_id": txn.id})
    await _audit(session, runtime, found, "paid", actor)
    # The owner's payout notification (and webhooks) come from the outbox, once: only the winner gets here.
    await event_log.add_outbox(session, [event_log.outbox_row(found.app_id, "withdrawal.paid", None, {
        "withdrawal_id": found.id, "owner_kind": found.owner_kind, f"{found.owner_kind}_id": found.owner_id,
        "owner_id": found.owner_id, "amount": found.amount, "currency": found.currency, "reference": reference},
        now)])
    return True


async def _release(session: AsyncSession, runtime: Runtime, found: Withdrawal, *, status: str, reason: str,
                   actor: str, from_status: tuple[str, ...]) -> bool:
    now = runtime.clock.now()
    won = await repo.update_withdrawal(session, found.app_id, found.id, from_status=list(from_status), values={
        "status": status, "failure_reason": reason, "updated_at": now, "settled_at": now})
    if not won:
        return False
    txn = await ledger.release_held(session, runtime.clock, app_id=found.app_id,
                                    owner_kind=found.owner_kind,  # type: ignore[arg-type]
                                    owner_id=found.owner_id, currency=found.currency, hold=_hold(found.id),
                                    idempotency_key=f"treasury:withdrawal:{found.id}:release",
                                    reference={"withdrawal_id": found.id, "status": status}, actor=actor)
    if txn is not None:
        await repo.update_withdrawal(session, found.app_id, found.id, from_status=[status],
                                     values={"settle_transaction_id": txn.id})
    await _audit(session, runtime, found, status, actor)
    return True


async def mark_paid(session: AsyncSession, runtime: Runtime, caller: Caller, withdrawal_id: str,
                    body: PaidIn) -> WithdrawalOut:
    """Finance staff record a bank payout as sent, with the bank's reference (manual provider)."""
    found = await _get(session, caller.app, withdrawal_id, lock=True)
    if found.provider != "manual":
        raise Conflict("a PSP payout is marked paid by its provider's webhook", code="withdrawal_not_manual")
    if not await _paid(session, runtime, found, body.reference, caller.identity):
        found = await _get(session, caller.app, withdrawal_id)
        if not (found.status == "paid" and found.reference == body.reference):
            raise Conflict(f"withdrawal {withdrawal_id} is {found.status}", code="withdrawal_not_payable",
                           extra={"withdrawal_status": found.status})
    return _out(await _get(session, caller.app, withdrawal_id))


async def reject(session: AsyncSession, runtime: Runtime, caller: Caller, withdrawal_id: str,
                 body: FailIn) -> WithdrawalOut:
    """Finance staff refuse a withdrawal awaiting approval: the hold goes back to available."""
    found = await _get(session, caller.app, withdrawal_id, lock=True)
    if not await _release(session, runtime, found, status="rejected", reason=body.reason, actor=caller.identity,
                          from_status=("awaiting_approval",)):
        raise Conflict(f"withdrawal {withdrawal_id} is {found.status}, not awaiting approval",
                       code="withdrawal_not_awaiting_approval", extra={"withdrawal_status": found.status})
    return _out(await _get(session, caller.app, withdrawal_id))


async def fail(session: AsyncSession, runtime: Runtime, caller: Caller, withdrawal_id: str,
               body: FailIn) -> WithdrawalOut:
    """Finance staff record that an approved payout could not be made: the hold goes back to available."""
    found = await _get(session, caller.app, withdrawal_id, lock=True)
    if not await _release(session, runtime, found, status="failed", reason=body.reason, actor=caller.identity,
                          from_status=("approved", "processing")):
        raise Conflict(f"withdrawal {withdrawal_id} is {found.status}", code="withdrawal_not_payable",
                       extra={"withdrawal_status": found.status})
    return _out(await _get(session, caller.app, withdrawal_id))


async def payout_event(session: AsyncSession, runtime: Runtime, event_id: str, kind: str, data: dict[str, Any],
                       app_id: str) -> str:
    """``payout.paid`` / ``payout.failed`` from the PSP; a repeated one changes nothing."""
    if kind not in ("payout.paid", "payout.failed"):
        return "ignored"
    found = await repo.withdrawal_by_ref(session, app_id, "psp", str(data["id"]))
    if found is None:
        raise NotFound(f"no withdrawal has the payout {data['id']}", code="withdrawal_not_found")
    found = await _get(session, app_id, found.id, lock=True)
    if data.get("amount") != found.amount or data.get("currency") != found.currency:
        raise Unprocessable("the payout's amount or currency is not the withdrawal's", code="amount_mismatch")
    if kind == "payout.paid":
        won = await _paid(session, runtime, found, event_id, "provider:psp")
    else:
        won = await _release(session, runtime, found, status="failed",
                             reason=str(data.get("failure_message") or "the payout failed")[:500],
                             actor="provider:psp", from_status=("processing",))
    return "applied" if won else "duplicate"
