"""Group commit: the events of concurrent requests are appended to the log in one transaction.

Each ``POST /v1/events`` hands its validated rows to the committer and waits. The committer
gathers what arrives within a short window (``ingest_window_ms``, cut short at
``ingest_max_events``), writes it with one multi-row ``INSERT … ON CONFLICT DO NOTHING`` and
one commit, then answers every waiting request with what was new and what was a duplicate. A
request is answered only once its rows are durable, so nothing acknowledged can be lost; if
the write fails, every request of the group gets the error (a 503 when the database is busy
or down) and may retry: event ids make a retry safe.

One commit per window instead of one per request is what lets SQLite's single writer and
PostgreSQL's WAL keep up with thousands of requests a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.pipeline import repository as repo

_log = structlog.get_logger("questline.ingest")
Key = tuple[str, str]  # (app_id, event_id)


@dataclass
class _Waiting:
    rows: list[dict[str, Any]]
    done: asyncio.Future[dict[Key, int]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitter:
    """Appends rows for many concurrent callers with one write per window (see the module docstring)."""

    def __init__(self, runtime: Runtime, on_commit: Callable[[], Awaitable[None] | None] | None = None) -> None:
        self._runtime = runtime
        self._window = runtime.settings.ingest_window_ms / 1000
        self._max_rows = runtime.settings.ingest_max_events
        self._on_commit = on_commit
        self._queue: list[_Waiting] = []
        self._queued_rows = 0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def append(self, rows: list[dict[str, Any]]) -> dict[Key, int]:
        """Append rows (one request's events); returns (app_id, event_id) -> seq of those this call
        added. A row whose id the app already has, or that an earlier caller of the same group
        added, is a duplicate and is left out."""
        if not rows:
            return {}
        waiting = _Waiting(rows)
        # Retrieved even when the caller went away (a client that disconnected), so a failed
        # write is not reported a second time as "never retrieved".
        waiting.done.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._queue.append(waiting)
        self._queued_rows += len(rows)
        if self._queued_rows >= self._max_rows:
            self._full.set()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="questline.ingest.group-commit")
        return await asyncio.shield(waiting.done)

    async def close(self) -> None:
        """Write what is queued, then stop (the app's shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue:
            await self._write(self._take())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._window > 0 and self._queued_rows < self._max_rows:
                # Let the requests arriving meanwhile join this write.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), timeout=self._window)
            self._full.clear()
            group = self._take()
            if group:
                await self._write(group)

    def _take(self) -> list[_Waiting]:
        group, self._queue, self._queued_rows = self._queue, [], 0
        return group

    async def _write(self, group: list[_Waiting]) -> None:
        rows: list[dict[str, Any]] = []
        owner: dict[Key, _Waiting] = {}
        for waiting in group:
            for row in waiting.rows:
                key = (row["app_id"], row["event_id"])
                if key not in owner:  # the same id twice in one group: the first caller's
                    owner[key] = waiting
                    rows.append(row)
        try:
            async with unit_of_work(self._runtime.sessions) as session:
                added = await repo.append(session, rows, partitions=self._runtime.settings.pipeline_partitions)
        except Exception as exc:
            _log.warning("ingest_write_failed", events=len(rows), error=str(exc).splitlines()[0] if str(exc) else "")
            for waiting in group:
                if not waiting.done.done():
                    waiting.done.set_exception(exc)
            return
        answers: dict[int, dict[Key, int]] = {id(waiting): {} for waiting in group}
        for key, seq in added.items():
            answers[id(owner[key])][key] = seq
        for waiting in group:
            if not waiting.done.done():
                waiting.done.set_result(answers[id(waiting)])
        if added and self._on_commit is not None:
            result = self._on_commit()
            if result is not None:
                await result
