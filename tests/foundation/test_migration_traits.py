"""Migration 0102: players' old ``attributes`` become traits; competitions' ``entry.attributes``
becomes ``entry.gating.traits``; and back down again. On SQLite (batch mode) and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from questline import migrations
from tests.conftest import PG_URL

BEFORE = "0101_tenancy_sessions"  # the revision before the split
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
async def fresh_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own (the session's shared one is already at every head)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
        return
    import asyncpg

    assert PG_URL is not None
    base = make_url(PG_URL)
    name = f"questline_m_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


def as_json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


async def test_attributes_become_traits_and_entry_attributes_become_gating(fresh_url: str) -> None:
    migrations.upgrade(fresh_url)
    migrations.downgrade(fresh_url, BEFORE)  # the schema as it was, with attributes
    await run(fresh_url, "INSERT INTO organizations (id, name, created_at) VALUES ('org_m', 'Org', :now)", now=NOW)
    await run(fresh_url, "INSERT INTO apps (id, org_id, name, config_version, client_event_types, created_at) "
                         "VALUES ('app_m', 'org_m', 'Game', 0, '[]', :now)", now=NOW)
    for pid, attributes in (("gym-rat", '{"gym": "north", "tier": "vip"}'), ("plain", "{}")):
        await run(fresh_url, "INSERT INTO players (app_id, player_id, timezone, leaderboard_visibility, "
                             "display_name_type, show_on_global_leaderboard, attributes, created_at, updated_at) "
                             "VALUES ('app_m', :pid, 'UTC', 'public', 'username', true, :attrs, :now, :now)",
                  pid=pid, attrs=attributes, now=NOW)
    config = ('{"scoring": {"event_type": "trade"}, "prizes": {"tiers": []}, '
              '"entry": {"attributes": {"tier": "vip"}, "gating": {"whitelist": ["gym-rat"]}}}')
    await run(fresh_url, "INSERT INTO competitions (id, app_id, name, status, starts_at, ends_at, config, "
                         "participant_count, fees_collected, sponsor_amount, leaders, distribution_batch, "
                         "distribution_status, created_at) VALUES ('cmp_m', 'app_m', 'Cup', 'upcoming', :now, :now, "
                         ":config, 0, 0, 0, '[]', 0, 'none', :now)", now=NOW, config=config)

    migrations.upgrade(fresh_url)
    rows = await run(fresh_url, "SELECT player_id, traits, preferences, avatar_url FROM players ORDER BY player_id")
    assert [(r[0], as_json(r[1]), as_json(r[2]), r[3]) for r in rows] == [
        ("gym-rat", {"gym": "north", "tier": "vip"}, {}, None), ("plain", {}, {}, None)]
    entry = as_json((await run(fresh_url, "SELECT config FROM competitions"))[0][0])["entry"]
    assert entry == {"gating": {"whitelist": ["gym-rat"], "traits": {"tier": "vip"}}}

    migrations.downgrade(fresh_url, BEFORE)
    rows = await run(fresh_url, "SELECT player_id, attributes FROM players ORDER BY player_id")
    assert [(r[0], as_json(r[1])) for r in rows] == [("gym-rat", {"gym": "north", "tier": "vip"}), ("plain", {})]
    entry = as_json((await run(fresh_url, "SELECT config FROM competitions"))[0][0])["entry"]
    assert entry == {"gating": {"whitelist": ["gym-rat"]}, "attributes": {"tier": "vip"}}
