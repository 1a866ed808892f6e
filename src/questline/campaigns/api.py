"""Routes: campaigns (lifecycle), joining and participation, impressions, completion, metrics, creatives,
streamer performance, and the overlay page."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, HTMLResponse

from questline.assets import service as assets
from questline.assets.schemas import AssetOut
from questline.campaigns import analytics, completion, overlay, service
from questline.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CompletionCheck,
    CompletionRun,
    CompletionStatus,
    Granularity,
    ImpressionBatch,
    ImpressionResult,
    Joined,
    JoinIn,
    Metrics,
    OverlayBatch,
    OverlayRotated,
    ParticipationOut,
    ParticipationStatus,
    Performance,
    Reason,
    Status,
)
from questline.conflicts.schemas import Verdict
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.tenancy.auth import BRAND, SERVER, STREAMER, Caller, ServerOrAdmin, ServerOrViewer, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["campaigns"], route_class=UnitOfWorkRoute)
Paging = Annotated[PageParams, Depends(page_params)]
CampaignId = Annotated[str, Path(pattern=ID_PATTERN, description="a campaign's id (cmp_…)")]
StreamerId = Annotated[str, Path(pattern=ID_PATTERN, description="a streamer's id (str_…)")]
AssetId = Annotated[str, Path(pattern=ID_PATTERN, description="an asset's id (ast_…)")]
Token = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the overlay's secret token")]
BrandSide = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.ADMIN)]
BrandReader = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.VIEWER)]
Anyone = Annotated[Caller, allow(SERVER, BRAND, STREAMER, admin_role=Role.VIEWER)]
StreamerSide = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.ADMIN)]
StreamerReader = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.VIEWER)]
ParticipantReader = Annotated[Caller, allow(SERVER, BRAND, STREAMER, admin_role=Role.VIEWER)]
ParticipantSide = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.ADMIN)]
ServerOnly = Annotated[Caller, allow(SERVER)]
Public = {"x-access": "anonymous"}


def _csv(body: str, name: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


# Completion (before /campaigns/{campaign_id} so the fixed paths win) -----------------------------


@router.get("/campaigns/completion/status", response_model=CompletionStatus, tags=["campaign completion"])
async def completion_status(caller: ServerOrViewer, session: SessionDep, runtime: RuntimeDep) -> CompletionStatus:
    """The completion check's monitoring view: its last run, running campaigns, those nearest to completing."""
    return await completion.status(session, runtime, caller.app)


@router.post("/campaigns/completion/run", response_model=CompletionRun, tags=["campaign completion"])
async def completion_run(caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep) -> CompletionRun:
    """Run the completion check over the app's running campaigns now (it also runs every 5 minutes)."""
    return await completion.check_all(session, runtime, caller.app)


# The brand's side -----------------------------------------------------------------------------


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
async def create(body: CampaignIn, caller: BrandSide, session: SessionDep, runtime: RuntimeDep) -> CampaignOut:
    """A draft campaign of a brand (a brand's token makes its own; the server key and admins name the brand)."""
    return await service.create(session, runtime, caller, body)


@router.get("/campaigns", response_model=Page[CampaignOut])
async def list_campaigns(caller: Anyone, session: SessionDep, runtime: RuntimeDep, paging: Paging,
                         available_for: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                         brand_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                         status: Annotated[Status | None, Query()] = None) -> Page[CampaignOut]:
    """With ``available_for={streamer_id}``: the campaigns open to that streamer (active, budget left, not
    joined, in their content categories or uncategorized), biggest budget first. A streamer's token
    always gets that list for themself. Otherwise: a brand's campaigns (its token: its own), by id."""
    if caller.kind is STREAMER:
        return await analytics.open_for(session, runtime, caller, available_for or str(caller.account_id), paging)
    if available_for is not None:
        return await analytics.open_for(session, runtime, caller, available_for, paging)
    return await service.list_campaigns(session, caller, brand_id, status, paging)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get(campaign_id: CampaignId, caller: Anyone, session: SessionDep) -> CampaignOut:
    return service.campaign_out(await service.campaign_for(session, caller, campaign_id, brand_side=False))


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut)
async def update(campaign_id: CampaignId, body: CampaignPatch, caller: BrandSide, session: SessionDep,
                 runtime: RuntimeDep) -> CampaignOut:
    """Edit a draft (or rejected) campaign; a rejected one goes back to draft."""
    return await service.update(session, runtime, caller, campaign_id, body)


@router.post("/campaigns/{campaign_id}/submit", response_model=CampaignOut)
async def submit(campaign_id: CampaignId, caller: BrandSide, session: SessionDep, runtime: RuntimeDep) -> CampaignOut:
    """Send the campaign to the platform's review (draft or rejected -> pending_review)."""
    return await service.submit(session, runtime, caller, campaign_id)


@router.post("/campaigns/{campaign_id}/approve", response_model=CampaignOut,
             responses={409: {"description": "invalid_transition, insufficient_funds (the brand's wallet), conflict"}})
async def approve(campaign_id: CampaignId, caller: ServerOrAdmin, session: SessionDep,
                  runtime: RuntimeDep) -> CampaignOut:
    """A platform admin approves: approval conflict rules pass, the whole budget is held from the brand's
    wallet, and the campaign goes live."""
    return await service.approve(session, runtime, caller, campaign_id)


@router.post("/campaigns/{campaign_id}/reject", response_model=CampaignOut)
async def reject(campaign_id: CampaignId, body: Reason, caller: ServerOrAdmin, session: SessionDep,
                 runtime: RuntimeDep) -> CampaignOut:
    """A platform admin rejects, with a reason the brand sees; the brand may edit and submit again."""
    return await service.reject(session, runtime, caller, campaign_id, body.reason)


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignOut)
async def pause(campaign_id: CampaignId, caller: BrandSide, session: SessionDep, runtime: RuntimeDep) -> CampaignOut:
    """Pause the whole campaign: no joins, no impressions (participations keep their state)."""
    return await service.pause(session, runtime, caller, campaign_id)


@router.post("/campaigns/{campaign_id}/resume", response_model=CampaignOut)
async def resume(campaign_id: CampaignId, caller: BrandSide, session: SessionDep, runtime: RuntimeDep) -> CampaignOut:
    return await service.resume(session, runtime, caller, campaign_id)


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut)
async def cancel(campaign_id: CampaignId, caller: BrandSide, session: SessionDep, runtime: RuntimeDep) -> CampaignOut:
    """Call the campaign off: streamers keep what they earned (released now), keys cool off, the rest of
    the budget goes back to the brand."""
    campaign = await service.campaign_for(session, caller, campaign_id)
    await completion.cancel(session, runtime, campaign, caller.identity)
    return service.campaign_out(await service.get_campaign(session, caller.app, campaign_id))


@router.post("/campaigns/{campaign_id}/complete", response_model=CampaignOut)
async def complete(campaign_id: CampaignId, caller: BrandSide, session: SessionDep,
                   runtime: RuntimeDep) -> CampaignOut:
    """Complete the campaign now (its brand or an admin): as an automatic completion, reason ``manual``."""
    campaign = await service.campaign_for(session, caller, campaign_id)
    await completion.complete_manually(session, runtime, campaign, caller.identity)
    return service.campaign_out(await service.get_campaign(session, caller.app, campaign_id))


@router.post("/campaigns/{campaign_id}/completion/check", response_model=CompletionCheck,
             tags=["campaign completion"])
async def completion_check(campaign_id: CampaignId, caller: BrandSide, session: SessionDep,
                           runtime: RuntimeDep) -> CompletionCheck:
    """Check this campaign against the completion criteria now, completing it if one is met."""
    await service.campaign_for(session, caller, campaign_id)
    return await completion.check_one(session, runtime, caller.app, campaign_id)


@router.get("/campaigns/{campaign_id}/conflicts", response_model=list[Verdict], tags=["conflict rules"])
async def conflicts(campaign_id: CampaignId, caller: ServerOrViewer, session: SessionDep, runtime: RuntimeDep,
                    streamer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None) -> list[Verdict]:
    """Every enabled rule's verdict: for a join by ``streamer_id``, or (without it) for approval."""
    return await service.explain_conflicts(session, runtime, caller.app, campaign_id, streamer_id)


@router.get("/campaigns/{campaign_id}/metrics", response_model=Metrics)
async def metrics(campaign_id: CampaignId, caller: BrandReader, session: SessionDep, runtime: RuntimeDep,
                  granularity: Annotated[Granularity, Query()] = "hour") -> Metrics:
    """Impressions over time, participants, spend, effective rate, and the completion forecast."""
    return await analytics.metrics(session, runtime, caller, campaign_id, granularity)


@router.get("/campaigns/{campaign_id}/metrics.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def metrics_csv(campaign_id: CampaignId, caller: BrandReader, session: SessionDep, runtime: RuntimeDep,
                      of: Annotated[Literal["timeline", "participants"], Query()] = "timeline") -> Response:
    """The metrics as CSV: impressions and spend per hour, or one row per participant."""
    return _csv(await analytics.metrics_csv(session, runtime, caller, campaign_id, of), f"{campaign_id}-{of}")


# Creatives ------------------------------------------------------------------------------------


@router.post("/campaigns/{campaign_id}/assets", response_model=AssetOut, status_code=201, tags=["campaign assets"],
             responses={413: {"description": "payload_too_large"},
                        415: {"description": "unsupported_media_type: not PNG, JPEG, WebP, GIF, MP4 or WebM"},
                        422: {"description": "invalid_image, invalid_video, image_too_large, empty_file"}})
async def upload_asset(campaign_id: CampaignId, caller: BrandSide, session: SessionDep, runtime: RuntimeDep,
                       file: Annotated[UploadFile, File(description="PNG, JPEG, WebP, GIF, MP4 or WebM")]) -> AssetOut:
    """Upload a creative, recognised by its content; images larger than 1280×720 get an overlay rendition."""
    return await service.upload_asset(session, runtime, caller, campaign_id, await file.read())


@router.get("/campaigns/{campaign_id}/assets", response_model=list[AssetOut], tags=["campaign assets"])
async def list_assets(campaign_id: CampaignId, caller: BrandReader, session: SessionDep) -> list[AssetOut]:
    return await service.list_assets(session, caller, campaign_id)


@router.delete("/campaigns/{campaign_id}/assets/{asset_id}", status_code=204, tags=["campaign assets"])
async def delete_asset(campaign_id: CampaignId, asset_id: AssetId, caller: BrandSide, session: SessionDep,
                       runtime: RuntimeDep) -> None:
    await service.delete_asset(session, runtime, caller, campaign_id, asset_id)


# The streamer's side --------------------------------------------------------------------------


@router.post("/campaigns/{campaign_id}/join", response_model=Joined, status_code=201,
             responses={403: {"description": "not_eligible"},
                        409: {"description": "campaign_inactive, budget_exhausted, already_joined, gkey_unavailable, "
                                             "no_energy, conflict"}})
async def join(campaign_id: CampaignId, request: Request, caller: StreamerSide, session: SessionDep,
               runtime: RuntimeDep, body: JoinIn | None = None) -> Joined:
    """Join a campaign: every check of the chain passes, then one energy pack, a G-Key and the
    participation, in one transaction. The reply holds the overlay URL (shown again only on rotation)."""
    return await service.join(session, runtime, caller, campaign_id, body or JoinIn(), str(request.base_url))


@router.get("/campaigns/{campaign_id}/participants", response_model=Page[ParticipationOut])
async def participants(campaign_id: CampaignId, caller: BrandReader, session: SessionDep, paging: Paging,
                       status: Annotated[ParticipationStatus | None, Query()] = None) -> Page[ParticipationOut]:
    return await service.list_participants(session, caller, campaign_id, status, paging)


@router.get("/campaigns/{campaign_id}/participants/{streamer_id}", response_model=ParticipationOut)
async def participant(campaign_id: CampaignId, streamer_id: StreamerId, caller: ParticipantReader,
                      session: SessionDep) -> ParticipationOut:
    return await service.get_participation(session, caller, campaign_id, streamer_id)


@router.post("/campaigns/{campaign_id}/participants/{streamer_id}/leave", response_model=ParticipationOut)
async def leave(campaign_id: CampaignId, streamer_id: StreamerId, caller: ParticipantSide, session: SessionDep,
                runtime: RuntimeDep) -> ParticipationOut:
    """Leave the campaign: the G-Key goes to cooloff; earnings stay pending until the campaign completes."""
    return await service.leave(session, runtime, caller, campaign_id, streamer_id)


@router.post("/campaigns/{campaign_id}/participants/{streamer_id}/pause", response_model=ParticipationOut)
async def pause_participation(campaign_id: CampaignId, streamer_id: StreamerId, caller: ParticipantSide,
                              session: SessionDep, runtime: RuntimeDep) -> ParticipationOut:
    """Stop counting this streamer's impressions for a while (the key stays locked)."""
    return await service.pause_participation(session, runtime, caller, campaign_id, streamer_id, resume=False)


@router.post("/campaigns/{campaign_id}/participants/{streamer_id}/resume", response_model=ParticipationOut)
async def resume_participation(campaign_id: CampaignId, streamer_id: StreamerId, caller: ParticipantSide,
                               session: SessionDep, runtime: RuntimeDep) -> ParticipationOut:
    return await service.pause_participation(session, runtime, caller, campaign_id, streamer_id, resume=True)


@router.post("/campaigns/{campaign_id}/participants/{streamer_id}/remove", response_model=ParticipationOut)
async def remove(campaign_id: CampaignId, streamer_id: StreamerId, body: Reason, caller: BrandSide,
                 session: SessionDep, runtime: RuntimeDep) -> ParticipationOut:
    """The brand (or an admin) removes a streamer, with a reason; the G-Key goes to cooloff."""
    return await service.remove(session, runtime, caller, campaign_id, streamer_id, body.reason)


@router.post("/campaigns/{campaign_id}/participants/{streamer_id}/overlay/rotate", response_model=OverlayRotated)
async def rotate_overlay(campaign_id: CampaignId, streamer_id: StreamerId, request: Request, caller: ParticipantSide,
                         session: SessionDep, runtime: RuntimeDep) -> OverlayRotated:
    """A new overlay URL; the old one stops working at once."""
    return await service.rotate_overlay(session, runtime, caller, campaign_id, streamer_id, str(request.base_url))


@router.post("/campaigns/{campaign_id}/impressions", response_model=ImpressionResult)
async def impressions(campaign_id: CampaignId, body: ImpressionBatch, caller: ServerOnly, session: SessionDep,
                      runtime: RuntimeDep) -> ImpressionResult:
    """Impressions from the platform's server: each record id counts once; each batch pays the streamers
    ``rate × impressions / 1000`` from the budget (minus the platform's commission) and checks completion."""
    return await service.record_impressions(session, runtime, caller.app, campaign_id, body)


@router.get("/streamers/{streamer_id}/performance", response_model=Performance, tags=["campaigns"])
async def performance(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep,
                      runtime: RuntimeDep) -> Performance:
    """The streamer's impressions and earnings per campaign and per month (their time zone)."""
    return await analytics.performance(session, runtime, caller, streamer_id)


@router.get("/streamers/{streamer_id}/performance.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}}, tags=["campaigns"])
async def performance_csv(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep, runtime: RuntimeDep,
                          of: Annotated[Literal["campaigns", "months"], Query()] = "campaigns") -> Response:
    return _csv(await analytics.performance_csv(session, runtime, caller, streamer_id, of), f"{streamer_id}-{of}")


# The overlay (its token is its credential) ----------------------------------------------------


@router.get("/overlay/{token}", response_class=HTMLResponse, openapi_extra=Public, tags=["overlay"])
async def overlay_page(token: Token, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """The browser source: the campaign's creative, reporting an impression a minute while shown."""
    await overlay.limit(runtime, token)
    body, nonce = overlay.page(await overlay.resolve(session, token), token)
    return HTMLResponse(body, headers=overlay.headers(nonce))


@router.get("/overlay/{token}/creative", response_class=FileResponse, openapi_extra=Public, tags=["overlay"])
async def overlay_creative(token: Token, session: SessionDep, runtime: RuntimeDep) -> FileResponse:
    await overlay.limit(runtime, token)
    path, content_type = overlay.creative_file(runtime, await overlay.resolve(session, token))
    return FileResponse(path, media_type=content_type, headers=assets.FILE_HEADERS)


@router.post("/overlay/{token}/impressions", response_model=ImpressionResult, openapi_extra=Public,
             tags=["overlay"])
async def overlay_impressions(token: Token, body: OverlayBatch, session: SessionDep,
                              runtime: RuntimeDep) -> ImpressionResult:
    """Impressions reported by the overlay page (bounded per participation and minute)."""
    await overlay.limit(runtime, token)
    return await overlay.impressions(session, runtime, token, body)
