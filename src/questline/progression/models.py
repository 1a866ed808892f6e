from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import REWRITTEN_ROWS, Base, BigInt, UTCDateTime


class PlayerTrack(Base):
    __tablename__ = "player_tracks"
    __table_args__ = REWRITTEN_ROWS

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    track: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    total_xp: Mapped[int] = mapped_column(sa.BigInteger)
    level: Mapped[int] = mapped_column(sa.Integer)
    xp_today: Mapped[int] = mapped_column(sa.BigInteger)
    today: Mapped[str] = mapped_column(sa.String(10))  # the player's local date xp_today belongs to
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class XpDaily(Base):
    """XP a rule granted a player on one local day, for daily caps."""

    __tablename__ = "xp_daily"
    __table_args__ = REWRITTEN_ROWS

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    rule: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    day: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    earned: Mapped[int] = mapped_column(sa.BigInteger)
    # The UTC span of the day in the time zone it was first counted in (time zone hopping: another
    # zone's day overlapping it shares its cap).
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class XpActivity(Base):
    """Recent XP grants; a scheduled job keeps the newest 50 per player."""

    __tablename__ = "xp_activities"
    __table_args__ = (sa.Index("ix_xp_activities_player", "app_id", "player_id", "id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    track: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(100))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    event_id: Mapped[str] = mapped_column(sa.String(128))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
