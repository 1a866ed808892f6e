from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import REWRITTEN_ROWS, Base, BigInt, JSONType, UTCDateTime


class Definition(Base):
    """One piece of an app's configuration: a stat, an XP rule, a track, an achievement, …"""

    __tablename__ = "definitions"
    __table_args__ = (sa.UniqueConstraint("app_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    key: Mapped[str] = mapped_column(sa.String(64))
    version: Mapped[int] = mapped_column(sa.Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DefinitionVersion(Base):
    """Every version a definition has had, its current one included: its history and the diff's sides."""

    __tablename__ = "definition_versions"
    __table_args__ = (sa.UniqueConstraint("app_id", "kind", "key", "version"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    key: Mapped[str] = mapped_column(sa.String(64))
    version: Mapped[int] = mapped_column(sa.Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PlayerStat(Base):
    """A stat's value for one player in one period (``all``, a local day, ISO week or month)."""

    __tablename__ = "player_stats"
    __table_args__ = REWRITTEN_ROWS

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    stat: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    period_key: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # all | 2026-03-10 | 2026-W11 | 2026-03
    value: Mapped[int] = mapped_column(sa.BigInteger)
    samples: Mapped[int] = mapped_column(sa.BigInteger)
    # Ordering of the sample behind ``last``: event time, then log position.
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
