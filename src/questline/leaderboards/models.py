from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, UTCDateTime


class LeaderboardEntry(Base):
    """A player's score on one board in one period: the truth the rank indexes are built from.

    ``reached_at`` and ``seq`` say when (event time, then log position) the score reached its
    current value: of two equal scores, the one reached first ranks first.
    """

    __tablename__ = "leaderboard_entries"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "board", "period_key", "player_id"),
        sa.Index("ix_leaderboard_entries_rank", "app_id", "board", "period_key", "partition", "score", "reached_at",
                 "seq"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    board: Mapped[str] = mapped_column(sa.String(80))
    period_key: Mapped[str] = mapped_column(sa.String(32))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    partition: Mapped[str] = mapped_column(sa.String(128))  # "" on global and friends boards
    score: Mapped[int] = mapped_column(sa.BigInteger)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    # Goes up by one on every write: rank indexes keep the highest version they were sent.
    version: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LeaderboardPeriod(Base):
    """A period of a board that has had entries: open until the rollover job archives it."""

    __tablename__ = "leaderboard_periods"
    __table_args__ = (sa.Index("ix_leaderboard_periods_open", "archived_at"),)

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    board: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    period_key: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entries: Mapped[int | None] = mapped_column(sa.Integer)


class LeaderboardArchive(Base):
    """Final standings of a closed period, rank within partition."""

    __tablename__ = "leaderboard_archives"
    __table_args__ = (sa.UniqueConstraint("app_id", "board", "period_key", "partition", "rank"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    board: Mapped[str] = mapped_column(sa.String(80))
    period_key: Mapped[str] = mapped_column(sa.String(32))
    partition: Mapped[str] = mapped_column(sa.String(128))
    rank: Mapped[int] = mapped_column(sa.Integer)
    player_id: Mapped[str] = mapped_column(sa.String(128))
    score: Mapped[int] = mapped_column(sa.BigInteger)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Friendship(Base):
    """One direction of a mutual friendship; both directions are written together."""

    __tablename__ = "player_friends"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    friend_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
