"""Prebuilt reads: one SELECT compiled once, run on a bare driver connection from the engine's pool.

A read through a session pays, on every call, the session, the statement's compile-cache key,
SQLAlchemy's execution context and result machinery, and on SQLite four aiosqlite hand-offs to
its thread (cursor, execute, fetch, close). The hottest reads of the fast lane need none of it:
a ``PrebuiltRead`` compiles its statement once per dialect (the same SQL text SQLAlchemy sends),
takes a connection from the engine's own pool (its ``checkout`` events fire, no pre-ping, as for
any session; or straight from the read before it, ``_Lender``), runs the text on the driver
itself (asyncpg's ``fetch``, which prepares it once per connection; aiosqlite's
``execute_fetchall``, one hand-off) and turns each value into what the column's type gives a
session (the dialect's own result processors: JSON decoded, datetimes made aware, booleans as
bool). No transaction is begun: a pooled connection has none open, and a lone SELECT reads the
latest committed state, as the read sessions do.

Statements that go this way are not seen by SQLAlchemy's ``before/after_cursor_execute`` events
(statement counters must count at the database: the wire on PostgreSQL, SQLite's trace callback).
A read the driver fails is not answered from the driver's error: that connection is invalidated (the
pool never hands it out again) and the statement runs once more through SQLAlchemy, whose errors
the rest of the engine reads (a dead connection, a busy database, a bad value).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
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

# Per pool (and event loop): the connections prebuilt reads hold and the reads waiting for one.
_LENDERS: weakref.WeakKeyDictionary[Pool, _Lender] = weakref.WeakKeyDictionary()

# A connection goes from one prebuilt read straight to the next waiting one at most this many times
# in a row; then it goes back to the pool, where a session waiting for a connection gets its turn.
HANDOFFS = 16

_Handed = tuple[PoolProxiedConnection, int] | None  # (connection, handoffs so far), or None: take your own


class _Lender:
    """At most the pool's size of prebuilt reads hold a connection at once: a read burst waits for
    the pool's own connections instead of opening overflow ones (a QueuePool closes an overflow
    connection as soon as it comes back to a full pool, so 64 reads in flight against a pool of 10
    connected and disconnected about once a read: a quarter of the server's CPU, TLS negotiation
    included). A read that finishes while another waits hands its connection over directly: no
    pool check-in and check-out (each a greenlet and the pool's bookkeeping, about a tenth of a
    busy account read's CPU), up to ``HANDOFFS`` times before the pool gets it back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.size = size
        self.held = 0
        self.waiting: deque[asyncio.Future[_Handed]] = deque()
        self._returns: set[asyncio.Task[None]] = set()

    async def take(self, engine: AsyncEngine) -> tuple[PoolProxiedConnection, int]:
        handed: _Handed = None
        if self.held < self.size and not self.waiting:
            self.held += 1
        else:
            waiter = self.loop.create_future()
            self.waiting.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():  # handed over, then cancelled: pass it on
                    self._pass_on_or_return(waiter.result())
                else:
                    with contextlib.suppress(ValueError):
                        self.waiting.remove(waiter)
                raise
        if handed is not None:
            return handed
        try:
            return await engine.raw_connection(), 0
        except BaseException:
            self.give(None)
            raise

    def give(self, handed: _Handed) -> bool:
        """Hand a connection (None: a free place) to the first read still waiting; False if none waits
        (then the place is given up here, and the connection is the caller's to return)."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(handed)
                return True
        self.held -= 1
        return False

    def _pass_on_or_return(self, handed: _Handed) -> None:
        if not self.give(handed) and handed is not None:
            task = self.loop.create_task(greenlet_spawn(_release, handed[0], False))
            self._returns.add(task)
            task.add_done_callback(self._returns.discard)


def _lender(engine: AsyncEngine) -> _Lender | None:
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return None
    loop = asyncio.get_running_loop()
    found = _LENDERS.get(pool)
    if found is None or found.loop is not loop:
        found = _LENDERS[pool] = _Lender(loop, pool.size())
    return found


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
        lender = _lender(engine)
        connection, handoffs = await lender.take(engine) if lender else (await engine.raw_connection(), 0)
        try:
            raw = await self._on_driver(connection, compiled, args)
        except BaseException:
            await greenlet_spawn(_release, connection, True)  # cancelled mid-read: the protocol state is unknown
            if lender:
                lender.give(None)
            raise
        if lender is None:
            await greenlet_spawn(_release, connection, raw is None)
        elif raw is None:
            await greenlet_spawn(_release, connection, True)
            lender.give(None)
        elif handoffs >= HANDOFFS or not lender.give((connection, handoffs + 1)):
            if handoffs >= HANDOFFS:
                lender.give(None)
            # On the greenlet: a pool return that has to close the connection (an overflow) awaits the driver.
            await greenlet_spawn(_release, connection, False)
        if raw is None:
            # The driver's own error is not what the rest of the engine reads (SQLAlchemy's, which
            # says whether the connection died): that connection is dropped; ask once more the usual way.
            return await self._through_sqlalchemy(engine, params)
        if not compiled.results:
            return [tuple(row) for row in raw]
        out = []
        for row in raw:
            values = list(row)
            for index, processor in compiled.results:
                values[index] = processor(values[index])
            out.append(tuple(values))
        return out

    @staticmethod
    async def _on_driver(connection: PoolProxiedConnection, compiled: _Compiled,
                         args: list[Any]) -> Sequence[Any] | None:
        """The rows, or None if the driver failed (the connection must then be invalidated)."""
        driver = connection.driver_connection
        assert driver is not None
        try:
            if compiled.asyncpg:
                result: Sequence[Any] = await driver.fetch(compiled.sql, *args)
            else:
                result = await driver.execute_fetchall(compiled.sql, args)
        except Exception:
            return None
        return result

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
