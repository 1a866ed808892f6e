"""Queries of the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.audit.models import AuditEntry


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(AuditEntry).values(**values))


async def page(session: AsyncSession, app_id: str, org_id: str | None, *, actor: str | None, action: str | None,
               before: int | None, limit: int) -> Sequence[AuditEntry]:
    """Newest first: the app's entries and its organization's own (those of no app)."""
    scope = AuditEntry.app_id == app_id
    if org_id is not None:
        scope = sa.or_(scope, sa.and_(AuditEntry.app_id.is_(None), AuditEntry.org_id == org_id))
    query = sa.select(AuditEntry).where(scope)
    if actor is not None:
        query = query.where(AuditEntry.actor_id == actor)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    return (await session.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1))).scalars().all()
