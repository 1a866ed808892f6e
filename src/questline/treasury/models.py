"""Treasury tables: exchange rates, payment methods, deposits, provider webhook events, withdrawals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class ExchangeRate(Base):
    """How much of ``quote`` one unit of ``base`` buys (major units), as finance staff last set it."""

    __tablename__ = "treasury_rates"
    __table_args__ = (sa.UniqueConstraint("app_id", "base", "quote"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    base: Mapped[str] = mapped_column(sa.String(3))
    quote: Mapped[str] = mapped_column(sa.String(3))
    rate: Mapped[str] = mapped_column(sa.String(40))  # a decimal string: never a float
    set_by: Mapped[str] = mapped_column(sa.String(160))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentMethod(Base):
    """Where a brand's or streamer's money comes from or goes to: a bank account, a PayPal-style e-mail
    or a PSP token. The details are sealed at rest (AES-GCM, bound to the row); ``masked`` is shown."""

    __tablename__ = "treasury_payment_methods"
    __table_args__ = (sa.Index("ix_treasury_payment_methods_owner", "app_id", "owner_kind", "owner_id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    owner_kind: Mapped[str] = mapped_column(sa.String(16))  # brand | streamer
    owner_id: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(16))  # bank_account | paypal | psp_token
    sealed: Mapped[str] = mapped_column(sa.Text)
    masked: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Deposit(Base):
    """Money a brand is sending in: pending until its provider (or finance staff) confirms it, then
    credited once, whatever the number of confirmations."""

    __tablename__ = "treasury_deposits"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "provider", "provider_ref"),
        sa.Index("ix_treasury_deposits_owner", "app_id", "owner_kind", "owner_id", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    owner_kind: Mapped[str] = mapped_column(sa.String(16))
    owner_id: Mapped[str] = mapped_column(sa.String(40))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount: Mapped[int] = mapped_column(BigInt)
    provider: Mapped[str] = mapped_column(sa.String(16))  # manual | psp
    provider_ref: Mapped[str] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | confirmed | failed
    instructions: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    confirmation: Mapped[str | None] = mapped_column(sa.String(128))  # the bank's or provider's reference
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    created_by: Mapped[str] = mapped_column(sa.String(160))
    settled_by: Mapped[str | None] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookEvent(Base):
    """A provider's webhook event already handled (its id), so a redelivery does nothing."""

    __tablename__ = "treasury_webhook_events"
    __table_args__ = (sa.UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    event_id: Mapped[str] = mapped_column(sa.String(128))
    app_id: Mapped[str | None] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TreasurySettings(Base):
    """One app's money rules (withdrawal limits and approval thresholds per currency); defaults until set."""

    __tablename__ = "treasury_settings"

    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Withdrawal(Base):
    """A streamer (or brand) cashing out: held at request, approved when above the thresholds, then paid
    through the provider (or failed or rejected, and the hold released)."""

    __tablename__ = "treasury_withdrawals"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "provider", "provider_ref"),
        sa.Index("ix_treasury_withdrawals_owner", "app_id", "owner_kind", "owner_id", "currency", "created_at"),
        sa.Index("ix_treasury_withdrawals_status", "app_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    owner_kind: Mapped[str] = mapped_column(sa.String(16))
    owner_id: Mapped[str] = mapped_column(sa.String(40))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount: Mapped[int] = mapped_column(BigInt)
    payment_method_id: Mapped[str] = mapped_column(sa.String(40))
    provider: Mapped[str] = mapped_column(sa.String(16))
    # awaiting_approval | approved (to be sent) | processing (sent, the provider confirms) | paid | failed | rejected
    status: Mapped[str] = mapped_column(sa.String(20))
    approvals_needed: Mapped[int] = mapped_column(sa.SmallInteger)
    approvals: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # [{by, at}], distinct approvers
    provider_ref: Mapped[str | None] = mapped_column(sa.String(128))
    reference: Mapped[str | None] = mapped_column(sa.String(128))  # the bank's or provider's payout reference
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    hold_transaction_id: Mapped[str] = mapped_column(sa.String(40))
    settle_transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    created_by: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KycCase(Base):
    """One streamer's (or brand's) know-your-customer case: ``not_started`` (documents being added) →
    ``submitted`` → ``in_review`` → ``verified`` or ``rejected`` (with reasons) → ``expired``."""

    __tablename__ = "kyc_cases"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "subject_kind", "subject_id"),
        sa.Index("ix_kyc_cases_status", "app_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    subject_kind: Mapped[str] = mapped_column(sa.String(16))  # streamer | brand
    subject_id: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(16))
    full_name: Mapped[str | None] = mapped_column(sa.String(200))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    date_of_birth: Mapped[date | None] = mapped_column(sa.Date)
    reasons: Mapped[list[str]] = mapped_column(JSONType)
    risk_score: Mapped[int] = mapped_column(sa.SmallInteger)
    risk_factors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    submissions: Mapped[int] = mapped_column(sa.SmallInteger)
    reviewer: Mapped[str | None] = mapped_column(sa.String(160))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KycDocument(Base):
    """An identity document, its content sealed (AES-GCM with the data key, bound to the row); the content
    is dropped after the retention period (``deleted_at``)."""

    __tablename__ = "kyc_documents"
    __table_args__ = (sa.Index("ix_kyc_documents_case", "case_id", "id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    case_id: Mapped[str] = mapped_column(sa.ForeignKey("kyc_cases.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))  # passport | drivers_licence | national_id
    content_type: Mapped[str] = mapped_column(sa.String(40))
    bytes: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    sealed: Mapped[str | None] = mapped_column(sa.Text)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
