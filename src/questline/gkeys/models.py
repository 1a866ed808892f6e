"""G-Keys and energy packs, one row per streamer and category (keys) and per streamer (energy)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, UTCDateTime


class GKey(Base):
    """available -> locked (with a campaign) -> cooloff (until) -> available.

    ``last_brand_id`` and ``last_brand_cooloff_hours`` remember the brand that last used the key and
    its cooloff: that brand may use the key again during the cooloff (same-brand exception), and a
    release after its campaign keeps the highest of the two cooloffs.
    """

    __tablename__ = "gkeys"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "streamer_id", "category"),
        sa.Index("ix_gkeys_status_cooloff", "status", "cooloff_until"),
        sa.Index("ix_gkeys_locked_campaign", "app_id", "locked_campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    streamer_id: Mapped[str] = mapped_column(sa.ForeignKey("streamers.id"))
    category: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16))  # available | locked | cooloff
    locked_campaign_id: Mapped[str | None] = mapped_column(sa.String(40))
    locked_brand_id: Mapped[str | None] = mapped_column(sa.String(40))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cooloff_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    usage_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_brand_id: Mapped[str | None] = mapped_column(sa.String(40))
    last_brand_cooloff_hours: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Energy(Base):
    """A streamer's energy packs: ``current`` of ``maximum``, back to the maximum at local midnight
    (``next_reset_at``, in UTC) and, when the app regenerates, one more at ``regen_at``."""

    __tablename__ = "energy"
    __table_args__ = (sa.Index("ix_energy_next_reset", "next_reset_at"),)

    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), primary_key=True)
    streamer_id: Mapped[str] = mapped_column(sa.ForeignKey("streamers.id"), primary_key=True)
    current: Mapped[int] = mapped_column(sa.Integer)
    maximum: Mapped[int] = mapped_column(sa.Integer)
    daily_used: Mapped[int] = mapped_column(sa.Integer, default=0)
    day: Mapped[str] = mapped_column(sa.String(10))  # the streamer's local date of the last reset
    next_reset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    regen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
