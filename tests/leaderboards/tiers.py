"""Fixtures running a test on three tiers: SQLite (the in-process index), PostgreSQL without
Redis (the in-process index beside PostgreSQL) and PostgreSQL with Redis (the shared index).

A test module imports ``tier``, ``backend`` and ``settings`` from here to replace the
session-wide fixtures (whose PostgreSQL runs always use Redis when it is configured).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from questline.kit.settings import Settings
from tests.conftest import PG_URL, REDIS_URL

TIERS = ["sqlite"] + (["postgres"] if PG_URL else []) + (["postgres+redis"] if PG_URL and REDIS_URL else [])


@pytest.fixture(params=TIERS)
def tier(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(tier: str) -> str:
    return tier.split("+", maxsplit=1)[0]


@pytest.fixture
def settings(database_url: str, tier: str, tmp_path: Path) -> Settings:
    assert tier in TIERS
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=REDIS_URL if tier.endswith("+redis") else None,
        redis_namespace=f"qltest:{uuid.uuid4().hex[:8]}",
        secret_key="test-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        log_json=False,
        media_dir=tmp_path / "media",
    )
