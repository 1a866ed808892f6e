"""Routes: the finance desk (fee structure, the review queue of large transactions, reports and exports)
and disputes (a brand opens, both parties add evidence, finance decides).

The desk and dispute decisions are for people with the ``finance`` role (or the organization's owner):
a plain admin, a viewer and the server key are refused (403).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from questline.finance import disputes, fees, render, reports, reviews
from questline.finance.render import Rows
from questline.finance.schemas import (
    AuditReport,
    DeskSettingsBody,
    DisputeDecisionIn,
    DisputeIn,
    DisputeOut,
    DisputeStatus,
    EvidenceIn,
    EvidenceOut,
    FeesIn,
    FeesOut,
    ReconciliationReport,
    RejectIn,
    ReportFormat,
    RevenueReport,
    ReviewIn,
    ReviewOut,
    ReviewStatus,
)
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.ledger.schemas import FIAT_PATTERN
from questline.tenancy.auth import BRAND, STREAMER, Caller, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["finance desk"], route_class=UnitOfWorkRoute)
Finance = Annotated[Caller, allow(admin_role=Role.FINANCE)]
Opener = Annotated[Caller, allow(BRAND)]
Party = Annotated[Caller, allow(BRAND, STREAMER)]
PartyOrFinance = Annotated[Caller, allow(BRAND, STREAMER, admin_role=Role.FINANCE)]
Paging = Annotated[PageParams, Depends(page_params)]
ReviewId = Annotated[str, Path(pattern=ID_PATTERN, description="a review's id (rev_…)")]
DisputeId = Annotated[str, Path(pattern=ID_PATTERN, description="a dispute's id (dsp_…)")]
Currency = Annotated[str, Query(pattern=FIAT_PATTERN, description="an ISO 4217 code, e.g. USD")]
Start = Annotated[datetime, Query(alias="from", description="the period's start (included), with a time zone")]
End = Annotated[datetime, Query(alias="to", description="the period's end (excluded), with a time zone")]
Format = Annotated[ReportFormat, Query(description="json, csv or xlsx (an Excel workbook)")]
EXPORT_RESPONSES: dict[int | str, dict[str, object]] = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}}}}}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _export(name: str, rows: Rows, fmt: ReportFormat) -> Response:
    if fmt == "csv":
        return Response(render.csv_bytes(rows), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Response(render.xlsx(name, rows), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


# Fee structure --------------------------------------------------------------------------------


@router.get("/finance/fees", response_model=FeesOut)
async def get_fees(caller: Finance, session: SessionDep) -> FeesOut:
    """The fee structure campaigns approved now get (version 0: never set, the marketplace's commission)."""
    return await fees.current(session, caller.app)


@router.put("/finance/fees", response_model=FeesOut)
async def put_fees(body: FeesIn, caller: Finance, session: SessionDep, runtime: RuntimeDep) -> FeesOut:
    """A new version of the fee structure: commission per campaign type, fixed fee per campaign. It applies to
    campaigns approved from now on; running ones keep theirs."""
    return await fees.put(session, runtime, caller, body)


@router.get("/finance/fees/history", response_model=list[FeesOut])
async def fee_history(caller: Finance, session: SessionDep) -> list[FeesOut]:
    """The last 20 versions, newest first."""
    return await fees.history(session, caller.app)


# Review queue ---------------------------------------------------------------------------------


@router.get("/finance/review-settings", response_model=DeskSettingsBody)
async def get_review_settings(caller: Finance, session: SessionDep) -> DeskSettingsBody:
    """From what amount (minor units, per currency) a transaction waits for a finance review."""
    return await reviews.settings_of(session, caller.app)


@router.put("/finance/review-settings", response_model=DeskSettingsBody)
async def put_review_settings(body: DeskSettingsBody, caller: Finance, session: SessionDep,
                              runtime: RuntimeDep) -> DeskSettingsBody:
    return await reviews.put_settings(session, runtime, caller.app, body)


@router.get("/finance/reviews", response_model=Page[ReviewOut])
async def list_reviews(caller: Finance, session: SessionDep, runtime: RuntimeDep, paging: Paging,
                       status: ReviewStatus | None = None) -> Page[ReviewOut]:
    """Large transactions (deposits, payouts, losses, conversions at or above the threshold), oldest first;
    ``status=pending`` is the queue. Reading it first queues what arrived since the last scan."""
    return await reviews.queue(session, runtime, caller, status, paging)


@router.post("/finance/reviews/{review_id}/approve", response_model=ReviewOut,
             responses={409: {"description": "review_already_decided"}})
async def approve_review(review_id: ReviewId, body: ReviewIn, caller: Finance, session: SessionDep,
                         runtime: RuntimeDep) -> ReviewOut:
    return await reviews.decide(session, runtime, caller, review_id, "approved", body)


@router.post("/finance/reviews/{review_id}/reject", response_model=ReviewOut,
             responses={409: {"description": "review_already_decided"}})
async def reject_review(review_id: ReviewId, body: RejectIn, caller: Finance, session: SessionDep,
                        runtime: RuntimeDep) -> ReviewOut:
    """Flag the transaction as not accepted (with a note) for follow-up; the ledger is not changed."""
    return await reviews.decide(session, runtime, caller, review_id, "rejected", body)


# Disputes -------------------------------------------------------------------------------------


@router.post("/disputes", response_model=DisputeOut, status_code=201, tags=["disputes"],
             responses={422: {"description": "too_many_impressions"}})
async def open_dispute(body: DisputeIn, caller: Opener, session: SessionDep, runtime: RuntimeDep) -> DisputeOut:
    """A brand disputes some of a participation's impressions in one of its campaigns."""
    return await disputes.open_dispute(session, runtime, caller, body)


@router.get("/disputes", response_model=Page[DisputeOut], tags=["disputes"])
async def list_disputes(caller: PartyOrFinance, session: SessionDep, paging: Paging,
                        status: DisputeStatus | None = None) -> Page[DisputeOut]:
    """A brand's disputes, those about a streamer, or (finance) every one, oldest first."""
    return await disputes.listing(session, caller, status, paging)


@router.get("/disputes/{dispute_id}", response_model=DisputeOut, tags=["disputes"])
async def get_dispute(dispute_id: DisputeId, caller: PartyOrFinance, session: SessionDep) -> DisputeOut:
    """The dispute with its evidence (its parties and finance only)."""
    return await disputes.get(session, caller, dispute_id)


@router.post("/disputes/{dispute_id}/evidence", response_model=EvidenceOut, status_code=201, tags=["disputes"],
             responses={409: {"description": "dispute_decided"}})
async def add_evidence(dispute_id: DisputeId, body: EvidenceIn, caller: Party, session: SessionDep,
                       runtime: RuntimeDep) -> EvidenceOut:
    """Evidence from the brand or the disputed streamer (nobody else) while the dispute is open."""
    return await disputes.add_evidence(session, runtime, caller, dispute_id, body)


@router.post("/disputes/{dispute_id}/decision", response_model=DisputeOut, tags=["disputes"],
             responses={409: {"description": "dispute_already_decided, campaign_not_settled, decided_by_provider"}})
async def decide_dispute(dispute_id: DisputeId, body: DisputeDecisionIn, caller: Finance, session: SessionDep,
                         runtime: RuntimeDep) -> DisputeOut:
    """Finance rejects the dispute or refunds it by compensating ledger transactions, once."""
    return await disputes.decide(session, runtime, caller, dispute_id, body)


# Reports --------------------------------------------------------------------------------------


@router.get("/finance/reports/revenue", response_model=RevenueReport, responses=EXPORT_RESPONSES)
async def revenue_report(caller: Finance, session: SessionDep, currency: Currency, start: Start, end: End,
                         format: Format = "json") -> RevenueReport | Response:
    """The platform's revenue for a period, from the ledger: commissions (and per campaign), fixed fees,
    refunds, the net movement and the losses of disputes decided in the period."""
    found = await reports.revenue(session, caller.app, currency, start, end)
    if format == "json":
        return found
    return _export(f"revenue-{currency}-{found.start:%Y%m%d}-{found.end:%Y%m%d}", reports.revenue_rows(found), format)


@router.get("/finance/reports/reconciliation", response_model=ReconciliationReport, responses={
    **EXPORT_RESPONSES, 503: {"description": "provider_unavailable"}})
async def reconciliation_report(caller: Finance, session: SessionDep, runtime: RuntimeDep, currency: Currency,
                                start: Start, end: End, format: Format = "json") -> ReconciliationReport | Response:
    """The ledger's PSP deposits and payouts of the period against the provider's own records."""
    found = await reports.reconcile(session, runtime, caller, currency, start, end)
    if format == "json":
        return found
    return _export(f"reconciliation-{currency}-{found.start:%Y%m%d}-{found.end:%Y%m%d}",
                   reports.reconciliation_rows(found), format)


@router.get("/finance/reports/audit", response_model=AuditReport, responses=EXPORT_RESPONSES)
async def audit_report(caller: Finance, session: SessionDep, start: Start, end: End,
                       format: Format = "json") -> AuditReport | Response:
    """The money-related entries of the audit log in the period (withdrawals, disputes, reviews, fees,
    deposits, approvals), with who did what."""
    found = await reports.audit_report(session, caller, start, end)
    if format == "json":
        return found
    return _export(f"audit-{found.start:%Y%m%d}-{found.end:%Y%m%d}", reports.audit_rows(found), format)
