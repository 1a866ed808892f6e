"""Disputes: a brand disputes a participation's impressions; a PSP chargeback opens one by itself.

Impressions: the brand opens it (how many of the participation's impressions, and why); the brand and
the participation's streamer add evidence (nobody else); finance (the ``finance`` role or the owner)
decides, once, to **reject** it or to **refund** some or all of the impressions. A refund gives the
brand ``rate_per_mille × impressions // 1000`` back by compensating ledger transactions (history is
never edited), keyed by the dispute, so a second or racing decision cannot refund twice:

- the platform's commission share (``× commission_bps // 10000``) from the platform's revenue;
- the streamer's share from the streamer's available earnings when the decision says so
  (``recover_from_streamer``, the default), never below zero; otherwise the platform's revenue pays it;
- what neither covers (the streamer withdrew it, the revenue is short) is the platform's **loss**,
  paid in from ``external`` (the platform's own money) as a ``dispute_loss`` transaction.

A refund waits for the campaign to complete (its earnings released): ``409 campaign_not_settled``.

Chargebacks (``charge.dispute.created`` from the PSP, signed): one dispute per deposit, whatever the
number of deliveries; the disputed amount (as far as the brand's available money covers it) is held
under ``hold:chargeback:<dispute>``. ``charge.dispute.closed`` settles it: ``won`` releases the hold,
``lost`` reverses the deposit (the held money leaves to ``external``; what the brand had already
spent is the platform's loss, recorded on the dispute).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.audit import service as audit
from questline.billing import service as billing
from questline.campaigns import service as campaigns
from questline.finance import repository as repo
from questline.finance.models import Dispute
from questline.finance.schemas import DisputeDecisionIn, DisputeIn, DisputeOut, EvidenceIn, EvidenceOut
from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import AccountRef
from questline.sponsors import service as sponsors
from questline.tenancy.auth import ADMIN, BRAND, STREAMER, Caller
from questline.treasury.models import Deposit
from questline.treasury.webhooks import CHARGEBACK_HANDLER

MAX_EVIDENCE = 20


def _out(dispute: Dispute, evidence: list[EvidenceOut] | None = None) -> DisputeOut:
    found = DisputeOut.model_validate(dispute)
    found.evidence = evidence or []
    return found


async def _visible(session: AsyncSession, caller: Caller, dispute_id: str, *, lock: bool = False) -> Dispute:
    """The dispute, if the caller is one of its parties or finance; others get a 404 (no probing)."""
    found = await repo.get_dispute(session, caller.app, dispute_id, lock=lock)
    if found is not None:
        if caller.kind is BRAND and caller.account_id == found.brand_id:
            await sponsors.acting_member(session, caller, found.brand_id)
            return found
        if caller.kind is STREAMER and found.streamer_id is not None and caller.account_id == found.streamer_id:
            return found
        if caller.kind is ADMIN:
            return found
    raise NotFound(f"dispute {dispute_id} not found", code="dispute_not_found")


async def _audit(session: AsyncSession, runtime: Runtime, dispute: Dispute, action: str, actor_kind: str,
                 actor: str) -> None:
    await audit.record_step(session, app_id=dispute.app_id, actor_kind=actor_kind, actor_id=actor,
                            action=f"dispute.{action}", target={"dispute_id": dispute.id, "kind": dispute.kind},
                            now=runtime.clock.now())


async def get(session: AsyncSession, caller: Caller, dispute_id: str) -> DisputeOut:
    found = await _visible(session, caller, dispute_id)
    evidence = [EvidenceOut.model_validate(e) for e in await repo.evidence_of(session, caller.app, dispute_id)]
    return _out(found, evidence)


async def listing(session: AsyncSession, caller: Caller, status: str | None, paging: PageParams) -> Page[DisputeOut]:
    """A brand sees its disputes, a streamer those about them, finance every one."""
    brand_id = caller.account_id if caller.kind is BRAND else None
    streamer_id = caller.account_id if caller.kind is STREAMER else None
    if brand_id is not None:
        await sponsors.acting_member(session, caller, brand_id)
    rows = await repo.list_disputes(session, caller.app, brand_id=brand_id, streamer_id=streamer_id, status=status,
                                    after=paging.after_str(), limit=paging.limit)
    page = build_page(list(rows), paging.limit, lambda d: [d.id])
    return Page[DisputeOut](items=[_out(d) for d in page.items], next_cursor=page.next_cursor)


# Impressions ----------------------------------------------------------------------------------


async def open_dispute(session: AsyncSession, runtime: Runtime, caller: Caller, body: DisputeIn) -> DisputeOut:
    """The brand disputes some of a participation's impressions in one of its campaigns, or an invoice line."""
    if body.invoice_line_id is not None:
        return await _open_line_dispute(session, runtime, caller, body.invoice_line_id, body)
    assert body.campaign_id is not None and body.streamer_id is not None and body.impressions is not None
    participation = await campaigns.get_participation(session, caller, body.campaign_id, body.streamer_id)
    campaign = await campaigns.get_campaign(session, caller.app, body.campaign_id)
    left = participation.impressions - await repo.refunded_impressions(session, caller.app, participation.id)
    if body.impressions > left:
        raise Unprocessable(f"the participation has {left} impressions that could still be disputed",
                            code="too_many_impressions", extra={"disputable": left})
    now = runtime.clock.now()
    dispute_id = new_id("dsp")
    await repo.insert_dispute(session, {
        "id": dispute_id, "app_id": caller.app, "kind": "impressions", "status": "open",
        "brand_id": campaign.brand_id, "streamer_id": participation.streamer_id, "campaign_id": campaign.id,
        "participation_id": participation.id, "subject_ref": None, "currency": campaign.currency,
        "impressions": body.impressions, "amount": campaign.rate_per_mille * body.impressions // 1000,
        "reason": body.reason, "opened_by": caller.identity, "verdict": None, "decision": None, "refunded": 0,
        "from_revenue": 0, "from_streamer": 0, "loss": 0, "transactions": [], "decided_by": None,
        "decided_at": None, "created_at": now, "updated_at": now})
    found = await repo.get_dispute(session, caller.app, dispute_id)
    assert found is not None
    await _audit(session, runtime, found, "opened", caller.kind.value, caller.identity)
    return _out(found)


async def _open_line_dispute(session: AsyncSession, runtime: Runtime, caller: Caller, line_id: str,
                             body: DisputeIn) -> DisputeOut:
    """One dispute per invoice line of the brand's (another brand's line: 404)."""
    assert caller.account_id is not None
    await sponsors.acting_member(session, caller, caller.account_id)
    line = await billing.invoice_line(session, caller.app, line_id)
    if line.brand_id != caller.account_id:
        raise NotFound(f"invoice line {line_id} not found", code="invoice_line_not_found")
    if line.invoice_status in ("draft", "void"):
        raise Conflict(f"invoice {line.invoice_id} is {line.invoice_status}: a draft is corrected before it is "
                       "finalized, a void one owes nothing", code="invoice_not_disputable",
                       extra={"invoice_status": line.invoice_status})
    amount = body.amount or line.amount
    if amount > line.amount:
        raise Unprocessable(f"the line is {line.amount}", code="amount_too_large", extra={"line_amount": line.amount})
    now = runtime.clock.now()
    dispute_id = new_id("dsp")
    if not await repo.insert_dispute(session, {
            "id": dispute_id, "app_id": caller.app, "kind": "invoice_line", "status": "open",
            "brand_id": line.brand_id, "streamer_id": None, "campaign_id": line.campaign_id,
            "participation_id": None, "subject_ref": line.id, "currency": line.currency, "impressions": 0,
            "amount": amount, "reason": body.reason, "opened_by": caller.identity, "verdict": None,
            "decision": {"invoice_id": line.invoice_id, "line_kind": line.kind}, "refunded": 0, "from_revenue": 0,
            "from_streamer": 0, "loss": 0, "transactions": [], "decided_by": None, "decided_at": None,
            "created_at": now, "updated_at": now}):
        raise Conflict(f"invoice line {line_id} is already disputed", code="already_disputed")
    found = await repo.get_dispute(session, caller.app, dispute_id)
    assert found is not None
    await _audit(session, runtime, found, "opened", caller.kind.value, caller.identity)
    return _out(found)


async def add_evidence(session: AsyncSession, runtime: Runtime, caller: Caller, dispute_id: str,
                       body: EvidenceIn) -> EvidenceOut:
    """Evidence from one of the two parties (the brand, the disputed streamer) while the dispute is open."""
    found = await _visible(session, caller, dispute_id)
    if caller.kind not in (BRAND, STREAMER):
        raise NotFound(f"dispute {dispute_id} not found", code="dispute_not_found")
    if found.status != "open":
        raise Conflict(f"dispute {dispute_id} is decided ({found.status})", code="dispute_decided")
    if await repo.count_evidence(session, caller.app, dispute_id) >= MAX_EVIDENCE:
        raise Unprocessable(f"a dispute takes at most {MAX_EVIDENCE} pieces of evidence", code="too_much_evidence")
    evidence_id = new_id("evd")
    now = runtime.clock.now()
    await repo.insert_evidence(session, {
        "id": evidence_id, "app_id": caller.app, "dispute_id": dispute_id, "party": caller.kind.value,
        "author": caller.identity, "statement": body.statement, "links": list(body.links), "created_at": now})
    await repo.update_dispute(session, caller.app, dispute_id, {"updated_at": now})
    return next(EvidenceOut.model_validate(e) for e in await repo.evidence_of(session, caller.app, dispute_id)
                if e.id == evidence_id)


async def decide(session: AsyncSession, runtime: Runtime, caller: Caller, dispute_id: str,
                 body: DisputeDecisionIn) -> DisputeOut:
    """Finance rejects the dispute or refunds it, once (a second or racing decision: ``409``)."""
    found = await _visible(session, caller, dispute_id)
    if found.kind == "chargeback":
        raise Conflict("a chargeback is decided by the provider's charge.dispute.closed event",
                       code="decided_by_provider")
    if found.status != "open":
        raise Conflict(f"dispute {dispute_id} is already decided ({found.status})", code="dispute_already_decided",
                       extra={"dispute_status": found.status})
    now = runtime.clock.now()
    decision: dict[str, Any] = {"verdict": body.verdict, "reason": body.reason}
    if body.verdict == "reject":
        if not await repo.decide_dispute(session, caller.app, dispute_id, {
                "status": "rejected", "verdict": "reject", "decision": decision, "decided_by": caller.identity,
                "decided_at": now, "updated_at": now}):
            raise Conflict(f"dispute {dispute_id} is already decided", code="dispute_already_decided")
    elif found.kind == "invoice_line":
        await _refund_line(session, runtime, caller, found, body, decision)
    else:
        await _refund(session, runtime, caller, found, body, decision)
    decided = await repo.get_dispute(session, caller.app, dispute_id)
    assert decided is not None
    await session.refresh(decided)
    await _audit(session, runtime, decided, decided.status, caller.kind.value, caller.admin_id or caller.identity)
    return await get(session, caller, dispute_id)


async def _refund(session: AsyncSession, runtime: Runtime, caller: Caller, found: Dispute, body: DisputeDecisionIn,
                  decision: dict[str, Any]) -> None:
    assert found.campaign_id is not None and found.streamer_id is not None and found.participation_id is not None
    impressions = body.impressions or found.impressions
    if impressions > found.impressions:
        raise Unprocessable(f"the dispute is about {found.impressions} impressions", code="too_many_impressions",
                            extra={"disputable": found.impressions})
    campaign = await campaigns.get_campaign(session, caller.app, found.campaign_id)
    if campaign.status != "completed":
        raise Conflict("a refund waits until the campaign has completed and its earnings are released",
                       code="campaign_not_settled", extra={"campaign_status": campaign.status})
    clock, app_id, currency = runtime.clock, caller.app, found.currency
    brand = AccountRef.wallet("brand", found.brand_id, currency)
    revenue = AccountRef.wallet("platform", ledger.PLATFORM_REVENUE, currency)
    streamer = AccountRef.wallet("streamer", found.streamer_id, currency)
    # Every account this refund moves, locked in the ledger's one order: refunds of one brand queue.
    await ledger.lock_accounts(session, clock, app_id=app_id, accounts=[brand, revenue, streamer])
    participation = await campaigns.get_participation(session, caller, found.campaign_id, found.streamer_id)
    left = participation.impressions - await repo.refunded_impressions(session, app_id, found.participation_id)
    if impressions > left:
        raise Conflict(f"only {left} of the participation's impressions are left to refund",
                       code="too_many_impressions", extra={"disputable": left})
    gross = campaign.rate_per_mille * impressions // 1000
    fee = gross * (campaign.commission_bps or 0) // 10_000
    recover = body.recover_from_streamer
    have_revenue = await ledger.wallet_balance(session, clock, app_id=app_id, owner_kind="platform",
                                               owner_id=ledger.PLATFORM_REVENUE, currency=currency)
    from_revenue = min(fee if recover else gross, have_revenue)
    from_streamer = 0
    if recover:
        have = await ledger.wallet_balance(session, clock, app_id=app_id, owner_kind="streamer",
                                           owner_id=found.streamer_id, currency=currency)
        from_streamer = min(gross - fee, have)
    loss = gross - from_revenue - from_streamer
    decision.update({"impressions": impressions, "recover_from_streamer": recover})
    now = clock.now()
    # The conditional update first: of racing decisions exactly one gets past it.
    if not await repo.decide_dispute(session, app_id, found.id, {
            "status": "refunded", "verdict": "refund", "decision": decision, "decided_by": caller.identity,
            "decided_at": now, "updated_at": now}):
        raise Conflict(f"dispute {found.id} is already decided", code="dispute_already_decided")
    reference = {"dispute_id": found.id, "campaign_id": found.campaign_id, "impressions": impressions}
    transactions: list[str] = []
    if from_revenue + from_streamer:
        entries = [(brand, from_revenue + from_streamer)]
        if from_revenue:
            entries.append((revenue, -from_revenue))
        if from_streamer:
            entries.append((streamer, -from_streamer))
        txn = await ledger.transfer(session, clock, app_id=app_id, entries=entries,
                                    idempotency_key=f"finance:dispute:{found.id}:refund", kind="dispute_refund",
                                    source="finance", reference=reference, actor=caller.identity)
        transactions.append(txn.id)
    if loss:
        txn = await ledger.transfer(session, clock, app_id=app_id,
                                    entries=[(AccountRef.system(ledger.EXTERNAL, currency), -loss), (brand, loss)],
                                    idempotency_key=f"finance:dispute:{found.id}:loss", kind="dispute_loss",
                                    source="finance", reference=reference, actor=caller.identity)
        transactions.append(txn.id)
    await repo.update_dispute(session, app_id, found.id, {
        "refunded": gross, "from_revenue": from_revenue, "from_streamer": from_streamer, "loss": loss,
        "transactions": transactions})


async def _refund_line(session: AsyncSession, runtime: Runtime, caller: Caller, found: Dispute,
                       body: DisputeDecisionIn, decision: dict[str, Any]) -> None:
    """An invoice line's money went to the platform (its commission, fees) or, for a media line, through it to
    the streamers of the campaign: a refund comes from the platform's revenue, the rest is the loss."""
    assert found.subject_ref is not None
    amount = body.amount or found.amount
    if amount > found.amount:
        raise Unprocessable(f"the dispute is about {found.amount}", code="amount_too_large",
                            extra={"disputed": found.amount})
    line = await billing.invoice_line(session, caller.app, found.subject_ref)
    if not line.prepaid and line.invoice_status != "paid":
        raise Conflict(f"invoice {line.invoice_id} is not paid ({line.invoice_status}); an unpaid invoice is "
                       "corrected with a credit note", code="invoice_not_paid",
                       extra={"invoice_status": line.invoice_status})
    clock, app_id, currency = runtime.clock, caller.app, found.currency
    brand = AccountRef.wallet("brand", found.brand_id, currency)
    revenue = AccountRef.wallet("platform", ledger.PLATFORM_REVENUE, currency)
    await ledger.lock_accounts(session, clock, app_id=app_id, accounts=[brand, revenue])
    have = await ledger.wallet_balance(session, clock, app_id=app_id, owner_kind="platform",
                                       owner_id=ledger.PLATFORM_REVENUE, currency=currency)
    from_revenue = min(amount, have)
    loss = amount - from_revenue
    decision.update({"amount": amount, "invoice_id": line.invoice_id, "line_kind": line.kind})
    now = clock.now()
    if not await repo.decide_dispute(session, app_id, found.id, {
            "status": "refunded", "verdict": "refund", "decision": decision, "decided_by": caller.identity,
            "decided_at": now, "updated_at": now}):
        raise Conflict(f"dispute {found.id} is already decided", code="dispute_already_decided")
    reference = {"dispute_id": found.id, "invoice_id": line.invoice_id, "line_id": line.id}
    transactions: list[str] = []
    if from_revenue:
        txn = await ledger.transfer(session, clock, app_id=app_id, entries=[(brand, from_revenue),
                                                                            (revenue, -from_revenue)],
                                    idempotency_key=f"finance:dispute:{found.id}:refund", kind="dispute_refund",
                                    source="finance", reference=reference, actor=caller.identity)
        transactions.append(txn.id)
    if loss:
        txn = await ledger.transfer(session, clock, app_id=app_id,
                                    entries=[(AccountRef.system(ledger.EXTERNAL, currency), -loss), (brand, loss)],
                                    idempotency_key=f"finance:dispute:{found.id}:loss", kind="dispute_loss",
                                    source="finance", reference=reference, actor=caller.identity)
        transactions.append(txn.id)
    await repo.update_dispute(session, app_id, found.id, {
        "refunded": amount, "from_revenue": from_revenue, "from_streamer": 0, "loss": loss,
        "transactions": transactions})


# Chargebacks ----------------------------------------------------------------------------------


def _hold(dispute_id: str) -> str:
    return f"chargeback:{dispute_id}"


async def on_chargeback(session: AsyncSession, runtime: Runtime, kind: str, data: dict[str, Any],
                        deposit: Deposit) -> str:
    """The PSP's ``charge.dispute.created`` / ``.closed`` about a deposit: open (once) or settle its dispute."""
    if deposit.owner_kind != "brand":
        return "ignored"
    if kind == "charge.dispute.created":
        return await _open_chargeback(session, runtime, data, deposit)
    if kind == "charge.dispute.closed":
        return await _close_chargeback(session, runtime, data, deposit)
    return "ignored"


async def _open_chargeback(session: AsyncSession, runtime: Runtime, data: dict[str, Any], deposit: Deposit) -> str:
    amount = data.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= deposit.amount \
            or data.get("currency") != deposit.currency:
        raise Unprocessable("a chargeback's amount and currency must be within its payment's",
                            code="amount_mismatch")
    clock, app_id = runtime.clock, deposit.app_id
    now = clock.now()
    dispute_id = new_id("dsp")
    reason = str(data.get("reason") or "chargeback")[:2000]
    if not await repo.insert_dispute(session, {
            "id": dispute_id, "app_id": app_id, "kind": "chargeback", "status": "open", "brand_id": deposit.owner_id,
            "streamer_id": None, "campaign_id": None, "participation_id": None, "subject_ref": deposit.id,
            "currency": deposit.currency, "impressions": 0, "amount": amount, "reason": reason,
            "opened_by": "provider:psp", "verdict": None, "decision": None, "refunded": 0, "from_revenue": 0,
            "from_streamer": 0, "loss": 0, "transactions": [], "decided_by": None, "decided_at": None,
            "created_at": now, "updated_at": now}):
        return "duplicate"
    brand = AccountRef.wallet("brand", deposit.owner_id, deposit.currency)
    await ledger.lock_accounts(session, clock, app_id=app_id, accounts=[
        brand, AccountRef.wallet("brand", deposit.owner_id, deposit.currency, ledger.hold_sub(_hold(dispute_id)))])
    have = await ledger.wallet_balance(session, clock, app_id=app_id, owner_kind="brand", owner_id=deposit.owner_id,
                                       currency=deposit.currency)
    held = min(amount, have)
    transactions: list[str] = []
    if held:
        txn = await ledger.hold_funds(session, clock, app_id=app_id, owner_kind="brand", owner_id=deposit.owner_id,
                                      currency=deposit.currency, amount=held, hold=_hold(dispute_id),
                                      idempotency_key=f"finance:chargeback:{dispute_id}:hold",
                                      reference={"dispute_id": dispute_id, "deposit_id": deposit.id},
                                      actor="provider:psp")
        transactions.append(txn.id)
    await repo.update_dispute(session, app_id, dispute_id, {"decision": {"held": held}, "transactions": transactions})
    await repo.insert_evidence(session, {
        "id": new_id("evd"), "app_id": app_id, "dispute_id": dispute_id, "party": "provider", "author": "provider:psp",
        "statement": f"chargeback of {amount} on payment {deposit.provider_ref}: {reason}", "links": [],
        "created_at": now})
    found = await repo.get_dispute(session, app_id, dispute_id)
    assert found is not None
    await _audit(session, runtime, found, "opened", "provider", "psp")
    return "applied"


async def _close_chargeback(session: AsyncSession, runtime: Runtime, data: dict[str, Any], deposit: Deposit) -> str:
    found = await repo.dispute_by_subject(session, deposit.app_id, "chargeback", deposit.id)
    outcome = data.get("status")
    if found is None:
        # Closed before its opening arrived: 404 (nothing kept), so the provider delivers it again.
        raise NotFound(f"no chargeback is open on payment {deposit.provider_ref} yet", code="dispute_not_found")
    if outcome not in ("won", "lost"):
        return "ignored"
    clock, app_id = runtime.clock, deposit.app_id
    now = clock.now()
    held = int((found.decision or {}).get("held", 0))
    if not await repo.decide_dispute(session, app_id, found.id, {
            "status": outcome, "verdict": outcome, "decision": {"held": held, "provider_status": outcome},
            "decided_by": "provider:psp", "decided_at": now, "updated_at": now}):
        return "duplicate"
    transactions = list(found.transactions)
    reference = {"dispute_id": found.id, "deposit_id": deposit.id}
    loss = 0
    if outcome == "won":
        txn = await ledger.release_held(session, clock, app_id=app_id, owner_kind="brand", owner_id=found.brand_id,
                                        currency=found.currency, hold=_hold(found.id),
                                        idempotency_key=f"finance:chargeback:{found.id}:release",
                                        reference=reference, actor="provider:psp")
        if txn is not None:
            transactions.append(txn.id)
    else:
        if held:
            txn = await ledger.transfer(session, clock, app_id=app_id, idempotency_key=(
                f"finance:chargeback:{found.id}:reversal"), kind="chargeback", source="finance", entries=[
                    (AccountRef.wallet("brand", found.brand_id, found.currency, ledger.hold_sub(_hold(found.id))),
                     -held),
                    (AccountRef.system(ledger.EXTERNAL, found.currency), held)],
                reference=reference, actor="provider:psp")
            transactions.append(txn.id)
        loss = found.amount - held
    await repo.update_dispute(session, app_id, found.id, {"refunded": found.amount if outcome == "lost" else 0,
                                                          "loss": loss, "transactions": transactions})
    await _audit(session, runtime, found, outcome, "provider", "psp")
    return "applied"


def install(runtime: Runtime) -> None:
    runtime.extensions.setdefault(CHARGEBACK_HANDLER, on_chargeback)
