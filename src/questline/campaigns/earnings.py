"""Impressions in, earnings out.

Impressions arrive from the platform's server (batches of records ``{id, streamer_id, count}``) or
from a participation's overlay page (one impression per record). Each record id counts once per
participation, for as long as the campaign runs. A participation counts at most
``impressions_per_minute`` impressions a minute (of which ``overlay_impressions_per_minute`` from
its overlay); records beyond that are refused (``rate_limited``) and may be sent again later.

Earnings (integers in the currency's minor units), per participation with ``N`` impressions so far:

- gross owed in total = ``rate_per_mille × N // 1000``; a batch pays what that total grew by, so
  the fractions carry over from batch to batch and nothing is lost or paid twice to rounding;
- never more than the campaign's budget hold holds (the ledger refuses below zero; a batch that
  would overspend pays the rest of the hold and the campaign completes on its budget);
- the platform's commission in total = ``gross_total × commission_bps // 10000`` (the same carry);
  a batch books what that grew by to the platform's revenue, the remainder to the streamer's
  pending earnings.

The campaign row is locked for the batch, so racing batches of one campaign queue and every
figure is read settled; the completion check runs at the end of each batch, in its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from questline.campaigns import completion
from questline.campaigns import live as totals
from questline.campaigns import repository as repo
from questline.campaigns.schemas import ImpressionResult, RefusedImpression
from questline.kit.errors import Conflict, NotFound
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import WalletOwnerKind
from questline.sponsors import service as sponsors

Source = Literal["server", "overlay"]


@dataclass(frozen=True)
class Item:
    id: str
    streamer_id: str
    count: int = 1


async def record(session: AsyncSession, runtime: Runtime, app_id: str, campaign_id: str, items: list[Item],
                 source: Source) -> ImpressionResult:
    campaign = await repo.get(session, app_id, campaign_id, lock=True)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found", code="campaign_not_found")
    now = runtime.clock.now()
    refused: list[RefusedImpression] = []
    if campaign.status == "active" and campaign.ends_at is not None and now >= campaign.ends_at:
        await completion.finish(session, runtime, campaign, reason="time_expired")
        return ImpressionResult(accepted=0, duplicates=[], paid_gross=0, paid_fee=0, paid_net=0,
                                refused=[RefusedImpression(id=i.id, streamer_id=i.streamer_id, code="campaign_inactive",
                                                           reason="the campaign ended") for i in items],
                                campaign_status="completed", completion_reason="time_expired")
    if campaign.status != "active" or (campaign.starts_at is not None and now < campaign.starts_at):
        raise Conflict(f"campaign {campaign_id} is not running (status {campaign.status})",
                       code="campaign_inactive", extra={"campaign_status": campaign.status})
    settings = await sponsors.market_settings(session, app_id)
    by_streamer: dict[str, list[Item]] = {}
    duplicates: list[str] = []
    seen_in_batch: set[tuple[str, str]] = set()
    for item in items:
        if (item.streamer_id, item.id) in seen_in_batch:
            duplicates.append(item.id)
            continue
        seen_in_batch.add((item.streamer_id, item.id))
        by_streamer.setdefault(item.streamer_id, []).append(item)

    parts = {p.streamer_id: p for p in await repo.participations_of(
        session, app_id, campaign_id, streamer_ids=list(by_streamer), lock=True)}
    live = {s: p for s, p in parts.items() if p.status == "active"}
    for streamer_id, batch in by_streamer.items():
        if streamer_id not in live:
            p = parts.get(streamer_id)
            code, why = ("not_participating", "the streamer is not in this campaign") if p is None else \
                ("participation_not_active", f"the participation is {p.status}")
            refused += [RefusedImpression(id=i.id, streamer_id=streamer_id, code=code, reason=why) for i in batch]
    minute = int(now.timestamp() // 60)
    hour = now.replace(minute=0, second=0, microsecond=0)
    # What the batch needs, read in three statements for every participation at once.
    already = await repo.seen(session, [p.id for p in live.values()],
                              [i.id for s in live for i in by_streamer[s]])
    used = await repo.minute_counts(session, [p.id for p in live.values()], minute)
    hold = await ledger.wallet_balance(session, runtime.clock, app_id=app_id, owner_kind="brand",
                                       owner_id=campaign.brand_id, currency=campaign.currency,
                                       sub=ledger.hold_sub(campaign_id), lock=True)
    bps = campaign.commission_bps or 0
    counted: list[tuple[str, str]] = []
    minutes: list[dict[str, object]] = []
    earnings_rows: list[dict[str, object]] = []
    hours: list[dict[str, object]] = []
    payees: list[tuple[WalletOwnerKind, str, int]] = []
    total_n = total_gross = total_fee = 0
    for p in sorted(live.values(), key=lambda row: row.id):
        fresh = [i for i in by_streamer[p.streamer_id] if (p.id, i.id) not in already]
        duplicates += [i.id for i in by_streamer[p.streamer_id] if (p.id, i.id) in already]
        total_used, overlay_used = used.get(p.id, (0, 0))
        room = settings.impressions_per_minute - total_used
        if source == "overlay":
            room = min(room, settings.overlay_impressions_per_minute - overlay_used)
        n = 0
        for item in fresh:
            if n + item.count <= room:
                counted.append((p.id, item.id))
                n += item.count
            else:
                refused.append(RefusedImpression(id=item.id, streamer_id=p.streamer_id, code="rate_limited",
                                                 reason="this participation's impressions for this minute are used up; "
                                                        "send it again in the next minute"))
        if not n:
            continue
        owed = campaign.rate_per_mille * (p.impressions + n) // 1000 - p.earned_gross
        gross = max(0, min(owed, hold))
        fee = (p.earned_gross + gross) * bps // 10_000 - p.earned_fee
        hold -= gross
        minutes.append({"participation_id": p.id, "minute": minute, "total": n,
                        "overlay": n if source == "overlay" else 0})
        earnings_rows.append({"pid": p.id, "n": n, "gross": gross, "fee": fee})
        hours.append({"campaign_id": campaign_id, "streamer_id": p.streamer_id, "hour": hour, "app_id": app_id,
                      "impressions": n, "gross": gross, "fee": fee, "net": gross - fee})
        if gross:
            payees.append(("streamer", p.streamer_id, gross - fee))
        total_n, total_gross, total_fee = total_n + n, total_gross + gross, total_fee + fee
    if total_n:
        if total_gross:
            # One ledger transaction for the batch; its key is the campaign's impression count after it
            # (the campaign row is locked, so each batch has its own).
            await ledger.pay_from_hold(
                session, runtime.clock, app_id=app_id, payer_kind="brand", payer_id=campaign.brand_id,
                hold=campaign_id, currency=campaign.currency, payees=payees, fee=total_fee,
                idempotency_key=f"earnings:{campaign_id}:{campaign.impressions + total_n}",
                reference={"campaign_id": campaign_id, "impressions": total_n})
        await repo.remember(session, app_id, counted)
        await repo.add_minutes(session, minutes)
        await repo.add_earnings(session, earnings_rows, now)
        await repo.add_spend(session, campaign_id, total_n, total_gross, total_fee, now)
        await repo.add_hours(session, hours)
        totals.changed(session, runtime, app_id, campaign_id)  # campaign:{id} shows the totals after commit
    updated = await repo.get(session, app_id, campaign_id)
    assert updated is not None
    reason = completion.reason_due(updated, now)
    if reason is not None and await completion.finish(session, runtime, updated, reason=reason):
        updated = await repo.get(session, app_id, campaign_id)
        assert updated is not None
    return ImpressionResult(accepted=total_n, duplicates=duplicates, refused=refused, paid_gross=total_gross,
                            paid_fee=total_fee, paid_net=total_gross - total_fee,
                            campaign_status=updated.status,
                            completion_reason=updated.completion_reason)
