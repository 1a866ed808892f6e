"""Billing tables: settings, number counters, invoices and their lines, credit notes, plans,
subscriptions, reminders sent and monthly runs done."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class BillingSettings(Base):
    """One app's billing rules (number prefixes, tax rates, due days, reminder steps); defaults until set."""

    __tablename__ = "billing_settings"

    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BillingCounter(Base):
    """The next number of a series (``invoice:2026``, ``credit_note:2026``); moved by one atomic UPDATE
    in the transaction that uses the number, so a rolled-back finalization leaves no gap."""

    __tablename__ = "billing_counters"

    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), primary_key=True)
    series: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    next: Mapped[int] = mapped_column(BigInt)


class Invoice(Base):
    """draft (no number) -> open (numbered, due) -> paid | void | uncollectible (-> paid | void).

    ``subtotal`` is the lines' sum, ``tax`` is computed once on it, ``total = subtotal + tax``;
    ``prepaid`` is what campaign budgets already paid, so ``amount_due = total - prepaid -
    credited - paid`` and never below zero."""

    __tablename__ = "billing_invoices"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "brand_id", "period_key", "currency"),
        sa.UniqueConstraint("app_id", "number"),
        sa.Index("ix_billing_invoices_brand", "app_id", "brand_id", "id"),
        sa.Index("ix_billing_invoices_status", "app_id", "status", "id"),
        sa.CheckConstraint("amount_due >= 0", name="due_non_negative"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))  # monthly | campaign
    period_key: Mapped[str] = mapped_column(sa.String(64))  # 2026-11 | campaign:<id>
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16))
    number: Mapped[str | None] = mapped_column(sa.String(40))
    bill_to: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the brand's name, address, tax id, country
    tax_country: Mapped[str | None] = mapped_column(sa.String(2))
    tax_rate_bps: Mapped[int] = mapped_column(sa.Integer)
    subtotal: Mapped[int] = mapped_column(BigInt)
    tax: Mapped[int] = mapped_column(BigInt)
    total: Mapped[int] = mapped_column(BigInt)
    prepaid: Mapped[int] = mapped_column(BigInt)
    credited: Mapped[int] = mapped_column(BigInt)
    paid: Mapped[int] = mapped_column(BigInt)
    amount_due: Mapped[int] = mapped_column(BigInt)
    payment_transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # paid, voided or written off
    created_by: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InvoiceLine(Base):
    """One charge: a campaign's streamer earnings or the platform's commission (both prepaid from the
    campaign's budget), a plan's monthly fee or its usage fee."""

    __tablename__ = "billing_invoice_lines"
    __table_args__ = (
        sa.Index("ix_billing_invoice_lines_invoice", "invoice_id", "position"),
        sa.Index("ix_billing_invoice_lines_campaign", "app_id", "campaign_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    invoice_id: Mapped[str] = mapped_column(sa.ForeignKey("billing_invoices.id"))
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    kind: Mapped[str] = mapped_column(sa.String(24))  # media | commission | subscription | usage
    description: Mapped[str] = mapped_column(sa.String(300))
    campaign_id: Mapped[str | None] = mapped_column(sa.String(40))
    amount: Mapped[int] = mapped_column(BigInt)
    prepaid: Mapped[bool] = mapped_column(sa.Boolean)


class CreditNote(Base):
    """An amount taken off what an invoice's brand owes, numbered in its own series."""

    __tablename__ = "billing_credit_notes"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "number"),
        sa.Index("ix_billing_credit_notes_invoice", "invoice_id", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    invoice_id: Mapped[str] = mapped_column(sa.ForeignKey("billing_invoices.id"))
    line_id: Mapped[str | None] = mapped_column(sa.String(40))
    number: Mapped[str] = mapped_column(sa.String(40))
    amount: Mapped[int] = mapped_column(BigInt)
    reason: Mapped[str] = mapped_column(sa.String(500))
    created_by: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Plan(Base):
    """A subscription plan: a monthly fee, and a usage fee in basis points of the month's campaign spend."""

    __tablename__ = "billing_plans"
    __table_args__ = (sa.Index("ix_billing_plans_app", "app_id", "id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    name: Mapped[str] = mapped_column(sa.String(120))
    currency: Mapped[str] = mapped_column(sa.String(3))
    monthly_fee: Mapped[int] = mapped_column(BigInt)
    usage_bps: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Subscription(Base):
    """A brand's plan (one row per brand): billed for every month it was active in."""

    __tablename__ = "billing_subscriptions"
    __table_args__ = (sa.UniqueConstraint("app_id", "brand_id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"))
    plan_id: Mapped[str] = mapped_column(sa.ForeignKey("billing_plans.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Reminder(Base):
    """A payment reminder sent for one step of the schedule (once, however often the job runs)."""

    __tablename__ = "billing_reminders"

    invoice_id: Mapped[str] = mapped_column(sa.ForeignKey("billing_invoices.id"), primary_key=True)
    step: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MonthlyRun(Base):
    """An app's month already invoiced by the monthly job."""

    __tablename__ = "billing_runs"

    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)
