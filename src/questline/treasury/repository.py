"""Every treasury query; each is scoped by app."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore
from questline.kit.ids import new_id
from questline.treasury.models import (
    Deposit,
    ExchangeRate,
    KycCase,
    KycDocument,
    PaymentMethod,
    TreasurySettings,
    WebhookEvent,
    Withdrawal,
)

# Rates ----------------------------------------------------------------------------------------


async def put_rate(session: AsyncSession, app_id: str, base: str, quote: str, rate: str, set_by: str,
                   now: datetime) -> None:
    await session.execute(insert_ignore(session, ExchangeRate.__table__).values(
        id=new_id("fx"), app_id=app_id, base=base, quote=quote, rate=rate, set_by=set_by, set_at=now))
    await session.execute(
        sa.update(ExchangeRate).where(ExchangeRate.app_id == app_id, ExchangeRate.base == base,
                                      ExchangeRate.quote == quote)
        .values(rate=rate, set_by=set_by, set_at=now))


async def get_rate(session: AsyncSession, app_id: str, base: str, quote: str) -> ExchangeRate | None:
    return (await session.execute(
        sa.select(ExchangeRate).where(ExchangeRate.app_id == app_id, ExchangeRate.base == base,
                                      ExchangeRate.quote == quote)
    )).scalar_one_or_none()


async def list_rates(session: AsyncSession, app_id: str) -> Sequence[ExchangeRate]:
    return (await session.execute(
        sa.select(ExchangeRate).where(ExchangeRate.app_id == app_id).order_by(ExchangeRate.base, ExchangeRate.quote)
    )).scalars().all()


# Payment methods ------------------------------------------------------------------------------


async def insert_method(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(PaymentMethod).values(**values))


async def get_method(session: AsyncSession, app_id: str, method_id: str) -> PaymentMethod | None:
    return (await session.execute(
        sa.select(PaymentMethod).where(PaymentMethod.app_id == app_id, PaymentMethod.id == method_id,
                                       PaymentMethod.removed_at.is_(None))
    )).scalar_one_or_none()


async def list_methods(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str) -> Sequence[PaymentMethod]:
    return (await session.execute(
        sa.select(PaymentMethod).where(PaymentMethod.app_id == app_id, PaymentMethod.owner_kind == owner_kind,
                                       PaymentMethod.owner_id == owner_id, PaymentMethod.removed_at.is_(None))
        .order_by(PaymentMethod.id)
    )).scalars().all()


async def count_methods(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(PaymentMethod).where(
            PaymentMethod.app_id == app_id, PaymentMethod.owner_kind == owner_kind,
            PaymentMethod.owner_id == owner_id, PaymentMethod.removed_at.is_(None))
    )).scalar_one())


async def remove_method(session: AsyncSession, app_id: str, method_id: str, now: datetime) -> bool:
    result = await session.execute(
        sa.update(PaymentMethod).where(PaymentMethod.app_id == app_id, PaymentMethod.id == method_id,
                                       PaymentMethod.removed_at.is_(None)).values(removed_at=now)
        .returning(PaymentMethod.id))
    return result.scalar_one_or_none() is not None


# Deposits -------------------------------------------------------------------------------------


async def insert_deposit(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless the provider's reference is already a deposit of the app; True when inserted."""
    table = Deposit.__table__
    done = await session.execute(insert_ignore(session, table).values(**values).returning(table.c.id))
    return done.scalar_one_or_none() is not None


async def get_deposit(session: AsyncSession, app_id: str, deposit_id: str) -> Deposit | None:
    return (await session.execute(
        sa.select(Deposit).where(Deposit.app_id == app_id, Deposit.id == deposit_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def deposit_by_ref(session: AsyncSession, app_id: str, provider: str, ref: str) -> Deposit | None:
    return (await session.execute(
        sa.select(Deposit).where(Deposit.app_id == app_id, Deposit.provider == provider, Deposit.provider_ref == ref)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def list_deposits(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str, *,
                        before: str | None, limit: int) -> Sequence[Deposit]:
    query = sa.select(Deposit).where(Deposit.app_id == app_id, Deposit.owner_kind == owner_kind,
                                     Deposit.owner_id == owner_id)
    if before is not None:
        query = query.where(Deposit.id < before)
    return (await session.execute(query.order_by(Deposit.id.desc()).limit(limit + 1))).scalars().all()


async def settle_deposit(session: AsyncSession, app_id: str, deposit_id: str, *, status: str,
                         values: dict[str, Any]) -> bool:
    """Move a pending deposit to ``status``; False when it is no longer pending (someone settled it first)."""
    result = await session.execute(
        sa.update(Deposit).where(Deposit.app_id == app_id, Deposit.id == deposit_id, Deposit.status == "pending")
        .values(status=status, **values).returning(Deposit.id))
    return result.scalar_one_or_none() is not None


async def claim_event(session: AsyncSession, provider: str, event_id: str, app_id: str | None, kind: str,
                      now: datetime) -> bool:
    """Record a webhook event; False when it was already handled (a redelivery)."""
    table = WebhookEvent.__table__
    done = await session.execute(insert_ignore(session, table).values(
        provider=provider, event_id=event_id, app_id=app_id, kind=kind, received_at=now).returning(table.c.id))
    return done.scalar_one_or_none() is not None


async def settle_deposit_transaction(session: AsyncSession, app_id: str, deposit_id: str, txn_id: str) -> None:
    await session.execute(sa.update(Deposit).where(Deposit.app_id == app_id, Deposit.id == deposit_id)
                          .values(transaction_id=txn_id))


# Settings -------------------------------------------------------------------------------------


async def get_settings(session: AsyncSession, app_id: str) -> dict[str, Any] | None:
    return (await session.execute(
        sa.select(TreasurySettings.body).where(TreasurySettings.app_id == app_id))).scalar_one_or_none()


async def put_settings(session: AsyncSession, app_id: str, body: dict[str, Any], now: datetime) -> None:
    await session.execute(insert_ignore(session, TreasurySettings.__table__).values(
        app_id=app_id, body=body, updated_at=now))
    await session.execute(sa.update(TreasurySettings).where(TreasurySettings.app_id == app_id)
                          .values(body=body, updated_at=now))


# Withdrawals ----------------------------------------------------------------------------------

_COUNTED = ("awaiting_approval", "approved", "processing", "paid")


async def withdrawn_since(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str, currency: str,
                          since: datetime) -> int:
    """What the owner asked to withdraw since ``since`` (neither rejected nor failed)."""
    return int((await session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Withdrawal.amount), 0)).where(
            Withdrawal.app_id == app_id, Withdrawal.owner_kind == owner_kind, Withdrawal.owner_id == owner_id,
            Withdrawal.currency == currency, Withdrawal.created_at >= since, Withdrawal.status.in_(_COUNTED))
    )).scalar_one())


async def insert_withdrawal(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(Withdrawal).values(**values))


async def get_withdrawal(session: AsyncSession, app_id: str, withdrawal_id: str, *,
                         lock: bool = False) -> Withdrawal | None:
    query = (sa.select(Withdrawal).where(Withdrawal.app_id == app_id, Withdrawal.id == withdrawal_id)
             .execution_options(populate_existing=True))
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def withdrawal_by_ref(session: AsyncSession, app_id: str, provider: str, ref: str) -> Withdrawal | None:
    return (await session.execute(
        sa.select(Withdrawal).where(Withdrawal.app_id == app_id, Withdrawal.provider == provider,
                                    Withdrawal.provider_ref == ref)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def update_withdrawal(session: AsyncSession, app_id: str, withdrawal_id: str, *, from_status: Sequence[str],
                            values: dict[str, Any]) -> bool:
    """Change a withdrawal that is in one of ``from_status``; False when it no longer is."""
    result = await session.execute(
        sa.update(Withdrawal).where(Withdrawal.app_id == app_id, Withdrawal.id == withdrawal_id,
                                    Withdrawal.status.in_(list(from_status)))
        .values(**values).returning(Withdrawal.id))
    return result.scalar_one_or_none() is not None


async def list_withdrawals(session: AsyncSession, app_id: str, *, owner: tuple[str, str] | None,
                           status: str | None, before: str | None, limit: int) -> Sequence[Withdrawal]:
    query = sa.select(Withdrawal).where(Withdrawal.app_id == app_id)
    if owner is not None:
        query = query.where(Withdrawal.owner_kind == owner[0], Withdrawal.owner_id == owner[1])
    if status is not None:
        query = query.where(Withdrawal.status == status)
    if before is not None:
        query = query.where(Withdrawal.id < before)
    return (await session.execute(query.order_by(Withdrawal.id.desc()).limit(limit + 1))).scalars().all()


# KYC ------------------------------------------------------------------------------------------


async def kyc_case_of(session: AsyncSession, app_id: str, subject_kind: str, subject_id: str, *,
                      lock: bool = False) -> KycCase | None:
    query = (sa.select(KycCase).where(KycCase.app_id == app_id, KycCase.subject_kind == subject_kind,
                                      KycCase.subject_id == subject_id).execution_options(populate_existing=True))
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def kyc_case(session: AsyncSession, app_id: str, case_id: str, *, lock: bool = False) -> KycCase | None:
    query = (sa.select(KycCase).where(KycCase.app_id == app_id, KycCase.id == case_id)
             .execution_options(populate_existing=True))
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def insert_kyc_case(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert_ignore(session, KycCase.__table__).values(**values))


async def update_kyc_case(session: AsyncSession, app_id: str, case_id: str, *, from_status: Sequence[str],
                          values: dict[str, Any]) -> bool:
    result = await session.execute(
        sa.update(KycCase).where(KycCase.app_id == app_id, KycCase.id == case_id,
                                 KycCase.status.in_(list(from_status))).values(**values).returning(KycCase.id))
    return result.scalar_one_or_none() is not None


async def list_kyc_cases(session: AsyncSession, app_id: str, status: str | None, before: str | None,
                         limit: int) -> Sequence[KycCase]:
    query = sa.select(KycCase).where(KycCase.app_id == app_id)
    if status is not None:
        query = query.where(KycCase.status == status)
    if before is not None:
        query = query.where(KycCase.id < before)
    return (await session.execute(query.order_by(KycCase.id.desc()).limit(limit + 1))).scalars().all()


async def insert_kyc_document(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(KycDocument).values(**values))


async def kyc_documents(session: AsyncSession, app_id: str, case_id: str) -> Sequence[KycDocument]:
    return (await session.execute(
        sa.select(KycDocument).where(KycDocument.app_id == app_id, KycDocument.case_id == case_id)
        .order_by(KycDocument.id))).scalars().all()


async def kyc_document(session: AsyncSession, app_id: str, case_id: str, document_id: str) -> KycDocument | None:
    return (await session.execute(
        sa.select(KycDocument).where(KycDocument.app_id == app_id, KycDocument.case_id == case_id,
                                     KycDocument.id == document_id))).scalar_one_or_none()


async def count_kyc_documents(session: AsyncSession, app_id: str, case_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(KycDocument).where(
            KycDocument.app_id == app_id, KycDocument.case_id == case_id, KycDocument.deleted_at.is_(None))
    )).scalar_one())


async def withdrawn_total_since(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str,
                                since: datetime) -> int:
    """Every currency together (minor units): a rough measure of volume, for the risk score only."""
    return int((await session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Withdrawal.amount), 0)).where(
            Withdrawal.app_id == app_id, Withdrawal.owner_kind == owner_kind, Withdrawal.owner_id == owner_id,
            Withdrawal.created_at >= since))).scalar_one())


async def bank_holders(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str) -> list[str]:
    """The masked labels of the owner's bank accounts (they begin with the holder's name)."""
    rows = await session.execute(sa.select(PaymentMethod.masked).where(
        PaymentMethod.app_id == app_id, PaymentMethod.owner_kind == owner_kind, PaymentMethod.owner_id == owner_id,
        PaymentMethod.kind == "bank_account", PaymentMethod.removed_at.is_(None)))
    return [str(m).split(",", 1)[0] for m in rows.scalars()]


async def expire_kyc(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        sa.update(KycCase).where(KycCase.status == "verified", KycCase.expires_at <= now)
        .values(status="expired", updated_at=now).returning(KycCase.id))
    return len(result.all())


async def purge_kyc_documents(session: AsyncSession, now: datetime, retention: dict[str, int],
                              default_days: int) -> int:
    """Drop the content of documents whose case was decided longer ago than its app's retention."""
    rows = (await session.execute(
        sa.select(KycDocument.id, KycDocument.app_id, KycCase.decided_at)
        .join(KycCase, KycCase.id == KycDocument.case_id)
        .where(KycDocument.deleted_at.is_(None), KycCase.decided_at.is_not(None),
               KycCase.status.in_(["verified", "rejected", "expired"])).limit(5000))).all()
    due = [doc_id for doc_id, app_id, decided in rows
           if decided is not None and decided + timedelta(days=retention.get(app_id, default_days)) <= now]
    if due:
        await session.execute(sa.update(KycDocument).where(KycDocument.id.in_(due))
                              .values(sealed=None, deleted_at=now))
    return len(due)


async def all_settings(session: AsyncSession) -> dict[str, dict[str, Any]]:
    rows = await session.execute(sa.select(TreasurySettings.app_id, TreasurySettings.body))
    return {app_id: body for app_id, body in rows}


async def kyc_counts(session: AsyncSession, app_id: str, now: datetime) -> tuple[dict[str, int], int, int, int, int]:
    by_status = {str(status): int(n) for status, n in await session.execute(
        sa.select(KycCase.status, sa.func.count()).where(KycCase.app_id == app_id).group_by(KycCase.status))}
    high = int((await session.execute(sa.select(sa.func.count()).select_from(KycCase).where(
        KycCase.app_id == app_id, KycCase.status.in_(["submitted", "in_review"]), KycCase.risk_score >= 50)
    )).scalar_one())
    expiring = int((await session.execute(sa.select(sa.func.count()).select_from(KycCase).where(
        KycCase.app_id == app_id, KycCase.status == "verified", KycCase.expires_at <= now + timedelta(days=30))
    )).scalar_one())
    held = int((await session.execute(sa.select(sa.func.count()).select_from(KycDocument).where(
        KycDocument.app_id == app_id, KycDocument.deleted_at.is_(None)))).scalar_one())
    deleted = int((await session.execute(sa.select(sa.func.count()).select_from(KycDocument).where(
        KycDocument.app_id == app_id, KycDocument.deleted_at.is_not(None)))).scalar_one())
    return by_status, high, expiring, held, deleted
