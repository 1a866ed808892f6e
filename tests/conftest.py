"""Test harness: real databases, no mocks of our own storage.

- SQLite always: a migrated template file is made once per session and copied per test.
- PostgreSQL when ``QUESTLINE_TEST_DATABASE_URL`` is set: a fresh database is created for the
  session (and dropped after); tests stay apart because each makes its own app.
- Redis when ``QUESTLINE_TEST_REDIS_URL`` is set: the PostgreSQL runs use it, with a key
  namespace of their own.
- With ``QUESTLINE_REQUIRE_SERVICES=1`` (CI) an unreachable PostgreSQL or Redis fails the run.

Under pytest-xdist (``scripts/test``) each worker process is a session of its own: its own SQLite
template and its own PostgreSQL database, so no two workers ever share a table.

Tests that take the ``backend`` fixture (directly or through ``engine``/``client``) run once per
available backend: ``sqlite`` and ``postgres``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import hypothesis  # noqa: F401  - imported up front: its late import at session end trips a CPython 3.11 AST bug
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from questline import migrations
from questline.app import create_app
from questline.fulfilment.models import Fulfilment
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.jobs import JobRun
from questline.kit.logging import configure_logging
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.mechanics import install
from questline.notifications.models import Delivery as NotificationDelivery
from questline.tenancy import service as tenancy
from questline.tenancy.schemas import Role

# anyio loads its file helpers lazily, and pytest rewrites anyio (a plugin) on import: load them
# now, at a shallow stack, not mid-request (where CPython 3.11.7's parser can fail spuriously).
_ = anyio.open_file
PG_URL = os.environ.get("QUESTLINE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("QUESTLINE_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("QUESTLINE_REQUIRE_SERVICES") == "1"
# The domain suite on the JetStream event log (nats://…): every test gets streams of its own.
EVENT_LOG = os.environ.get("QUESTLINE_TEST_EVENT_LOG") or None
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
# A bound against a lifespan that hangs, not a timing: asgi-lifespan's 5-second default failed engine
# startups on a loaded box (tests in parallel beside other work, load 12).
LIFESPAN_SECONDS = 120


def _check_services() -> None:
    problems = []
    if PG_URL:
        try:
            asyncio.run(_pg_ping(PG_URL))
        except Exception as exc:
            problems.append(f"PostgreSQL at {PG_URL} is unreachable: {exc!r}")
    if REDIS_URL:
        try:
            asyncio.run(_redis_ping(REDIS_URL))
        except Exception as exc:
            problems.append(f"Redis at {REDIS_URL} is unreachable: {exc!r}")
    if REQUIRE_SERVICES and (not PG_URL or not REDIS_URL):
        problems.append("QUESTLINE_REQUIRE_SERVICES=1 needs QUESTLINE_TEST_DATABASE_URL and QUESTLINE_TEST_REDIS_URL")
    if problems:
        pytest.exit("\n".join(problems), returncode=3)


async def _pg_ping(url: str) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database, timeout=5)
    await conn.close()


async def _redis_ping(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


def pytest_configure(config: pytest.Config) -> None:
    _check_services()
    # Plain JSON lines: structlog's default console renderer draws rich tracebacks with
    # locals, which takes seconds per logged error.
    configure_logging("WARNING", json=True)


# Files of long tests that are not marked slow (which would keep them out of the JetStream pass):
# 10 to 35 s each in CI's main pass.
LONG_FILES = ("tests/pipeline/test_replay_fidelity.py", "tests/scale/", "tests/foundation/test_access.py",
              "tests/foundation/test_fuzz.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # In a pytest-xdist worker (scripts/test), the long tests (marked slow: real processes, drills,
    # generated requests; then LONG_FILES) go first, so that none starts late and ends the pass on
    # one worker while the other has nothing left to take (scripts/test steals work: --dist worksteal).
    # The order is stable, and the same in every worker as xdist requires.
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: (item.get_closest_marker("slow") is None, not item.nodeid.startswith(LONG_FILES)))


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"questline backends: sqlite{' + postgres' if PG_URL else ''}{' + redis' if REDIS_URL else ''}"
             f"{f'; event log on JetStream at {EVENT_LOG}' if EVENT_LOG else ''}"]
    if not PG_URL:
        lines.append("SKIPPING the PostgreSQL suite: QUESTLINE_TEST_DATABASE_URL is not set")
    if not REDIS_URL:
        lines.append("SKIPPING the Redis suite: QUESTLINE_TEST_REDIS_URL is not set")
    return lines


BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
# A pass may keep some backends only (the JetStream pass of scripts/test runs on PostgreSQL, the scaled tier's).
if os.environ.get("QUESTLINE_TEST_BACKENDS"):
    BACKENDS = [b for b in BACKENDS if b in os.environ["QUESTLINE_TEST_BACKENDS"].split(",")] or BACKENDS[:1]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrations.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    import asyncpg

    base = make_url(PG_URL)
    name = f"questline_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, sqlite_template: Path, postgres_database: str | None, tmp_path: Path) -> str:
    if backend == "postgres":
        assert postgres_database is not None
        return postgres_database
    path = tmp_path / "questline.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str, backend: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=REDIS_URL if backend == "postgres" else None,
        redis_namespace=f"qltest:{uuid.uuid4().hex[:8]}",
        secret_key="test-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        log_json=False,
        media_dir=tmp_path / "media",
        event_log=EVENT_LOG,
        event_log_namespace=f"qlt{uuid.uuid4().hex[:10]}",
        # argon2 at its minimum: the suite makes hundreds of admins (docs/benchmarks.md, "Test suite time")
        password_hash_cost="low",
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def runtime(settings: Settings, clock: ManualClock) -> AsyncIterator[Runtime]:
    rt = Runtime.build(settings, clock)
    install(rt)
    if not settings.is_sqlite:
        # Tests share one PostgreSQL database and all start at the same fake time, while a job
        # runs once per period per database: forget earlier tests' claims, or a test's tick
        # finds its period already taken by another test.
        async with unit_of_work(rt.sessions) as session:
            await session.execute(sa.delete(JobRun))
            # The fulfilment worker takes due records of every app: earlier tests' records left
            # pending (starter rewards, pass rewards with no target set) would be taken too.
            await session.execute(sa.delete(Fulfilment))
            # The notifications sender takes due deliveries of every app too: an earlier test's
            # delivery left failing (the egress test's refused Telegram call) would be retried in another's.
            await session.execute(sa.delete(NotificationDelivery))
    yield rt
    await rt.close()
    if settings.event_log:
        from questline.pipeline.stream import StreamLog

        log = StreamLog(settings)
        await log.delete_streams()
        await log.close()


def lifespan(app: FastAPI) -> LifespanManager:
    """Run ``app``'s startup and shutdown (``async with lifespan(app):``), bounded only against a hang."""
    return LifespanManager(app, startup_timeout=LIFESPAN_SECONDS, shutdown_timeout=LIFESPAN_SECONDS)


_heap = {"engine_built": False, "settled": False}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """Once, after the teardown of the first test that built an engine: what is still alive once its
    fixtures are gone (modules, the API's routes, caches: objects kept for the whole session) is
    collected and moved out of the garbage collector's reach (``gc.freeze``, as ``questline serve``
    does once started). Each full collection walked all of it again: about a fifth of the CPU of a
    run of short tests (docs/benchmarks.md, "Test suite time")."""
    result = yield
    if _heap["engine_built"] and not _heap["settled"]:
        _heap["settled"] = True
        gc.collect()
        gc.freeze()
    return result


@pytest.fixture
async def engine(runtime: Runtime) -> AsyncIterator[FastAPI]:
    """The engine with its lifespan running but no background loops (tests drive them)."""
    app = create_app(runtime=runtime, background=False)
    _heap["engine_built"] = True
    async with lifespan(app):
        yield app


@pytest.fixture
async def client(engine: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=engine, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://questline.test") as c:
        yield c


@dataclass
class AppKeys:
    org_id: str
    app_id: str
    server_key: str
    client_key: str

    @property
    def server(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.server_key}"}

    @property
    def client(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.client_key}"}


@dataclass
class AdminLogin:
    admin_id: str
    email: str
    password: str
    access_token: str

    def headers(self, app_id: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.access_token}"}
        if app_id:
            h["X-Questline-App"] = app_id
        return h


class Factory:
    """Small ``create_*`` helpers that write through the real services."""

    def __init__(self, runtime: Runtime, client: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.client = client

    async def app(self, name: str = "Test Game", org_id: str | None = None) -> AppKeys:
        async with unit_of_work(self.runtime.sessions) as session:
            if org_id is None:
                org_id = (await tenancy.create_org(session, self.runtime.clock, f"Org {uuid.uuid4().hex[:6]}")).id
            app, server_key, client_key = await tenancy.create_app(session, self.runtime.clock, org_id, name)
        return AppKeys(org_id, app.id, server_key, client_key)

    async def admin(self, org_id: str | None = None, role: Role = Role.ADMIN) -> AdminLogin:
        email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
        password = "correct horse battery staple"
        async with unit_of_work(self.runtime.sessions) as session:
            admin = await tenancy.create_admin(session, self.runtime.clock, email, password, "Tester")
            if org_id:
                await tenancy.add_member(session, self.runtime.clock, org_id, email, role)
        resp = await self.client.post("/v1/auth/login", json={"email": email, "password": password})
        assert resp.status_code == 200, resp.text
        return AdminLogin(admin.id, email, password, resp.json()["access_token"])

    async def player_token(self, keys: AppKeys, player_id: str) -> dict[str, str]:
        resp = await self.client.post(f"/v1/players/{player_id}/tokens", headers=keys.server, json={})
        assert resp.status_code == 201, resp.text
        return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.fixture
def factory(runtime: Runtime, client: httpx.AsyncClient) -> Factory:
    return Factory(runtime, client)


def problem(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``resp`` is an RFC 9457 problem with this status (and code) and return its body."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["request_id"] and body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body


async def run_cli(args: list[str], settings: Settings) -> Any:
    """Invoke the ``questline`` CLI against the test database (in a thread: it runs its own loop)."""
    from typer.testing import CliRunner

    from questline.cli.main import app as cli

    env = {"QUESTLINE_DATABASE_URL": settings.database_url, "QUESTLINE_LOG_JSON": "false"}
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
