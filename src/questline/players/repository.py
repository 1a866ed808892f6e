from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from questline.kit.db import PerDialect, each_of, insert_ignore, many, rows_of
from questline.kit.prebuilt import PrebuiltRead
from questline.players.models import Player

# Built once: a statement made afresh per call costs its cache key (and the lookup) every time.
_BY_ID = PerDialect(lambda _: sa.select(Player).where(Player.app_id == sa.bindparam("app_id"),
                                                      Player.player_id == sa.bindparam("player_id")))
# The account as the API shows it: one prebuilt statement on a bare driver connection, plain
# values, no session and no ORM object (the account GET is the lane's hottest database read).
ACCOUNT_COLUMNS = ("player_id", "display_name", "username", "real_name", "avatar_url", "timezone",
                   "leaderboard_visibility", "display_name_type", "show_on_global_leaderboard", "preferences",
                   "traits", "created_at", "updated_at")
_ACCOUNT = PrebuiltRead(sa.select(*(Player.__table__.c[name] for name in ACCOUNT_COLUMNS)).where(
    Player.__table__.c.app_id == sa.bindparam("app_id"), Player.__table__.c.player_id == sa.bindparam("player_id")))

async def get(session: AsyncSession, app_id: str, player_id: str) -> Player | None:
    stmt = _BY_ID.on(session.get_bind().dialect.name)
    return (await session.execute(stmt, {"app_id": app_id, "player_id": player_id})).scalar_one_or_none()


async def account(engine: AsyncEngine, app_id: str, player_id: str) -> dict[str, Any] | None:
    """The player's account columns (``ACCOUNT_COLUMNS``) by name, or None."""
    row = await _ACCOUNT.first(engine, {"app_id": app_id, "player_id": player_id})
    return None if row is None else dict(zip(ACCOUNT_COLUMNS, row, strict=True))

async def insert_missing(session: AsyncSession, app_id: str, player_ids: Iterable[str], now: datetime,
                         timezones: dict[str, str] | None = None) -> None:
    rows = [{"app_id": app_id, "player_id": pid, "timezone": (timezones or {}).get(pid, "UTC"),
             "leaderboard_visibility": "public", "display_name_type": "username",
             "show_on_global_leaderboard": True, "preferences": {}, "traits": {}, "created_at": now,
             "updated_at": now}
            for pid in player_ids]
    if rows:
        # One multi-row statement per page of rows, not one per player (a first batch meets many new ones).
        await session.execute(many(insert_ignore(session, Player.__table__)), rows)


async def keys_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """player_id -> (pk, timezone) for the given players of the app."""
    ids = list(set(player_ids))  # each_of: no id twice
    if not ids:
        return {}
    rows = await rows_of(session, _KEYS, {"app_id": app_id, "ids": ids})
    return {pid: (pk, tz) for pid, pk, tz in rows}


# One statement text whatever the number of players (PostgreSQL: ``= ANY``): every batch runs it.
_KEYS = PerDialect(lambda dialect: each_of("ids", dialect, lambda player: sa.select(
    Player.player_id, Player.pk, Player.timezone).where(Player.app_id == sa.bindparam("app_id"),
                                                        player(Player.player_id))))


async def traits_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """player_id -> traits (only players that exist and have some)."""
    ids = list(player_ids)
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(Player.player_id, Player.traits).where(Player.app_id == app_id, Player.player_id.in_(ids)))
    return {pid: traits for pid, traits in rows if traits}


async def update(session: AsyncSession, app_id: str, player_id: str, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(Player).where(Player.app_id == app_id, Player.player_id == player_id).values(**values)
    )


async def page(session: AsyncSession, app_id: str, after: str | None, limit: int,
               prefix: str | None = None) -> Sequence[Player]:
    """Players by id; with ``prefix``, those whose id, username or display name starts with it (any case)."""
    stmt = sa.select(Player).where(Player.app_id == app_id).order_by(Player.player_id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(Player.player_id > after)
    if prefix:
        pattern = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(sa.or_(*(sa.func.lower(column).like(pattern, escape="\\")
                                   for column in (Player.player_id, Player.username, Player.display_name))))
    return (await session.execute(stmt)).scalars().all()


async def stamp_timezone_change(session: AsyncSession, app_id: str, player_id: str, was: datetime | None,
                                now: datetime) -> bool:
    """Record a player's own time zone change if none was recorded since ``was`` (compare-and-set)."""
    stamp = Player.timezone_changed_at
    result = await session.execute(
        sa.update(Player).where(Player.app_id == app_id, Player.player_id == player_id,
                                stamp.is_(None) if was is None else stamp == was)
        .values(timezone_changed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


class Shown(NamedTuple):
    """How a player may be shown to others (on a board): privacy flags and the fields names come from."""

    player_id: str
    leaderboard_visibility: str
    display_name_type: str
    show_on_global_leaderboard: bool
    display_name: str | None
    username: str | None
    real_name: str | None


SHOWN_FIELDS = frozenset(Shown._fields) - {"player_id"}
_SHOWN_COLUMNS = sa.select(Player.player_id, Player.leaderboard_visibility, Player.display_name_type,
                           Player.show_on_global_leaderboard, Player.display_name, Player.username,
                           Player.real_name)
# Built once. PostgreSQL gets one statement text for any number of ids (``= ANY(:ids)``), so its
# prepared statement is reused; SQLite an expanding IN (compiled once per list length).
_SHOWN = {
    "postgresql": _SHOWN_COLUMNS.where(
        Player.app_id == sa.bindparam("app"),
        Player.player_id == sa.func.any(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String())))),
    "sqlite": _SHOWN_COLUMNS.where(
        Player.app_id == sa.bindparam("app"), Player.player_id.in_(sa.bindparam("ids", expanding=True))),
}


async def shown_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, Shown]:
    ids = list(set(player_ids))
    if not ids:
        return {}
    # On the connection: plain rows, without the ORM's result machinery (a hot path of board reads).
    connection = await session.connection()
    rows = await connection.execute(_SHOWN[connection.dialect.name], {"app": app_id, "ids": ids})
    return {row[0]: Shown(*row) for row in rows}
