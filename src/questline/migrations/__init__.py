"""Schema migrations (Alembic), shipped inside the package so an install can migrate itself.

Each area's migrations form a branch off ``0001_foundation`` (``branch_labels = ("<area>",)``),
so areas evolve independently; ``upgrade`` applies every head.

An empty database skips the revision chain: its schema is created from the models in one pass
and stamped with every head, which is what running each revision would leave (a newcomer's first
start and every test database; ``tests/foundation/test_schema_parity.py`` compares the two on
SQLite and PostgreSQL so they cannot drift). A database with any table goes through Alembic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

HERE = Path(__file__).parent
T = TypeVar("T")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads", *, from_models: bool = True) -> None:
    """Bring the database to ``revision``; an empty one to ``heads`` straight from the models
    (unless ``from_models`` is false: then every revision runs, as on an existing database)."""
    if from_models and revision == "heads" and _run_async(_create_if_empty(database_url)):
        return
    command.upgrade(alembic_config(database_url), revision)


def _run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to completion, in a thread with its own loop when called from async code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _create_if_empty(database_url: str) -> bool:
    """On a database without tables: every model's table and the heads stamped, in one transaction."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from questline.models import metadata

    def create(connection: sa.Connection) -> bool:
        if sa.inspect(connection).get_table_names():
            return False
        if connection.dialect.name == "sqlite":
            # Python's sqlite3 runs DDL outside a transaction unless one is open: one commit (and
            # one fsync) for the whole schema instead of one per table and index.
            connection.exec_driver_sql("BEGIN")
        metadata.create_all(connection)
        MigrationContext.configure(connection).stamp(_script(), "heads")
        return True

    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(create)
    finally:
        await engine.dispose()


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite:///unused"))


def is_current(versions: set[str]) -> bool:
    """Whether a database whose ``alembic_version`` holds ``versions`` has every migration applied.

    Alembic keeps one row per branch tip, leaving out a head that another row depends on, so
    every head must be one of those rows or below one of them."""
    script = _script()
    applied: set[str] = set()
    todo = list(versions)
    while todo:
        revision = script.get_revision(todo.pop())
        if revision is None or revision.revision in applied:
            continue
        applied.add(revision.revision)
        for below in (revision.down_revision, revision.dependencies):
            todo.extend([below] if isinstance(below, str) else list(below or ()))
    return set(script.get_heads()) <= applied


async def schema_state(engine: AsyncEngine) -> str:
    """"ok" when every migration is applied; otherwise what to do (``questline migrate``)."""
    import sqlalchemy as sa
    from sqlalchemy.exc import DBAPIError

    async with engine.connect() as conn:
        try:
            rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return "not migrated: run `questline migrate`"
        current = {row[0] for row in rows}
    return "ok" if is_current(current) else "behind: run `questline migrate`"
