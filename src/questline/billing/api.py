"""Routes: billing settings, invoices (generate, finalize, void, write off, pay, credit notes; JSON,
HTML and PDF), plans and brands' subscriptions; a brand reads and pays its own invoices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from questline.billing import render, service
from questline.billing.schemas import (
    BillingSettingsBody,
    CreditNoteIn,
    CreditNoteOut,
    GenerateIn,
    InvoiceFormat,
    InvoiceOut,
    InvoiceStatus,
    PlanIn,
    PlanOut,
    SubscriptionIn,
    SubscriptionOut,
)
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, SessionDep, UnitOfWorkRoute
from questline.tenancy.auth import BRAND, SERVER, Caller, ServerOrAdmin, ServerOrViewer, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1/billing", tags=["billing"], route_class=UnitOfWorkRoute)
InvoiceId = Annotated[str, Path(pattern=ID_PATTERN, description="an invoice's id (inv_…)")]
BrandId = Annotated[str, Path(pattern=ID_PATTERN, description="a brand's id (brd_…)")]
Paging = Annotated[PageParams, Depends(page_params)]
Status = Annotated[InvoiceStatus | None, Query(description="only invoices in this status")]
Format = Annotated[InvoiceFormat, Query(description="json, html or pdf")]
BrandFilter = Annotated[str | None, Query(pattern=ID_PATTERN, description="only this brand's invoices")]
FinanceMoney = Annotated[Caller, allow(SERVER, admin_role=Role.ADMIN, idempotency="required")]
BrandReader = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.VIEWER)]
BrandOwner = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.ADMIN)]
BrandPayer = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.ADMIN, idempotency="required")]
INVOICE_RESPONSES: dict[int | str, dict[str, object]] = {200: {"content": {
    "text/html": {"schema": {"type": "string"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}


def _shaped(found: InvoiceOut, fmt: InvoiceFormat) -> InvoiceOut | Response:
    name = f"invoice-{found.number or found.id}"
    if fmt == "html":
        return Response(render.invoice_html(found), media_type="text/html; charset=utf-8")
    if fmt == "pdf":
        return Response(render.invoice_pdf(found), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})
    return found


@router.get("/settings", response_model=BillingSettingsBody)
async def get_settings(caller: ServerOrViewer, session: SessionDep) -> BillingSettingsBody:
    return await service.get_settings(session, caller.app)


@router.put("/settings", response_model=BillingSettingsBody)
async def put_settings(body: BillingSettingsBody, caller: ServerOrAdmin, session: SessionDep,
                       clock: ClockDep) -> BillingSettingsBody:
    """Number prefixes, tax rates per country, due days, reminder steps, monthly auto-invoicing."""
    return await service.put_settings(session, clock, caller.app, body)


@router.post("/invoices/generate", response_model=list[InvoiceOut],
             responses={422: {"description": "tax_rate_unknown, period_not_over"},
                        409: {"description": "campaign_not_finished, campaign_already_invoiced"}})
async def generate(body: GenerateIn, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep) -> list[InvoiceOut]:
    """Draft a brand's invoices for a month or a finished campaign (one per currency); again: the same ones."""
    return await service.generate(session, clock, caller.app, caller.identity, body)


@router.get("/invoices", response_model=Page[InvoiceOut])
async def list_invoices(caller: ServerOrViewer, session: SessionDep, paging: Paging, status: Status = None,
                        brand_id: BrandFilter = None) -> Page[InvoiceOut]:
    return await service.list_invoices(session, caller.app, paging, brand_id=brand_id, status=status)


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut, responses=INVOICE_RESPONSES)
async def get_invoice(invoice_id: InvoiceId, caller: ServerOrViewer, session: SessionDep,
                      format: Format = "json") -> InvoiceOut | Response:
    """An invoice with its lines and credit notes, as JSON, HTML or PDF."""
    return _shaped(await service.get_invoice(session, caller.app, invoice_id), format)


@router.post("/invoices/{invoice_id}/finalize", response_model=InvoiceOut,
             responses={409: {"description": "invoice_transition_not_allowed"}})
async def finalize(invoice_id: InvoiceId, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep) -> InvoiceOut:
    """draft -> open: the invoice gets the next number of the year and its due date."""
    return await service.finalize(session, clock, caller.app, invoice_id)


@router.post("/invoices/{invoice_id}/void", response_model=InvoiceOut,
             responses={409: {"description": "invoice_transition_not_allowed"}})
async def void(invoice_id: InvoiceId, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep) -> InvoiceOut:
    """Cancel an unpaid invoice; it keeps its number."""
    return await service.void(session, clock, caller.app, invoice_id)


@router.post("/invoices/{invoice_id}/uncollectible", response_model=InvoiceOut,
             responses={409: {"description": "invoice_transition_not_allowed"}})
async def write_off(invoice_id: InvoiceId, caller: ServerOrAdmin, session: SessionDep,
                    clock: ClockDep) -> InvoiceOut:
    """open -> uncollectible (it may still be paid or voided)."""
    return await service.write_off(session, clock, caller.app, invoice_id)


@router.post("/invoices/{invoice_id}/pay", response_model=InvoiceOut,
             responses={409: {"description": "insufficient_funds, invoice_transition_not_allowed"}})
async def pay(invoice_id: InvoiceId, caller: FinanceMoney, session: SessionDep, clock: ClockDep) -> InvoiceOut:
    """Pay what the invoice owes from the brand's available money (one ledger transaction)."""
    return await service.pay_from_wallet(session, clock, caller.app, invoice_id, caller.identity)


@router.post("/invoices/{invoice_id}/credit-notes", response_model=CreditNoteOut, status_code=201,
             responses={409: {"description": "invoice_not_creditable"}, 422: {"description": "credit_exceeds_due"}})
async def credit(invoice_id: InvoiceId, body: CreditNoteIn, caller: ServerOrAdmin, session: SessionDep,
                 clock: ClockDep) -> CreditNoteOut:
    """Take an amount off what the invoice owes (never below zero), with a reason and its own number."""
    return await service.credit_invoice(session, clock, caller.app, invoice_id, caller.identity, body)


@router.post("/plans", response_model=PlanOut, status_code=201)
async def create_plan(body: PlanIn, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep) -> PlanOut:
    """A subscription plan: a monthly fee, and usage on top as a share of the month's campaign spend."""
    return await service.create_plan(session, clock, caller.app, body)


@router.get("/plans", response_model=list[PlanOut])
async def list_plans(caller: BrandReader, session: SessionDep) -> list[PlanOut]:
    return await service.list_plans(session, caller.app)


@router.put("/brands/{brand_id}/subscription", response_model=SubscriptionOut)
async def subscribe(brand_id: BrandId, body: SubscriptionIn, caller: BrandOwner, session: SessionDep,
                    clock: ClockDep) -> SubscriptionOut:
    """Put the brand on a plan (its owners, the server key or an admin)."""
    return await service.subscribe(session, clock, caller, brand_id, body)


@router.get("/brands/{brand_id}/subscription", response_model=SubscriptionOut)
async def subscription(brand_id: BrandId, caller: BrandReader, session: SessionDep) -> SubscriptionOut:
    return await service.subscription(session, caller, brand_id)


@router.delete("/brands/{brand_id}/subscription", response_model=SubscriptionOut)
async def unsubscribe(brand_id: BrandId, caller: BrandOwner, session: SessionDep, clock: ClockDep) -> SubscriptionOut:
    """End the brand's plan now (the month it ends in is still billed)."""
    return await service.unsubscribe(session, clock, caller, brand_id)


@router.get("/brands/{brand_id}/invoices", response_model=Page[InvoiceOut])
async def brand_invoices(brand_id: BrandId, caller: BrandReader, session: SessionDep, paging: Paging,
                         status: Status = None) -> Page[InvoiceOut]:
    """The brand's invoices, newest first (its own members never see drafts)."""
    return await service.brand_invoices(session, caller, brand_id, paging, status)


@router.get("/brands/{brand_id}/invoices/{invoice_id}", response_model=InvoiceOut, responses=INVOICE_RESPONSES)
async def brand_invoice(brand_id: BrandId, invoice_id: InvoiceId, caller: BrandReader, session: SessionDep,
                        format: Format = "json") -> InvoiceOut | Response:
    return _shaped(await service.brand_invoice(session, caller, brand_id, invoice_id), format)


@router.post("/brands/{brand_id}/invoices/{invoice_id}/pay", response_model=InvoiceOut,
             responses={409: {"description": "insufficient_funds, invoice_transition_not_allowed"}})
async def brand_pay(brand_id: BrandId, invoice_id: InvoiceId, caller: BrandPayer, session: SessionDep,
                    clock: ClockDep) -> InvoiceOut:
    """The brand pays its invoice from its available money."""
    await service.brand_invoice(session, caller, brand_id, invoice_id)
    return await service.pay_from_wallet(session, clock, caller.app, invoice_id, caller.identity, brand_id=brand_id)
