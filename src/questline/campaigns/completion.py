"""Campaign completion: automatic (on every impression batch and every 5 minutes) and manual.

Criteria, in the seed's priority order: the impression target is reached; 95% of the budget is
spent; the end date has passed (this one also completes a campaign nobody joined, so its budget
comes back). Manual: the brand or an admin. Completing is one conditional UPDATE, so however many
processes check at once, one completes and announces.

Completing moves every active or paused participation to ``completed``, releases every streamer's
pending earnings to their available balance, every G-Key still locked with the campaign to cooloff,
the unspent budget back to the brand, and announces ``campaign.completed`` with its reason.
Cancelling does the same as ``campaign.cancelled``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.campaigns import repository as repo
from questline.campaigns.models import Campaign
from questline.campaigns.schemas import CompletionCheck, CompletionRun, CompletionStatus, Criteria, JobStatus
from questline.gkeys import service as gkeys
from questline.kit.errors import Conflict, NotFound
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import AccountRef
from questline.sponsors import bridge

JOB_NAME = "campaigns.check_completion"
JOB_EVERY_SECONDS = 300
LIVE = ("active", "paused")
NOT_STARTED = ("draft", "pending_review", "rejected")


def criteria(c: Campaign, now: datetime) -> Criteria:
    return Criteria(impressions=c.impressions, impression_target=c.impression_target,
                    target_progress=round(c.impressions / c.impression_target, 6) if c.impression_target else 0.0,
                    spent=c.spent, budget=c.budget, spent_ratio=round(c.spent / c.budget, 6) if c.budget else 0.0,
                    ends_at=c.ends_at,
                    time_left_seconds=max(0, int((c.ends_at - now).total_seconds())) if c.ends_at else None)


def reason_due(c: Campaign, now: datetime) -> str | None:
    """The first completion criterion the campaign meets, in priority order (None: keep running)."""
    if c.status not in LIVE:
        return None
    if c.impressions >= c.impression_target:
        return "impression_target_reached"
    if c.spent * 100 >= c.budget * 95:
        return "budget_exhausted"
    if c.ends_at is not None and now >= c.ends_at:
        return "time_expired"
    return None


async def finish(session: AsyncSession, runtime: Runtime, campaign: Campaign, *, reason: str,
                 cancel: bool = False, actor: str | None = None) -> bool:
    """Complete (or cancel) the campaign; False when it had already finished (another caller won)."""
    app_id, campaign_id = campaign.app_id, campaign.id
    now = runtime.clock.now()
    status = "cancelled" if cancel else "completed"
    allowed = (*LIVE, *NOT_STARTED) if cancel else LIVE
    if not await repo.transition(session, app_id, campaign_id, allowed, {
            "status": status, "completed_at": now, "completion_reason": reason, "updated_at": now}):
        return False
    out = bridge.Announcements(app_id, now)
    ended = await repo.end_live(session, app_id, campaign_id, now)
    for _participation_id, streamer_id, player_id in ended:
        await gkeys.release_key(session, runtime.clock, app_id, streamer_id, player_id, campaign_id,
                                campaign.brand_id, campaign.gkey_cooloff_hours, out)
    earnings = 0
    participations = await repo.participations_of(session, app_id, campaign_id)
    # Every account this completion posts to, locked at once in the ledger's order: a batch of another
    # campaign paying the same streamers then waits instead of deadlocking with us.
    accounts = [AccountRef.wallet("streamer", p.streamer_id, campaign.currency, sub)
                for p in participations if p.earned_net > p.released for sub in (ledger.PENDING, "")]
    if campaign.approved_at is not None:
        accounts += [AccountRef.wallet("brand", campaign.brand_id, campaign.currency, sub)
                     for sub in (ledger.hold_sub(campaign_id), "")]
    if accounts:
        await ledger.lock_accounts(session, runtime.clock, app_id=app_id, accounts=accounts)
    for p in participations:
        amount = p.earned_net - p.released
        if amount > 0:
            await ledger.release_pending(session, runtime.clock, app_id=app_id, owner_kind="streamer",
                                         owner_id=p.streamer_id, currency=campaign.currency, amount=amount,
                                         idempotency_key=f"earnings-release:{p.id}",
                                         reference={"campaign_id": campaign_id, "participation_id": p.id})
            await repo.mark_released(session, p.id, amount)
            earnings += amount
    returned = 0
    if campaign.approved_at is not None:
        txn = await ledger.release_held(session, runtime.clock, app_id=app_id, owner_kind="brand",
                                        owner_id=campaign.brand_id, currency=campaign.currency, hold=campaign_id,
                                        idempotency_key=f"campaign-release:{campaign_id}",
                                        reference={"campaign_id": campaign_id}, actor=actor)
        returned = 0 if txn is None else next(p.amount for p in txn.postings if p.sub == "")
    await repo.forget_ids_of(session, campaign_id)
    fresh = await repo.get(session, app_id, campaign_id)
    assert fresh is not None
    out.add(f"campaign.{status}", {
        "campaign_id": campaign_id, "brand_id": campaign.brand_id, "title": campaign.title, "reason": reason,
        "participants_completed": len(ended), "impressions": fresh.impressions, "spent": fresh.spent,
        "commission": fresh.commission, "earnings_released": earnings, "budget_returned": returned,
        "currency": campaign.currency, "actor": actor, "completed_at": now.isoformat()})
    await out.flush(session)
    return True


async def check(session: AsyncSession, runtime: Runtime, campaign: Campaign) -> CompletionCheck:
    """Complete the campaign if a criterion is met (the campaign row must be locked by the caller)."""
    now = runtime.clock.now()
    reason = reason_due(campaign, now)
    done = reason is not None and await finish(session, runtime, campaign, reason=reason)
    fresh = await repo.get(session, campaign.app_id, campaign.id)
    assert fresh is not None
    return CompletionCheck(campaign_id=campaign.id, status=fresh.status,
                           completed_now=done, reason=reason if done else fresh.completion_reason,
                           criteria=criteria(fresh, now))


async def check_one(session: AsyncSession, runtime: Runtime, app_id: str, campaign_id: str) -> CompletionCheck:
    campaign = await repo.get(session, app_id, campaign_id, lock=True)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found", code="campaign_not_found")
    return await check(session, runtime, campaign)


async def check_all(session: AsyncSession, runtime: Runtime, app_id: str | None = None,
                    limit: int = 500) -> CompletionRun:
    """Check every running campaign (of one app, or all: the scheduled job)."""
    checked, completed = 0, []
    for row in await repo.live_campaigns(session, app_id, limit):
        async with session.begin_nested():
            campaign = await repo.get(session, row.app_id, row.id, lock=True)
            if campaign is None:
                continue
            checked += 1
            result = await check(session, runtime, campaign)
            if result.completed_now:
                completed.append(result)
    return CompletionRun(checked=checked, completed=completed)


async def complete_manually(session: AsyncSession, runtime: Runtime, campaign: Campaign, actor: str) -> None:
    locked = await repo.get(session, campaign.app_id, campaign.id, lock=True)
    assert locked is not None
    if not await finish(session, runtime, locked, reason="manual", actor=actor):
        raise Conflict(f"only a running campaign can be completed; this one is {locked.status}",
                       code="invalid_transition", extra={"campaign_status": locked.status})


async def cancel(session: AsyncSession, runtime: Runtime, campaign: Campaign, actor: str) -> None:
    locked = await repo.get(session, campaign.app_id, campaign.id, lock=True)
    assert locked is not None
    if not await finish(session, runtime, locked, reason="cancelled", cancel=True, actor=actor):
        raise Conflict(f"a {locked.status} campaign cannot be cancelled", code="invalid_transition",
                       extra={"campaign_status": locked.status})


async def status(session: AsyncSession, runtime: Runtime, app_id: str) -> CompletionStatus:
    """What the completion check sees: its last run, running campaigns, the ones nearest to completing."""
    now = runtime.clock.now()
    last = await repo.last_job_run(session, JOB_NAME)
    counts = await repo.count_by_status(session, app_id)
    live = await repo.live_campaigns(session, app_id, 500)

    def nearness(c: Campaign) -> Any:
        return max(c.impressions / c.impression_target if c.impression_target else 0,
                   c.spent / c.budget / 0.95 if c.budget else 0)

    nearest = [CompletionCheck(campaign_id=c.id, status=c.status, completed_now=False,
                               reason=reason_due(c, now), criteria=criteria(c, now))
               for c in sorted(live, key=nearness, reverse=True)[:10]]
    return CompletionStatus(
        job=JobStatus(name=JOB_NAME, every_seconds=JOB_EVERY_SECONDS,
                      last_run_at=last.claimed_at if last else None, last_result=last.result if last else None),
        active=counts.get("active", 0), paused=counts.get("paused", 0),
        completed_last_24h=await repo.completed_since(session, app_id, now - timedelta(hours=24)), nearest=nearest)
