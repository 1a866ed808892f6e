"""Prebuilt reads: one SELECT compiled once, run on a bare driver connection from the engine's pool.

A read through a session pays, on every call, the session, the statement's compile-cache key,
SQLAlchemy's execution context and result machinery, and on SQLite four aiosqlite hand-offs to
its thread (cursor, execute, fetch, close). The hottest reads of the fast lane need none of it:
a ``PrebuiltRead`` compiles its statement once per dialect (the same SQL text SQLAlchemy sends),
takes a connection from the engine's own pool (its ``checkout`` events fire, no pre-ping, as for
any session), runs the text on the driver itself (asyncpg's ``fetch``, which prepares it once per
connection; aiosqlite's ``execute_fetchall``, one hand-off) and turns each value into what the
column's type gives a session (the dialect's own result processors: JSON decoded, datetimes made
aware, booleans as bool). No transaction is begun: a pooled connection has none open, and a lone
SELECT reads the latest committed state, as the read sessions do.

Statements that go this way are not seen by SQLAlchemy's ``before/after_cursor_execute`` events
(statement counters must count at the database: the wire on PostgreSQL, SQLite's trace callback).
A read the driver fails is not answered from the driver's error: that connection is invalidated (the
pool never hands it out again) and the statement runs once more through SQLAlchemy, whose errors
the rest of the engine reads (a dead connection, a busy database, a bad value).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool, PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

__all__ = ["PrebuiltRead"]

_Processor = Callable[[Any], Any] | None

# Per pool (and event loop): how many prebuilt reads may hold a connection at once, the pool's size.
_GATES: weakref.WeakKeyDictionary[Pool, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary())


def _gate(engine: AsyncEngine) -> asyncio.Semaphore | None:
    """A read burst waits for the pool's own connections instead of opening overflow ones: a
    QueuePool closes an overflow connection as soon as it comes back to a full pool, so 64 reads
    in flight against a pool of 10 connected and disconnected about once a read (a quarter of the
    server's CPU, TLS negotiation included). A prebuilt read holds its connection for one round trip."""
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return None
    loop = asyncio.get_running_loop()
    found = _GATES.get(pool)
    if found is None or found[0] is not loop:
        found = _GATES[pool] = (loop, asyncio.Semaphore(pool.size()))
    return found[1]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter names in the order the text takes them
    binds: tuple[_Processor, ...]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, processor), columns that need one
    asyncpg: bool


def _compile(statement: sa.Select[Any], dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    if dialect.paramstyle not in ("numeric_dollar", "qmark") or compiled.positiontup is None:
        raise ValueError(f"prebuilt reads take positional parameters; {dialect.name} uses {dialect.paramstyle}")
    names = tuple(compiled.positiontup)
    binds = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
    results = []
    for index, column in enumerate(statement.selected_columns):
        processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if processor is not None:
            results.append((index, processor))
    return _Compiled(compiled.string, names, binds, tuple(results), dialect.driver == "asyncpg")


class PrebuiltRead:
    """A SELECT with named bind parameters (``sa.bindparam``), compiled once per dialect and run on a
    bare driver connection. Rows come back as plain tuples in the statement's column order."""

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = _compile(self.statement, dialect)
        return found

    async def all(self, engine: AsyncEngine, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        compiled = self._compiled(engine.dialect)
        args = [params[name] if bind is None else bind(params[name])
                for name, bind in zip(compiled.names, compiled.binds, strict=True)]
        gate = _gate(engine)
        if gate is None:
            return await self._on_driver(engine, compiled, args, params)
        async with gate:
            return await self._on_driver(engine, compiled, args, params)

    async def _on_driver(self, engine: AsyncEngine, compiled: _Compiled, args: list[Any],
                         params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        connection = await engine.raw_connection()
        try:
            driver = connection.driver_connection
            assert driver is not None
            raw: Sequence[Any]
            if compiled.asyncpg:
                raw = await driver.fetch(compiled.sql, *args)
            else:
                raw = await driver.execute_fetchall(compiled.sql, args)
        except Exception:
            # The driver's own error is not what the rest of the engine reads (SQLAlchemy's, which
            # says whether the connection died): drop this connection and ask once more the usual way.
            await greenlet_spawn(_release, connection, True)
            return await self._through_sqlalchemy(engine, params)
        except BaseException:
            await greenlet_spawn(_release, connection, True)  # cancelled mid-read: the protocol state is unknown
            raise
        # On the greenlet: a pool return that has to close the connection (an overflow) awaits the driver.
        await greenlet_spawn(_release, connection, False)
        if not compiled.results:
            return [tuple(row) for row in raw]
        out = []
        for row in raw:
            values = list(row)
            for index, processor in compiled.results:
                values[index] = processor(values[index])
            out.append(tuple(values))
        return out

    async def _through_sqlalchemy(self, engine: AsyncEngine, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        async with engine.connect() as connection:
            result = await connection.execute(self.statement, dict(params))
            return [tuple(row) for row in result]

    async def first(self, engine: AsyncEngine, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, or None (for a primary-key read: the row)."""
        rows = await self.all(engine, params)
        return rows[0] if rows else None


def _release(connection: PoolProxiedConnection, failed: bool) -> None:
    if failed:
        connection.invalidate()  # a read that failed half-way may leave the driver mid-protocol
    connection.close()
