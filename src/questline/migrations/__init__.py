"""Schema migrations (Alembic), shipped inside the package so an install can migrate itself.

Each area's migrations form a branch off ``0001_foundation`` (``branch_labels = ("<area>",)``),
so areas evolve independently; ``upgrade`` applies every head.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


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
