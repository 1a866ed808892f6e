"""Leaderboard reads (top, a player's place, around them), friends, archives and rollover.

Ranks come from the rank index (``index.py``), never from counting rows per request; the
database stays the truth and the index is rebuilt from it lazily, per board and period.

Privacy applies to every read, for the viewer it is made for (a player token's own player,
or the ``viewer`` a server names; nobody for a publishable key):

- ``private`` players are shown to nobody but themselves;
- ``friends_only`` players to their friends and themselves;
- ``show_on_global_leaderboard = false`` keeps a player off global boards (but for themselves);
- names follow ``display_name_type``; ``anonymous`` shows "Anonymous player" and no player id.

Ranks are competitive positions: a hidden player keeps their place, so a listing may skip a
number. Friends boards rank the viewer among the friends they can see.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.cache import CacheSpec
from questline.kit.clock import Clock
from questline.kit.db import after_commit
from questline.kit.errors import NotFound, Unprocessable
from questline.kit.pagination import PageParams, encode_cursor
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.leaderboards import repository as repo
from questline.leaderboards.index import BoardRef, Entry, MemoryIndex, RankIndex, RedisIndex, micros
from questline.leaderboards.schemas import BoardSummary, FriendsOut, LeaderboardDef, PartitionScope
from questline.leaderboards.timing import CUSTOM, next_reset, period_key
from questline.pipeline import repository as event_log
from questline.players import service as players
from questline.players.repository import Shown
from questline.rules.service import RuleSet, ruleset_cache

_log = structlog.get_logger("questline.leaderboards")
ANONYMOUS = "Anonymous player"
MAX_FRIENDS = 1000
MAX_AROUND = 50
READY_TTL = 5.0  # seconds a process trusts Redis's "this board is built" marker
PERIOD_KEY = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_PERIOD_SHAPE = {"day": re.compile(r"^\d{4}-\d{2}-\d{2}$"), "week": re.compile(r"^\d{4}-W\d{2}$"),
                 "month": re.compile(r"^\d{4}-\d{2}$"), "custom": re.compile(r"^custom$")}


@dataclass(slots=True)
class Row:
    """One shown entry (the ``Row`` schema); a plain object: reads make hundreds per request."""

    rank: int
    player_id: str | None
    display_name: str
    score: int
    reached_at: datetime
    is_me: bool = False


@dataclass(slots=True)
class BoardView:
    """A read's reply (the ``BoardPage`` schema), serialized by orjson."""

    board: str
    name: str | None
    scope: str
    partition: str | None
    period: str
    period_key: str
    timezone: str
    order: str
    resets_at: datetime | None
    ranked: int
    items: list[Row]
    next_cursor: str | None = None
    me: Row | None = None


@dataclass(slots=True)
class ArchiveView:
    """A closed period's standings (the ``ArchivePage`` schema)."""

    board: str
    period_key: str
    partition: str | None
    archived_at: datetime
    items: list[Row]
    next_cursor: str | None = None


def to_json(view: BoardView | ArchiveView) -> bytes:
    return orjson.dumps(view, option=orjson.OPT_UTC_Z)


@dataclass(frozen=True)
class BoardInfo:
    """What reads need to know about a board, whether a definition's or a competition's."""

    board: str
    name: str | None
    scope: str  # global | partition | friends
    partition_attr: str | None
    period: str
    timezone: str
    descending: bool
    min_score: int | None
    ends_at: datetime | None = None

    @classmethod
    def of(cls, key: str, spec: LeaderboardDef) -> BoardInfo:
        attr = spec.scope.attribute if isinstance(spec.scope, PartitionScope) else None
        return cls(key, spec.name, spec.scope.type, attr, spec.period, spec.timezone, spec.order == "desc",
                   spec.min_score, spec.ends_at)

    def period_key_at(self, now: datetime) -> str:
        return period_key(self.period, now, zone(self.timezone))

    def ref(self, app_id: str, key: str) -> BoardRef:
        return BoardRef(app_id, self.board, key, self.descending, self.min_score)

    def resets_at(self, now: datetime) -> datetime | None:
        return next_reset(self.period, now, zone(self.timezone), self.ends_at)

    def is_closed(self, key: str, now: datetime) -> bool:
        if self.period == "all":
            return False
        if not _PERIOD_SHAPE[self.period].match(key):
            return True  # the definition changed period: what is left of the old one is over
        if self.period == CUSTOM:
            return self.ends_at is not None and now >= self.ends_at
        return key < self.period_key_at(now)


# The index, kept per engine ----------------------------------------------------------------------


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

        return apply

    async def forget(self, app_id: str | None, board: str | None = None, key: str | None = None) -> None:
        """Drop index data (after a period is archived, or derived state is reset for replay)."""

        def hit(ref: BoardRef) -> bool:
            return app_id in (None, ref.app_id) and board in (None, ref.board) and key in (None, ref.period_key)

        self._locks = {r: lock for r, lock in self._locks.items() if not hit(r)}
        self._trusted = {r: t for r, t in self._trusted.items() if not hit(r)}
        await self.index.drop(app_id, board, key)


def boards_of(runtime: Runtime) -> Boards:
    found = runtime.extensions.get("leaderboards.boards")
    if found is None:
        found = runtime.extensions["leaderboards.boards"] = Boards(runtime)
    assert isinstance(found, Boards)
    return found


# Privacy ----------------------------------------------------------------------------------------

# Each player's friends, as reads need them (friends boards, ``friends_only`` players): held in
# process, dropped (here and in every process) when a friendship of theirs begins or ends.
FRIENDS = CacheSpec[tuple[str, str], tuple[str, ...]]("leaderboards.friends", max_entries=50_000)


async def cached_friends(session: AsyncSession, app_id: str, player_id: str) -> tuple[str, ...]:
    async def load() -> tuple[str, ...]:
        return tuple(await repo.friends_of(session, app_id, player_id))

    return await FRIENDS.get(session, (app_id, player_id), load)



@dataclass
class Lens:
    """What one viewer may see of a board's entries."""

    session: AsyncSession
    app_id: str
    viewer: str | None
    scope: str
    _friends: set[str] | None = None
    _players: dict[str, Shown] = field(default_factory=dict)

    async def friends(self) -> set[str]:
        if self._friends is None:
            self._friends = set(await cached_friends(self.session, self.app_id, self.viewer)) if self.viewer else set()
        return self._friends

    async def load(self, player_ids: Sequence[str]) -> None:
        """How these players are shown (from the process's cache of it; one query for those not in it)."""
        wanted = [*player_ids, self.viewer] if self.viewer and self.viewer not in self._players else player_ids
        missing = [p for p in wanted if p not in self._players]
        if missing:
            self._players.update(await players.shown_of(self.session, self.app_id, missing))

    def settled(self, player_id: str) -> bool | None:
        """Whether the viewer may see this player, or None when it depends on their friends."""
        if player_id == self.viewer:
            return True
        player = self._players.get(player_id)
        if player is None:
            return False
        if self.scope == "global" and not player.show_on_global_leaderboard:
            return False
        if player.leaderboard_visibility == "private":
            return False
        if player.leaderboard_visibility == "friends_only":
            return None if self._friends is None else player_id in self._friends
        return True

    async def visible(self, player_id: str) -> bool:
        known = self.settled(player_id)
        if known is None:
            return player_id in await self.friends()
        return known

    def show(self, rank: int, player_id: str, score: int, reached_at: datetime) -> Row:
        player = self._players.get(player_id)
        me = player_id == self.viewer
        kind = player.display_name_type if player else "anonymous"
        if kind == "anonymous":
            name = ANONYMOUS
        elif kind == "real_name" and player is not None and player.real_name:
            name = player.real_name
        else:
            assert player is not None
            name = player.username or player.display_name or player.real_name or player_id
        return Row(rank, player_id if me or kind != "anonymous" else None, name, score, reached_at, me)


# Reads ------------------------------------------------------------------------------------------


async def board_info(session: AsyncSession, runtime: Runtime, app_id: str, key: str) -> BoardInfo:
    """A board's definition, as reads need it (compiled once per rule-set version)."""
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    info = ruleset.memo("leaderboards.infos", _infos).get(key)
    if info is None:
        raise NotFound(f"leaderboard {key!r} not found", code="leaderboard_not_found")
    return info


def _infos(ruleset: RuleSet) -> dict[str, BoardInfo]:
    out = {}
    for key, spec in ruleset.of("leaderboard").items():
        assert isinstance(spec, LeaderboardDef)
        out[key] = BoardInfo.of(key, spec)
    return out


async def list_boards(session: AsyncSession, runtime: Runtime, app_id: str) -> list[BoardSummary]:
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    now = runtime.clock.now()
    out = []
    for key, spec in sorted(ruleset.of("leaderboard").items()):
        assert isinstance(spec, LeaderboardDef)
        info = BoardInfo.of(key, spec)
        out.append(BoardSummary(board=key, name=info.name, scope=info.scope, period=info.period,
                                period_key=info.period_key_at(now), timezone=info.timezone,
                                resets_at=info.resets_at(now)))
    return out


@dataclass(frozen=True)
class Reading:
    """One read's coordinates: which board, period and partition, for whom."""

    info: BoardInfo
    ref: BoardRef
    partition: str
    lens: Lens
    now: datetime
    index: RankIndex


async def open_reading(session: AsyncSession, runtime: Runtime, app_id: str, info: BoardInfo, *,
                       viewer: str | None, partition: str | None, key: str | None) -> Reading:
    now = runtime.clock.now()
    if key is not None and not PERIOD_KEY.match(key):
        raise Unprocessable(f"period_key {key!r} is not a period key (e.g. 2026-03-10, 2026-W11, 2026-03)",
                            code="invalid_period_key")
    ref = info.ref(app_id, key or info.period_key_at(now))
    lens = Lens(session, app_id, viewer, info.scope)
    part = ""
    if info.scope == "friends" and viewer is None:
        raise Unprocessable("a friends board is read for a viewer: use a player token or ?viewer=",
                            code="viewer_required")
    if info.scope == "partition":
        if partition is None and viewer is not None:
            traits = await players.cached_traits(session, app_id, viewer)
            value = traits.get(info.partition_attr or "")
            partition = None if value is None or value == "" else (
                str(value).lower() if isinstance(value, bool) else str(value))
        if partition is None:
            raise Unprocessable(f"this board is split by {info.partition_attr!r}: pass ?partition= "
                                "(or a viewer who has that trait)", code="partition_required")
        part = partition
    boards = boards_of(runtime)
    await boards.ensure(session, ref)
    return Reading(info, ref, part, lens, now, boards.index)


def _view(reading: Reading, ranked: int, items: list[Row], *, next_cursor: str | None = None,
          me: Row | None = None) -> BoardView:
    info = reading.info
    current = info.period_key_at(reading.now)
    return BoardView(
        board=info.board, name=info.name, scope=info.scope,
        partition=reading.partition if info.scope == "partition" else None, period=info.period,
        period_key=reading.ref.period_key, timezone=info.timezone, order="desc" if info.descending else "asc",
        resets_at=info.resets_at(reading.now) if reading.ref.period_key == current else None, ranked=ranked,
        items=items, next_cursor=next_cursor, me=me,
    )


async def _scan(reading: Reading, start: int, want: int, *, backwards: bool = False,
                limit_scan: int | None = None) -> tuple[list[Row], int | None]:
    """Visible entries from position ``start`` on (or down from it); returns them and the next position."""
    found: list[Row] = []
    pos = start
    budget = limit_scan if limit_scan is not None else max(1000, want * 20)
    while len(found) < want and budget > 0 and pos >= 0:
        size = min(want - len(found) + 16, budget)
        first = max(pos - size + 1, 0) if backwards else pos
        count = pos - first + 1 if backwards else size
        chunk = await reading.index.window(reading.ref, reading.partition, first, count)
        if not chunk:
            return found, None
        await reading.lens.load([e.player_id for e in chunk])
        pairs = list(enumerate(chunk, start=first))
        lens = reading.lens
        for position, entry in reversed(pairs) if backwards else pairs:
            budget -= 1
            seen = lens.settled(entry.player_id)
            if seen is None:
                seen = await lens.visible(entry.player_id)
            if seen:
                found.append(reading.lens.show(position + 1, entry.player_id, entry.score, entry.reached_at))
                if len(found) == want:
                    return found, position - 1 if backwards else position + 1
        pos = first - 1 if backwards else first + len(chunk)
        if not backwards and len(chunk) < count:
            return found, None
    return found, (pos if pos >= 0 else None)


async def _me(reading: Reading) -> Row | None:
    viewer = reading.lens.viewer
    if viewer is None:
        return None
    found = await reading.index.rank(reading.ref, viewer)
    if found is None or found[1].partition != reading.partition:
        return None
    await reading.lens.load([viewer])
    position, entry = found
    return reading.lens.show(position + 1, viewer, entry.score, entry.reached_at)


async def top(session: AsyncSession, runtime: Runtime, app_id: str, info: BoardInfo, page: PageParams, *,
              viewer: str | None, partition: str | None = None, key: str | None = None) -> BoardView:
    reading = await open_reading(session, runtime, app_id, info, viewer=viewer, partition=partition, key=key)
    if info.scope == "friends":
        return await _friends_page(reading, page)
    start = await _resume(reading, page)
    items, following = await _scan(reading, start, page.limit)
    size = await reading.index.size(reading.ref, reading.partition)
    cursor = None
    if following is not None and following < size and items:
        last = items[-1]
        cursor = encode_cursor([following, last.player_id or "", last.score])
    return _view(reading, size, items, next_cursor=cursor, me=await _me(reading))


async def _resume(reading: Reading, page: PageParams) -> int:
    """Where a cursor continues: after its last player if they have not moved, else at its position."""
    after = page.after()
    if after is None:
        return 0
    if (len(after) != 3 or not isinstance(after[0], int) or isinstance(after[0], bool) or after[0] < 0
            or not isinstance(after[1], str) or not isinstance(after[2], int)):
        raise Unprocessable("the cursor is not one this API issued", code="invalid_cursor")
    position, player_id, score = after
    if player_id:
        found = await reading.index.rank(reading.ref, player_id)
        if found is not None and found[1].score == score and found[1].partition == reading.partition:
            return found[0] + 1
    return int(position)


async def player_place(session: AsyncSession, runtime: Runtime, app_id: str, info: BoardInfo, player_id: str, *,
                       around: int = 0, partition: str | None = None, key: str | None = None) -> BoardView:
    """A player's own rank and score, and ``around`` visible neighbours above and below."""
    if not 0 <= around <= MAX_AROUND:
        raise Unprocessable(f"around is 0 to {MAX_AROUND}", code="invalid_around")
    reading = await open_reading(session, runtime, app_id, info, viewer=player_id, partition=partition, key=key)
    if info.scope == "friends":
        page = await _friends_page(reading, PageParams(limit=MAX_FRIENDS + 1))
        mine = next((i for i, e in enumerate(page.items) if e.is_me), None)
        page.next_cursor = None
        if mine is None:
            page.items, page.me = [], None
        else:
            page.items, page.me = page.items[max(mine - around, 0): mine + around + 1], page.items[mine]
        return page
    found = await reading.index.rank(reading.ref, player_id)
    if around and found is not None and found[1].partition == reading.partition:
        # One privacy query for the neighbourhood (with room for a few hidden players).
        first = max(found[0] - around - 16, 0)
        nearby = await reading.index.window(reading.ref, reading.partition, first, found[0] - first + around + 17)
        await reading.lens.load([e.player_id for e in nearby])
    me = await _me(reading)
    size = await reading.index.size(reading.ref, reading.partition)
    if me is None:
        return _view(reading, size, [])
    items: list[Row] = [me]
    if around:
        above, _ = await _scan(reading, me.rank - 2, around, backwards=True)
        below, _ = await _scan(reading, me.rank, around)
        items = [*reversed(above), me, *below]
    return _view(reading, size, items, me=me)


async def _friends_page(reading: Reading, page: PageParams) -> BoardView:
    """The viewer among their friends: a short list, ranked here in memory."""
    lens = reading.lens
    candidates = [*sorted(await lens.friends()), *([lens.viewer] if lens.viewer else [])]
    found = await reading.index.lookup(reading.ref, candidates)
    ranked = [e for e in found.values() if reading.ref.ranked(e.score)]
    sign = -1 if reading.ref.descending else 1
    ranked.sort(key=lambda e: (sign * e.score, e.reached_us, e.seq, e.player_id))
    await lens.load([e.player_id for e in ranked])
    shown: list[Row] = []
    for entry in ranked:
        if await lens.visible(entry.player_id):
            shown.append(lens.show(len(shown) + 1, entry.player_id, entry.score, entry.reached_at))
    start = 0
    after = page.after()
    if after is not None:
        if len(after) != 3 or not isinstance(after[0], int) or isinstance(after[0], bool) or after[0] < 0:
            raise Unprocessable("the cursor is not one this API issued", code="invalid_cursor")
        start = after[0]
    items = shown[start:start + page.limit]
    cursor = None
    if start + page.limit < len(shown) and items:
        cursor = encode_cursor([start + page.limit, items[-1].player_id or "", items[-1].score])
    me = next((e for e in shown if e.is_me), None)
    return _view(reading, len(shown), items, next_cursor=cursor, me=me)


# Archives ---------------------------------------------------------------------------------------


async def archive(session: AsyncSession, runtime: Runtime, app_id: str, info: BoardInfo, key: str, page: PageParams,
                  *, viewer: str | None, partition: str | None = None) -> ArchiveView:
    """The final standings of a closed period, with today's privacy settings applied."""
    if not PERIOD_KEY.match(key):
        raise Unprocessable(f"{key!r} is not a period key", code="invalid_period_key")
    closed = await repo.archived_period(session, app_id, info.board, key)
    if closed is None or closed.archived_at is None:
        raise NotFound(f"period {key} of leaderboard {info.board!r} is not archived", code="archive_not_found")
    lens = Lens(session, app_id, viewer, info.scope)
    part = ""
    if info.scope == "partition":
        if partition is None:
            raise Unprocessable(f"this board is split by {info.partition_attr!r}: pass ?partition=",
                                code="partition_required")
        part = partition
    after = page.after_int() or 0
    items: list[Row] = []
    last_rank = after
    exhausted = False
    while len(items) < page.limit and not exhausted:
        rows = await repo.archive_page(session, app_id, info.board, key, part, last_rank, page.limit + 16)
        exhausted = len(rows) < page.limit + 16
        await lens.load([r.player_id for r in rows])
        for row in rows:
            last_rank = row.rank
            if await lens.visible(row.player_id):
                items.append(lens.show(row.rank, row.player_id, row.score, row.reached_at))
                if len(items) == page.limit:
                    break
    more = bool(await repo.archive_page(session, app_id, info.board, key, part, last_rank, 1))
    return ArchiveView(board=info.board, period_key=key, partition=part if info.scope == "partition" else None,
                       archived_at=closed.archived_at, items=items,
                       next_cursor=encode_cursor([last_rank]) if more and items else None)


async def archive_period(session: AsyncSession, runtime: Runtime, app_id: str, info: BoardInfo, key: str,
                         now: datetime) -> bool:
    """Freeze a closed period's standings (once, whoever gets there first) and drop its index."""
    rows = await repo.standings(session, app_id, info.board, key, info.descending, info.min_score)
    if not await repo.claim_period(session, app_id, info.board, key, len(rows), now):
        return False
    ranks: dict[str, int] = {}
    archived = []
    for row in rows:
        rank = ranks[row.partition] = ranks.get(row.partition, 0) + 1
        archived.append({"app_id": app_id, "board": info.board, "period_key": key, "partition": row.partition,
                         "rank": rank, "player_id": row.player_id, "score": row.score, "reached_at": row.reached_at})
    await repo.add_archive(session, archived)
    leaders = [{"partition": r["partition"], "player_id": r["player_id"], "score": r["score"]}
               for r in archived if r["rank"] == 1][:20]
    await event_log.add_outbox(session, [event_log.outbox_row(
        app_id, "leaderboard.period_closed", None,
        {"board": info.board, "period_key": key, "entries": len(rows), "leaders": leaders}, now)])
    boards = boards_of(runtime)

    async def drop() -> None:
        await boards.forget(app_id, info.board, key)

    after_commit(session, drop)
    return True


async def roll_over(session: AsyncSession, runtime: Runtime, now: datetime) -> int:
    """Archive every board period that has ended (the scheduler's job); returns how many."""
    periods = await repo.unarchived_periods(session)
    bodies = await repo.board_definitions(session, {(p.app_id, p.board) for p in periods})
    done = 0
    for period in periods:
        body = bodies.get((period.app_id, period.board))
        if body is None:  # the board was deleted: close what it left without standings
            await repo.claim_period(session, period.app_id, period.board, period.period_key, 0, now)
            continue
        info = BoardInfo.of(period.board, LeaderboardDef.model_validate(body))
        if info.is_closed(period.period_key, now) and await archive_period(
                session, runtime, period.app_id, info, period.period_key, now):
            done += 1
    return done


# For other areas (competitions) -----------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    rank: int
    player_id: str
    score: int
    reached_at: datetime


async def standings(session: AsyncSession, app_id: str, info: BoardInfo, key: str, *, limit: int | None = None,
                    exclude: set[str] | None = None) -> list[Standing]:
    """A period's order from the database (for finishing a competition or period, not for reads)."""
    rows = await repo.standings(session, app_id, info.board, key, info.descending, info.min_score, limit)
    out: list[Standing] = []
    for row in rows:
        if exclude and row.player_id in exclude:
            continue
        out.append(Standing(len(out) + 1, row.player_id, row.score, row.reached_at))
    return out


async def remove_entries(session: AsyncSession, runtime: Runtime, app_id: str, boards: Sequence[str],
                         player_id: str | None = None) -> None:
    """Delete boards' entries (all, or one player's) and drop their index once committed."""
    if not boards:
        return
    await repo.delete_entries(session, app_id, boards=boards, player_id=player_id)
    index = boards_of(runtime)

    async def drop() -> None:
        for board in boards:
            await index.forget(app_id, board)

    after_commit(session, drop)


# Friends ----------------------------------------------------------------------------------------


async def befriend(session: AsyncSession, clock: Clock, app_id: str, player_id: str, friend_id: str) -> FriendsOut:
    if player_id == friend_id:
        raise Unprocessable("a player cannot befriend themself", code="cannot_befriend_self")
    await players.ensure_players(session, clock, app_id, [player_id, friend_id])
    current = set(await repo.friends_of(session, app_id, player_id))
    if friend_id not in current:
        for who in (player_id, friend_id):
            if await repo.count_friends(session, app_id, who) >= MAX_FRIENDS:
                raise Unprocessable(f"player {who} already has {MAX_FRIENDS} friends", code="too_many_friends")
        await repo.add_friendship(session, app_id, player_id, friend_id, clock.now())
        FRIENDS.invalidate(session, (app_id, player_id), (app_id, friend_id))
    return await friends_of(session, app_id, player_id)


async def unfriend(session: AsyncSession, app_id: str, player_id: str, friend_id: str) -> None:
    await players.get_player(session, app_id, player_id)
    await repo.remove_friendship(session, app_id, player_id, friend_id)
    FRIENDS.invalidate(session, (app_id, player_id), (app_id, friend_id))


async def friends_of(session: AsyncSession, app_id: str, player_id: str) -> FriendsOut:
    await players.get_player(session, app_id, player_id)
    return FriendsOut(player_id=player_id, friends=await repo.friends_of(session, app_id, player_id))


# Replay -----------------------------------------------------------------------------------------


def forget_after_commit(session: AsyncSession, runtime: Runtime, app_id: str | None) -> None:
    """Once a reset commits, drop the index data it made stale."""
    boards = boards_of(runtime)

    async def drop() -> None:
        await boards.forget(app_id)

    after_commit(session, drop)
