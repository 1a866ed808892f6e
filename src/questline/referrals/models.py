"""Referral tables: codes, referrals with their status and review, milestones reached."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class ReferralCode(Base):
    """A player's one referral code, with what the server recorded about the referrer (for anti-fraud)."""

    __tablename__ = "referral_codes"
    __table_args__ = (sa.UniqueConstraint("app_id", "code"),)

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    device_fingerprint: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Referral(Base):
    """One referred player: who referred them, how far they got, and whether it looks like fraud."""

    __tablename__ = "referrals"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "referee_id"),
        sa.Index("ix_referrals_referrer", "app_id", "referrer_id", "status"),
        sa.Index("ix_referrals_ip", "app_id", "ip", "created_at"),
        sa.Index("ix_referrals_device", "app_id", "device_fingerprint"),
        sa.Index("ix_referrals_email", "app_id", "email_hash"),
        sa.Index("ix_referrals_review", "app_id", "review", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    code: Mapped[str] = mapped_column(sa.String(40))
    referrer_id: Mapped[str] = mapped_column(sa.String(128))
    referee_id: Mapped[str] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | signed_up | converted | paid_client | churned
    flagged: Mapped[bool] = mapped_column(sa.Boolean)
    fraud_reasons: Mapped[list[str]] = mapped_column(JSONType)
    review: Mapped[str] = mapped_column(sa.String(16))  # none | pending | approved | rejected
    reviewed_by: Mapped[str | None] = mapped_column(sa.String(160))
    review_note: Mapped[str | None] = mapped_column(sa.String(500))
    email_hash: Mapped[str | None] = mapped_column(sa.String(64))  # sha256 of the normalized e-mail
    email_domain: Mapped[str | None] = mapped_column(sa.String(255))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    device_fingerprint: Mapped[str | None] = mapped_column(sa.String(255))
    attribution: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    revenue: Mapped[int] = mapped_column(sa.BigInteger)
    referrer_points: Mapped[int] = mapped_column(sa.BigInteger)
    referee_points: Mapped[int] = mapped_column(sa.BigInteger)
    rewarded: Mapped[list[str]] = mapped_column(JSONType)  # statuses whose rewards were paid
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_client_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    churned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReferralMilestone(Base):
    """A milestone tier a referrer reached, with the points and badge it gave (once per tier)."""

    __tablename__ = "referral_milestones"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    tier: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    referrals: Mapped[int] = mapped_column(sa.Integer)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    badge: Mapped[str | None] = mapped_column(sa.String(64))
    title: Mapped[str | None] = mapped_column(sa.String(100))
    transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    awarded_at: Mapped[datetime] = mapped_column(UTCDateTime)
