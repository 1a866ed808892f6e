from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime

UPCOMING, ACTIVE, COMPLETED, CANCELLED = "upcoming", "active", "completed", "cancelled"


class Competition(Base):
    """A tournament or event: a window, entry rules, a board over the window, and prizes."""

    __tablename__ = "competitions"
    __table_args__ = (sa.Index("ix_competitions_status", "status", "starts_at", "ends_at"),
                      sa.Index("ix_competitions_app", "app_id", "status"))

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.String(2000))
    status: Mapped[str] = mapped_column(sa.String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)  # scoring, entry, prizes as sent
    participant_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    max_participants: Mapped[int | None] = mapped_column(sa.Integer)
    fees_collected: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sponsor_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    leaders: Mapped[list[str]] = mapped_column(JSONType, default=list)  # the current top positions
    distribution_batch: Mapped[int] = mapped_column(sa.Integer, default=0)
    distribution_status: Mapped[str] = mapped_column(sa.String(16), default="none")
    distribution_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500))


class Participant(Base):
    __tablename__ = "competition_participants"

    competition_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(16))  # joined | disqualified | refunded
    fee_paid: Mapped[int] = mapped_column(sa.BigInteger)
    fee_transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Result(Base):
    """Final standings, frozen when prizes are distributed: one player per rank."""

    __tablename__ = "competition_results"
    __table_args__ = (sa.UniqueConstraint("competition_id", "player_id"),)

    competition_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    rank: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    score: Mapped[int] = mapped_column(sa.BigInteger)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Distribution(Base):
    """One prize distribution batch of a competition (a rollback makes room for the next)."""

    __tablename__ = "competition_distributions"
    __table_args__ = (sa.UniqueConstraint("competition_id", "batch"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    competition_id: Mapped[str] = mapped_column(sa.String(40))
    batch: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16))  # distributed | rolled_back
    pool: Mapped[int] = mapped_column(sa.BigInteger)
    total_points: Mapped[int] = mapped_column(sa.BigInteger)
    prizes: Mapped[int] = mapped_column(sa.Integer)
    actor: Mapped[str | None] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rolled_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rollback_reason: Mapped[str | None] = mapped_column(sa.String(500))


class Prize(Base):
    """A prize won at a rank: points (through the ledger), an item, or an external reward."""

    __tablename__ = "competition_prizes"
    __table_args__ = (sa.UniqueConstraint("competition_id", "batch", "rank"),
                      sa.Index("ix_competition_prizes_player", "app_id", "player_id", "created_at"),
                      sa.Index("ix_competition_prizes_deadline", "status", "claim_deadline"))

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    competition_id: Mapped[str] = mapped_column(sa.String(40))
    distribution_id: Mapped[str] = mapped_column(sa.String(40))
    batch: Mapped[int] = mapped_column(sa.Integer)
    rank: Mapped[int] = mapped_column(sa.Integer)
    player_id: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(16))  # points | item | external
    currency: Mapped[str | None] = mapped_column(sa.String(32))
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # points, or the item's quantity
    item: Mapped[str | None] = mapped_column(sa.String(128))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(sa.String(16))  # claimable | claimed | expired | rolled_back
    fulfilment: Mapped[str] = mapped_column(sa.String(16))  # none | pending (items and external rewards)
    claim_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    rollback_transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PrizeEvent(Base):
    """The claim history: what happened to each prize, when, and by whom."""

    __tablename__ = "competition_prize_history"
    __table_args__ = (sa.Index("ix_competition_prize_history_player", "app_id", "player_id", "id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    prize_id: Mapped[str] = mapped_column(sa.String(40))
    competition_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(16))  # awarded | claimed | expired | rolled_back
    actor: Mapped[str | None] = mapped_column(sa.String(160))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Activity(Base):
    """Per hour of a competition: joins, scored events and the score volume they brought."""

    __tablename__ = "competition_activity"

    competition_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    joins: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    events: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    volume: Mapped[int] = mapped_column(sa.BigInteger, default=0)
