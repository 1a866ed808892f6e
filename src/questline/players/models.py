from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class Player(Base):
    __tablename__ = "players"
    __table_args__ = (sa.UniqueConstraint("app_id", "player_id"),)

    pk: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    player_id: Mapped[str] = mapped_column(sa.String(128))  # the integrator's own id for the player
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    username: Mapped[str | None] = mapped_column(sa.String(200))
    real_name: Mapped[str | None] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    leaderboard_visibility: Mapped[str] = mapped_column(sa.String(16), default="public")
    display_name_type: Mapped[str] = mapped_column(sa.String(16), default="username")
    show_on_global_leaderboard: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    avatar_url: Mapped[str | None] = mapped_column(sa.String(2000))
    # The player's own settings (UI language, sound…): the player writes them; nothing reads them for rules.
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Facts about the player that only the server key or an app admin sets (tier, gym, age bracket):
    # what gates, requirements and partitioned boards read.
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # When the player last changed their own time zone (rate-limited; trusted changes leave it).
    timezone_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
