from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class App(Base):
    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Bumped on every definition change, so compiled rule sets know when to recompile.
    config_version: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Event types a publishable client key may send; everything else needs the server key.
    client_event_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # The largest starter reward a community of the app may pay (minor units; app admins set it).
    community_starter_reward_max: Mapped[int] = mapped_column(sa.BigInteger, default=1000, server_default="1000")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # server | client
    name: Mapped[str] = mapped_column(sa.String(200))
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    last4: Mapped[str] = mapped_column(sa.String(4))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Membership(Base):
    __tablename__ = "memberships"

    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), primary_key=True)
    admin_id: Mapped[str] = mapped_column(sa.ForeignKey("admin_users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RefreshToken(Base):
    """One refresh token of an admin session. Rotation replaces it with the next of the same
    ``family_id`` (the session); reusing a rotated one revokes the whole family, and access tokens
    name their family, so they stop with it."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    admin_id: Mapped[str] = mapped_column(sa.ForeignKey("admin_users.id"), index=True)
    family_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PlayerTokenEpoch(Base):
    """A player's token generation: tokens carry the epoch they were minted in, and revoking a
    player's tokens moves it on (no row: epoch 0)."""

    __tablename__ = "player_token_epochs"

    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    epoch: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
