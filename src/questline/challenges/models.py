from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import REWRITTEN_ROWS, Base, BigInt, JSONType, UTCDateTime


class ChallengeProgress(Base):
    """A player's progress on one challenge in one period (derived from events; rebuilt by replay).

    ``period_key`` is the local day, ISO week or month the recurrence resets on, or ``once``.
    ``round`` counts the completions of a repeatable challenge in the period, plus one.
    """

    __tablename__ = "challenge_progress"
    __table_args__ = REWRITTEN_ROWS

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    challenge: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    period_key: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    round: Mapped[int] = mapped_column(sa.Integer)
    objectives: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # every objective met (this round)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChallengeCompletion(Base):
    """A completed challenge: at most one per player, challenge and period (round), by constraint."""

    __tablename__ = "challenge_completions"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "player_id", "challenge", "period_key"),
        sa.Index("ix_challenge_completions_player", "app_id", "player_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    challenge: Mapped[str] = mapped_column(sa.String(64))
    period_key: Mapped[str] = mapped_column(sa.String(24))  # period, or period#round for repeat rounds
    category: Mapped[str] = mapped_column(sa.String(50))
    source: Mapped[str] = mapped_column(sa.String(16))  # auto | claim | manual
    rewards: Mapped[dict[str, Any]] = mapped_column(JSONType)
    claim_id: Mapped[str | None] = mapped_column(sa.String(40))
    event_id: Mapped[str | None] = mapped_column(sa.String(128))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The UTC span of the local period it counted for (None for one-time challenges): no later
    # period that overlaps it completes the challenge again, whatever the player's time zone.
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A completion made by a person (claim approval, support): the player's last processed log
    # position when it was made. Events after it saw it live, so a replay counts it from there.
    log_seq: Mapped[int | None] = mapped_column(sa.BigInteger)


class ReplayedCompletionId(Base):
    """The ids automatic completions had before a replay reset them, so the replay gives each
    completion it derives again the id it had (history pages and their order stay as they were).
    A row is used once and deleted; rows of completions the replay did not derive again stay
    until the next replay of the app."""

    __tablename__ = "challenge_replay_ids"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    challenge: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    period_key: Mapped[str] = mapped_column(sa.String(24), primary_key=True)
    id: Mapped[int] = mapped_column(sa.BigInteger)


class ChallengeClaim(Base):
    """A claim-mode completion waiting for (or given) an admin's decision.

    A partial unique index allows one open (pending or approved) claim per player, challenge
    and period; a rejected claim may be followed by a new one.
    """

    __tablename__ = "challenge_claims"
    __table_args__ = (
        sa.Index("uq_challenge_claims_open", "app_id", "player_id", "challenge", "period_key", unique=True,
                 sqlite_where=sa.text("status <> 'rejected'"), postgresql_where=sa.text("status <> 'rejected'")),
        sa.Index("ix_challenge_claims_queue", "app_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    challenge: Mapped[str] = mapped_column(sa.String(64))
    period_key: Mapped[str] = mapped_column(sa.String(24))
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | approved | rejected
    verification: Mapped[dict[str, Any]] = mapped_column(JSONType)
    note: Mapped[str] = mapped_column(sa.String(1000))
    progress: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(sa.String(160))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
