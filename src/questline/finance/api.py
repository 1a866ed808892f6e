"""Routes: the finance desk (fee structure, the review queue of large transactions, reports and exports)
and disputes (a brand opens, both parties add evidence, finance decides).

The desk and dispute decisions are for people with the ``finance`` role (or the organization's owner):
a plain admin, a viewer and the server key are refused (403).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from questline.finance import disputes, fees, reviews
from questline.finance.schemas import (
    DeskSettingsBody,
    DisputeDecisionIn,
    DisputeIn,
    DisputeOut,
    DisputeStatus,
    EvidenceIn,
    EvidenceOut,
    FeesIn,
    FeesOut,
    RejectIn,
    ReviewIn,
    ReviewOut,
    ReviewStatus,
)
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
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
