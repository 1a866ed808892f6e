"""Every query of the referrals area."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import PerDialect, each_of, insert_ignore, rows_of
from questline.referrals.models import Referral, ReferralCode, ReferralMilestone

COUNTED_REVIEWS = ("none", "approved")


# Codes ----------------------------------------------------------------------------------------


async def code_of_player(session: AsyncSession, app_id: str, player_id: str) -> ReferralCode | None:
    return (await session.execute(
        sa.select(ReferralCode).where(ReferralCode.app_id == app_id, ReferralCode.player_id == player_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def insert_code(session: AsyncSession, row: dict[str, Any]) -> bool:
    """False when the player has a code already or the code is taken."""
    result = await session.execute(insert_ignore(session, ReferralCode.__table__).values(**row)
                                   .returning(ReferralCode.__table__.c.code))
    return result.scalar_one_or_none() is not None


async def record_referrer_device(session: AsyncSession, app_id: str, player_id: str, ip: str | None,
                                 device: str | None, now: datetime) -> None:
    values: dict[str, Any] = {"updated_at": now}
    if ip is not None:
        values["ip"] = ip
    if device is not None:
        values["device_fingerprint"] = device
    await session.execute(sa.update(ReferralCode).where(ReferralCode.app_id == app_id,
                                                        ReferralCode.player_id == player_id).values(**values))


async def lock_code(session: AsyncSession, app_id: str, code: str, now: datetime) -> ReferralCode | None:
    """Find a code and take its row lock: one referrer's referrals change one at a time."""
    await session.execute(sa.update(ReferralCode).where(ReferralCode.app_id == app_id, ReferralCode.code == code)
                          .values(updated_at=now))
    return (await session.execute(
        sa.select(ReferralCode).where(ReferralCode.app_id == app_id, ReferralCode.code == code)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


# Referrals ------------------------------------------------------------------------------------


async def insert_referral(session: AsyncSession, row: dict[str, Any]) -> bool:
    """False when the referee was referred before."""
    result = await session.execute(insert_ignore(session, Referral.__table__).values(**row)
                                   .returning(Referral.__table__.c.id))
    return result.scalar_one_or_none() is not None


async def get(session: AsyncSession, app_id: str, referral_id: str) -> Referral | None:
    return (await session.execute(
        sa.select(Referral).where(Referral.app_id == app_id, Referral.id == referral_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def of_referee(session: AsyncSession, app_id: str, referee_id: str) -> Referral | None:
    return (await session.execute(
        sa.select(Referral).where(Referral.app_id == app_id, Referral.referee_id == referee_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def count_from_ip(session: AsyncSession, app_id: str, ip: str, since: datetime) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(Referral)
        .where(Referral.app_id == app_id, Referral.ip == ip, Referral.created_at >= since)
    )).scalar_one())


async def device_used(session: AsyncSession, app_id: str, device: str) -> bool:
    found = await session.execute(
        sa.select(Referral.id).where(Referral.app_id == app_id, Referral.device_fingerprint == device).limit(1))
    if found.first() is not None:
        return True
    found = await session.execute(sa.select(ReferralCode.player_id).where(
        ReferralCode.app_id == app_id, ReferralCode.device_fingerprint == device).limit(1))
    return found.first() is not None


async def email_used(session: AsyncSession, app_id: str, email_hash: str) -> bool:
    found = await session.execute(
        sa.select(Referral.id).where(Referral.app_id == app_id, Referral.email_hash == email_hash).limit(1))
    return found.first() is not None


async def update(session: AsyncSession, app_id: str, referral_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(Referral).where(Referral.app_id == app_id, Referral.id == referral_id)
                          .values(**values))


async def add_points(session: AsyncSession, app_id: str, referral_id: str, referrer: int, referee: int) -> None:
    await session.execute(
        sa.update(Referral).where(Referral.app_id == app_id, Referral.id == referral_id)
        .values(referrer_points=Referral.referrer_points + referrer, referee_points=Referral.referee_points + referee)
    )


def _counted() -> Any:
    return sa.and_(Referral.signed_up_at.is_not(None), Referral.review.in_(COUNTED_REVIEWS))


async def counted(session: AsyncSession, app_id: str, referrer_id: str) -> tuple[int, int]:
    """(referrals that count for milestones, of which converted)."""
    row = (await session.execute(
        sa.select(sa.func.count(), sa.func.count(Referral.converted_at))
        .where(Referral.app_id == app_id, Referral.referrer_id == referrer_id, _counted())
    )).one()
    return int(row[0]), int(row[1])


# Built once per dialect: the worker runs it per batch (a statement built per call costs its cache key).
_COUNTED_OF = PerDialect(lambda dialect: each_of("players", dialect, lambda player: sa.select(
    Referral.referrer_id, sa.func.count().label("counted"), sa.func.count(Referral.converted_at).label("converted"))
    .where(Referral.app_id == sa.bindparam("app"), player(Referral.referrer_id), _counted())
    .group_by(Referral.referrer_id)))


async def counted_of(session: AsyncSession, app_id: str, referrer_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    rows = await rows_of(session, _COUNTED_OF, {"app": app_id, "players": list(set(referrer_ids))})
    return {pid: (int(n), int(c)) for pid, n, c in rows}


async def by_status(session: AsyncSession, app_id: str, referrer_id: str) -> dict[str, int]:
    rows = await session.execute(
        sa.select(Referral.status, sa.func.count())
        .where(Referral.app_id == app_id, Referral.referrer_id == referrer_id).group_by(Referral.status)
    )
    return {status: int(n) for status, n in rows.all()}


async def review_page(session: AsyncSession, app_id: str, after: str | None, limit: int) -> Sequence[Referral]:
    stmt = (sa.select(Referral).where(Referral.app_id == app_id, Referral.review == "pending")
            .order_by(Referral.id).limit(limit + 1))
    if after is not None:
        stmt = stmt.where(Referral.id > after)
    return (await session.execute(stmt)).scalars().all()


# Milestones -----------------------------------------------------------------------------------


async def insert_milestone(session: AsyncSession, row: dict[str, Any]) -> bool:
    result = await session.execute(insert_ignore(session, ReferralMilestone.__table__).values(**row)
                                   .returning(ReferralMilestone.__table__.c.tier))
    return result.scalar_one_or_none() is not None


async def set_milestone_transaction(session: AsyncSession, app_id: str, player_id: str, tier: str,
                                    transaction_id: str) -> None:
    await session.execute(
        sa.update(ReferralMilestone)
        .where(ReferralMilestone.app_id == app_id, ReferralMilestone.player_id == player_id,
               ReferralMilestone.tier == tier)
        .values(transaction_id=transaction_id)
    )


async def milestones_of(session: AsyncSession, app_id: str, player_id: str) -> Sequence[ReferralMilestone]:
    return (await session.execute(
        sa.select(ReferralMilestone).where(ReferralMilestone.app_id == app_id, ReferralMilestone.player_id == player_id)
        .order_by(ReferralMilestone.referrals)
    )).scalars().all()
