"""Routes for referral codes, signup tracking, the status pipeline and the fraud review queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.referrals import service
from questline.referrals.schemas import CodeIn, CodeOut, ReferralOut, ReferralSummary, ReviewIn, StatusIn, TrackIn
from questline.rules.service import ruleset_cache
from questline.tenancy.auth import PLAYER, SERVER, Caller, PlayerOrServer, ServerOrViewer, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["referrals"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="your own id for the player")]
ReferralId = Annotated[str, Path(pattern=ID_PATTERN, description="the referral's id (rfl_…)")]
ServerWithKey = Annotated[Caller, allow(SERVER, idempotency="required")]
Reviewer = Annotated[Caller, allow(SERVER, admin_role=Role.ADMIN, idempotency="required")]
_TRACK_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "referral_code_not_found"},
    409: {"description": "already_referred"},
}


@router.post("/players/{player_id}/referral-code", response_model=CodeOut,
             responses={201: {"model": CodeOut, "description": "made now"}})
async def referral_code(player_id: PlayerId, caller: Annotated[Caller, allow(SERVER, PLAYER)], session: SessionDep,
                        runtime: RuntimeDep, response: Response, body: CodeIn | None = None) -> CodeOut:
    """The player's referral code (``NAME-WORD-X7Y2``): made on the first call (201), the same one after (200).

    The server key may record the referrer's ``ip`` and ``device_fingerprint`` for the anti-fraud checks.
    """
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    out, created = await service.code_for(session, runtime, ruleset, caller.app, player_id, body or CodeIn(),
                                          trusted=caller.kind is SERVER)
    response.status_code = 201 if created else 200
    return out


@router.get("/players/{player_id}/referrals", response_model=ReferralSummary)
async def player_referrals(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                           runtime: RuntimeDep) -> ReferralSummary:
    """The player's code, referrals per status, milestones reached and the next one."""
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.summary(session, ruleset, caller.app, player_id)


@router.post("/referrals/track", response_model=ReferralOut, status_code=201, responses=_TRACK_ERRORS)
async def track(body: TrackIn, caller: ServerWithKey, session: SessionDep, runtime: RuntimeDep) -> ReferralOut:
    """A player signed up with a referral code (server key; ``Idempotency-Key`` required).

    Suspicious signups are kept but ``flagged`` (``fraud_reasons``) and wait in the review queue
    instead of paying out.
    """
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.track(session, runtime, ruleset, caller.app, body)


@router.get("/referrals/review", response_model=Page[ReferralOut])
async def review_queue(caller: ServerOrViewer, session: SessionDep,
                       paging: Annotated[PageParams, Depends(page_params)]) -> Page[ReferralOut]:
    """Flagged referrals waiting for an admin's verdict, oldest first."""
    return await service.review_queue(session, caller.app, paging)


@router.get("/referrals/{referral_id}", response_model=ReferralOut)
async def get_referral(referral_id: ReferralId, caller: ServerOrViewer, session: SessionDep) -> ReferralOut:
    return await service.get_referral(session, caller.app, referral_id)


@router.post("/referrals/{referral_id}/status", response_model=ReferralOut,
             responses={409: {"description": "invalid_transition"}})
async def set_status(referral_id: ReferralId, body: StatusIn, caller: ServerWithKey, session: SessionDep,
                     runtime: RuntimeDep) -> ReferralOut:
    """Move a referral forward: signed_up → converted → paid_client, or churned (server key)."""
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.set_status(session, runtime, ruleset, caller.app, referral_id, body)


@router.post("/referrals/{referral_id}/approve", response_model=ReferralOut,
             responses={409: {"description": "not_in_review"}})
async def approve(referral_id: ReferralId, caller: Reviewer, session: SessionDep, runtime: RuntimeDep,
                  body: ReviewIn | None = None) -> ReferralOut:
    """Clear a flagged referral: the rewards of every status it reached are paid."""
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.review(session, runtime, ruleset, caller.app, referral_id, "approved", body or ReviewIn(),
                                caller.identity)


@router.post("/referrals/{referral_id}/reject", response_model=ReferralOut,
             responses={409: {"description": "not_in_review"}})
async def reject(referral_id: ReferralId, caller: Reviewer, session: SessionDep, runtime: RuntimeDep,
                 body: ReviewIn | None = None) -> ReferralOut:
    """Confirm a flagged referral as fraud: it never pays and never counts."""
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.review(session, runtime, ruleset, caller.app, referral_id, "rejected", body or ReviewIn(),
                                caller.identity)
