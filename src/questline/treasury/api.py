"""Routes: exchange rates and conversions, wallet statements (JSON, CSV, PDF), payment methods,
deposits, withdrawals, the app's money settings and the payment provider's webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Request, Response, UploadFile

from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.ledger import service as ledger
from questline.ledger.schemas import FIAT_PATTERN, SUB_PATTERN, StatementOut, TransactionOut, WalletOwnerKind
from questline.tenancy.auth import (
    BRAND,
    IDEMPOTENCY_HEADER,
    SERVER,
    STREAMER,
    Caller,
    ServerOrAdmin,
    ServerOrViewer,
    allow,
)
from questline.tenancy.schemas import Role
from questline.treasury import kyc, providers, render, service, webhooks, withdrawals
from questline.treasury.schemas import (
    ConfirmIn,
    ConversionIn,
    DepositOut,
    DepositRequestIn,
    DocumentKind,
    FailIn,
    KycCaseOut,
    KycDecisionIn,
    KycDocumentOut,
    KycOut,
    KycReport,
    KycStatus,
    KycSubmitIn,
    PaidIn,
    PaymentMethodIn,
    PaymentMethodOut,
    RateIn,
    RateOut,
    StatementFormat,
    TreasurySettingsBody,
    WebhookOut,
    WithdrawalIn,
    WithdrawalOut,
    WithdrawalStatus,
)

router = APIRouter(prefix="/v1", tags=["finance"], route_class=UnitOfWorkRoute)
BrandId = Annotated[str, Path(pattern=ID_PATTERN, description="a brand's id (brd_…)")]
StreamerId = Annotated[str, Path(pattern=ID_PATTERN, description="a streamer's id (str_…)")]
Fiat = Annotated[str, Path(pattern=FIAT_PATTERN, description="an ISO 4217 code, e.g. USD")]
RequiredKey = Annotated[str, Header(alias=IDEMPOTENCY_HEADER, description="one key per conversion; a retry reuses it")]
RateReader = Annotated[Caller, allow(SERVER, BRAND, STREAMER, admin_role=Role.VIEWER)]
BrandMoney = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.ADMIN, idempotency="required")]
StreamerMoney = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.ADMIN, idempotency="required")]
BrandSide = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.ADMIN)]
StreamerSide = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.ADMIN)]
FinanceWithKey = Annotated[Caller, allow(SERVER, admin_role=Role.ADMIN, idempotency="required")]
Paging = Annotated[PageParams, Depends(page_params)]
MethodId = Annotated[str, Path(pattern=ID_PATTERN, description="a payment method's id (pm_…)")]
WithdrawalId = Annotated[str, Path(pattern=ID_PATTERN, description="a withdrawal's id (wd_…)")]
CaseId = Annotated[str, Path(pattern=ID_PATTERN, description="a KYC case's id (kyc_…)")]
DocumentId = Annotated[str, Path(pattern=ID_PATTERN, description="a KYC document's id (doc_…)")]
Reviewer = Annotated[Caller, allow(admin_role=Role.ADMIN)]
FinanceStep = Annotated[Caller, allow(SERVER, admin_role=Role.ADMIN)]
DepositId = Annotated[str, Path(pattern=ID_PATTERN, description="a deposit's id (dep_…)")]
BrandReader = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.VIEWER)]
StreamerReader = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.VIEWER)]
PlatformReader = Annotated[Caller, allow(SERVER, admin_role=Role.VIEWER)]
Currency = Annotated[str, Query(pattern=FIAT_PATTERN, description="the wallet's currency, e.g. USD")]
Start = Annotated[datetime, Query(alias="from", description="the period's start (included), with a time zone")]
End = Annotated[datetime, Query(alias="to", description="the period's end (excluded), with a time zone")]
Sub = Annotated[str, Query(pattern=SUB_PATTERN, max_length=64,
                           description="the sub-account: empty for available money, pending, or hold:<ref>")]
Format = Annotated[StatementFormat, Query(description="json, csv or pdf")]
STATEMENT_RESPONSES: dict[int | str, dict[str, object]] = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}


@router.put("/finance/rates/{base}/{quote}", response_model=RateOut)
async def put_rate(base: Fiat, quote: Fiat, body: RateIn, caller: ServerOrAdmin, session: SessionDep,
                   clock: ClockDep) -> RateOut:
    """Set the rate finance staff convert ``base`` into ``quote`` at (major units of quote per one base)."""
    return await service.put_rate(session, clock, caller, base, quote, body.rate)


@router.get("/finance/rates", response_model=list[RateOut])
async def list_rates(caller: RateReader, session: SessionDep) -> list[RateOut]:
    return await service.list_rates(session, caller.app)


@router.post("/brands/{brand_id}/wallet/conversions", response_model=TransactionOut, status_code=201,
             tags=["wallets"], responses={409: {"description": "insufficient_funds"}})
async def convert_brand(brand_id: BrandId, body: ConversionIn, caller: BrandMoney, session: SessionDep,
                        clock: ClockDep, idempotency_key: RequiredKey) -> TransactionOut:
    """Exchange the brand's money into another currency at the rate finance staff set."""
    return await service.convert(session, clock, caller, "brand", brand_id, body, idempotency_key)


@router.post("/streamers/{streamer_id}/wallet/conversions", response_model=TransactionOut, status_code=201,
             tags=["wallets"], responses={409: {"description": "insufficient_funds"}})
async def convert_streamer(streamer_id: StreamerId, body: ConversionIn, caller: StreamerMoney, session: SessionDep,
                           clock: ClockDep, idempotency_key: RequiredKey) -> TransactionOut:
    """Exchange the streamer's money into another currency at the rate finance staff set."""
    return await service.convert(session, clock, caller, "streamer", streamer_id, body, idempotency_key)


def _shaped(found: StatementOut, fmt: StatementFormat) -> StatementOut | Response:
    name = f"statement-{found.owner_id}-{found.currency}-{found.start:%Y%m%d}-{found.end:%Y%m%d}"
    if fmt == "csv":
        return Response(render.statement_csv(found), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt == "pdf":
        return Response(render.statement_pdf(found), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})
    return found


async def _statement(caller: Caller, session: SessionDep, kind: WalletOwnerKind, owner: str, currency: str,
                     start: datetime, end: datetime, sub: str, fmt: StatementFormat) -> StatementOut | Response:
    found = await service.statement(session, caller, kind, owner, currency=currency, start=start, end=end, sub=sub)
    return _shaped(found, fmt)


@router.get("/brands/{brand_id}/wallet/statement", response_model=StatementOut, tags=["wallets"],
            responses=STATEMENT_RESPONSES)
async def brand_statement(brand_id: BrandId, caller: BrandReader, session: SessionDep, currency: Currency,
                          start: Start, end: End, sub: Sub = "", format: Format = "json") -> StatementOut | Response:
    """The brand's statement for a period: opening balance, every movement, closing balance."""
    return await _statement(caller, session, "brand", brand_id, currency, start, end, sub, format)


@router.get("/streamers/{streamer_id}/wallet/statement", response_model=StatementOut, tags=["wallets"],
            responses=STATEMENT_RESPONSES)
async def streamer_statement(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep,
                             currency: Currency, start: Start, end: End, sub: Sub = "",
                             format: Format = "json") -> StatementOut | Response:
    """The streamer's statement for a period (``sub=pending`` for earnings not yet released)."""
    return await _statement(caller, session, "streamer", streamer_id, currency, start, end, sub, format)


@router.get("/platform/wallet/statement", response_model=StatementOut, tags=["wallets"],
            responses=STATEMENT_RESPONSES)
async def platform_statement(caller: PlatformReader, session: SessionDep, currency: Currency, start: Start,
                             end: End, sub: Sub = "", format: Format = "json") -> StatementOut | Response:
    """The platform's revenue statement for a period."""
    return await _statement(caller, session, "platform", ledger.PLATFORM_REVENUE, currency, start, end, sub,
                            format)


# Payment methods ------------------------------------------------------------------------------


@router.post("/brands/{brand_id}/payment-methods", response_model=PaymentMethodOut, status_code=201,
             tags=["payments"])
async def add_brand_method(brand_id: BrandId, body: PaymentMethodIn, caller: BrandSide, session: SessionDep,
                           runtime: RuntimeDep) -> PaymentMethodOut:
    """Store a bank account, PayPal-style e-mail or PSP token for the brand: sealed at rest, answered masked."""
    return await service.add_method(session, runtime, caller, "brand", brand_id, body)


@router.get("/brands/{brand_id}/payment-methods", response_model=list[PaymentMethodOut], tags=["payments"])
async def list_brand_methods(brand_id: BrandId, caller: BrandReader, session: SessionDep) -> list[PaymentMethodOut]:
    return await service.list_methods(session, caller, "brand", brand_id)


@router.delete("/brands/{brand_id}/payment-methods/{payment_method_id}", status_code=204, tags=["payments"])
async def remove_brand_method(brand_id: BrandId, payment_method_id: MethodId, caller: BrandSide,
                              session: SessionDep, clock: ClockDep) -> Response:
    await service.remove_method(session, clock, caller, "brand", brand_id, payment_method_id)
    return Response(status_code=204)


@router.post("/streamers/{streamer_id}/payment-methods", response_model=PaymentMethodOut, status_code=201,
             tags=["payments"])
async def add_streamer_method(streamer_id: StreamerId, body: PaymentMethodIn, caller: StreamerSide,
                              session: SessionDep, runtime: RuntimeDep) -> PaymentMethodOut:
    """Store where the streamer is paid: sealed at rest, answered masked."""
    return await service.add_method(session, runtime, caller, "streamer", streamer_id, body)


@router.get("/streamers/{streamer_id}/payment-methods", response_model=list[PaymentMethodOut], tags=["payments"])
async def list_streamer_methods(streamer_id: StreamerId, caller: StreamerReader,
                                session: SessionDep) -> list[PaymentMethodOut]:
    return await service.list_methods(session, caller, "streamer", streamer_id)


@router.delete("/streamers/{streamer_id}/payment-methods/{payment_method_id}", status_code=204, tags=["payments"])
async def remove_streamer_method(streamer_id: StreamerId, payment_method_id: MethodId, caller: StreamerSide,
                                 session: SessionDep, clock: ClockDep) -> Response:
    await service.remove_method(session, clock, caller, "streamer", streamer_id, payment_method_id)
    return Response(status_code=204)


# Deposits -------------------------------------------------------------------------------------


@router.post("/brands/{brand_id}/deposits", response_model=DepositOut, status_code=201, tags=["payments"],
             responses={503: {"description": "provider_unavailable: retry with the same Idempotency-Key"}})
async def request_deposit(brand_id: BrandId, body: DepositRequestIn, caller: BrandMoney, session: SessionDep,
                          runtime: RuntimeDep, idempotency_key: RequiredKey) -> DepositOut:
    """Start a deposit: a bank transfer (with the reference to quote) or a PSP payment. It stays pending, and
    nothing is credited, until finance staff or the provider confirm it."""
    return await service.request_deposit(session, runtime, caller, "brand", brand_id, body, idempotency_key)


@router.get("/brands/{brand_id}/deposits", response_model=Page[DepositOut], tags=["payments"])
async def list_deposits(brand_id: BrandId, caller: BrandReader, session: SessionDep,
                        paging: Paging) -> Page[DepositOut]:
    return await service.list_deposits(session, caller, "brand", brand_id, paging)


@router.get("/finance/deposits/{deposit_id}", response_model=DepositOut, tags=["payments"])
async def get_deposit(deposit_id: DepositId, caller: ServerOrViewer, session: SessionDep) -> DepositOut:
    return await service.deposit_of(session, caller, deposit_id)


@router.post("/finance/deposits/{deposit_id}/confirm", response_model=DepositOut, tags=["payments"],
             responses={409: {"description": "deposit_not_manual, deposit_not_pending, deposit_already_confirmed"}})
async def confirm_deposit(deposit_id: DepositId, body: ConfirmIn, caller: FinanceWithKey, session: SessionDep,
                          clock: ClockDep) -> DepositOut:
    """Finance staff record the bank transfer as received, with the bank's reference: credited once."""
    return await service.confirm_deposit(session, clock, caller, deposit_id, body)


@router.post("/finance/deposits/{deposit_id}/fail", response_model=DepositOut, tags=["payments"],
             responses={409: {"description": "deposit_not_pending"}})
async def fail_deposit(deposit_id: DepositId, body: FailIn, caller: FinanceWithKey, session: SessionDep,
                       clock: ClockDep) -> DepositOut:
    """Finance staff close a deposit whose money never came; nothing was credited."""
    return await service.fail_deposit(session, clock, caller, deposit_id, body)


@router.post("/finance/webhooks/psp", response_model=WebhookOut, tags=["payments"],
             openapi_extra={"x-access": "anonymous", "x-audit": False},
             responses={401: {"description": "invalid_signature"}, 404: {"description": "not known (yet)"}})
async def psp_webhook(request: Request, session: SessionDep, runtime: RuntimeDep,
                      signature: Annotated[str | None, Header(alias=providers.SIGNATURE_HEADER)] = None) -> WebhookOut:
    """The payment provider's events, signed with the shared secret (``t=…,v1=HMAC-SHA256``); a redelivered
    event changes nothing."""
    return await webhooks.psp_webhook(session, runtime, await request.body(), signature)


# Money settings and withdrawals ---------------------------------------------------------------


@router.get("/finance/settings", response_model=TreasurySettingsBody)
async def get_money_settings(caller: ServerOrViewer, session: SessionDep) -> TreasurySettingsBody:
    """Withdrawal limits and approval thresholds, per currency (minor units)."""
    return await withdrawals.settings_of(session, caller.app)


@router.put("/finance/settings", response_model=TreasurySettingsBody)
async def put_money_settings(body: TreasurySettingsBody, caller: ServerOrAdmin, session: SessionDep,
                             runtime: RuntimeDep) -> TreasurySettingsBody:
    return await withdrawals.put_settings(session, runtime, caller.app, body)


@router.post("/streamers/{streamer_id}/withdrawals", response_model=WithdrawalOut, status_code=201,
             tags=["payments"], responses={409: {"description": "insufficient_funds"},
                                           422: {"description": "withdrawal_out_of_bounds, withdrawal_limit_reached"}})
async def request_withdrawal(streamer_id: StreamerId, body: WithdrawalIn, caller: StreamerMoney,
                             session: SessionDep, runtime: RuntimeDep) -> WithdrawalOut:
    """Cash out to a stored payment method: held at once; approved by finance staff above the app's
    thresholds (two different people above the second); then paid through the provider."""
    return await withdrawals.request(session, runtime, caller, "streamer", streamer_id, body)


@router.get("/streamers/{streamer_id}/withdrawals", response_model=Page[WithdrawalOut], tags=["payments"])
async def list_streamer_withdrawals(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep,
                                    paging: Paging) -> Page[WithdrawalOut]:
    return await withdrawals.listing(session, caller, owner=("streamer", streamer_id), status=None, paging=paging)


@router.get("/finance/withdrawals", response_model=Page[WithdrawalOut], tags=["payments"])
async def list_withdrawals(caller: ServerOrViewer, session: SessionDep, paging: Paging,
                           status: WithdrawalStatus | None = None) -> Page[WithdrawalOut]:
    """Every withdrawal, newest first; ``status=awaiting_approval`` is finance's review queue."""
    return await withdrawals.listing(session, caller, owner=None, status=status, paging=paging)


@router.get("/finance/withdrawals/{withdrawal_id}", response_model=WithdrawalOut, tags=["payments"])
async def get_withdrawal(withdrawal_id: WithdrawalId, caller: ServerOrViewer, session: SessionDep) -> WithdrawalOut:
    return await withdrawals.get(session, caller, withdrawal_id)


@router.post("/finance/withdrawals/{withdrawal_id}/approve", response_model=WithdrawalOut, tags=["payments"],
             responses={409: {"description": "withdrawal_not_awaiting_approval, already_approved"}})
async def approve_withdrawal(withdrawal_id: WithdrawalId, caller: FinanceStep, session: SessionDep,
                             runtime: RuntimeDep) -> WithdrawalOut:
    """One finance approval (each person once); the last needed one sends the payout."""
    return await withdrawals.approve(session, runtime, caller, withdrawal_id)


@router.post("/finance/withdrawals/{withdrawal_id}/reject", response_model=WithdrawalOut, tags=["payments"],
             responses={409: {"description": "withdrawal_not_awaiting_approval"}})
async def reject_withdrawal(withdrawal_id: WithdrawalId, body: FailIn, caller: FinanceStep, session: SessionDep,
                            runtime: RuntimeDep) -> WithdrawalOut:
    """Refuse it: the held amount goes back to the streamer's available money."""
    return await withdrawals.reject(session, runtime, caller, withdrawal_id, body)


@router.post("/finance/withdrawals/{withdrawal_id}/send", response_model=WithdrawalOut, tags=["payments"],
             responses={409: {"description": "withdrawal_not_sendable"}})
async def send_withdrawal(withdrawal_id: WithdrawalId, caller: FinanceStep, session: SessionDep,
                          runtime: RuntimeDep) -> WithdrawalOut:
    """Send an approved PSP payout again after the provider could not be reached (never paid twice)."""
    return await withdrawals.send(session, runtime, caller, withdrawal_id)


@router.post("/finance/withdrawals/{withdrawal_id}/paid", response_model=WithdrawalOut, tags=["payments"],
             responses={409: {"description": "withdrawal_not_manual, withdrawal_not_payable"}})
async def mark_withdrawal_paid(withdrawal_id: WithdrawalId, body: PaidIn, caller: FinanceStep, session: SessionDep,
                               runtime: RuntimeDep) -> WithdrawalOut:
    """Finance staff record the bank payout as sent, with the bank's reference."""
    return await withdrawals.mark_paid(session, runtime, caller, withdrawal_id, body)


@router.post("/finance/withdrawals/{withdrawal_id}/fail", response_model=WithdrawalOut, tags=["payments"],
             responses={409: {"description": "withdrawal_not_payable"}})
async def fail_withdrawal(withdrawal_id: WithdrawalId, body: FailIn, caller: FinanceStep, session: SessionDep,
                          runtime: RuntimeDep) -> WithdrawalOut:
    """The payout could not be made: the held amount goes back to the streamer's available money."""
    return await withdrawals.fail(session, runtime, caller, withdrawal_id, body)


# KYC ------------------------------------------------------------------------------------------


@router.post("/streamers/{streamer_id}/kyc/documents", response_model=KycDocumentOut, status_code=201,
             tags=["kyc"], responses={413: {"description": "payload_too_large"},
                                      415: {"description": "unsupported_media_type: not PDF, PNG or JPEG"},
                                      422: {"description": "invalid_document, empty_file, too_many_documents"}})
async def add_kyc_document(streamer_id: StreamerId, caller: StreamerSide, session: SessionDep, runtime: RuntimeDep,
                           kind: Annotated[DocumentKind, Form(description="passport, drivers_licence or national_id")],
                           file: Annotated[UploadFile, File(description="a PDF, PNG or JPEG")]) -> KycDocumentOut:
    """Add an identity document (recognised by its content, sealed at rest, read only by reviewers)."""
    return await kyc.add_document(session, runtime, caller, "streamer", streamer_id, kind,
                                  await file.read(kyc.MAX_DOCUMENT_BYTES + 1))


@router.post("/streamers/{streamer_id}/kyc/submit", response_model=KycOut, tags=["kyc"],
             responses={409: {"description": "kyc_not_open"}, 422: {"description": "document_required"}})
async def submit_kyc(streamer_id: StreamerId, body: KycSubmitIn, caller: StreamerSide, session: SessionDep,
                     runtime: RuntimeDep) -> KycOut:
    """Submit the identity for review, with the details the documents show."""
    return await kyc.submit(session, runtime, caller, "streamer", streamer_id, body)


@router.get("/streamers/{streamer_id}/kyc", response_model=KycOut, tags=["kyc"])
async def get_kyc(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep,
                  runtime: RuntimeDep) -> KycOut:
    """The streamer's KYC status (and the reasons of a rejection)."""
    return await kyc.status_of(session, runtime, caller, "streamer", streamer_id)


@router.get("/finance/kyc", response_model=Page[KycCaseOut], tags=["kyc"])
async def kyc_queue(caller: ServerOrViewer, session: SessionDep, runtime: RuntimeDep, paging: Paging,
                    status: KycStatus | None = None) -> Page[KycCaseOut]:
    """KYC cases, newest first, with their risk; ``status=submitted`` is the review queue."""
    return await kyc.queue(session, runtime, caller, status, paging)


@router.get("/finance/kyc-report", response_model=KycReport, tags=["kyc"])
async def kyc_report(caller: ServerOrViewer, session: SessionDep, runtime: RuntimeDep) -> KycReport:
    """The compliance report: cases per status, high-risk cases open, verifications expiring, documents held."""
    return await kyc.report(session, runtime, caller)


@router.get("/finance/kyc/{case_id}", response_model=KycCaseOut, tags=["kyc"])
async def kyc_case(case_id: CaseId, caller: ServerOrViewer, session: SessionDep, runtime: RuntimeDep) -> KycCaseOut:
    return await kyc.case_of(session, runtime, caller, case_id)


@router.post("/finance/kyc/{case_id}/review", response_model=KycCaseOut, tags=["kyc"],
             responses={409: {"description": "kyc_not_submitted"}})
async def review_kyc(case_id: CaseId, caller: Reviewer, session: SessionDep, runtime: RuntimeDep) -> KycCaseOut:
    """A reviewer takes the case (in review)."""
    return await kyc.start_review(session, runtime, caller, case_id)


@router.post("/finance/kyc/{case_id}/decision", response_model=KycCaseOut, tags=["kyc"],
             responses={409: {"description": "kyc_not_submitted"}, 422: {"description": "reasons_required"}})
async def decide_kyc(case_id: CaseId, body: KycDecisionIn, caller: Reviewer, session: SessionDep,
                     runtime: RuntimeDep) -> KycCaseOut:
    """Verified (for the app's validity period) or rejected with reasons."""
    return await kyc.decide(session, runtime, caller, case_id, body)


@router.get("/finance/kyc/{case_id}/documents/{document_id}", tags=["kyc"],
            responses={200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}}}})
async def kyc_document(case_id: CaseId, document_id: DocumentId, caller: Reviewer, session: SessionDep,
                       runtime: RuntimeDep) -> Response:
    """A document's content, for reviewers only (the app's admins; never the server key or the subject)."""
    document, content = await kyc.document_content(session, runtime, caller, case_id, document_id)
    return Response(content, media_type=document.content_type,
                    headers={"Cache-Control": "no-store", "Content-Disposition": "inline"})
