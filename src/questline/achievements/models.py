from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import REWRITTEN_ROWS, Base, BigInt, UTCDateTime


class PlayerAchievement(Base):
    """A player's progress toward one achievement, and when it was unlocked (once, ever)."""

    __tablename__ = "player_achievements"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "player_id", "achievement"),
        sa.Index("ix_player_achievements_app_achievement", "app_id", "achievement"),
        REWRITTEN_ROWS,
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    achievement: Mapped[str] = mapped_column(sa.String(64))
    progress_current: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    progress_target: Mapped[int] = mapped_column(sa.BigInteger, default=1)
    # The stat period the progress was counted in (all, a local day, week or month).
    progress_period: Mapped[str] = mapped_column(sa.String(16), default="all")
    unlocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unlocked_by: Mapped[str | None] = mapped_column(sa.String(16))  # event | backfill | grant
    event_id: Mapped[str | None] = mapped_column(sa.String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AchievementBadge(Base):
    """The current badge image of an achievement; files live under ``settings.media_dir``."""

    __tablename__ = "achievement_badges"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    achievement: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    content_type: Mapped[str] = mapped_column(sa.String(40))
    path: Mapped[str] = mapped_column(sa.String(300))  # relative to the media directory
    thumbnail_path: Mapped[str | None] = mapped_column(sa.String(300))
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    bytes: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_by: Mapped[str | None] = mapped_column(sa.String(160))


class AchievementBackfill(Base):
    """How far awarding an achievement to players who already meet it has got, per definition version."""

    __tablename__ = "achievement_backfills"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    achievement: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    cursor: Mapped[str | None] = mapped_column(sa.String(512))  # the page after which to continue
    players: Mapped[int] = mapped_column(sa.Integer, default=0)
    unlocked: Mapped[int] = mapped_column(sa.Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
