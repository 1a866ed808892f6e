"""Every query of the tenancy area."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import upsert
from questline.tenancy.models import AdminUser, ApiKey, App, Membership, Organization, PlayerTokenEpoch, RefreshToken


async def add(session: AsyncSession, *rows: object) -> None:
    session.add_all(rows)
    await session.flush()


async def get_org(session: AsyncSession, org_id: str) -> Organization | None:
    return await session.get(Organization, org_id)


async def count_orgs(session: AsyncSession) -> int:
    return int((await session.execute(sa.select(sa.func.count()).select_from(Organization))).scalar_one())


async def orgs_of_admin(session: AsyncSession, admin_id: str) -> Sequence[tuple[Organization, str]]:
    rows = await session.execute(
        sa.select(Organization, Membership.role)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.admin_id == admin_id)
        .order_by(Organization.id)
    )
    return [(org, role) for org, role in rows]


async def get_app(session: AsyncSession, app_id: str) -> App | None:
    return await session.get(App, app_id)


async def app_settings_row(session: AsyncSession, app_id: str) -> sa.Row[str, str, str, int, list[str]] | None:
    """The columns of an app that requests read (plain row, for the app cache)."""
    return (await session.execute(
        sa.select(App.id, App.org_id, App.name, App.config_version, App.client_event_types).where(App.id == app_id)
    )).one_or_none()


async def apps_of_org(session: AsyncSession, org_id: str, after: str | None, limit: int) -> Sequence[App]:
    stmt = sa.select(App).where(App.org_id == org_id).order_by(App.id).limit(limit + 1)
    if after:
        stmt = stmt.where(App.id > after)
    return (await session.execute(stmt)).scalars().all()


async def bump_config_version(session: AsyncSession, app_id: str) -> int:
    result = await session.execute(
        sa.update(App).where(App.id == app_id).values(config_version=App.config_version + 1)
        .returning(App.config_version)
    )
    return int(result.scalar_one())


async def set_client_event_types(session: AsyncSession, app_id: str, types: list[str]) -> None:
    await session.execute(sa.update(App).where(App.id == app_id).values(client_event_types=types))


async def set_community_starter_reward_max(session: AsyncSession, app_id: str, amount: int) -> None:
    await session.execute(sa.update(App).where(App.id == app_id).values(community_starter_reward_max=amount))


async def get_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def key_row(session: AsyncSession, key_id: str) -> sa.Row[str, str, str, str, str, bool] | None:
    """``(id, app_id, org_id, kind, secret_hash, revoked)`` of a key, in one query (for the key cache)."""
    return (await session.execute(
        sa.select(ApiKey.id, ApiKey.app_id, App.org_id, ApiKey.kind, ApiKey.secret_hash,
                  ApiKey.revoked_at.is_not(None))
        .join(App, App.id == ApiKey.app_id).where(ApiKey.id == key_id)
    )).one_or_none()


async def keys_of_app(session: AsyncSession, app_id: str, after: str | None, limit: int) -> Sequence[ApiKey]:
    stmt = sa.select(ApiKey).where(ApiKey.app_id == app_id).order_by(ApiKey.id).limit(limit + 1)
    if after:
        stmt = stmt.where(ApiKey.id > after)
    return (await session.execute(stmt)).scalars().all()


async def revoke_key(session: AsyncSession, app_id: str, key_id: str, now: datetime) -> bool:
    result = await session.execute(
        sa.update(ApiKey).where(ApiKey.id == key_id, ApiKey.app_id == app_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def admin_by_email(session: AsyncSession, email: str) -> AdminUser | None:
    return (await session.execute(sa.select(AdminUser).where(AdminUser.email == email))).scalar_one_or_none()


async def get_admin(session: AsyncSession, admin_id: str) -> AdminUser | None:
    return await session.get(AdminUser, admin_id)


async def role_in_org(session: AsyncSession, admin_id: str, org_id: str) -> str | None:
    return (await session.execute(
        sa.select(Membership.role).where(Membership.admin_id == admin_id, Membership.org_id == org_id)
    )).scalar_one_or_none()


async def roles_of_admin(session: AsyncSession, admin_id: str) -> set[str]:
    rows = await session.execute(sa.select(Membership.role).where(Membership.admin_id == admin_id).distinct())
    return {role for (role,) in rows}


async def lock_org(session: AsyncSession, org_id: str) -> bool:
    """Take the organization's row lock (PostgreSQL; SQLite writers are serialized anyway) so that
    membership changes of one organization happen one at a time. False if there is no such org."""
    found = (await session.execute(
        sa.select(Organization.id).where(Organization.id == org_id).with_for_update()
    )).scalar_one_or_none()
    return found is not None


async def count_owners(session: AsyncSession, org_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(Membership)
        .where(Membership.org_id == org_id, Membership.role == "owner")
    )).scalar_one())


async def upsert_membership(session: AsyncSession, org_id: str, admin_id: str, role: str, now: datetime) -> None:
    existing = await session.get(Membership, (org_id, admin_id))
    if existing is None:
        session.add(Membership(org_id=org_id, admin_id=admin_id, role=role, created_at=now))
    else:
        existing.role = role
    await session.flush()


async def delete_membership(session: AsyncSession, org_id: str, admin_id: str) -> bool:
    result = await session.execute(
        sa.delete(Membership).where(Membership.org_id == org_id, Membership.admin_id == admin_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def refresh_token_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return (await session.execute(
        sa.select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    )).scalar_one_or_none()


async def revoke_refresh_token(session: AsyncSession, token_id: str, now: datetime) -> bool:
    result = await session.execute(
        sa.update(RefreshToken).where(RefreshToken.id == token_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_refresh_family(session: AsyncSession, family_id: str, now: datetime) -> int:
    result = await session.execute(
        sa.update(RefreshToken).where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def admin_and_session(session: AsyncSession, admin_id: str, family_id: str) -> tuple[AdminUser | None, bool]:
    """The admin, and whether their session (a refresh-token family) still has a live token."""
    alive = sa.exists().where(RefreshToken.family_id == family_id, RefreshToken.admin_id == admin_id,
                              RefreshToken.revoked_at.is_(None))
    row = (await session.execute(sa.select(AdminUser, alive).where(AdminUser.id == admin_id))).one_or_none()
    return (None, False) if row is None else (row[0], bool(row[1]))


async def player_token_epoch(session: AsyncSession, app_id: str, player_id: str) -> int:
    found = (await session.execute(
        sa.select(PlayerTokenEpoch.epoch)
        .where(PlayerTokenEpoch.app_id == app_id, PlayerTokenEpoch.player_id == player_id)
    )).scalar_one_or_none()
    return int(found or 0)


async def next_player_token_epoch(session: AsyncSession, app_id: str, player_id: str, now: datetime) -> int:
    """Move the player's token epoch on by one, atomically; returns the new epoch."""
    table = PlayerTokenEpoch.__table__
    stmt = upsert(session, table).values(app_id=app_id, player_id=player_id, epoch=1, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.app_id, table.c.player_id],
        set_={"epoch": table.c.epoch + 1, "updated_at": now},
    ).returning(table.c.epoch)
    return int((await session.execute(stmt)).scalar_one())


async def first_org(session: AsyncSession) -> Organization | None:
    return (await session.execute(sa.select(Organization).order_by(Organization.id).limit(1))).scalar_one_or_none()
