"""Finance desk tables: fee schedules, desk settings, the review queue, disputes and their evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class FeeSchedule(Base):
    """One version of an app's fee structure; the newest applies to campaigns approved from then on
    (a campaign keeps the commission and fixed fee of the version it was approved under)."""

    __tablename__ = "finance_fee_schedules"
    __table_args__ = (sa.Index("ix_finance_fee_schedules_app", "app_id", "version"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    version: Mapped[int] = mapped_column(sa.Integer)
    commission_bps: Mapped[int] = mapped_column(sa.Integer)
    by_type: Mapped[dict[str, Any]] = mapped_column(JSONType)  # campaign type (category) -> bps
    fixed_fees: Mapped[dict[str, Any]] = mapped_column(JSONType)  # currency -> minor units per campaign
    set_by: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeskSettings(Base):
    """One app's desk rules (review thresholds per currency) and how far the review scan has read."""

    __tablename__ = "finance_settings"

    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    scanned_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Review(Base):
    """A ledger transaction above the review threshold, waiting for (or given) a finance verdict."""

    __tablename__ = "finance_reviews"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "transaction_id"),
        sa.Index("ix_finance_reviews_status", "app_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    transaction_id: Mapped[str] = mapped_column(sa.String(40))
    account: Mapped[str] = mapped_column(sa.String(40))  # the system account it was seen on (external, exchange)
    kind: Mapped[str] = mapped_column(sa.String(32))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount: Mapped[int] = mapped_column(BigInt)
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    transacted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | approved | rejected
    note: Mapped[str | None] = mapped_column(sa.String(500))
    reviewed_by: Mapped[str | None] = mapped_column(sa.String(160))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Dispute(Base):
    """A brand disputes a participation's impressions (or an invoice line); a PSP chargeback opens one by
    itself. ``open`` until finance decides: ``rejected`` or ``refunded`` (chargebacks: ``won`` or ``lost``).
    What a refund moved is on the row; the money itself only by compensating ledger transactions."""

    __tablename__ = "finance_disputes"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "kind", "subject_ref"),
        sa.Index("ix_finance_disputes_status", "app_id", "status", "id"),
        sa.Index("ix_finance_disputes_brand", "app_id", "brand_id", "id"),
        sa.Index("ix_finance_disputes_streamer", "app_id", "streamer_id", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))  # impressions | chargeback | invoice_line
    status: Mapped[str] = mapped_column(sa.String(16))
    brand_id: Mapped[str] = mapped_column(sa.String(40))
    streamer_id: Mapped[str | None] = mapped_column(sa.String(40))
    campaign_id: Mapped[str | None] = mapped_column(sa.String(40))
    participation_id: Mapped[str | None] = mapped_column(sa.String(40))
    # Unique per kind when set: a chargeback's deposit, an invoice line (one dispute each).
    subject_ref: Mapped[str | None] = mapped_column(sa.String(128))
    currency: Mapped[str] = mapped_column(sa.String(3))
    impressions: Mapped[int] = mapped_column(BigInt)
    amount: Mapped[int] = mapped_column(BigInt)  # what is disputed, minor units
    reason: Mapped[str] = mapped_column(sa.String(2000))
    opened_by: Mapped[str] = mapped_column(sa.String(160))
    verdict: Mapped[str | None] = mapped_column(sa.String(16))
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    refunded: Mapped[int] = mapped_column(BigInt, default=0)
    from_revenue: Mapped[int] = mapped_column(BigInt, default=0)
    from_streamer: Mapped[int] = mapped_column(BigInt, default=0)
    loss: Mapped[int] = mapped_column(BigInt, default=0)
    transactions: Mapped[list[str]] = mapped_column(JSONType)
    decided_by: Mapped[str | None] = mapped_column(sa.String(160))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Evidence(Base):
    """What one side of a dispute says: a statement and links (the brand's, the streamer's, the provider's)."""

    __tablename__ = "finance_dispute_evidence"
    __table_args__ = (sa.Index("ix_finance_dispute_evidence_dispute", "dispute_id", "id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    dispute_id: Mapped[str] = mapped_column(sa.ForeignKey("finance_disputes.id"))
    party: Mapped[str] = mapped_column(sa.String(16))  # brand | streamer | provider
    author: Mapped[str] = mapped_column(sa.String(160))
    statement: Mapped[str] = mapped_column(sa.Text)
    links: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
