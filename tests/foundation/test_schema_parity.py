"""An empty database is built from the models and stamped (``migrations.upgrade``'s fast path):
that schema must be exactly what running every revision builds, on SQLite and PostgreSQL.

When this fails, a model and its migration disagree (a name, an index, a default, a type): make
the migration build what the model declares, or give the model the name the migration used."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from questline import migrations
from tests.conftest import PG_URL


@pytest.fixture
async def empty_pair(backend: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Two empty databases of their own (the session's shared one is already at every head)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}", f"sqlite+aiosqlite:///{tmp_path / 'models.db'}"
        return
    import asyncpg

    assert PG_URL is not None
    base = make_url(PG_URL)
    names = [f"questline_p_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        first, second = (base.set(database=n).render_as_string(hide_password=False) for n in names)
        yield first, second
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _schema(connection: sa.Connection) -> dict[str, Any]:
    """Every table as the database reports it: columns, keys, indexes and constraints, by name."""
    inspector = sa.inspect(connection)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        schema[table] = {
            "columns": {c["name"]: (str(c["type"]), c["nullable"], str(c.get("default")), c.get("autoincrement"))
                        for c in inspector.get_columns(table)},
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(table)),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
            "foreign keys": sorted((f["name"] or "", tuple(f["constrained_columns"]), f["referred_table"],
                                    tuple(f["referred_columns"]), str(f.get("options")))
                                   for f in inspector.get_foreign_keys(table)),
            "checks": sorted((c["name"] or "", c["sqltext"]) for c in inspector.get_check_constraints(table)),
            "options": inspector.get_table_options(table),  # storage parameters (fillfactor)
        }
    return schema


async def _read(url: str) -> tuple[dict[str, Any], set[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            schema = await conn.run_sync(_schema)
            versions = {row[0] for row in await conn.execute(sa.text("SELECT version_num FROM alembic_version"))}
    finally:
        await engine.dispose()
    return schema, versions


async def test_schema_from_models_equals_every_migration_applied(empty_pair: tuple[str, str]) -> None:
    migrated_url, created_url = empty_pair
    migrations.upgrade(migrated_url, from_models=False)  # every revision, one after the other
    migrations.upgrade(created_url)  # empty: create_all and stamp

    migrated, migrated_versions = await _read(migrated_url)
    created, created_versions = await _read(created_url)
    assert migrations.is_current(created_versions) and migrations.is_current(migrated_versions)
    assert created_versions == migrated_versions
    assert sorted(created) == sorted(migrated), "the same tables"
    differences = [f"{table}.{part}: migrated {migrated[table][part]!r}\n    from models {created[table][part]!r}"
                   for table in migrated for part in migrated[table] if migrated[table][part] != created[table][part]]
    assert not differences, "\n".join(differences)

    # Upgrading either again is a no-op through Alembic (neither is empty any more).
    migrations.upgrade(created_url)
    assert await _read(created_url) == (created, created_versions)


def _names(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def test_the_revision_map_read_without_alembic_is_alembics() -> None:
    """``migrations.revisions()`` (read from the files' text, so a current server never loads
    Alembic) names the same revisions, down revisions, dependencies and heads as Alembic does."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrations.alembic_config("sqlite+aiosqlite:///unused"))
    theirs = {r.revision: (tuple(sorted(r._versioned_down_revisions)), tuple(sorted(_names(r.dependencies))))
              for r in script.walk_revisions()}
    ours = {name: (tuple(sorted(r.down)), tuple(sorted(r.depends_on))) for name, r in migrations.revisions().items()}
    assert ours == theirs
    assert migrations.heads() == set(script.get_heads())
    for name, revision in migrations.revisions().items():  # ids, not branch labels: the walk follows ids
        assert set(revision.down) | set(revision.depends_on) <= set(ours), name
    assert migrations.is_current(migrations.stamp_rows())
    # A database one revision behind on a branch is not current.
    graph = migrations.revisions()
    tip = next(head for head in sorted(migrations.stamp_rows())
               if graph[head].down and not any(head in r.depends_on for r in graph.values()))
    assert not migrations.is_current(migrations.stamp_rows() - {tip} | set(graph[tip].down))
