"""The engine's rank index (``index.py``) with lazy, locked rebuilds from the database.

One ``Boards`` per runtime: reads ``ensure`` a board is built before reading it, the worker's
after-commit ``hook`` applies each batch's score changes, and ``forget`` drops what a reset, a
removal or an archived period made stale.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import after_commit
from questline.kit.runtime import Runtime
from questline.leaderboards import repository as repo
from questline.leaderboards.index import BoardRef, Entry, MemoryIndex, RankIndex, RedisIndex, micros
from questline.leaderboards.pages import forget_pages
from questline.pipeline.worker import replay_epochs

_log = structlog.get_logger("questline.leaderboards")
READY_TTL = 5.0  # seconds a process trusts Redis's "this board is built" marker


class Boards:
    """The engine's rank index with lazy, locked rebuilds from the database."""

    def __init__(self, runtime: Runtime) -> None:
        self.shared = runtime.redis is not None
        self.index: RankIndex = (RedisIndex(runtime.redis, runtime.settings.redis_namespace)
                                 if runtime.redis is not None else MemoryIndex())
        self._locks: dict[BoardRef, asyncio.Lock] = {}
        self._trusted: dict[BoardRef, float] = {}
        self._stale: set[BoardRef] = set()  # a write failed to reach the index: rebuild before reading
        self._unmarked: set[BoardRef] = set()  # ... and its shared ready marker could not be removed yet
        self._extensions = runtime.extensions
        self._hub = runtime.caches  # rendered pages (``pages``) are dropped whenever the index changes
        # app -> the replay epoch this process's in-memory index holds the app's boards for.
        self._epochs: dict[str, int] = {}

    async def _replayed(self, app_id: str) -> None:
        """Forget an in-process index's boards of an app whose derived state a replay rebuilt
        (in any process) since they were built. The epochs are those this process's worker last
        read (``pipeline.worker.replay_epochs``), so a read costs no query. A shared index needs
        no check: the replay's reset dropped its boards there, and every replayed batch writes to it."""
        if self.shared:
            return
        epoch = replay_epochs(self._extensions).get(app_id, 0)
        known = self._epochs.get(app_id)
        if known == epoch:
            return
        if known is not None:
            await self.forget(app_id)
        self._epochs[app_id] = epoch

    async def _ready(self, ref: BoardRef) -> bool:
        if ref in self._stale:
            return False
        if not self.shared:
            return await self.index.ready(ref)
        if self._trusted.get(ref, 0.0) > time.monotonic():
            return True
        if await self.index.ready(ref):
            self._trusted[ref] = time.monotonic() + READY_TTL
            return True
        return False

    async def ensure(self, session: AsyncSession, ref: BoardRef) -> None:
        """Make sure the index holds this board, rebuilding it from the database if not."""
        await self._replayed(ref.app_id)
        if await self._ready(ref):
            return
        lock = self._locks.setdefault(ref, asyncio.Lock())
        async with lock:
            if await self._ready(ref):
                return
            await self.rebuild(session, ref)

    async def rebuild(self, session: AsyncSession, ref: BoardRef) -> int:
        await self.index.prepare(ref)
        rows = await repo.entries_for_index(session, ref.app_id, ref.board, ref.period_key)
        entries = [Entry(r.player_id, r.partition, r.score, micros(r.reached_at), r.seq, r.version) for r in rows]
        await self.index.merge(ref, entries, mark_ready=True)
        await forget_pages(self._hub, ref.app_id)
        self._stale.discard(ref)
        self._trusted[ref] = time.monotonic() + READY_TTL
        _log.info("leaderboard_index_built", app=ref.app_id, board=ref.board, period=ref.period_key,
                  entries=len(entries))
        return len(entries)

    def hook(self, updates: dict[BoardRef, list[Entry]]) -> Callable[[], Awaitable[None]]:
        """An after-commit hook applying a batch's score changes to the index."""

        async def apply() -> None:
            if self._unmarked:
                try:
                    await self.index.unready(list(self._unmarked))
                    self._unmarked.clear()
                except Exception:
                    _log.warning("leaderboard_index_unreachable")
            for ref, entries in updates.items():
                try:
                    await self.index.merge(ref, entries)
                except Exception:
                    _log.exception("leaderboard_index_write_failed", board=ref.board, period=ref.period_key)
                    self._stale.add(ref)
                    self._trusted.pop(ref, None)
                    self._unmarked.add(ref)
            for app_id in {ref.app_id for ref in updates}:
                await forget_pages(self._hub, app_id)

        return apply

    async def forget(self, app_id: str | None, board: str | None = None, key: str | None = None) -> None:
        """Drop index data (after a period is archived, or derived state is reset for replay)."""

        def hit(ref: BoardRef) -> bool:
            return app_id in (None, ref.app_id) and board in (None, ref.board) and key in (None, ref.period_key)

        self._locks = {r: lock for r, lock in self._locks.items() if not hit(r)}
        self._trusted = {r: t for r, t in self._trusted.items() if not hit(r)}
        await self.index.drop(app_id, board, key)
        await forget_pages(self._hub, app_id)


def boards_of(runtime: Runtime) -> Boards:
    found = runtime.extensions.get("leaderboards.boards")
    if found is None:
        found = runtime.extensions["leaderboards.boards"] = Boards(runtime)
    assert isinstance(found, Boards)
    return found


def forget_after_commit(session: AsyncSession, runtime: Runtime, app_id: str | None) -> None:
    """Once a reset commits, drop the index data it made stale."""
    boards = boards_of(runtime)

    async def drop() -> None:
        await boards.forget(app_id)

    after_commit(session, drop)
