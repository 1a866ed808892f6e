"""Database engine, sessions and the declarative base shared by every area.

Sessions are opened and committed at the edges only (request, worker batch, CLI command);
services receive an ``AsyncSession`` and never commit.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only

from questline.kit.clock import ensure_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The table options of tables whose rows the worker rewrites batch after batch (stat cells, tracks,
# progress): PostgreSQL keeps 30% of each page free, so an updated row's new version fits on its
# page and no index entry is written for it (a HOT update: with full pages 1.5% of the stat cells'
# updates were, at 70% all; an upsert of 1,164 cells took 30-40% less time, interleaved in psql).
REWRITTEN_ROWS = {"postgresql_with": {"fillfactor": 70}}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# A 64-bit integer that is still SQLite's rowid alias when used as an autoincrement key.
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware UTC datetimes (SQLite keeps them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        aware = ensure_utc(value)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else ensure_utc(value)

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        # asyncpg decodes timestamptz as aware UTC datetimes already: no per-value call (the worker
        # reads hundreds of thousands of them).
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


SQLITE_BUSY_SECONDS = 30.0  # how long a writer waits for SQLite's write lock before "database is locked"


def _batch_inserts(engine: AsyncEngine) -> AsyncEngine:
    """Send a many-row INSERT (upserts included) as one multi-row statement per page, not one per row.

    Drivers run an ``executemany`` as one execution per row (asyncpg pipelines them, but the
    server still executes each); the worker's flushes insert hundreds of rows per batch.
    """
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def create_engine(database_url: str, *, pool_size: int = 10, pool_timeout: float = 10.0) -> AsyncEngine:
    # orjson for JSON columns: the worker writes many payloads per batch.
    json_options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if database_url.startswith("sqlite"):
        engine = create_async_engine(
            database_url,
            **json_options,
            connect_args={"timeout": SQLITE_BUSY_SECONDS},
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=pool_timeout,
        )
        _configure_sqlite(engine)
        return _batch_inserts(engine)
    # No pre-ping: it would cost a round trip on every checkout. A connection found dead on use
    # is invalidated (with every older one in the pool) and the request edge runs the request
    # once more on a fresh one (``kit.routing``).
    return _batch_inserts(create_async_engine(
        database_url,
        **json_options,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        connect_args={"timeout": 5, "command_timeout": 30},
    ))


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE for writers.

    SQLite's default deferred transactions fail with "database is locked" when a reader
    upgrades to a writer after another writer committed; taking the write lock at BEGIN
    makes concurrent writers queue on the busy timeout instead. Read-only sessions opt out
    with the ``sqlite_begin=None`` execution option: no transaction at all, each statement
    reads the latest committed state.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
        cursor.close()

    gate = _WriteGate()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode is not None:
            gate.enter(conn.connection)
            try:
                conn.exec_driver_sql(f"BEGIN {mode}")
            except BaseException:
                gate.leave(conn.connection)
                raise

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(dbapi_conn: Any, _record: Any) -> None:
        gate.leave(dbapi_conn)  # a transaction never settled (a dropped connection) frees the gate too

    _skip_idle_settles(engine.sync_engine.dialect, gate)


class _WriteGate:
    """SQLite's one write lock, queued in the process before it is asked for.

    Without it, a writer that finds the lock taken sleeps in SQLite's busy handler (in steps of up
    to 100 ms) and asks again: a writer that takes the lock again and again (the worker, batch
    after batch) wins every race against one that polls, and ingest waits for seconds. Writers of
    this process instead queue here in arrival order and each is woken the moment the one before
    it commits or rolls back. Other processes still meet at SQLite's lock and its busy timeout."""

    def __init__(self) -> None:
        self.timeout = SQLITE_BUSY_SECONDS
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holder: Any = None

    def enter(self, dbapi_conn: Any) -> None:
        """Called inside SQLAlchemy's greenlet (a transaction's BEGIN): waits for the gate."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # an engine outliving its event loop (tests)
            self._lock, self._loop, self._holder = asyncio.Lock(), loop, None
        await_only(self._acquire(self._lock))
        self._holder = _driver(dbapi_conn)

    async def _acquire(self, lock: asyncio.Lock) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await lock.acquire()
        except TimeoutError:  # what SQLite says past its busy timeout: load, retried by the callers that retry
            import sqlite3  # here, not at start: a PostgreSQL engine never loads it (idle memory)

            raise sa.exc.OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked")) from None

    def leave(self, dbapi_conn: Any) -> None:
        """After a COMMIT or ROLLBACK (or the connection's return to the pool): frees the gate if
        this connection holds it."""
        if self._lock is not None and self._holder is not None and self._holder is _driver(dbapi_conn):
            self._holder = None
            self._lock.release()


def _driver(dbapi_conn: Any) -> Any:
    """The aiosqlite connection under a pooled proxy or a DBAPI adapter (one key for both)."""
    return getattr(dbapi_conn, "driver_connection", dbapi_conn)


def _skip_idle_settles(dialect: sa.Dialect, gate: _WriteGate) -> None:
    """No COMMIT or ROLLBACK for a connection that has no transaction open (a read-only session's).

    SQLite would do nothing for them either, but aiosqlite sends each call to the connection's
    thread and back: two thread hops per read request for nothing. Whether a transaction is open
    is SQLite's own answer (``in_transaction``), read without a hop; the connections run in
    autocommit mode (``isolation_level = None``) with our own BEGIN, so it is exact.
    """
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            if _in_transaction(dbapi_connection):
                commit(dbapi_connection)
        finally:
            gate.leave(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            if _in_transaction(dbapi_connection):
                rollback(dbapi_connection)
        finally:
            gate.leave(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _in_transaction(dbapi_connection: Any) -> bool:
    driver = getattr(dbapi_connection, "driver_connection", None)  # aiosqlite.Connection
    try:
        return bool(driver.in_transaction) if driver is not None else True
    except Exception:  # closed or not an aiosqlite connection: let the driver answer as before
        return True


# Where a session factory keeps the number of relay partitions outbox rows are written into
# (``Settings.relay_partitions``; ``pipeline.repository.add_outbox`` reads it).
OUTBOX_PARTITIONS_INFO_KEY = "questline.outbox_partitions"


def session_factory(engine: AsyncEngine, *, readonly: bool = False,
                    info: dict[str, Any] | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions for writers (one transaction), or with ``readonly`` for readers: no transaction at all
    (no BEGIN/ROLLBACK round trips; every statement sees the latest committed state). ``info`` is
    copied into every session's ``session.info`` (the runtime's cache hub rides there)."""
    bind = engine
    if readonly:
        bind = (engine.execution_options(sqlite_begin=None) if engine.dialect.name == "sqlite"
                else engine.execution_options(isolation_level="AUTOCOMMIT"))
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False, info=info)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session committed on success and rolled back on error: the edge of a CLI or job."""
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            session.info.pop("after_commit", None)
            raise
        await session.commit()
        await run_after_commit(session)


def insert_ignore(session: AsyncSession, table: Any) -> Any:
    """An ``INSERT ... ON CONFLICT DO NOTHING`` for the session's dialect."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def many(stmt: Any) -> Any:
    """An upsert prepared to run for many rows as multi-row statements (pages of up to 1,000 rows).

    ``_batch_inserts`` turns a many-row INSERT into multi-row statements, but SQLAlchemy applies
    it to ``ON CONFLICT`` statements only when they return something; the rows returned here
    are ignored. The rows of one call must not repeat a conflict key.
    """
    return stmt.returning(sa.literal_column("1"))


def among(column: Any, name: str, dialect: str) -> Any:
    """``column`` is one of the list bound as ``name``.

    PostgreSQL gets ``= ANY(:name)``: one statement text for any number of values, so its prepared
    statement is reused; SQLite an expanding ``IN`` (compiled once per list length).
    """
    if dialect == "postgresql":
        return column == sa.func.any(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(sa.bindparam(name, expanding=True))


def each_of(name: str, dialect: str, build: Callable[[Callable[[Any], Any]], Any], type_: Any = None) -> Any:
    """The rows of ``build(match)`` for each value of the list bound as ``name``, a list as long as a
    batch (its players; no value twice): ``build`` makes a select whose WHERE has ``match(column)``,
    "``column`` is the value".

    On PostgreSQL the select runs once per value, ``unnest(:name) JOIN LATERAL (select … OFFSET 0)``,
    so every value is one probe of an index that leads with the app and the column, whatever the
    planner knows of the table. With ``column = ANY(:name)`` asyncpg's prepared statement gets
    PostgreSQL's generic plan after five runs, blind to the array's length: it scanned the app's
    rows and searched the array linearly for each (a batch's stats load, 100 players among 1,000:
    40-90 ms of the server's CPU, against about 2). ``IN (SELECT unnest(…))`` let the planner put
    the table outside and was worse; ``OFFSET 0`` keeps it from flattening the subquery. Elsewhere
    (SQLite) an expanding ``IN``; either way the statement text is built once (``PerDialect``)."""
    if dialect != "postgresql":
        return build(lambda column: column.in_(sa.bindparam(name, expanding=True)))
    values = (sa.func.unnest(sa.bindparam(name, type_=postgresql.ARRAY(type_ or sa.String())))
              .table_valued("value").render_derived(name=f"each_{name}"))
    one = build(lambda column: column == values.c.value).offset(sa.literal_column("0")).lateral(f"one_{name}")
    return sa.select(*one.c).select_from(values.join(one, sa.true()))


class PerDialect:
    """A statement built once per dialect (``build(dialect_name)``), for hot paths that run it often.

    On asyncpg it is also compiled once to the driver's own form (``native``), so ``rows_of`` and
    ``run`` can send it on the bare driver connection (see ``_Native``)."""

    def __init__(self, build: Callable[[str], Any]) -> None:
        self._build = build
        self._built: dict[str, Any] = {}
        self._native: _Native | None = None
        self._native_done = False

    def on(self, dialect: str) -> Any:
        found = self._built.get(dialect)
        if found is None:
            found = self._built[dialect] = self._build(dialect)
        return found

    def native(self, dialect: sa.Dialect) -> _Native | None:
        """The statement as asyncpg takes it, or None if it needs SQLAlchemy's processing."""
        if not self._native_done:
            self._native = _Native.compile(self.on(dialect.name), dialect)
            self._native_done = True
        return self._native


class _Native:
    """A statement compiled once for asyncpg: its ``$n`` text and how named parameters become
    positional ones (bind processors applied, literal values filled in).

    SQLAlchemy costs the worker 100–250 µs of CPU per statement above asyncpg's own 20–30 µs
    (building the execution context, processing parameters and rows, the cursor adapter); a
    worker batch sends a dozen or two of these statements. Only statements whose results need no
    processing in Python qualify (``compile`` returns None otherwise)."""

    __slots__ = ("defaults", "names", "processors", "text")

    def __init__(self, text: str, names: tuple[str, ...], defaults: dict[str, Any],
                 processors: tuple[Callable[[Any], Any] | None, ...]) -> None:
        self.text, self.names, self.defaults, self.processors = text, names, defaults, processors

    @classmethod
    def compile(cls, statement: Any, dialect: sa.Dialect) -> _Native | None:
        if dialect.driver != "asyncpg":
            return None
        compiled: Any = statement.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            return None
        for column in getattr(compiled, "_result_columns", ()):
            if column.type._cached_result_processor(dialect, None) is not None:
                return None  # a value the driver hands back differently than SQLAlchemy would
        names = tuple(compiled.positiontup or ())
        defaults = {name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required}
        bind_processors = compiled._bind_processors
        processors = tuple(bind_processors.get(name) for name in names)
        if any(isinstance(p, tuple) for p in processors):
            return None  # tuple-typed parameters
        return cls(compiled.string, names, defaults, processors)

    def args(self, params: dict[str, Any]) -> list[Any]:
        values = {**self.defaults, **params} if self.defaults else params
        return [value if process is None else process(value)
                for value, process in zip(map(values.__getitem__, self.names), self.processors, strict=True)]


_record: Any = None


def _record_class() -> Any:
    """asyncpg's rows with attribute access too (``row.player_id``), as SQLAlchemy's rows have."""
    global _record
    if _record is None:
        import asyncpg  # type: ignore[import-untyped]

        class Row(asyncpg.Record):  # type: ignore[misc]
            __slots__ = ()

            def __getattr__(self, name: str) -> Any:
                try:
                    return self[name]
                except KeyError:
                    raise AttributeError(name) from None

        _record = Row
    return _record


async def _driver_of(connection: Any) -> tuple[Any, Any] | None:
    """(the asyncpg connection, SQLAlchemy's adapter of it) under an ``AsyncConnection``, when a
    statement may go there directly: its transaction already begun by SQLAlchemy (or none
    wanted: autocommit), so the statement runs in the same transaction as the session's others."""
    sync = connection.sync_connection
    if sync is None or sync.closed or sync.invalidated or connection.dialect.driver != "asyncpg":
        return None
    fairy = sync.connection
    adapter, driver = fairy.dbapi_connection, fairy.driver_connection
    if adapter is None or driver is None or not (driver.is_in_transaction() or adapter.autocommit):
        return None  # SQLAlchemy begins the transaction with the next statement it sends
    return driver, adapter


async def driver_call(connection: Any, text: str, args: Sequence[Any], *, fetch: bool) -> Any:
    """Send ``text`` ($n parameters) on the bare asyncpg connection under ``connection`` (which
    ``_driver_of`` accepted): the rows if ``fetch``, else the number of rows it touched.

    Listeners of the engine's ``before_cursor_execute``/``after_cursor_execute`` hear it as they
    would from SQLAlchemy (without a cursor or context), so statement counters still count it;
    errors come out as SQLAlchemy's (``DBAPIError`` with the driver's error as ``orig``), and a
    lost connection is invalidated as SQLAlchemy would."""
    sync = connection.sync_connection
    dispatch = sync.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(sync, None, text, args, None, False)
    fairy = sync.connection
    driver = fairy.driver_connection
    try:
        if fetch:
            result: Any = await driver.fetch(text, *args, record_class=_record_class())
        else:
            status = await driver.execute(text, *args)
            tail = status.rpartition(" ")[2]
            result = int(tail) if tail.isdigit() else -1
    except Exception as error:
        raise await _translated(connection, fairy.dbapi_connection, text, args, error) from error
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(sync, None, text, args, None, False)
    return result


async def _translated(connection: Any, adapter: Any, text: str, args: Sequence[Any],
                      error: Exception) -> BaseException:
    """The error SQLAlchemy would have raised for ``error`` (its DBAPI translation, wrapped)."""
    try:
        adapter._handle_exception(error)  # raises the DBAPI-level translation
    except Exception as dbapi_error:
        error = dbapi_error
    dialect = connection.dialect
    lost = isinstance(error, dialect.loaded_dbapi.Error) and dialect.is_disconnect(error, adapter, None)
    wrapped = sa.exc.DBAPIError.instance(text, list(args), error, dialect.loaded_dbapi.Error,
                                         connection_invalidated=lost, dialect=dialect)
    if lost:
        await connection.invalidate(wrapped if isinstance(wrapped, Exception) else None)
    return wrapped


_CONNECTION = "questline.connection"  # session.info: (the transaction, its AsyncConnection)


async def connection_of(session: AsyncSession) -> AsyncConnection:
    """``session.connection()``, remembered for the session's current transaction: the worker's
    prebuilt statements ask for it a dozen times a batch, each a greenlet hop into the ORM."""
    transaction = session.sync_session.get_transaction()
    found = session.info.get(_CONNECTION)
    if transaction is not None and found is not None and found[0] is transaction:
        return cast(AsyncConnection, found[1])
    connection = await session.connection()
    session.info[_CONNECTION] = (session.sync_session.get_transaction(), connection)
    return connection


async def _native_call(connection: Any, statement: PerDialect, params: dict[str, Any], *, fetch: bool) -> Any:
    """``statement`` on the bare driver if it qualifies, else None (then SQLAlchemy runs it)."""
    native = statement.native(connection.dialect)
    if native is None or await _driver_of(connection) is None:
        return None
    return await driver_call(connection, native.text, native.args(params), fetch=fetch)


def player_rows(model: Any, *match: str) -> PerDialect:
    """A read of ``model``'s whole rows (plain rows, no ORM objects) of one app (bound as ``app``)
    and some players (bound as ``players``), each column of ``match`` one of a list bound under
    its own name: what the worker's processors load per batch (see ``rows_of``)."""
    table = model.__table__

    def build(dialect: str) -> Any:
        return each_of("players", dialect, lambda player: sa.select(*table.c).where(
            table.c.app_id == sa.bindparam("app"), player(table.c.player_id),
            *[among(table.c[name], name, dialect) for name in match]))

    return PerDialect(build)


async def rows_of(session: AsyncSession, statement: PerDialect, params: dict[str, Any]) -> Sequence[Any]:
    """Run a prebuilt statement that returns rows on the session's connection (in its transaction):
    plain rows (unpack them, index them or read columns as attributes), on asyncpg from the bare
    driver (see ``_Native``), elsewhere from SQLAlchemy's Core without the ORM's machinery."""
    connection = await connection_of(session)
    rows = await _native_call(connection, statement, params, fetch=True)
    if rows is not None:
        return cast("Sequence[Any]", rows)
    return (await connection.execute(statement.on(connection.dialect.name), params)).all()


async def run(session: AsyncSession, statement: PerDialect, params: dict[str, Any], *, defer: bool = False) -> int:
    """Run a prebuilt statement whose rows are not wanted (as ``rows_of``); returns the rows it
    touched. With ``defer``, inside ``deferring`` on asyncpg, it is queued instead (returns -1)."""
    connection = await connection_of(session)
    if defer and _queue_of(session) is not None:
        native = statement.native(connection.dialect)
        if native is not None and await _driver_of(connection) is not None:
            await _enqueue(session, connection, f"statement {id(statement)}", native.text, native.args(params))
            return -1
    touched = await _native_call(connection, statement, params, fetch=False)
    if touched is not None:
        return cast(int, touched)
    return int((await connection.execute(statement.on(connection.dialect.name), params)).rowcount)


class Bulk:
    """A many-row INSERT of one table (optionally an upsert on ``key``, updating ``update``), for
    the worker's flushes.

    On PostgreSQL it is one statement whatever the number of rows: ``INSERT … SELECT * FROM
    json_to_recordset($1) AS x(column type, …)``, the rows serialized by orjson as one JSON
    parameter. The statement text is the same for any number of rows (prepared once per
    connection), and no value goes through Python one by one: SQLAlchemy's multi-row ``VALUES``
    renders a new statement (the server parses a new one) for every row count and processes every
    value of every row in Python, and arrays (``unnest``) cost asyncpg a check per element.
    Elsewhere (SQLite), and for rows JSON cannot carry as SQLAlchemy would store them, it is the
    SQLAlchemy statement as multi-row pages (``many``). Rows must all have the same keys, and not
    repeat a conflict key.
    """

    def __init__(self, table: Any, *, key: Sequence[str] = (), update: Sequence[str] = ()) -> None:
        self.table, self.key, self.update = table, tuple(key), tuple(update)
        self._texts: dict[tuple[str, ...], str] = {}
        self._fits: dict[tuple[str, ...], bool] = {}  # columns -> none left out that SQLAlchemy would fill
        self._json_columns = tuple(c.name for c in table.c if isinstance(c.type, sa.JSON))

    async def write(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        connection = await connection_of(session)
        columns = tuple(rows[0])
        payload = self._payload(columns, rows) if connection.dialect.driver == "asyncpg" else None
        if payload is None:
            await session.execute(self._statement(connection.dialect.name), rows)
            return
        text = self._text(columns, connection.dialect)
        if await _driver_of(connection) is not None:
            if _queue_of(session) is not None:
                await _enqueue(session, connection, self.table.name, text, (payload,))
            else:
                await driver_call(connection, text, (payload,), fetch=False)
        else:
            await connection.exec_driver_sql(text, (payload,))

    def _payload(self, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str | None:
        """The rows as one JSON array, or None when JSON cannot carry them as SQLAlchemy would
        store them: rows of other keys, a column left out that SQLAlchemy would fill in (a
        Python-side default), None in a JSON column (SQLAlchemy stores JSON ``null``, a record
        field SQL NULL), a value orjson does not write (beyond 64 bits, a Decimal)."""
        fits = self._fits.get(columns)
        if fits is None:
            given = set(columns)
            fits = self._fits[columns] = not any(
                c.name not in given and (c.default is not None or c.onupdate is not None) for c in self.table.c)
        if not fits:
            return None
        # Checked in C (map, keys views, ``in``): these run over every row of every flush.
        keys = rows[0].keys()
        if not all(map(keys.__eq__, map(dict.keys, rows))):
            return None
        if any(None in map(itemgetter(name), rows) for name in self._json_columns if name in keys):
            return None
        try:
            return orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()  # naive datetimes are UTC
        except TypeError:
            return None

    def _statement(self, dialect: str) -> Any:
        insert = postgresql.insert(self.table) if dialect == "postgresql" else sqlite.insert(self.table)
        if not self.key:
            return insert
        return many(insert.on_conflict_do_update(index_elements=list(self.key),
                                                 set_={c: insert.excluded[c] for c in self.update}))

    def _text(self, columns: tuple[str, ...], dialect: sa.Dialect) -> str:
        found = self._texts.get(columns)
        if found is None:
            quote = dialect.identifier_preparer.quote
            fields = ", ".join(f"{quote(name)} {self.table.c[name].type.compile(dialect=dialect)}"
                               for name in columns)
            # Rows with a JSON column (the outbox's payloads): jsonb_to_recordset hands each nested
            # value over as parsed, where json_to_recordset parses its text a second time (an
            # outbox of 644 rows: 2.3 ms of the server's time against 6.8). Flat rows parse faster
            # as json (1,704 stat cells: 13 ms against 18).
            kind = "jsonb" if any(name in self._json_columns for name in columns) else "json"
            found = (f'INSERT INTO {quote(self.table.name)} ({", ".join(map(quote, columns))}) '
                     f"SELECT * FROM {kind}_to_recordset($1::{kind}) AS x({fields})")
            if self.key:
                found += (f' ON CONFLICT ({", ".join(map(quote, self.key))}) DO UPDATE SET '
                          + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in self.update))
            self._texts[columns] = found
        return found


# Writes held back to go to the server together (see ``deferring``). session.info: (the
# transaction, [(what it writes, its $n text, its arguments)]).
_QUEUE = "questline.queued_writes"
_DEFERRING = "questline.deferring"
_joined_texts: dict[tuple[str, ...], str] = {}
_PARAMETER = re.compile(r"\$(\d+)")


@contextmanager
def deferring(session: AsyncSession) -> Iterator[None]:
    """Within it, ``Bulk`` writes (and ``run(..., defer=True)``) that would go to the bare asyncpg
    connection are queued instead of sent, until ``send_queued``: the worker's flushes go to the
    server as one statement (``WITH w0 AS (INSERT …), w1 AS (…) SELECT 1``), one round trip where
    there were one per table. Only for writes that nothing in the transaction reads (or
    references) before ``send_queued``: the queued rows are not there yet. Two writes of one
    table never share a statement (their rows could meet): the second sends the queue first."""
    before = session.info.get(_DEFERRING, False)
    session.info[_DEFERRING] = True
    try:
        yield
    finally:
        session.info[_DEFERRING] = before


def _queue_of(session: AsyncSession) -> list[tuple[str, str, tuple[Any, ...]]] | None:
    """The queue of the session's current transaction if writes are deferred now (a queue left by
    an earlier transaction, rolled back, is dropped)."""
    if not session.info.get(_DEFERRING):
        return None
    transaction = session.sync_session.get_transaction()
    found = session.info.get(_QUEUE)
    if found is None or found[0] is not transaction:
        found = session.info[_QUEUE] = (transaction, [])
    return cast("list[tuple[str, str, tuple[Any, ...]]]", found[1])


async def _enqueue(session: AsyncSession, connection: Any, what: str, text: str, args: Sequence[Any]) -> None:
    queue = _queue_of(session)
    assert queue is not None
    if any(queued == what for queued, _, _ in queue):
        await send_queued(session)
        queue = _queue_of(session)
        assert queue is not None
    queue.append((what, text, tuple(args)))


async def send_queued(session: AsyncSession) -> None:
    """Send the writes ``deferring`` queued in this transaction, as one statement."""
    found = session.info.pop(_QUEUE, None)
    if found is None or not found[1] or found[0] is not session.sync_session.get_transaction():
        return
    queued: list[tuple[str, str, tuple[Any, ...]]] = found[1]
    connection = await connection_of(session)
    if len(queued) == 1:
        await driver_call(connection, queued[0][1], queued[0][2], fetch=False)
        return
    texts = tuple(text for _, text, _ in queued)
    joined = _joined_texts.get(texts)
    if joined is None:
        parts, offset = [], 0
        for i, text in enumerate(texts):
            parts.append(f"w{i} AS ({_renumbered(text, offset)})")
            offset += max((int(m) for m in _PARAMETER.findall(text)), default=0)
        joined = _joined_texts[texts] = "WITH " + ", ".join(parts) + " SELECT 1"
    await driver_call(connection, joined, [arg for _, _, args in queued for arg in args], fetch=False)


def _renumbered(text: str, offset: int) -> str:
    """``text`` with each ``$n`` parameter moved on by ``offset`` (our statements quote no ``$``)."""
    return _PARAMETER.sub(lambda found: f"${int(found[1]) + offset}", text)


def upsert(session: AsyncSession, table: Any) -> Any:
    """A dialect ``insert`` with ``on_conflict_do_update`` available (``.excluded`` too)."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


# SQLSTATEs that mean "the server cannot serve us now", as opposed to "this query is wrong":
# class 08 (connection exception), shutdowns, "cannot connect now", too many connections.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLSTATEs that mean "this value cannot be stored": bytes the encoding cannot hold (NUL in
# text), strings too long for the column, numbers out of range, unparsable literals.
_BAD_VALUE_STATES = frozenset({"22000", "22001", "22003", "22007", "22008", "22021", "22P02", "22P05"})


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
    return None


def is_connection_error(exc: BaseException) -> bool:
    """True when the database could not be reached (as opposed to a query being wrong)."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        state = _sqlstate(exc)
        if state is not None:
            return state.startswith("08") or state in _UNAVAILABLE_STATES
        cause = getattr(exc.orig, "__cause__", None)
        if isinstance(cause, ConnectionError | TimeoutError) or _is_network_oserror(cause):
            return True
        if "connection is closed" in str(exc.orig) or "connection was closed" in str(exc.orig):
            return True
        # SQLite: the file cannot be opened or read (a lock is contention, not unavailability).
        return isinstance(exc, sa.exc.OperationalError) and _is_sqlite_error(exc) and not _is_sqlite_lock(exc)
    return isinstance(exc, ConnectionError | TimeoutError) or _is_network_oserror(exc)


def is_busy(exc: BaseException) -> bool:
    """Overload, not a bug: SQLite's write lock stayed taken past the busy timeout, or no pooled
    connection became free within the pool timeout."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    return isinstance(exc, sa.exc.OperationalError) and _is_sqlite_lock(exc)


def is_bad_value(exc: BaseException) -> bool:
    """True when the database refused a value it was given (bad input, not a broken query)."""
    if isinstance(exc, sa.exc.DBAPIError):
        # asyncpg reports its client-side encoding errors (an integer beyond 64 bits) as 22000.
        return _sqlstate(exc) in _BAD_VALUE_STATES
    # sqlite3 raises this one unwrapped.
    return isinstance(exc, OverflowError) and "SQLite INTEGER" in str(exc)


def _is_network_oserror(exc: BaseException | None) -> bool:
    """Socket-level failures (refused, reset, unreachable, DNS), not file-system errors."""
    if exc is None or not isinstance(exc, OSError):
        return False
    if isinstance(exc, socket.gaierror | ConnectionError | TimeoutError):
        return True
    # asyncio raises a bare OSError ("Multiple exceptions: ...") when every address failed.
    text = str(exc)
    return type(exc) is OSError and (
        exc.errno in _NETWORK_ERRNOS or "Connect call failed" in text or "Multiple exceptions" in text
    )


_NETWORK_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH,
    errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE, errno.EHOSTDOWN,
})


def _is_sqlite_error(exc: sa.exc.DBAPIError) -> bool:
    return type(exc.orig).__module__.startswith("sqlite3")


def _is_sqlite_lock(exc: sa.exc.DBAPIError) -> bool:
    return "database is locked" in str(exc.orig)


_log = structlog.get_logger("questline.db")
AfterCommit = Callable[[], Awaitable[None] | None]


def after_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run ``hook`` once this session's transaction has committed; drop it on rollback."""
    session.info.setdefault("after_commit", []).append(hook)


async def run_after_commit(session: AsyncSession) -> None:
    hooks: list[AfterCommit] = session.info.pop("after_commit", [])
    for hook in hooks:
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:  # a hook must never turn a committed success into an error
            _log.exception("after_commit_hook_failed")


