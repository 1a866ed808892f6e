"""Billing's rules.

**Invoices** are made per brand for a calendar month (in the app's billing time zone) or for one
finished campaign, one per currency. Their lines come from the ledger: what each campaign's budget
hold paid out in the period (``ledger.hold_spending``), as two lines, the streamers' earnings and
the platform's commission, both already paid from the budget (``prepaid``); a brand on a plan adds
the plan's monthly fee and a usage fee on the month's spend. Generating again for the same brand and
period answers the invoices already made (a unique key, so racing generations make one).

**Tax** is the brand's billing country's rate from the settings, in basis points, computed once on
the invoice's subtotal and rounded half up to the minor unit (per invoice, not per line). A country
without a rate is refused (``422 tax_rate_unknown``) unless the settings say ``unknown_country:
"zero"``.

**Numbers** are assigned at finalization, never to drafts: ``<prefix>-<year>-<000001>`` from a
counter row per app and year moved by one ``UPDATE … SET next = next + 1 RETURNING`` in the
finalizing transaction, so a failed finalization gives its number back and none is skipped or used
twice. A voided invoice keeps its number.

**Statuses**: draft → open → paid | void | uncollectible; uncollectible → paid | void; draft → void.
Anything else is ``409 invoice_transition_not_allowed``. Each move is one conditional UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.billing import repository as repo
from questline.billing.models import CreditNote, Invoice, InvoiceLine, Plan
from questline.billing.schemas import (
    BillingSettingsBody,
    CreditNoteIn,
    CreditNoteOut,
    GenerateIn,
    InvoiceLineOut,
    InvoiceOut,
    LineOut,
    PlanIn,
    PlanOut,
    SubscriptionIn,
    SubscriptionOut,
)
from questline.campaigns import service as campaigns
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, ProblemError, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.periods import period_span, zone
from questline.ledger import service as ledger
from questline.ledger.schemas import AccountRef
from questline.sponsors import bridge
from questline.sponsors import service as sponsors
from questline.sponsors.models import Brand
from questline.tenancy.auth import BRAND, Caller

__all__ = [
    "credit_invoice", "finalize", "generate", "get_invoice", "invoice_line", "pay_from_wallet", "tax_of",
    "void", "write_off",
]

# What each status may become (draft -> void drops a draft nobody will send; it never had a number).
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"open", "void"}),
    "open": frozenset({"paid", "void", "uncollectible"}),
    "uncollectible": frozenset({"paid", "void"}),
    "paid": frozenset(),
    "void": frozenset(),
}
CREDITABLE = ("open", "uncollectible")


# Settings -------------------------------------------------------------------------------------


async def get_settings(session: AsyncSession, app_id: str) -> BillingSettingsBody:
    body = await repo.get_settings(session, app_id)
    return BillingSettingsBody() if body is None else BillingSettingsBody.model_validate(body)


async def put_settings(session: AsyncSession, clock: Clock, app_id: str,
                       body: BillingSettingsBody) -> BillingSettingsBody:
    await repo.put_settings(session, app_id, body.model_dump(mode="json"), clock.now())
    return body


def tax_of(subtotal: int, rate_bps: int) -> int:
    """Tax on a subtotal, rounded half up to the minor unit (one rounding per invoice)."""
    return (subtotal * rate_bps + 5_000) // 10_000


def tax_rate(settings: BillingSettingsBody, country: str | None) -> int:
    """The rate for a brand's country; ``422 tax_rate_unknown`` when none is set and the app refuses."""
    if country is not None and country in settings.tax_rates:
        return settings.tax_rates[country]
    if settings.unknown_country == "zero":
        return 0
    raise Unprocessable(f"no tax rate is set for the brand's country ({country or 'none given'}); set one in "
                        "PUT /v1/billing/settings tax_rates, or unknown_country: zero", code="tax_rate_unknown",
                        extra={"country": country})


# Reading --------------------------------------------------------------------------------------


async def _exponents(session: AsyncSession, app_id: str) -> dict[str, int]:
    return {c.code: c.exponent for c in await ledger.list_currencies(session, app_id)}


async def _outs(session: AsyncSession, app_id: str, invoices: Sequence[Invoice]) -> list[InvoiceOut]:
    ids = [i.id for i in invoices]
    lines: dict[str, list[InvoiceLine]] = {}
    for line in await repo.lines_of(session, ids):
        lines.setdefault(line.invoice_id, []).append(line)
    notes: dict[str, list[CreditNote]] = {}
    for note in await repo.credit_notes_of(session, ids):
        notes.setdefault(note.invoice_id, []).append(note)
    exponents = await _exponents(session, app_id)
    return [InvoiceOut.model_validate({
        **{c: getattr(i, c) for c in InvoiceOut.model_fields if hasattr(i, c) and c not in ("lines", "credit_notes")},
        "exponent": exponents.get(i.currency, 2),
        "lines": [LineOut.model_validate(x) for x in lines.get(i.id, [])],
        "credit_notes": [CreditNoteOut.model_validate(n) for n in notes.get(i.id, [])]}) for i in invoices]


async def _invoice(session: AsyncSession, app_id: str, invoice_id: str) -> Invoice:
    found = await repo.get_invoice(session, app_id, invoice_id)
    if found is None:
        raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found")
    return found


async def get_invoice(session: AsyncSession, app_id: str, invoice_id: str) -> InvoiceOut:
    return (await _outs(session, app_id, [await _invoice(session, app_id, invoice_id)]))[0]


async def invoice_line(session: AsyncSession, app_id: str, line_id: str) -> InvoiceLineOut:
    """One invoice line with its invoice (what a dispute names); ``404 invoice_line_not_found``."""
    found = await repo.get_line(session, app_id, line_id)
    if found is None:
        raise NotFound(f"invoice line {line_id} not found", code="invoice_line_not_found")
    line, invoice = found
    return InvoiceLineOut.model_validate({
        **LineOut.model_validate(line).model_dump(), "invoice_id": invoice.id, "brand_id": invoice.brand_id,
        "currency": invoice.currency, "invoice_status": invoice.status, "invoice_number": invoice.number})


async def list_invoices(session: AsyncSession, app_id: str, paging: PageParams, *, brand_id: str | None = None,
                        status: str | None = None, issued_only: bool = False) -> Page[InvoiceOut]:
    rows = await repo.list_invoices(session, app_id, brand_id=brand_id, status=status, issued_only=issued_only,
                                    before=paging.after_str(), limit=paging.limit)
    page = build_page(list(rows), paging.limit, lambda i: [i.id])
    return Page[InvoiceOut](items=await _outs(session, app_id, page.items), next_cursor=page.next_cursor)


async def brand_invoices(session: AsyncSession, caller: Caller, brand_id: str, paging: PageParams,
                         status: str | None) -> Page[InvoiceOut]:
    """A brand's invoices; the brand's own members never see drafts (not issued yet)."""
    await sponsors.authorize_brand(session, caller, brand_id)
    return await list_invoices(session, caller.app, paging, brand_id=brand_id, status=status,
                               issued_only=caller.kind is BRAND)


async def brand_invoice(session: AsyncSession, caller: Caller, brand_id: str, invoice_id: str) -> InvoiceOut:
    await sponsors.authorize_brand(session, caller, brand_id)
    found = await _invoice(session, caller.app, invoice_id)
    if found.brand_id != brand_id or (caller.kind is BRAND and found.status == "draft"):
        raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found")
    return (await _outs(session, caller.app, [found]))[0]


# Generating -----------------------------------------------------------------------------------


def _bill_to(brand: Brand) -> dict[str, str]:
    billing = brand.billing or {}
    return {"name": brand.company_name, "address": str(billing.get("address") or ""),
            "tax_id": str(billing.get("tax_id") or ""), "country": str(billing.get("country") or "")}


async def _titles(session: AsyncSession, app_id: str, campaign_ids: Sequence[str]) -> dict[str, str]:
    titles: dict[str, str] = {}
    for campaign_id in campaign_ids:
        try:
            titles[campaign_id] = (await campaigns.get_campaign(session, app_id, campaign_id)).title
        except NotFound:
            titles[campaign_id] = campaign_id
    return titles


def _line(app_id: str, kind: str, description: str, amount: int, *, campaign_id: str | None = None,
          prepaid: bool = False) -> dict[str, Any]:
    return {"id": new_id("inl"), "app_id": app_id, "kind": kind, "description": description[:300],
            "campaign_id": campaign_id, "amount": amount, "prepaid": prepaid}


async def _plan_of(session: AsyncSession, app_id: str, brand_id: str, start: datetime, end: datetime) -> Plan | None:
    """The plan a brand was on during ``[start, end)`` (its current plan if it changed within)."""
    sub = await repo.get_subscription(session, app_id, brand_id)
    if sub is None or sub.started_at >= end or (sub.ended_at is not None and sub.ended_at <= start):
        return None
    return await repo.get_plan(session, app_id, sub.plan_id)


async def generate(session: AsyncSession, clock: Clock, app_id: str, actor: str, body: GenerateIn) -> list[InvoiceOut]:
    """Draft the brand's invoices for the period (one per currency with charges); idempotent."""
    settings = await get_settings(session, app_id)
    brand = await sponsors.get_brand(session, app_id, body.brand_id)
    now = clock.now()
    if body.period is not None:
        start, end = period_span("month", body.period, zone(settings.timezone))
        if end > now:
            raise Unprocessable(f"{body.period} is not over yet; invoice it from {end.isoformat()}",
                                code="period_not_over", extra={"ends_at": end.isoformat()})
        kind, key = "monthly", body.period
    else:
        assert body.campaign_id is not None
        campaign = await campaigns.get_campaign(session, app_id, body.campaign_id)
        if campaign.brand_id != brand.id:
            raise NotFound(f"campaign {body.campaign_id} not found", code="campaign_not_found")
        if campaign.status not in ("completed", "cancelled"):
            raise Conflict(f"campaign {campaign.id} is {campaign.status}; a campaign is invoiced once it has ended",
                           code="campaign_not_finished", extra={"campaign_status": campaign.status})
        if await repo.invoiced_campaigns(session, app_id, [campaign.id], "monthly"):
            raise Conflict(f"campaign {campaign.id}'s spend is already on a monthly invoice",
                           code="campaign_already_invoiced")
        start, end, kind, key = campaign.created_at, now + timedelta(seconds=1), "campaign", f"campaign:{campaign.id}"
    existing = await repo.invoices_of_period(session, app_id, brand.id, key)
    if existing:
        return await _outs(session, app_id, existing)
    country = (brand.billing or {}).get("country") or None
    rate = tax_rate(settings, country)
    spending = await ledger.hold_spending(session, app_id=app_id, owner_kind="brand", owner_id=brand.id,
                                          start=start, end=end)
    if kind == "campaign":
        spending = [s for s in spending if s.hold == body.campaign_id]
    else:
        # Campaigns invoiced on their own stay off the monthly invoice.
        own = await repo.invoiced_campaigns(session, app_id, [s.hold for s in spending], "campaign")
        spending = [s for s in spending if s.hold not in own]
    titles = await _titles(session, app_id, sorted({s.hold for s in spending}))
    plan = await _plan_of(session, app_id, brand.id, start, end) if kind == "monthly" else None
    by_currency: dict[str, list[dict[str, Any]]] = {}
    for s in spending:
        lines = by_currency.setdefault(s.currency, [])
        title = titles[s.hold]
        if s.gross - s.fee:
            lines.append(_line(app_id, "media", f"{title}: streamer earnings ({s.transactions} payments)",
                               s.gross - s.fee, campaign_id=s.hold, prepaid=True))
        if s.fee:
            lines.append(_line(app_id, "commission", f"{title}: platform commission", s.fee,
                               campaign_id=s.hold, prepaid=True))
    if plan is not None:
        if plan.monthly_fee:
            by_currency.setdefault(plan.currency, []).append(
                _line(app_id, "subscription", f"Plan {plan.name}: monthly fee", plan.monthly_fee))
        if plan.usage_bps:
            for lines in by_currency.values():
                spend = sum(x["amount"] for x in lines if x["prepaid"])
                usage = tax_of(spend, plan.usage_bps)
                if usage:
                    lines.append(_line(app_id, "usage", f"Plan {plan.name}: usage, {plan.usage_bps / 100:g}% of "
                                                        f"campaign spend {spend}", usage))
    for currency, lines in sorted(by_currency.items()):
        subtotal = sum(x["amount"] for x in lines)
        tax = tax_of(subtotal, rate)
        prepaid = sum(x["amount"] for x in lines if x["prepaid"])
        invoice_id = new_id("inv")
        inserted = await repo.insert_invoice(session, {
            "id": invoice_id, "app_id": app_id, "brand_id": brand.id, "kind": kind, "period_key": key,
            "period_start": start, "period_end": end, "currency": currency, "status": "draft", "number": None,
            "bill_to": _bill_to(brand), "tax_country": country, "tax_rate_bps": rate, "subtotal": subtotal,
            "tax": tax, "total": subtotal + tax, "prepaid": prepaid, "credited": 0, "paid": 0,
            "amount_due": subtotal + tax - prepaid, "payment_transaction_id": None, "due_at": None,
            "finalized_at": None, "closed_at": None, "created_by": actor, "created_at": now, "updated_at": now})
        if inserted:
            await repo.insert_lines(session, [{**x, "invoice_id": invoice_id, "position": n}
                                              for n, x in enumerate(lines, start=1)])
    return await _outs(session, app_id, await repo.invoices_of_period(session, app_id, brand.id, key))


# Statuses -------------------------------------------------------------------------------------


def _not_allowed(invoice: Invoice, target: str) -> ProblemError:
    return Conflict(f"invoice {invoice.id} is {invoice.status}; it cannot become {target}",
                    code="invoice_transition_not_allowed", extra={"invoice_status": invoice.status, "to": target})


async def _move(session: AsyncSession, app_id: str, invoice_id: str, target: str,
                values: dict[str, Any], *, expect_due: int | None = None) -> Invoice:
    """Move the invoice to ``target`` from whatever status may become it; 409 otherwise (read settled)."""
    invoice = await _invoice(session, app_id, invoice_id)
    allowed = [s for s, targets in TRANSITIONS.items() if target in targets]
    if invoice.status not in allowed or not await repo.move(session, app_id, invoice_id, allowed,
                                                            {"status": target, **values}, expect_due=expect_due):
        again = await _invoice(session, app_id, invoice_id)
        if again.status in allowed:
            # Still movable: what it owes changed under us (a credit note landed); the caller retries.
            raise Conflict(f"invoice {invoice_id} changed meanwhile; try again", code="invoice_changed")
        raise _not_allowed(again, target)
    return await _invoice(session, app_id, invoice_id)


async def finalize(session: AsyncSession, clock: Clock, app_id: str, invoice_id: str) -> InvoiceOut:
    """draft -> open: number it (the counter moves in this transaction) and set its due date. Nothing
    left to pay (all prepaid) makes it paid at once."""
    settings = await get_settings(session, app_id)
    now = clock.now()
    invoice = await _move(session, app_id, invoice_id, "open", {
        "finalized_at": now, "due_at": now + timedelta(days=settings.due_days), "updated_at": now})
    year = now.astimezone(zone(settings.timezone)).year
    seq = await repo.take_number(session, app_id, f"invoice:{year}")
    values: dict[str, Any] = {"number": f"{settings.invoice_prefix}-{year}-{seq:06d}"}
    if invoice.amount_due == 0:
        values.update(status="paid", closed_at=now)
    await repo.move(session, app_id, invoice_id, ["open"], values)
    invoice = await _invoice(session, app_id, invoice_id)
    await bridge.announce(session, app_id, now, "invoice.finalized", {
        "brand_id": invoice.brand_id, "invoice_id": invoice.id, "number": invoice.number,
        "currency": invoice.currency, "total": invoice.total, "amount_due": invoice.amount_due,
        "due_at": invoice.due_at.isoformat() if invoice.due_at else None})
    return (await _outs(session, app_id, [invoice]))[0]


async def void(session: AsyncSession, clock: Clock, app_id: str, invoice_id: str) -> InvoiceOut:
    """Cancel an invoice that was not paid; it keeps its number (no gap in the series)."""
    now = clock.now()
    return (await _outs(session, app_id, [await _move(session, app_id, invoice_id, "void",
                                                      {"closed_at": now, "updated_at": now})]))[0]


async def write_off(session: AsyncSession, clock: Clock, app_id: str, invoice_id: str) -> InvoiceOut:
    """open -> uncollectible: not expected to be paid (it may still be, or be voided)."""
    now = clock.now()
    return (await _outs(session, app_id, [await _move(session, app_id, invoice_id, "uncollectible",
                                                      {"updated_at": now})]))[0]


# Payment and credit notes ---------------------------------------------------------------------


async def pay_from_wallet(session: AsyncSession, clock: Clock, app_id: str, invoice_id: str, actor: str, *,
                          brand_id: str | None = None) -> InvoiceOut:
    """Pay what an open (or uncollectible) invoice still owes from the brand's available money: one
    balanced ledger transaction (brand -> the platform's revenue) keyed by the invoice, so it is paid
    once; short of money is ``409 insufficient_funds`` and changes nothing."""
    invoice = await _invoice(session, app_id, invoice_id)
    if brand_id is not None and (invoice.brand_id != brand_id or invoice.status == "draft"):
        raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found")
    amount, now = invoice.amount_due, clock.now()
    invoice = await _move(session, app_id, invoice_id, "paid", {
        "paid": invoice.paid + amount, "amount_due": 0, "closed_at": now, "updated_at": now}, expect_due=amount)
    txn = await ledger.transfer(
        session, clock, app_id=app_id, idempotency_key=f"billing:invoice:{invoice.id}", kind="invoice_payment",
        source="billing", entries=[(AccountRef.wallet("brand", invoice.brand_id, invoice.currency), -amount),
                                   (AccountRef.wallet("platform", ledger.PLATFORM_REVENUE, invoice.currency), amount)],
        reference={"invoice_id": invoice.id, "number": invoice.number}, description=f"invoice {invoice.number}",
        actor=actor)
    await repo.move(session, app_id, invoice_id, ["paid"], {"payment_transaction_id": txn.id})
    return await get_invoice(session, app_id, invoice_id)


async def credit_invoice(session: AsyncSession, clock: Clock, app_id: str, invoice_id: str, actor: str,
                         body: CreditNoteIn) -> CreditNoteOut:
    """Issue a credit note: what the invoice's brand owes goes down by ``amount``, never below zero
    (``422 credit_exceeds_due``); an invoice left owing nothing is paid. Only open or uncollectible
    invoices take credit notes (``409 invoice_not_creditable``)."""
    invoice = await _invoice(session, app_id, invoice_id)
    if body.line_id is not None:
        found = await repo.get_line(session, app_id, body.line_id)
        if found is None or found[1].id != invoice_id:
            raise Unprocessable(f"line {body.line_id} is not on invoice {invoice_id}", code="line_not_on_invoice")
    now = clock.now()
    if not await repo.apply_credit(session, app_id, invoice_id, body.amount, now):
        invoice = await _invoice(session, app_id, invoice_id)
        if invoice.status not in CREDITABLE:
            raise Conflict(f"invoice {invoice_id} is {invoice.status}; only open or uncollectible invoices take "
                           "credit notes", code="invoice_not_creditable", extra={"invoice_status": invoice.status})
        raise Unprocessable(f"the invoice owes {invoice.amount_due}; a credit note cannot take it below zero",
                            code="credit_exceeds_due", extra={"amount_due": invoice.amount_due})
    settings = await get_settings(session, app_id)
    year = now.astimezone(zone(settings.timezone)).year
    seq = await repo.take_number(session, app_id, f"credit_note:{year}")
    note_id = new_id("cn")
    await repo.insert_credit_note(session, {
        "id": note_id, "app_id": app_id, "invoice_id": invoice_id, "line_id": body.line_id,
        "number": f"{settings.credit_note_prefix}-{year}-{seq:06d}", "amount": body.amount, "reason": body.reason,
        "created_by": actor, "created_at": now})
    invoice = await _invoice(session, app_id, invoice_id)
    if invoice.amount_due == 0:
        await repo.move(session, app_id, invoice_id, list(CREDITABLE), {"status": "paid", "closed_at": now})
    notes = await repo.credit_notes_of(session, [invoice_id])
    return CreditNoteOut.model_validate(next(n for n in notes if n.id == note_id))


# Plans and subscriptions ----------------------------------------------------------------------


async def create_plan(session: AsyncSession, clock: Clock, app_id: str, body: PlanIn) -> PlanOut:
    await ledger.ensure_currency(session, clock, app_id, body.currency)
    plan_id = new_id("plan")
    await repo.insert_plan(session, {"id": plan_id, "app_id": app_id, **body.model_dump(), "created_at": clock.now()})
    found = await repo.get_plan(session, app_id, plan_id)
    return PlanOut.model_validate(found)


async def list_plans(session: AsyncSession, app_id: str) -> list[PlanOut]:
    return [PlanOut.model_validate(p) for p in await repo.list_plans(session, app_id)]


async def subscribe(session: AsyncSession, clock: Clock, caller: Caller, brand_id: str,
                    body: SubscriptionIn) -> SubscriptionOut:
    """Put the brand on a plan (its owners, the server key or an admin); billed from this month."""
    await sponsors.authorize_brand(session, caller, brand_id, owner=True)
    if await repo.get_plan(session, caller.app, body.plan_id) is None:
        raise NotFound(f"plan {body.plan_id} not found", code="plan_not_found")
    now = clock.now()
    current = await repo.get_subscription(session, caller.app, brand_id)
    started = current.started_at if current is not None and current.ended_at is None else now
    await repo.put_subscription(session, {"id": new_id("sub"), "app_id": caller.app, "brand_id": brand_id,
                                          "plan_id": body.plan_id, "started_at": started, "ended_at": None,
                                          "updated_at": now})
    return await subscription(session, caller, brand_id)


async def subscription(session: AsyncSession, caller: Caller, brand_id: str) -> SubscriptionOut:
    await sponsors.authorize_brand(session, caller, brand_id)
    found = await repo.get_subscription(session, caller.app, brand_id)
    if found is None:
        raise NotFound(f"brand {brand_id} has no plan", code="subscription_not_found")
    return SubscriptionOut.model_validate(found)


async def unsubscribe(session: AsyncSession, clock: Clock, caller: Caller, brand_id: str) -> SubscriptionOut:
    """End the brand's plan now; the month it ends in is still billed."""
    await sponsors.authorize_brand(session, caller, brand_id, owner=True)
    if not await repo.end_subscription(session, caller.app, brand_id, clock.now()):
        raise NotFound(f"brand {brand_id} has no active plan", code="subscription_not_found")
    return await subscription(session, caller, brand_id)


# Scheduled work -------------------------------------------------------------------------------


async def send_reminders(session: AsyncSession, clock: Clock, limit: int = 1000) -> int:
    """For each open invoice past its due date, the latest reminder step due is announced once
    (``invoice.reminder``, which the notifications area delivers to the brand); a step is claimed by
    inserting its row, so running twice sends nothing more."""
    now = clock.now()
    cache: dict[str, BillingSettingsBody] = {}
    sent = 0
    for invoice in await repo.overdue(session, now, limit):
        if invoice.app_id not in cache:
            cache[invoice.app_id] = await get_settings(session, invoice.app_id)
        assert invoice.due_at is not None
        due = [n for n, days in enumerate(cache[invoice.app_id].reminder_days, start=1)
               if invoice.due_at + timedelta(days=days) <= now]
        if due and await repo.claim_reminder(session, invoice.app_id, invoice.id, due[-1], now):
            await bridge.announce(session, invoice.app_id, now, "invoice.reminder", {
                "brand_id": invoice.brand_id, "invoice_id": invoice.id, "number": invoice.number,
                "currency": invoice.currency, "amount_due": invoice.amount_due, "step": due[-1],
                "due_at": invoice.due_at.isoformat()})
            sent += 1
    return sent


async def run_months(session: AsyncSession, clock: Clock) -> dict[str, int]:
    """Apps with ``auto_generate``: once their month is over (in their zone), invoice every brand with
    spend or a plan in it and finalize the drafts. A brand that cannot be invoiced (no tax rate) is
    skipped and stays for an admin to invoice by hand."""
    now = clock.now()
    made = skipped = 0
    for app_id, body in await repo.all_settings(session):
        settings = BillingSettingsBody.model_validate(body)
        if not settings.auto_generate:
            continue
        local = now.astimezone(zone(settings.timezone))
        period = f"{local.year - 1}-12" if local.month == 1 else f"{local.year}-{local.month - 1:02d}"
        if not await repo.claim_month(session, app_id, period, now):
            continue
        start, end = period_span("month", period, zone(settings.timezone))
        brands = {s.owner_id for s in await ledger.hold_spending(session, app_id=app_id, owner_kind="brand",
                                                                 start=start, end=end)}
        brands |= {s.brand_id for s in await repo.subscriptions_between(session, app_id, start, end)}
        for brand_id in sorted(brands):
            brand = await sponsors.get_brand(session, app_id, brand_id)
            try:
                tax_rate(settings, (brand.billing or {}).get("country") or None)
            except ProblemError:
                skipped += 1
                continue
            for invoice in await generate(session, clock, app_id, "job:billing.monthly",
                                          GenerateIn(brand_id=brand_id, period=period)):
                if invoice.status == "draft":
                    await finalize(session, clock, app_id, invoice.id)
                    made += 1
    return {"finalized": made, "skipped": skipped}
