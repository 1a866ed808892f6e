"""Marketplace accounts: brands (with their members), streamers, and each app's marketplace settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class MarketSettings(Base):
    """One app's marketplace rules (categories, energy, commission, limits); defaults until set."""

    __tablename__ = "market_settings"

    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Brand(Base):
    __tablename__ = "brands"
    __table_args__ = (sa.Index("ix_brands_app_id_id", "app_id", "id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    company_name: Mapped[str] = mapped_column(sa.String(200))
    industry: Mapped[str] = mapped_column(sa.String(100))
    contact_person: Mapped[dict[str, Any]] = mapped_column(JSONType)
    billing: Mapped[dict[str, Any]] = mapped_column(JSONType)
    marketing: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BrandMember(Base):
    """A person who signs in for a brand; e-mails are unique among the app's marketplace accounts."""

    __tablename__ = "brand_members"
    __table_args__ = (sa.UniqueConstraint("app_id", "email"), sa.Index("ix_brand_members_brand", "brand_id"))

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"))
    email: Mapped[str] = mapped_column(sa.String(320))
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))  # owner | member
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Streamer(Base):
    """A streamer: their own sign-in and profile, and a player of the app (``player_id``).

    ``platforms`` and ``demographics`` hold what the streamer says (channel names) beside what only
    the platform's server or admins may set (audience numbers, verification, demographics), which is
    what campaign targeting reads. Bank details are sealed (AES-GCM) and never returned in full.
    """

    __tablename__ = "streamers"
    __table_args__ = (sa.UniqueConstraint("app_id", "email"), sa.UniqueConstraint("app_id", "player_id"))

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    email: Mapped[str] = mapped_column(sa.String(320))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    display_name: Mapped[str] = mapped_column(sa.String(200))
    content_categories: Mapped[list[str]] = mapped_column(JSONType)
    platforms: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    demographics: Mapped[dict[str, Any]] = mapped_column(JSONType)
    bank_sealed: Mapped[str | None] = mapped_column(sa.Text)
    bank_hint: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
