from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import REWRITTEN_ROWS, Base, UTCDateTime


class PlayerStreak(Base):
    """One player's state in one streak.

    The worker owns every column but ``freezes_bought`` (written by purchases, atomically);
    freezes available = bought + granted - used.
    """

    __tablename__ = "player_streaks"
    __table_args__ = (
        sa.Index("ix_player_streaks_check_at", "check_at"),
        REWRITTEN_ROWS,
    )

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    streak: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    current: Mapped[int] = mapped_column(sa.Integer, default=0)
    longest: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Period keys in the player's time zone: 2026-03-10 (daily) or 2026-W11 (weekly).
    started_period: Mapped[str | None] = mapped_column(sa.String(16))
    last_period: Mapped[str | None] = mapped_column(sa.String(16))  # last period with activity
    covered_period: Mapped[str | None] = mapped_column(sa.String(16))  # last period kept (activity, freeze, rest)
    freezes_bought: Mapped[int] = mapped_column(sa.Integer, default=0)
    freezes_granted: Mapped[int] = mapped_column(sa.Integer, default=0)
    freezes_used: Mapped[int] = mapped_column(sa.Integer, default=0)
    # When the next missed period ends: the break job asks the worker to look then.
    check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The UTC end of the last period counted (in the time zone it was counted in): an instant
    # before it never counts a new period, and periods wholly before it are neither counted nor missed.
    covered_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StreakRestDay(Base):
    """A local date a player scheduled off: missing it neither breaks the streak nor uses a freeze."""

    __tablename__ = "streak_rest_days"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    streak: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    day: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
