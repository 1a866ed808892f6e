"""Battle pass tables.

``battle_pass_xp`` and ``battle_pass_xp_daily`` are derived from events (the worker writes
them; a replay rebuilds them). What a player bought (premium, tier boosts) and claimed is
not derived and is never reset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class BattlePassXp(Base):
    __tablename__ = "battle_pass_xp"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    season: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    xp: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BattlePassXpDaily(Base):
    """Pass XP a rule gave a player in a season on one local day, for daily limits."""

    __tablename__ = "battle_pass_xp_daily"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    season: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    day: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    earned: Mapped[int] = mapped_column(sa.BigInteger)


class PlayerPass(Base):
    """A player's purchases in a season: premium, and XP bought with tier boosts."""

    __tablename__ = "battle_pass_players"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    season: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    premium: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    premium_source: Mapped[str | None] = mapped_column(sa.String(16))  # points | external
    premium_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    premium_transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    premium_reference: Mapped[str | None] = mapped_column(sa.String(200))
    boost_tiers: Mapped[int] = mapped_column(sa.Integer, default=0)
    boost_xp: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BattlePassClaim(Base):
    """One claimed reward; the unique key makes a tier's reward claimable once per track."""

    __tablename__ = "battle_pass_claims"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "player_id", "season", "tier", "track"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    season: Mapped[str] = mapped_column(sa.String(64))
    tier: Mapped[int] = mapped_column(sa.Integer)
    track: Mapped[str] = mapped_column(sa.String(8))
    reward: Mapped[dict[str, Any]] = mapped_column(JSONType)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
