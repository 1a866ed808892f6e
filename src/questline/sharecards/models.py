from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, UTCDateTime


class ShareCard(Base):
    """One shareable card: what it shows, and its PNG drawn once when it was asked for.

    ``id`` is a random token (the public URL's only part): it names nothing guessable, so cards
    cannot be enumerated to find players.
    """

    __tablename__ = "share_cards"
    __table_args__ = (sa.UniqueConstraint("app_id", "player_id", "kind", "subject"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(16))  # achievement | competition | streak | level
    subject: Mapped[str] = mapped_column(sa.String(200))  # canonical: "first-win", "xp:5", "daily:7", a competition id
    title: Mapped[str] = mapped_column(sa.String(400))
    description: Mapped[str] = mapped_column(sa.String(600))
    site_name: Mapped[str] = mapped_column(sa.String(200))
    png: Mapped[bytes] = mapped_column(sa.LargeBinary)
    etag: Mapped[str] = mapped_column(sa.String(64))  # sha256 of what the card shows (text and image)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShareSettings(Base):
    """Whether a player's cards are public; no row means private (the default)."""

    __tablename__ = "share_card_settings"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    public: Mapped[bool] = mapped_column(sa.Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
