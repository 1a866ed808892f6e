"""The background loops of each role (``worker``, ``scheduler``) and what the role reports.

Apart from ``questline.app`` so that a headless ``questline worker`` or ``scheduler`` process
imports the loops and jobs it runs, not every area's routes and schemas (pydantic builds each
model when its class is made): that was about a third of such a process's start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from questline import migrations
from questline.achievements import tasks as achievements_tasks
from questline.announcements import tasks as announcements_tasks
from questline.billing import tasks as billing_tasks
from questline.campaigns import tasks as campaigns_tasks
from questline.challenges import tasks as challenges_tasks
from questline.competitions import tasks as competitions_tasks
from questline.finance import tasks as finance_tasks
from questline.fulfilment import tasks as fulfilment_tasks
from questline.gkeys import tasks as gkeys_tasks
from questline.kit.idempotency import IdempotencyStore
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime
from questline.leaderboards import tasks as leaderboards_tasks
from questline.ledger import tasks as ledger_tasks
from questline.notifications import tasks as notifications_tasks
from questline.ops import service as ops_service
from questline.pipeline import replay as pipeline_replay
from questline.pipeline import worker as pipeline_worker
from questline.progression import tasks as progression_tasks
from questline.relay import tasks as relay_tasks
from questline.shop import tasks as shop_tasks
from questline.streaks import tasks as streaks_tasks
from questline.treasury import tasks as treasury_tasks
from questline.webhooks import tasks as webhooks_tasks

_log = structlog.get_logger("questline.roles")
Loop = Callable[[Runtime, asyncio.Event], Coroutine[Any, Any, None]]


def build_scheduler(runtime: Runtime) -> Scheduler:
    """Every scheduled job of every area, registered on one scheduler."""
    scheduler = Scheduler(runtime.sessions, runtime.clock, worker_name=f"{socket.gethostname()}:{os.getpid()}",
                          held=pipeline_replay.jobs_held)  # no job runs while a replay rebuilds derived state
    scheduler.add(Job("idempotency.sweep", every(3600), IdempotencyStore.sweep))
    for register in _job_registrars():
        register(scheduler, runtime)
    return scheduler


def _job_registrars() -> list[Callable[[Scheduler, Runtime], None]]:
    """Each area's ``register_jobs(scheduler, runtime)``; add one line per area."""
    return [
        ledger_tasks.register_jobs,
        shop_tasks.register_jobs,
        progression_tasks.register_jobs,
        leaderboards_tasks.register_jobs,
        competitions_tasks.register_jobs,
        streaks_tasks.register_jobs,
        achievements_tasks.register_jobs,
        challenges_tasks.register_jobs,
        gkeys_tasks.register_jobs,
        treasury_tasks.register_jobs,
        billing_tasks.register_jobs,
        finance_tasks.register_jobs,
        campaigns_tasks.register_jobs,
        notifications_tasks.register_jobs,
        announcements_tasks.register_jobs,
    ]


def _background_loops() -> list[Loop]:
    """Long-running loops (the event worker) that ``serve`` runs in-process; one line per loop."""
    return [
        pipeline_worker.run_worker,
        relay_tasks.run_relay,
        webhooks_tasks.run_sender,
        fulfilment_tasks.run_fulfilment,
        notifications_tasks.run_notifications,
    ]


ROLES = ("all", "api", "worker", "scheduler")


def role_loops(runtime: Runtime, role: str, *, worker: bool = True, scheduler: bool = True) -> dict[str, Loop]:
    """The background loops a role runs, by name (``worker``, ``scheduler``), as the settings allow."""
    loops: dict[str, Loop] = {}
    settings = runtime.settings
    if role in ("all", "scheduler") and scheduler and settings.run_scheduler:
        built = build_scheduler(runtime)

        async def run_scheduler(rt: Runtime, stop: asyncio.Event) -> None:
            await built.run_forever(stop, rt.settings.scheduler_tick_seconds)

        loops["scheduler"] = run_scheduler
    if role in ("all", "worker") and worker and settings.run_worker:
        for index, loop in enumerate(_background_loops()):
            loops["worker" if index == 0 else f"worker.{index}"] = loop
    return loops


def install_role(runtime: Runtime, role: str, tasks: dict[str, asyncio.Task[None]]) -> None:
    """What ``/readyz`` and ``/metrics`` of this role report beyond the database and Redis."""
    for name in ROLES[1:]:
        runtime.metrics.role.labels(name).set(1 if role in ("all", name) else 0)
    for name, task in tasks.items():
        ops_service.add_ready_check(runtime, name, _alive(task))
    if role != "scheduler":
        pipeline_worker.install_checks(runtime, worker=role in ("all", "worker"))

    async def schema() -> str:
        return await migrations.schema_state(runtime.engine)

    ops_service.add_ready_check(runtime, "schema", schema)


def _alive(task: asyncio.Task[None]) -> Callable[[], Coroutine[Any, Any, str]]:
    async def check() -> str:
        if not task.done():
            return "ok"
        return "stopped" if task.cancelled() or task.exception() is None else f"failed: {task.exception()!r}"

    return check


async def stop_loops(tasks: dict[str, asyncio.Task[None]], stop: asyncio.Event, grace: float) -> None:
    """Ask the loops to stop and give them ``grace`` seconds to finish the batch or job in hand."""
    stop.set()
    if not tasks:
        return
    _, late = await asyncio.wait(tasks.values(), timeout=grace)
    for task in late:
        task.cancel()  # past the grace period: its transaction rolls back, nothing is half-applied
    for name, task in tasks.items():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        _log.info("loop_stopped", loop=name, finished=task not in late)
