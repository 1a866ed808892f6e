"""Roles: one engine, run whole (``all``) or as ``api``, ``worker`` and ``scheduler`` processes.

Each role answers /healthz, /readyz (what that role needs) and /metrics; the worker and the
scheduler serve nothing else. Production never migrates on start; SIGTERM lets the worker finish
the batch in hand.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from questline.app import create_app
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.mechanics import install
from questline.pipeline import repository as event_log
from questline.pipeline.models import EventRecord
from questline.pipeline.stream import stream_log
from tests.conftest import Factory, lifespan, problem
from tests.pipeline.helpers import configure, send
from tests.serving import free_port


def metric(resp: httpx.Response, name: str) -> float:
    """One unlabelled sample of a Prometheus text page."""
    for line in resp.text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in {resp.text[:500]}")


async def applied_and_waiting(runtime: Runtime, app_id: str) -> tuple[int, int]:
    """The app's events applied, and those waiting: pending in the database log, or (on the
    JetStream log, whose events reach the database only as they are applied) still in the
    streams past the applied sequence; the test's namespace holds only its own streams."""
    async with runtime.read_sessions() as session:
        rows = dict((await session.execute(
            sa.select(EventRecord.pending, sa.func.count()).where(EventRecord.app_id == app_id)
            .group_by(EventRecord.pending))).all())
        done = int(rows.pop(0, 0))
        waiting = sum(int(n) for n in rows.values())
        log = stream_log(runtime)
        if log is not None:
            for partition in range(runtime.settings.pipeline_partitions):
                waiting += await log.last_seq(partition) - await event_log.stream_offset(session, log.stream(partition))
    return done, waiting


def event_log_env(settings: Settings) -> dict[str, str]:
    """What a worker process needs to read the same event log as the test's engine."""
    if not settings.event_log:
        return {}
    return {"QUESTLINE_EVENT_LOG": settings.event_log, "QUESTLINE_EVENT_LOG_NAMESPACE": settings.event_log_namespace,
            "QUESTLINE_PIPELINE_PARTITIONS": str(settings.pipeline_partitions)}


@asynccontextmanager
async def role_client(settings: Settings, role: str) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    runtime = Runtime.build(settings)
    install(runtime)
    app = create_app(runtime=runtime, role=role)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://role.test") as client:
            yield client, runtime


async def test_worker_role_serves_only_operations_and_reports_its_loop(settings: Settings,
                                                                        factory: Factory) -> None:
    keys = await factory.app()
    async with role_client(settings, "worker") as (client, _):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert checks["worker"] == "ok" and checks["schema"] == "ok" and checks["database"] == "ok"
        assert "scheduler" not in checks
        assert (await client.get("/v1/players", headers=keys.server)).status_code == 404  # no API here
        metrics = (await client.get("/metrics")).text
        assert 'questline_role{role="worker"} 1.0' in metrics
        assert 'questline_role{role="api"} 0.0' in metrics
        assert 'questline_partition_lag_events{partition="0"}' in metrics


async def test_api_role_serves_the_api_and_runs_no_loop(settings: Settings, factory: Factory) -> None:
    keys = await factory.app()
    async with role_client(settings, "api") as (client, _):
        assert (await client.get("/v1/players", headers=keys.server)).status_code == 200
        checks = (await client.get("/readyz")).json()["checks"]
        assert "worker" not in checks and "scheduler" not in checks and checks["schema"] == "ok"
        resp = await send(client, keys, [{"id": "r-1", "player_id": "p1", "type": "match.won", "data": {}}])
        assert resp.status_code == 202
        metrics = (await client.get("/metrics")).text
        assert metric(resp := await client.get("/metrics"), "questline_events_ingested_total") == 1, resp.text
        assert 'questline_role{role="api"} 1.0' in metrics


async def test_scheduler_role_reports_its_loop(settings: Settings) -> None:
    async with role_client(settings, "scheduler") as (client, _):
        checks = (await client.get("/readyz")).json()["checks"]
        assert checks["scheduler"] == "ok" and "worker" not in checks


async def test_worker_role_processes_what_the_api_role_ingested(settings: Settings, factory: Factory,
                                                              client: httpx.AsyncClient) -> None:
    keys = await factory.app()
    await configure(client, keys)
    events = [{"id": f"w-{i}", "player_id": f"p{i % 3}", "type": "match.won", "data": {"score": 10}}
              for i in range(30)]
    assert (await send(client, keys, events)).status_code == 202
    async with role_client(settings, "worker") as (worker, runtime):
        for _ in range(400):  # a real background loop: wait for it, bounded
            if await applied_and_waiting(runtime, keys.app_id) == (30, 0):
                break
            await asyncio.sleep(0.02)
        assert await applied_and_waiting(runtime, keys.app_id) == (30, 0)
        # At least ours: on the shared PostgreSQL database other tests may have left events pending.
        assert metric(await worker.get("/metrics"), "questline_events_processed_total") >= 30
    stats = (await client.get("/v1/players/p0/stats", headers=keys.server)).json()
    assert stats["wins"]["all"] == 10


async def test_readyz_is_503_on_an_unmigrated_database(settings: Settings, tmp_path: Path) -> None:
    empty = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/empty.db",
                                        "redis_url": None})
    async with role_client(empty, "api") as (client, _):
        body = problem(await client.get("/readyz"), 503, "not_ready")
        assert body["checks"]["schema"].startswith("not migrated")


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        create_app(Settings(secret_key="x" * 40), role="cook")  # type: ignore[arg-type]


# uvicorn, having shut down cleanly on SIGTERM, re-raises the signal so the exit status tells it.
CLEAN_EXIT = (0, -signal.SIGTERM)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_")}
    return env | {"QUESTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'q.db'}",
                  "QUESTLINE_SECRET_KEY": "s" * 40, "QUESTLINE_LOG_LEVEL": "INFO"} | extra


def _wait_ready(base: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> httpx.Response:
    import time

    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=1) as poll:  # one client: each httpx.get would load the CA bundle again
        while True:  # a real process opening its port
            assert proc.poll() is None, "the process exited"
            try:
                resp = poll.get(f"{base}/readyz")
                if resp.status_code in (200, 503):
                    return resp
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "no answer in time"
            time.sleep(0.2)


@pytest.mark.slow
def test_production_roles_never_migrate_on_start(tmp_path: Path) -> None:
    """In production `serve` does not migrate: /readyz says so until `questline migrate` ran."""
    port = free_port()
    env = _env(tmp_path, QUESTLINE_ENV="production", QUESTLINE_PORT=str(port))
    with (tmp_path / "out").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "questline", "serve", "--role", "api"], cwd=tmp_path,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        resp = _wait_ready(f"http://127.0.0.1:{port}", proc)
        assert resp.status_code == 503 and resp.json()["checks"]["schema"].startswith("not migrated")
        subprocess.run([sys.executable, "-m", "questline", "migrate"], env=env, cwd=tmp_path, check=True,
                       capture_output=True)
        resp = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert resp.status_code == 200, resp.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in CLEAN_EXIT


@pytest.mark.slow
async def test_sigterm_lets_the_worker_finish_the_batch_in_hand(tmp_path: Path, client: httpx.AsyncClient,
                                                               factory: Factory, settings: Settings,
                                                               backend: str) -> None:
    """A worker role with a backlog is stopped with SIGTERM: it exits cleanly, its loop finished (not
    cancelled), and every event is either applied or still pending, none lost."""
    keys = await factory.app()
    await configure(client, keys)
    total = 4000
    for start in range(0, total, 1000):
        events = [{"id": f"g-{i}", "player_id": f"p{i % 50}", "type": "match.won", "data": {"score": 1}}
                  for i in range(start, start + 1000)]
        assert (await send(client, keys, events)).status_code == 202
    port = free_port()
    env = _env(tmp_path, QUESTLINE_DATABASE_URL=settings.database_url, QUESTLINE_WORKER_BATCH_SIZE="100",
               QUESTLINE_LOG_JSON="true", **event_log_env(settings))
    with (tmp_path / "out").open("wb") as out:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "questline", "worker", "--port", str(port),
                                                    cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    runtime = Runtime.build(settings)

    async def counts() -> tuple[int, int]:
        return await applied_and_waiting(runtime, keys.app_id)

    try:
        for _ in range(3000):  # until it is busy with the backlog
            if (await counts())[0] > 0:
                break
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) in CLEAN_EXIT
        done, pending = await counts()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runtime.close()
    assert done + pending == total and done > 0
    log = (tmp_path / "out").read_text()
    assert '"event": "loop_stopped"' in log and '"finished": true' in log, log[-2000:]
    assert '"finished": false' not in log
