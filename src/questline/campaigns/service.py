"""Campaigns: the brand's side (lifecycle and funding) and the streamer's (the join chain, participation).

Lifecycle::

    draft --submit--> pending_review --approve (admin)--> active <--pause/resume--> paused
      ^                     |                               |                        |
      +-- edit -- rejected <+ reject (admin, reason)        +--> completed / cancelled <+

Approving holds the whole budget from the brand's wallet (``ledger.hold_funds`` into the campaign's
hold); impressions are paid from that hold; completion or cancellation gives the rest back.

The join chain, in this order, all in one transaction; the first failing check answers and nothing
is consumed: the caller is the streamer (or the server key / an admin acting for one) ->
``budget_exhausted`` (spent, or completed because it was) -> ``campaign_inactive`` -> ``already_joined``
-> ``not_eligible`` (targeting) -> ``gkey_unavailable`` -> ``no_energy`` -> ``conflict`` (conflict rules).
Only then is one energy pack consumed, the G-Key locked and the participation made.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.assets import service as assets
from questline.assets.schemas import AssetOut
from questline.campaigns import earnings
from questline.campaigns import repository as repo
from questline.campaigns.models import Campaign, Participation
from questline.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    ImpressionBatch,
    ImpressionResult,
    Joined,
    JoinIn,
    OverlayRotated,
    ParticipationOut,
    Targeting,
)
from questline.conflicts import service as conflicts
from questline.conflicts.schemas import Verdict
from questline.conflicts.service import CampaignView
from questline.gkeys import service as gkeys
from questline.kit.errors import Conflict, Forbidden, NotFound, ProblemError, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.periods import period_keys, zone
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.players import service as players
from questline.progression import service as progression
from questline.rules.service import ruleset_cache
from questline.sponsors import bridge
from questline.sponsors import service as sponsors
from questline.sponsors.models import Streamer
from questline.sponsors.schemas import MarketSettings
from questline.sponsors.service import StreamerFacts
from questline.tenancy.auth import ADMIN, BRAND, SERVER, STREAMER, Caller

EDITABLE = ("draft", "rejected")
# A runtime extension (set by questline.finance): ``await fees(session, runtime, campaign, default_bps, actor)``
# answers the commission a campaign being approved gets, and may book a fixed fee in the same transaction.
APPROVAL_FEES = "campaigns.approval_fees"


def campaign_out(c: Campaign) -> CampaignOut:
    return CampaignOut(
        id=c.id, brand_id=c.brand_id, title=c.title, description=c.description, categories=c.categories,
        currency=c.currency, budget=c.budget, rate_per_mille=c.rate_per_mille, impression_target=c.impression_target,
        starts_at=c.starts_at, ends_at=c.ends_at, gkey_cooloff_hours=c.gkey_cooloff_hours,
        targeting=Targeting.model_validate(c.targeting), status=c.status,
        rejection_reason=c.rejection_reason, commission_bps=c.commission_bps, impressions=c.impressions,
        spent=c.spent, remaining=c.budget - c.spent, submitted_at=c.submitted_at, approved_at=c.approved_at,
        completed_at=c.completed_at, completion_reason=c.completion_reason, created_at=c.created_at,
        updated_at=c.updated_at,
    )


def participation_out(p: Participation) -> ParticipationOut:
    return ParticipationOut(id=p.id, campaign_id=p.campaign_id, streamer_id=p.streamer_id, brand_id=p.brand_id,
                            status=p.status, gkey_category=p.gkey_category,
                            impressions=p.impressions, earned=p.earned_net, pending=p.earned_net - p.released,
                            joined_at=p.joined_at, paused_at=p.paused_at, ended_at=p.ended_at,
                            removal_reason=p.removal_reason)


def overlay_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/v1/overlay/{token}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def derived_target(budget: int, rate: int) -> int:
    """What the budget buys at the rate (at least one impression)."""
    return max(1, budget * 1000 // rate)


# Reading and authorizing ----------------------------------------------------------------------


async def get_campaign(session: AsyncSession, app_id: str, campaign_id: str, *, lock: bool = False,
                       share: bool = False) -> Campaign:
    campaign = await repo.get(session, app_id, campaign_id, lock=lock, share=share)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found", code="campaign_not_found")
    return campaign


async def campaign_for(session: AsyncSession, caller: Caller, campaign_id: str, *, lock: bool = False,
                       brand_side: bool = True) -> Campaign:
    """The campaign, if the caller may see (or, ``brand_side``, manage) it: its brand, the server key,
    an app admin; a streamer sees campaigns that are running or finished (never drafts)."""
    campaign = await get_campaign(session, caller.app, campaign_id, lock=lock)
    if caller.kind is BRAND:
        if caller.account_id != campaign.brand_id:
            raise NotFound(f"campaign {campaign_id} not found", code="campaign_not_found")
        await sponsors.acting_member(session, caller, campaign.brand_id)
    elif caller.kind is STREAMER:
        if brand_side or campaign.status in ("draft", "pending_review", "rejected"):
            raise NotFound(f"campaign {campaign_id} not found", code="campaign_not_found")
    elif caller.kind not in (SERVER, ADMIN):
        raise Forbidden(f"a {caller.kind} credential may not read campaigns", code="caller_not_allowed")
    return campaign


async def list_campaigns(session: AsyncSession, caller: Caller, brand_id: str | None, status: str | None,
                         page: PageParams) -> Page[CampaignOut]:
    if caller.kind is BRAND:
        if brand_id is not None and brand_id != caller.account_id:
            raise NotFound(f"brand {brand_id} not found", code="brand_not_found")
        brand_id = caller.account_id
    rows = await repo.page(session, caller.app, brand_id=brand_id, status=status, after=page.after_str(),
                           limit=page.limit)
    built = build_page(list(rows), page.limit, lambda c: [c.id])
    return Page[CampaignOut](items=[campaign_out(c) for c in built.items], next_cursor=built.next_cursor)


def _check_categories(categories: list[str], settings: MarketSettings) -> None:
    unknown = [c for c in categories if c not in settings.categories]
    if unknown:
        raise Unprocessable(f"{unknown[0]!r} is not a category of this marketplace", code="unknown_category",
                            extra={"categories": settings.categories})


# The brand's side -----------------------------------------------------------------------------


async def create(session: AsyncSession, runtime: Runtime, caller: Caller, body: CampaignIn) -> CampaignOut:
    if caller.kind is BRAND:
        brand_id = body.brand_id or caller.account_id
    elif body.brand_id is None:
        raise Unprocessable("name the campaign's brand with brand_id", code="brand_required")
    else:
        brand_id = body.brand_id
    assert brand_id is not None
    await sponsors.authorize_brand(session, caller, brand_id)
    settings = await sponsors.market_settings(session, caller.app)
    _check_categories(body.categories, settings)
    await ledger.ensure_currency(session, runtime.clock, caller.app, body.currency)
    now = runtime.clock.now()
    campaign = Campaign(
        id=new_id("cmp"), app_id=caller.app, brand_id=brand_id, title=body.title, description=body.description,
        categories=list(dict.fromkeys(body.categories)), currency=body.currency, budget=body.budget,
        rate_per_mille=body.rate_per_mille,
        impression_target=body.impression_target or derived_target(body.budget, body.rate_per_mille),
        starts_at=body.starts_at, ends_at=body.ends_at,
        gkey_cooloff_hours=settings.default_cooloff_hours if body.gkey_cooloff_hours is None
        else body.gkey_cooloff_hours,
        targeting=body.targeting.model_dump(), status="draft", rejection_reason=None, commission_bps=None,
        impressions=0, spent=0, commission=0, submitted_at=None, approved_at=None, approved_by=None,
        paused_at=None, completed_at=None, completion_reason=None, created_at=now, updated_at=now,
    )
    await repo.add(session, campaign)
    return campaign_out(campaign)


async def update(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                 patch: CampaignPatch) -> CampaignOut:
    """Edit a draft or a rejected campaign (a rejected one goes back to draft)."""
    campaign = await campaign_for(session, caller, campaign_id, lock=True)
    if campaign.status not in EDITABLE:
        raise Conflict(f"a {campaign.status} campaign cannot be edited", code="campaign_not_editable",
                       extra={"campaign_status": campaign.status})
    values: dict[str, Any] = patch.model_dump(exclude_unset=True)
    if "categories" in values:
        _check_categories(values["categories"], await sponsors.market_settings(session, caller.app))
    for required in ("title", "description", "budget", "rate_per_mille", "gkey_cooloff_hours", "categories",
                     "targeting", "impression_target"):
        if required in values and values[required] is None:
            raise Unprocessable(f"{required} cannot be null", code="validation_failed")
    starts = values.get("starts_at", campaign.starts_at)
    ends = values.get("ends_at", campaign.ends_at)
    if starts and ends and ends <= starts:
        raise Unprocessable("ends_at must be after starts_at", code="validation_failed")
    if "budget" in values or "rate_per_mille" in values:
        values.setdefault("impression_target", derived_target(values.get("budget", campaign.budget),
                                                              values.get("rate_per_mille", campaign.rate_per_mille)))
    values.update(status="draft", rejection_reason=None, updated_at=runtime.clock.now())
    await repo.update(session, caller.app, campaign_id, values)
    return campaign_out(await get_campaign(session, caller.app, campaign_id))


def _view(campaign: Campaign, industry: str) -> CampaignView:
    targeting = campaign.targeting or {}
    return CampaignView(id=campaign.id, brand_id=campaign.brand_id, brand_industry=industry,
                        categories=tuple(campaign.categories), platforms=tuple(targeting.get("platforms", [])),
                        countries=tuple(targeting.get("countries", [])), starts_at=campaign.starts_at,
                        ends_at=campaign.ends_at, currency=campaign.currency, budget=campaign.budget,
                        rate_per_mille=campaign.rate_per_mille,
                        extra={"title": campaign.title, "min_followers": int(targeting.get("min_followers", 0)),
                               "target_categories": list(targeting.get("categories", []))})


async def _move(session: AsyncSession, runtime: Runtime, caller: Caller, campaign: Campaign, from_: Sequence[str],
                values: dict[str, Any], *, verb: str, event: str, payload: dict[str, Any] | None = None) -> CampaignOut:
    """One lifecycle step: the conditional transition, its announcement, the campaign as it is now."""
    now = runtime.clock.now()
    if not await repo.transition(session, caller.app, campaign.id, from_, {**values, "updated_at": now}):
        raise Conflict(f"only a {' or '.join(from_)} campaign can be {verb}; this one is {campaign.status}",
                       code="invalid_transition", extra={"campaign_status": campaign.status})
    await bridge.announce(session, caller.app, now, event,
                          {"campaign_id": campaign.id, "brand_id": campaign.brand_id, **(payload or {})})
    return campaign_out(await get_campaign(session, caller.app, campaign.id))


async def submit(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str) -> CampaignOut:
    campaign = await campaign_for(session, caller, campaign_id, lock=True)
    _check_categories(campaign.categories, await sponsors.market_settings(session, caller.app))
    return await _move(session, runtime, caller, campaign, EDITABLE,
                       {"status": "pending_review", "submitted_at": runtime.clock.now()}, verb="submitted",
                       event="campaign.pending_review", payload={"title": campaign.title})


async def approval_verdicts(session: AsyncSession, campaign: Campaign) -> list[Verdict]:
    brand = await sponsors.get_brand(session, campaign.app_id, campaign.brand_id)
    return await conflicts.evaluate(session, campaign.app_id, "approval", _view(campaign, brand.industry))


async def approve(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str) -> CampaignOut:
    """A platform admin approves: conflict rules for approval pass, the budget is held, the campaign runs."""
    campaign = await get_campaign(session, caller.app, campaign_id, lock=True)
    if campaign.status != "pending_review":
        raise Conflict(f"only a campaign pending review can be approved; this one is {campaign.status}",
                       code="invalid_transition", extra={"campaign_status": campaign.status})
    refused = conflicts.refusal(await approval_verdicts(session, campaign), "approval")
    if refused is not None:
        raise refused
    settings = await sponsors.market_settings(session, caller.app)
    await ledger.hold_funds(session, runtime.clock, app_id=caller.app, owner_kind="brand", owner_id=campaign.brand_id,
                            currency=campaign.currency, amount=campaign.budget, hold=campaign.id,
                            idempotency_key=f"campaign-budget:{campaign.id}", reference={"campaign_id": campaign.id},
                            actor=caller.identity)
    commission_bps = settings.commission_bps
    fees = runtime.extensions.get(APPROVAL_FEES)
    if fees is not None:
        # The finance desk's fee structure (commission per campaign type, a fixed fee), fixed at approval.
        commission_bps = await fees(session, runtime, campaign, commission_bps, caller.identity)
    now = runtime.clock.now()
    await repo.transition(session, caller.app, campaign_id, ["pending_review"], {
        "status": "active", "approved_at": now, "approved_by": caller.identity,
        "commission_bps": commission_bps, "updated_at": now})
    await bridge.announce(session, caller.app, now, "campaign.approved", {
        "campaign_id": campaign_id, "brand_id": campaign.brand_id, "title": campaign.title,
        "budget": campaign.budget, "currency": campaign.currency, "commission_bps": commission_bps})
    return campaign_out(await get_campaign(session, caller.app, campaign_id))


async def reject(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                 reason: str) -> CampaignOut:
    campaign = await get_campaign(session, caller.app, campaign_id, lock=True)
    return await _move(session, runtime, caller, campaign, ["pending_review"],
                       {"status": "rejected", "rejection_reason": reason}, verb="rejected",
                       event="campaign.rejected", payload={"reason": reason})


async def pause(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str) -> CampaignOut:
    """No joins and no impressions while paused; participations keep their state."""
    campaign = await campaign_for(session, caller, campaign_id, lock=True)
    return await _move(session, runtime, caller, campaign, ["active"],
                       {"status": "paused", "paused_at": runtime.clock.now()}, verb="paused",
                       event="campaign.paused", payload={"scope": "campaign"})


async def resume(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str) -> CampaignOut:
    campaign = await campaign_for(session, caller, campaign_id, lock=True)
    return await _move(session, runtime, caller, campaign, ["paused"], {"status": "active", "paused_at": None},
                       verb="resumed", event="campaign.resumed", payload={"scope": "campaign"})


# The streamer's side: the join chain ----------------------------------------------------------


def _acting_streamer(caller: Caller, body: JoinIn) -> str:
    if caller.kind is STREAMER:
        assert caller.account_id is not None
        if body.streamer_id is not None and body.streamer_id != caller.account_id:
            raise NotFound(f"streamer {body.streamer_id} not found", code="streamer_not_found")
        return caller.account_id
    if caller.kind not in (SERVER, ADMIN):
        raise Forbidden("only a streamer (or the server key acting for one) joins campaigns",
                        code="caller_not_allowed")
    if body.streamer_id is None:
        raise Unprocessable("name the streamer who joins with streamer_id", code="streamer_required")
    return body.streamer_id


def targeting_refusal(targeting: dict[str, Any], facts: StreamerFacts) -> str | None:
    """Why the streamer does not match (None when they do); only trusted facts count."""
    platforms = targeting.get("platforms") or []
    if platforms and not set(platforms) & set(facts.verified_platforms):
        return f"needs a verified channel on {', '.join(platforms)}"
    minimum = int(targeting.get("min_followers") or 0)
    if minimum and facts.followers < minimum:
        return f"needs at least {minimum} followers on a verified channel (has {facts.followers})"
    countries = targeting.get("countries") or []
    if countries and facts.country not in countries:
        return f"open to streamers in {', '.join(countries)}"
    categories = targeting.get("categories") or []
    if categories and not set(categories) & set(facts.categories):
        return f"open to channels streaming {', '.join(categories)}"
    return None


async def running_views(session: AsyncSession, app_id: str, streamer_id: str) -> list[CampaignView]:
    """The campaigns the streamer runs now (active or paused participations), as conflict rules see them."""
    running = await repo.running_of_streamer(session, app_id, streamer_id)
    campaigns = await repo.by_ids(session, app_id, [p.campaign_id for p in running])
    brands = await sponsors.brands_by_id(session, app_id, [c.brand_id for c in campaigns.values()])
    return [_view(c, brands[c.brand_id].industry if c.brand_id in brands else "")
            for c in sorted(campaigns.values(), key=lambda c: c.id)]


async def _levels_loader(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str) -> Any:
    async def load() -> dict[str, int]:
        ruleset = await ruleset_cache(runtime).get(session, app_id)
        tz = (await players.get_player(session, app_id, player_id)).timezone or "UTC"
        today = period_keys(runtime.clock.now(), zone(tz))["day"]
        return {track: info.level for track, info in
                (await progression.levels_of(session, ruleset, app_id, player_id, today)).items()}
    return load


async def join_verdicts(session: AsyncSession, runtime: Runtime, campaign: Campaign,
                        streamer: Streamer) -> list[Verdict]:
    brand = await sponsors.get_brand(session, campaign.app_id, campaign.brand_id)
    return await conflicts.evaluate(
        session, campaign.app_id, "join", _view(campaign, brand.industry), sponsors.facts_of(streamer).as_data(),
        await running_views(session, campaign.app_id, streamer.id),
        await _levels_loader(session, runtime, campaign.app_id, streamer.player_id))


def _refuse(code: str, detail: str, status: int = 409, **extra: Any) -> ProblemError:
    return ProblemError(detail, code=code, status=status, title="Join refused", extra=extra)


async def join(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str, body: JoinIn,
               base_url: str) -> Joined:
    streamer_id = _acting_streamer(caller, body)
    app_id = caller.app
    streamer = await sponsors.get_streamer(session, app_id, streamer_id)
    campaign = await get_campaign(session, app_id, campaign_id, share=True)
    now = runtime.clock.now()
    if campaign.spent >= campaign.budget or campaign.completion_reason == "budget_exhausted":
        raise _refuse("budget_exhausted", f"campaign {campaign_id} has spent its budget",
                      campaign_status=campaign.status)
    if campaign.status != "active" or (campaign.starts_at and now < campaign.starts_at) \
            or (campaign.ends_at and now >= campaign.ends_at):
        raise _refuse("campaign_inactive", f"campaign {campaign_id} is not running (status {campaign.status})",
                      campaign_status=campaign.status)
    # Every join of this streamer queues on their energy row from here on, so what follows is settled.
    energy_row = await gkeys.lock_energy(session, runtime.clock, app_id, streamer)
    if await repo.participation(session, app_id, campaign_id, streamer_id) is not None:
        raise _refuse("already_joined", f"streamer {streamer_id} has already joined campaign {campaign_id}")
    why = targeting_refusal(campaign.targeting or {}, sponsors.facts_of(streamer))
    if why is not None:
        raise _refuse("not_eligible", f"streamer {streamer_id} does not match the campaign's targeting: {why}",
                      status=403, reason=why)
    settings = await sponsors.market_settings(session, app_id)
    choice = await gkeys.choose_key(session, runtime.clock, app_id, streamer, campaign.categories, campaign.brand_id,
                                    settings)
    if choice.category is None:
        raise _refuse("gkey_unavailable", f"no G-Key of the campaign's categories is available: {choice.reason}",
                      reason=choice.reason, categories=campaign.categories)
    energy = await gkeys.energy_available(session, runtime.clock, app_id, streamer, energy_row, settings)
    if energy.current <= 0:
        raise _refuse("no_energy", f"no energy pack left today (back to {energy.maximum} at "
                      f"{energy.next_reset_at.isoformat()})", next_reset_at=energy.next_reset_at.isoformat(),
                      next_regen_at=energy.regen_at.isoformat() if energy.regen_at else None)
    refused = conflicts.refusal(await join_verdicts(session, runtime, campaign, streamer), "joining")
    if refused is not None:
        raise refused

    out = bridge.Announcements(app_id, now)
    if not await gkeys.consume_energy(session, runtime.clock, app_id, streamer, energy_row, energy, settings,
                                      campaign_id, out):
        raise _refuse("no_energy", "the energy pack was taken by a racing join")
    if not await gkeys.lock_key(session, runtime.clock, app_id, streamer, choice, campaign_id, campaign.brand_id, out):
        raise _refuse("gkey_unavailable", "the G-Key was taken by a racing join")
    token = secrets.token_urlsafe(24)
    participation_id = new_id("prt")
    if not await repo.insert_participation(session, {
        "id": participation_id, "app_id": app_id, "campaign_id": campaign_id, "streamer_id": streamer_id,
        "brand_id": campaign.brand_id, "player_id": streamer.player_id, "status": "active",
        "gkey_category": choice.category, "impressions": 0, "earned_gross": 0, "earned_fee": 0, "earned_net": 0,
        "released": 0, "overlay_token_hash": token_hash(token), "joined_at": now, "paused_at": None,
        "ended_at": None, "removed_by": None, "removal_reason": None, "updated_at": now,
    }):
        raise _refuse("already_joined", f"streamer {streamer_id} has already joined campaign {campaign_id}")
    url = overlay_url(base_url, token)
    out.add("campaign.joined", {
        "campaign_id": campaign_id, "campaign_title": campaign.title, "brand_id": campaign.brand_id,
        "streamer_id": streamer_id, "streamer_name": streamer.display_name, "participation_id": participation_id,
        "gkey_category": choice.category, "overlay_url": url})
    await out.flush(session)
    row = await repo.participation(session, app_id, campaign_id, streamer_id)
    assert row is not None
    return Joined(**participation_out(row).model_dump(), overlay_url=url, energy_remaining=energy.current - 1)


# Participation --------------------------------------------------------------------------------


async def _participation_for(session: AsyncSession, caller: Caller, campaign_id: str, streamer_id: str, *,
                             brand_only: bool = False) -> tuple[Campaign, Participation]:
    campaign = await get_campaign(session, caller.app, campaign_id, share=True)
    if caller.kind is BRAND:
        if caller.account_id != campaign.brand_id:
            raise NotFound(f"campaign {campaign_id} not found", code="campaign_not_found")
        await sponsors.acting_member(session, caller, campaign.brand_id)
    elif caller.kind is STREAMER:
        if brand_only:
            raise Forbidden("only the campaign's brand or an admin may do this", code="caller_not_allowed")
        if caller.account_id != streamer_id:
            raise NotFound(f"streamer {streamer_id} not found", code="streamer_not_found")
    elif caller.kind not in (SERVER, ADMIN):
        raise Forbidden(f"a {caller.kind} credential may not act on participations", code="caller_not_allowed")
    found = await repo.participation(session, caller.app, campaign_id, streamer_id, lock=True)
    if found is None:
        raise NotFound(f"streamer {streamer_id} is not in campaign {campaign_id}", code="participation_not_found")
    return campaign, found


async def get_participation(session: AsyncSession, caller: Caller, campaign_id: str,
                            streamer_id: str) -> ParticipationOut:
    _, found = await _participation_for(session, caller, campaign_id, streamer_id)
    return participation_out(found)


async def list_participants(session: AsyncSession, caller: Caller, campaign_id: str, status: str | None,
                            page: PageParams) -> Page[ParticipationOut]:
    await campaign_for(session, caller, campaign_id)
    rows = await repo.participations_of(session, caller.app, campaign_id, statuses=[status] if status else None,
                                        after=page.after_str(), limit=page.limit)
    built = build_page(list(rows), page.limit, lambda p: [p.id])
    return Page[ParticipationOut](items=[participation_out(p) for p in built.items], next_cursor=built.next_cursor)


async def _end(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str, streamer_id: str, *,
               status: str, event: str, reason: str | None = None) -> ParticipationOut:
    campaign, found = await _participation_for(session, caller, campaign_id, streamer_id,
                                               brand_only=status == "removed")
    now = runtime.clock.now()
    values: dict[str, Any] = {"status": status, "ended_at": now, "updated_at": now}
    if status == "removed":
        values.update(removed_by=caller.identity, removal_reason=reason)
    if not await repo.set_status(session, found.id, ["active", "paused"], values):
        raise Conflict(f"the participation is {found.status}", code="participation_not_active",
                       extra={"participation_status": found.status})
    out = bridge.Announcements(caller.app, now)
    released = await gkeys.release_key(session, runtime.clock, caller.app, streamer_id, found.player_id, campaign_id,
                                       campaign.brand_id, campaign.gkey_cooloff_hours, out)
    payload: dict[str, Any] = {"campaign_id": campaign_id, "brand_id": campaign.brand_id,
                               "streamer_id": streamer_id, "participation_id": found.id,
                               "gkey_cooloff_until": released["cooloff_until"] if released else None}
    if reason is not None:
        payload["reason"] = reason
    out.add(event, payload, found.player_id)
    await out.flush(session)
    fresh = await repo.participation(session, caller.app, campaign_id, streamer_id)
    assert fresh is not None
    return participation_out(fresh)


async def leave(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                streamer_id: str) -> ParticipationOut:
    """The streamer leaves: the G-Key goes to cooloff; what they earned is released when the campaign completes."""
    return await _end(session, runtime, caller, campaign_id, streamer_id, status="left", event="campaign.left")


async def remove(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str, streamer_id: str,
                 reason: str) -> ParticipationOut:
    """The brand or an admin removes a streamer (the G-Key goes to cooloff as on leaving)."""
    return await _end(session, runtime, caller, campaign_id, streamer_id, status="removed",
                      event="campaign.participant_removed", reason=reason)


async def pause_participation(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                              streamer_id: str, *, resume: bool) -> ParticipationOut:
    _, found = await _participation_for(session, caller, campaign_id, streamer_id)
    now = runtime.clock.now()
    from_, to = ("paused", "active") if resume else ("active", "paused")
    if not await repo.set_status(session, found.id, [from_], {"status": to, "paused_at": None if resume else now,
                                                              "updated_at": now}):
        raise Conflict(f"the participation is {found.status}, not {from_}", code="participation_not_" + from_,
                       extra={"participation_status": found.status})
    await bridge.announce(session, caller.app, now, "campaign.resumed" if resume else "campaign.paused", {
        "scope": "participation", "campaign_id": campaign_id, "streamer_id": streamer_id,
        "participation_id": found.id}, found.player_id)
    fresh = await repo.participation(session, caller.app, campaign_id, streamer_id)
    assert fresh is not None
    return participation_out(fresh)


async def rotate_overlay(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                         streamer_id: str, base_url: str) -> OverlayRotated:
    """A new overlay URL; the old one stops working at once."""
    _, found = await _participation_for(session, caller, campaign_id, streamer_id)
    token = secrets.token_urlsafe(24)
    await repo.set_token(session, found.id, token_hash(token), runtime.clock.now())
    return OverlayRotated(participation_id=found.id, overlay_url=overlay_url(base_url, token))


# Impressions, conflicts explained, creatives ---------------------------------------------------


async def record_impressions(session: AsyncSession, runtime: Runtime, app_id: str, campaign_id: str,
                             body: ImpressionBatch) -> ImpressionResult:
    items = [earnings.Item(id=i.id, streamer_id=i.streamer_id, count=i.count) for i in body.impressions]
    return await earnings.record(session, runtime, app_id, campaign_id, items, "server")


async def explain_conflicts(session: AsyncSession, runtime: Runtime, app_id: str, campaign_id: str,
                            streamer_id: str | None) -> list[Verdict]:
    campaign = await get_campaign(session, app_id, campaign_id)
    if streamer_id is None:
        return await approval_verdicts(session, campaign)
    streamer = await sponsors.get_streamer(session, app_id, streamer_id)
    return await join_verdicts(session, runtime, campaign, streamer)


async def upload_asset(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                       data: bytes) -> AssetOut:
    campaign = await campaign_for(session, caller, campaign_id)
    if campaign.status in ("completed", "cancelled"):
        raise Conflict(f"a {campaign.status} campaign takes no new creatives", code="campaign_finished")
    return await assets.store(session, runtime, app_id=caller.app, brand_id=campaign.brand_id,
                              campaign_id=campaign_id, data=data, actor=caller.identity)


async def list_assets(session: AsyncSession, caller: Caller, campaign_id: str) -> list[AssetOut]:
    await campaign_for(session, caller, campaign_id)
    return [assets.asset_out(a) for a in await assets.of_campaign(session, caller.app, campaign_id)]


async def delete_asset(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                       asset_id: str) -> None:
    await campaign_for(session, caller, campaign_id)
    asset = await assets.get(session, caller.app, asset_id)
    if asset.campaign_id != campaign_id:
        raise NotFound(f"asset {asset_id} not found", code="asset_not_found")
    await assets.delete(session, runtime, caller.app, asset_id)
