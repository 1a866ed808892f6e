from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.campaigns.models import Campaign, Participation
from questline.competitions.models import Competition
from questline.pipeline.models import EventRecord
from questline.webhooks.models import WebhookAttempt


async def competition_exists(session: AsyncSession, app_id: str, competition_id: str) -> bool:
    found = await session.execute(sa.select(Competition.id).where(Competition.app_id == app_id,
                                                                  Competition.id == competition_id))
    return found.first() is not None


async def campaign_brand(session: AsyncSession, app_id: str, campaign_id: str) -> str | None:
    found = await session.execute(sa.select(Campaign.brand_id).where(Campaign.app_id == app_id,
                                                                     Campaign.id == campaign_id))
    return found.scalar_one_or_none()


async def campaign(session: AsyncSession, app_id: str, campaign_id: str) -> Campaign | None:
    found = await session.execute(sa.select(Campaign).where(Campaign.app_id == app_id, Campaign.id == campaign_id))
    return found.scalar_one_or_none()


async def takes_part(session: AsyncSession, app_id: str, campaign_id: str, *, player_id: str | None = None,
                     streamer_id: str | None = None) -> bool:
    stmt = sa.select(Participation.id).where(Participation.app_id == app_id,
                                             Participation.campaign_id == campaign_id)
    if player_id is not None:
        stmt = stmt.where(Participation.player_id == player_id)
    if streamer_id is not None:
        stmt = stmt.where(Participation.streamer_id == streamer_id)
    return (await session.execute(stmt.limit(1))).first() is not None


async def events_since(session: AsyncSession, app_id: str, after_seq: int) -> tuple[int, int]:
    """How many events the app's log received after ``after_seq``, and the log's last seq."""
    count, top = (await session.execute(
        sa.select(sa.func.count(), sa.func.max(EventRecord.seq))
        .where(EventRecord.app_id == app_id, EventRecord.seq > after_seq)
    )).one()
    return int(count), int(top or after_seq)


async def pending_events(session: AsyncSession, app_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(EventRecord)
        .where(EventRecord.app_id == app_id, EventRecord.pending > 0)
    )).scalar_one())


async def webhook_failures_since(session: AsyncSession, app_id: str, since: object) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(WebhookAttempt)
        .where(WebhookAttempt.app_id == app_id, WebhookAttempt.attempted_at >= since,
               sa.or_(WebhookAttempt.status_code.is_(None), WebhookAttempt.status_code >= 300))
    )).scalar_one())
