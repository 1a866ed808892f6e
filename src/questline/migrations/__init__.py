"""Schema migrations (Alembic), shipped inside the package so an install can migrate itself.

Each area's migrations form a branch off ``0001_foundation`` (``branch_labels = ("<area>",)``),
so areas evolve independently; ``upgrade`` applies every head.

An empty database skips the revision chain: its schema is created from the models in one pass
and stamped with every head, which is what running each revision would leave (a newcomer's first
start and every test database; ``tests/foundation/test_schema_parity.py`` compares the two on
SQLite and PostgreSQL so they cannot drift). A database with any table goes through Alembic.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import functools
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:  # Alembic is imported only when a revision must run: ~10 MB a server seldom needs
    from alembic.config import Config

HERE = Path(__file__).parent
T = TypeVar("T")
# What Alembic keeps its position in (the same table, so Alembic reads what the fast path wrote).
VERSION_TABLE = sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num", sa.String(32), nullable=False),
                         sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads", *, from_models: bool = True) -> None:
    """Bring the database to ``revision``. To ``heads``: an empty database straight from the models
    and a current one untouched, without loading Alembic (unless ``from_models`` is false: then
    Alembic runs every revision, as on a database that is behind)."""
    if from_models and revision == "heads" and _run_async(_create_or_check(database_url)):
        return
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def _run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to completion, in a thread with its own loop when called from async code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _create_or_check(database_url: str) -> bool:
    """On a database without tables: every model's table and the heads stamped, in one transaction.
    True when that was done or the database is already current; False when Alembic has work."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from questline.models import metadata

    def create(connection: sa.Connection) -> bool:
        tables = sa.inspect(connection).get_table_names()
        if VERSION_TABLE.name in tables:
            return is_current({row[0] for row in connection.execute(sa.select(VERSION_TABLE.c.version_num))})
        if tables:
            return False
        if connection.dialect.name == "sqlite":
            # Python's sqlite3 runs DDL outside a transaction unless one is open: one commit (and
            # one fsync) for the whole schema instead of one per table and index.
            connection.exec_driver_sql("BEGIN")
        metadata.create_all(connection)
        VERSION_TABLE.create(connection)
        connection.execute(VERSION_TABLE.insert(), [{"version_num": v} for v in sorted(stamp_rows())])
        return True

    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(create)
    finally:
        await engine.dispose()


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


@dataclass(frozen=True)
class Revision:
    down: tuple[str, ...]
    depends_on: tuple[str, ...]


def _names(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)  # type: ignore[attr-defined]


@functools.cache
def revisions() -> dict[str, Revision]:
    """Every revision and what it stands on, read from its file's assignments (``revision``,
    ``down_revision``, ``depends_on``) without importing Alembic; a test holds it to Alembic's own map."""
    found: dict[str, Revision] = {}
    for path in sorted((HERE / "versions").glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name, value = node.targets[0].id, node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                name, value = node.target.id, node.value
            else:
                continue
            if name in ("revision", "down_revision", "depends_on"):
                values[name] = ast.literal_eval(value)
        if "revision" in values:
            found[str(values["revision"])] = Revision(_names(values.get("down_revision")),
                                                      _names(values.get("depends_on")))
    return found


def heads() -> set[str]:
    """The revisions no other revision is built on."""
    graph = revisions()
    return set(graph) - {down for revision in graph.values() for down in revision.down}


def _below(tips: set[str]) -> set[str]:
    """``tips`` and everything they stand on (down revisions and dependencies)."""
    graph = revisions()
    applied: set[str] = set()
    todo = list(tips)
    while todo:
        name = todo.pop()
        if name in applied or name not in graph:
            continue
        applied.add(name)
        todo.extend([*graph[name].down, *graph[name].depends_on])
    return applied


def stamp_rows() -> set[str]:
    """The ``alembic_version`` rows of a database at every head, as Alembic writes them: one per
    head, less a head that another head depends on."""
    tips = heads()
    return {head for head in tips if not any(head in _below({other}) for other in tips - {head})}


def is_current(versions: set[str]) -> bool:
    """Whether a database whose ``alembic_version`` holds ``versions`` has every migration applied.

    Alembic keeps one row per branch tip, leaving out a head that another row depends on, so
    every head must be one of those rows or below one of them."""
    return heads() <= _below(versions)


async def schema_state(engine: AsyncEngine) -> str:
    """"ok" when every migration is applied; otherwise what to do (``questline migrate``)."""
    from sqlalchemy.exc import DBAPIError

    async with engine.connect() as conn:
        try:
            rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return "not migrated: run `questline migrate`"
        current = {row[0] for row in rows}
    return "ok" if is_current(current) else "behind: run `questline migrate`"
