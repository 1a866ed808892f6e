"""Every billing query. Numbers come from one atomic counter update; statuses move by conditional updates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.billing.models import (
    BillingCounter,
    BillingSettings,
    CreditNote,
    Invoice,
    InvoiceLine,
    MonthlyRun,
    Plan,
    Reminder,
    Subscription,
)
from questline.kit.db import insert_ignore, upsert

# Settings -------------------------------------------------------------------------------------


async def get_settings(session: AsyncSession, app_id: str) -> dict[str, Any] | None:
    row = (await session.execute(sa.select(BillingSettings.body).where(BillingSettings.app_id == app_id))).first()
    return None if row is None else dict(row[0])


async def put_settings(session: AsyncSession, app_id: str, body: dict[str, Any], now: datetime) -> None:
    stmt = upsert(session, BillingSettings.__table__).values(app_id=app_id, body=body, updated_at=now)
    await session.execute(stmt.on_conflict_do_update(index_elements=["app_id"],
                                                     set_={"body": stmt.excluded.body, "updated_at": now}))


async def all_settings(session: AsyncSession) -> Sequence[tuple[str, dict[str, Any]]]:
    rows = await session.execute(sa.select(BillingSettings.app_id, BillingSettings.body)
                                 .order_by(BillingSettings.app_id))
    return [(app_id, dict(body)) for app_id, body in rows]


# Numbers --------------------------------------------------------------------------------------


async def take_number(session: AsyncSession, app_id: str, series: str) -> int:
    """The series' next number, taken in the caller's transaction: the row stays locked until it ends,
    so concurrent takers queue, and a rollback gives the number back."""
    table = BillingCounter.__table__
    await session.execute(insert_ignore(session, table).values(app_id=app_id, series=series, next=1))
    taken = await session.execute(
        sa.update(BillingCounter).where(BillingCounter.app_id == app_id, BillingCounter.series == series)
        .values(next=BillingCounter.next + 1).returning(BillingCounter.next))
    return int(taken.scalar_one()) - 1


# Invoices -------------------------------------------------------------------------------------


async def insert_invoice(session: AsyncSession, values: dict[str, Any]) -> bool:
    """False when the brand's invoice for this period and currency already exists."""
    table = Invoice.__table__
    done = await session.execute(insert_ignore(session, table).values(**values).returning(table.c.id))
    return done.scalar_one_or_none() is not None


async def insert_lines(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(InvoiceLine), rows)


async def invoice_by_key(session: AsyncSession, app_id: str, brand_id: str, period_key: str,
                         currency: str) -> Invoice | None:
    return (await session.execute(sa.select(Invoice).where(
        Invoice.app_id == app_id, Invoice.brand_id == brand_id, Invoice.period_key == period_key,
        Invoice.currency == currency))).scalar_one_or_none()


async def invoices_of_period(session: AsyncSession, app_id: str, brand_id: str, period_key: str) -> Sequence[Invoice]:
    return (await session.execute(sa.select(Invoice).where(
        Invoice.app_id == app_id, Invoice.brand_id == brand_id, Invoice.period_key == period_key)
        .order_by(Invoice.currency))).scalars().all()


async def get_invoice(session: AsyncSession, app_id: str, invoice_id: str) -> Invoice | None:
    return (await session.execute(sa.select(Invoice).where(Invoice.app_id == app_id, Invoice.id == invoice_id)
                                  .execution_options(populate_existing=True))).scalar_one_or_none()


async def list_invoices(session: AsyncSession, app_id: str, *, brand_id: str | None, status: str | None,
                        issued_only: bool, before: str | None, limit: int) -> Sequence[Invoice]:
    stmt = sa.select(Invoice).where(Invoice.app_id == app_id).order_by(Invoice.id.desc()).limit(limit + 1)
    if brand_id is not None:
        stmt = stmt.where(Invoice.brand_id == brand_id)
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    if issued_only:
        stmt = stmt.where(Invoice.status != "draft")
    if before is not None:
        stmt = stmt.where(Invoice.id < before)
    return (await session.execute(stmt)).scalars().all()


async def lines_of(session: AsyncSession, invoice_ids: Sequence[str]) -> Sequence[InvoiceLine]:
    if not invoice_ids:
        return []
    return (await session.execute(sa.select(InvoiceLine).where(InvoiceLine.invoice_id.in_(list(invoice_ids)))
                                  .order_by(InvoiceLine.invoice_id, InvoiceLine.position))).scalars().all()


async def credit_notes_of(session: AsyncSession, invoice_ids: Sequence[str]) -> Sequence[CreditNote]:
    if not invoice_ids:
        return []
    return (await session.execute(sa.select(CreditNote).where(CreditNote.invoice_id.in_(list(invoice_ids)))
                                  .order_by(CreditNote.invoice_id, CreditNote.id))).scalars().all()


async def get_line(session: AsyncSession, app_id: str, line_id: str) -> tuple[InvoiceLine, Invoice] | None:
    row = (await session.execute(
        sa.select(InvoiceLine, Invoice).join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(InvoiceLine.app_id == app_id, InvoiceLine.id == line_id, Invoice.app_id == app_id))).first()
    return None if row is None else (row[0], row[1])


async def move(session: AsyncSession, app_id: str, invoice_id: str, from_: Sequence[str],
               values: dict[str, Any], *, expect_due: int | None = None) -> bool:
    """Change an invoice whose status is one of ``from_`` (and that owes ``expect_due``, when given);
    False when it is not (someone moved it first)."""
    stmt = sa.update(Invoice).where(Invoice.app_id == app_id, Invoice.id == invoice_id,
                                    Invoice.status.in_(list(from_)))
    if expect_due is not None:
        stmt = stmt.where(Invoice.amount_due == expect_due)
    done = await session.execute(stmt.values(**values).returning(Invoice.id))
    return done.scalar_one_or_none() is not None


async def apply_credit(session: AsyncSession, app_id: str, invoice_id: str, amount: int, now: datetime) -> bool:
    """Take ``amount`` off what is due, atomically and never below zero; False when the invoice is not
    open or uncollectible or owes less."""
    done = await session.execute(
        sa.update(Invoice).where(Invoice.app_id == app_id, Invoice.id == invoice_id,
                                 Invoice.status.in_(["open", "uncollectible"]), Invoice.amount_due >= amount)
        .values(credited=Invoice.credited + amount, amount_due=Invoice.amount_due - amount, updated_at=now)
        .returning(Invoice.id))
    return done.scalar_one_or_none() is not None


async def insert_credit_note(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(CreditNote).values(**values))


async def invoiced_campaigns(session: AsyncSession, app_id: str, campaign_ids: Sequence[str],
                             kind: str) -> set[str]:
    """Which of the campaigns have lines on a (not void) invoice of ``kind``."""
    if not campaign_ids:
        return set()
    rows = await session.execute(
        sa.select(InvoiceLine.campaign_id).join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(InvoiceLine.app_id == app_id, InvoiceLine.campaign_id.in_(list(campaign_ids)),
               Invoice.kind == kind, Invoice.status != "void").distinct())
    return {str(c) for c in rows.scalars()}


async def overdue(session: AsyncSession, now: datetime, limit: int) -> Sequence[Invoice]:
    """Open invoices past their due date, oldest due first (every app)."""
    return (await session.execute(sa.select(Invoice).where(Invoice.status == "open", Invoice.due_at <= now)
                                  .order_by(Invoice.due_at, Invoice.id).limit(limit))).scalars().all()


async def claim_reminder(session: AsyncSession, app_id: str, invoice_id: str, step: int, now: datetime) -> bool:
    table = Reminder.__table__
    done = await session.execute(insert_ignore(session, table).values(
        invoice_id=invoice_id, step=step, app_id=app_id, sent_at=now).returning(table.c.step))
    return done.scalar_one_or_none() is not None


async def reminders_of(session: AsyncSession, invoice_id: str) -> Sequence[Reminder]:
    return (await session.execute(sa.select(Reminder).where(Reminder.invoice_id == invoice_id)
                                  .order_by(Reminder.step))).scalars().all()


async def claim_month(session: AsyncSession, app_id: str, period: str, now: datetime) -> bool:
    table = MonthlyRun.__table__
    done = await session.execute(insert_ignore(session, table).values(app_id=app_id, period=period, ran_at=now)
                                 .returning(table.c.period))
    return done.scalar_one_or_none() is not None


# Plans and subscriptions ----------------------------------------------------------------------


async def insert_plan(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(Plan).values(**values))


async def get_plan(session: AsyncSession, app_id: str, plan_id: str) -> Plan | None:
    return (await session.execute(sa.select(Plan).where(Plan.app_id == app_id, Plan.id == plan_id))
            ).scalar_one_or_none()


async def list_plans(session: AsyncSession, app_id: str) -> Sequence[Plan]:
    return (await session.execute(sa.select(Plan).where(Plan.app_id == app_id).order_by(Plan.id))).scalars().all()


async def put_subscription(session: AsyncSession, values: dict[str, Any]) -> None:
    stmt = upsert(session, Subscription.__table__).values(**values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["app_id", "brand_id"],
        set_={"plan_id": stmt.excluded.plan_id, "started_at": stmt.excluded.started_at, "ended_at": None,
              "updated_at": stmt.excluded.updated_at}))


async def end_subscription(session: AsyncSession, app_id: str, brand_id: str, now: datetime) -> bool:
    done = await session.execute(
        sa.update(Subscription).where(Subscription.app_id == app_id, Subscription.brand_id == brand_id,
                                      Subscription.ended_at.is_(None))
        .values(ended_at=now, updated_at=now).returning(Subscription.id))
    return done.scalar_one_or_none() is not None


async def get_subscription(session: AsyncSession, app_id: str, brand_id: str) -> Subscription | None:
    return (await session.execute(sa.select(Subscription).where(
        Subscription.app_id == app_id, Subscription.brand_id == brand_id)
        .execution_options(populate_existing=True))).scalar_one_or_none()


async def subscriptions_between(session: AsyncSession, app_id: str, start: datetime,
                                end: datetime) -> Sequence[Subscription]:
    """Subscriptions active at some time in ``[start, end)``."""
    return (await session.execute(sa.select(Subscription).where(
        Subscription.app_id == app_id, Subscription.started_at < end,
        sa.or_(Subscription.ended_at.is_(None), Subscription.ended_at > start)))).scalars().all()
