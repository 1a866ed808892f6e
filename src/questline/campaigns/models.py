"""Campaigns, participations, and what impressions leave behind (ids seen, per-minute and per-hour counts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class Campaign(Base):
    """draft -> pending_review -> active (approved; budget held) or rejected -> paused <-> active ->
    completed or cancelled. ``impressions``, ``spent`` (gross, from the budget hold) and ``commission``
    are counters moved with each impression batch."""

    __tablename__ = "campaigns"
    __table_args__ = (
        sa.Index("ix_campaigns_app_status", "app_id", "status"),
        sa.Index("ix_campaigns_app_brand", "app_id", "brand_id", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    categories: Mapped[list[str]] = mapped_column(JSONType)
    currency: Mapped[str] = mapped_column(sa.String(32))
    budget: Mapped[int] = mapped_column(BigInt)
    rate_per_mille: Mapped[int] = mapped_column(BigInt)
    impression_target: Mapped[int] = mapped_column(BigInt)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gkey_cooloff_hours: Mapped[int] = mapped_column(sa.Integer)
    targeting: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(sa.String(16))
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(500))
    commission_bps: Mapped[int | None] = mapped_column(sa.Integer)  # fixed when the campaign is approved
    impressions: Mapped[int] = mapped_column(BigInt, default=0)
    spent: Mapped[int] = mapped_column(BigInt, default=0)
    commission: Mapped[int] = mapped_column(BigInt, default=0)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(sa.String(160))
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completion_reason: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Participation(Base):
    """A streamer in a campaign: active, paused, left, completed or removed.

    ``earned_gross`` is what the budget paid for this participation, ``earned_fee`` the platform's
    share of it, ``earned_net`` the streamer's (pending until the campaign completes, then
    ``released``). The overlay is reached by a random token; only its hash is kept.
    """

    __tablename__ = "participations"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "streamer_id"),
        sa.UniqueConstraint("overlay_token_hash"),
        sa.Index("ix_participations_streamer", "app_id", "streamer_id", "status"),
        sa.Index("ix_participations_campaign", "app_id", "campaign_id", "status"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id"))
    streamer_id: Mapped[str] = mapped_column(sa.ForeignKey("streamers.id"))
    brand_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16))
    gkey_category: Mapped[str] = mapped_column(sa.String(32))
    impressions: Mapped[int] = mapped_column(BigInt, default=0)
    earned_gross: Mapped[int] = mapped_column(BigInt, default=0)
    earned_fee: Mapped[int] = mapped_column(BigInt, default=0)
    earned_net: Mapped[int] = mapped_column(BigInt, default=0)
    released: Mapped[int] = mapped_column(BigInt, default=0)
    overlay_token_hash: Mapped[str] = mapped_column(sa.String(64))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # left, completed or removed
    removed_by: Mapped[str | None] = mapped_column(sa.String(160))
    removal_reason: Mapped[str | None] = mapped_column(sa.String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImpressionSeen(Base):
    """Impression ids already counted for a participation (kept while its campaign runs)."""

    __tablename__ = "impression_ids"

    participation_id: Mapped[str] = mapped_column(sa.ForeignKey("participations.id"), primary_key=True)
    impression_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))


class ImpressionMinute(Base):
    """Impressions counted per participation and minute, to bound what one participation may earn."""

    __tablename__ = "impression_minutes"

    participation_id: Mapped[str] = mapped_column(sa.ForeignKey("participations.id"), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInt, primary_key=True)
    total: Mapped[int] = mapped_column(BigInt)
    overlay: Mapped[int] = mapped_column(BigInt)


class ImpressionHour(Base):
    """Impressions and money per campaign, streamer and UTC hour (metrics, forecasts, performance)."""

    __tablename__ = "impression_hours"
    __table_args__ = (sa.Index("ix_impression_hours_streamer", "app_id", "streamer_id", "hour"),)

    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id"), primary_key=True)
    streamer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    impressions: Mapped[int] = mapped_column(BigInt)
    gross: Mapped[int] = mapped_column(BigInt)
    fee: Mapped[int] = mapped_column(BigInt)
    net: Mapped[int] = mapped_column(BigInt)
