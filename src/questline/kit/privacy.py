"""What the engine holds about a player, declared per area: the registry behind export and erasure.

Each area declares the tables (and the column in each) where a player's data lives, and what
erasure does to those rows (``PlayerColumn``): ``delete`` them, ``anonymize`` them (the player's id
becomes an anonymous holder's, for history that must stay whole, such as ledger accounts), or
``keep`` them (the row holds nothing but the id and is needed to keep the player safe, such as the
token epoch that keeps revoked tokens dead). An area with more to do (a cache, a rank index
outside the database) adds an ``on_erase`` hook. The areas are wired in ``questline.mechanics``; a test checks
that every table with a player column is declared by some area, so a new area cannot forget the
player.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import Base
from questline.kit.runtime import Runtime

Erasure = Literal["delete", "anonymize", "keep"]
# Column names that name a player, whatever the table (the coverage test looks for these).
PLAYER_COLUMNS = frozenset({"player_id", "owner_id", "friend_id", "referrer_id", "referee_id"})
# Columns named like a player's that hold another kind of id: the treasury's owners are brand and
# streamer accounts (a streamer's player is anonymized with the streamer row; the money records
# stay for the books).
NOT_PLAYER_COLUMNS = frozenset({("treasury_deposits", "owner_id"), ("treasury_withdrawals", "owner_id"),
                                ("treasury_payment_methods", "owner_id")})
REGISTRY = "players.data"


@dataclass(frozen=True)
class PlayerColumn:
    """One table column that names the player, and what erasure does to its rows."""

    table: str
    column: str = "player_id"
    erase: Erasure = "delete"
    where: Mapping[str, Any] = field(default_factory=dict)  # more equalities (ledger: owner_kind = player)
    clear: tuple[str, ...] = ()  # personal columns set to null when the row is anonymized
    app_column: str = "app_id"
    prefix: str = ""  # the column holds prefix + player id (idempotency records: "player:<id>")


# Runs in the erasure's transaction before any row goes: drop caches, queue after-commit work.
OnErase = Callable[[AsyncSession, Runtime, str, str], Awaitable[None]]


@dataclass(frozen=True)
class PlayerDataArea:
    name: str
    columns: tuple[PlayerColumn, ...]
    on_erase: OnErase | None = None


class PlayerDataRegistry:
    def __init__(self, areas: Iterable[PlayerDataArea]) -> None:
        self.areas = list(areas)

    def covered(self) -> set[tuple[str, str]]:
        return {(c.table, c.column) for area in self.areas for c in area.columns}


def registry_of(runtime: Runtime) -> PlayerDataRegistry:
    found = runtime.extensions.get(REGISTRY)
    assert isinstance(found, PlayerDataRegistry), "questline.mechanics.install() wires the player data registry"
    return found


def _table(name: str) -> sa.Table:
    return Base.metadata.tables[name]


def _match(column: PlayerColumn, app_id: str, player_id: str) -> sa.ColumnElement[bool]:
    table = _table(column.table)
    conditions = [table.c[column.app_column] == app_id, table.c[column.column] == column.prefix + player_id]
    conditions += [table.c[name] == value for name, value in column.where.items()]
    return sa.and_(*conditions)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # stored replies, secrets: not the player's data, never exported as bytes
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


async def export_player(session: AsyncSession, registry: PlayerDataRegistry, app_id: str,
                        player_id: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every row the areas hold about the player: ``{area: {table: [row, ...]}}``."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for area in registry.areas:
        tables: dict[str, list[dict[str, Any]]] = {}
        for column in area.columns:
            table = _table(column.table)
            rows = (await session.execute(sa.select(table).where(_match(column, app_id, player_id)))).mappings()
            found = [{name: _plain(value) for name, value in row.items()} for row in rows]
            if found:
                key = column.table if column.column == "player_id" else f"{column.table}.{column.column}"
                tables[key] = found
        out[area.name] = tables
    return out


async def erase_player(session: AsyncSession, runtime: Runtime, registry: PlayerDataRegistry, app_id: str,
                       player_id: str, anonymous_id: str) -> dict[str, int]:
    """Delete or anonymize every row about the player; returns the rows changed per table."""
    changed: dict[str, int] = {}
    for area in registry.areas:  # first, while the rows are still there to read
        if area.on_erase is not None:
            await area.on_erase(session, runtime, app_id, player_id)
    for area in registry.areas:
        for column in area.columns:
            if column.erase == "keep":
                continue
            table = _table(column.table)
            match = _match(column, app_id, player_id)
            if column.erase == "delete":
                result = await session.execute(sa.delete(table).where(match))
            else:
                values: dict[str, Any] = {column.column: column.prefix + anonymous_id}
                values.update({name: None for name in column.clear if table.c[name].nullable})
                result = await session.execute(sa.update(table).where(match).values(**values))
            count = int(result.rowcount or 0)  # type: ignore[attr-defined]
            if count:
                changed[column.table] = changed.get(column.table, 0) + count
    return changed
