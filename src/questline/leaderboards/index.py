"""Rank indexes: ordered structures that answer "what rank is this player" without counting rows.

The database (``leaderboard_entries``) is the truth; an index is a copy ordered by rank,
rebuilt from the database on first use and kept current by the worker after each commit.

Order: score (highest first on ``desc`` boards), then who reached it first (``reached_at``,
then log ``seq``), then player id. Every write carries the entry's ``version``, which goes up
by one on each change of that entry; an index applies a write only when it is newer than what
it holds, so hooks and rebuilds may arrive in any order and still converge on the database.

The in-memory index serves the process it lives in: the embedded tier runs API and worker in
one process, so the worker's after-commit hooks keep it current. Deployments with several
processes configure Redis, which every process shares.

Two backends with one interface:

- ``MemoryIndex`` (embedded tier): per board and partition a ``SortedList`` of
  ``(signed score, reached_us, seq, player_id)`` tuples: rank, insert and remove are O(log n).
- ``RedisIndex`` (scaled out): per board and partition a sorted set. The zset score is the
  signed score (``-score`` on ``desc`` boards, so ``ZRANGE``/``ZRANK`` always read best first);
  ties are broken by the member, which Redis orders byte-wise among equal scores:
  ``<reached_us: 14 hex><seq: 16 hex><score>\\x1f<player_id>`` (the score rides along so a
  range read needs no ``WITHSCORES``). Scores are doubles in Redis: their order is exact for
  integers up to 2**53 in size (the definition schema refuses larger ``min_score``; larger
  scores lose their last digits' order). ``reached_us`` fits 14 hex digits until the year
  4253; ``seq`` is a 64-bit log position. A hash per board maps player -> (version, partition,
  member) so a player's old member can be removed and their rank read in one script.
  Keys: ``{ns}:lb:{app}:{board}:{period}:{shape}:`` + ``m`` (the hash), ``r2`` (ready: merged
  with the database), ``z:{partition}`` (sorted sets). Scripts compute partition keys inside,
  so a board's keys must live on one node (fine for one Redis; use hash tags for Cluster).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sortedcontainers import SortedList

if TYPE_CHECKING:  # the scaled tier's client, imported where it is made (kit.runtime)
    from redis.asyncio import Redis

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# Reads turn the same entries' times into datetimes again and again (the top of a board, on
# every read): kept here, bounded (emptied when full; a datetime is immutable, so sharing is safe).
_MOMENTS: dict[int, datetime] = {}
_MOMENTS_MAX = 100_000


def from_micros(value: int) -> datetime:
    moment = _MOMENTS.get(value)
    if moment is None:
        if len(_MOMENTS) >= _MOMENTS_MAX:
            _MOMENTS.clear()
        seconds, us = divmod(value, 1_000_000)
        moment = _MOMENTS[value] = EPOCH + timedelta(0, seconds, us)  # positional: cheaper than microseconds=
    return moment


@dataclass(frozen=True, slots=True)
class BoardRef:
    """One ranked board in one period: what an index is kept for."""

    app_id: str
    board: str
    period_key: str
    descending: bool = True
    min_score: int | None = None

    @property
    def shape(self) -> str:
        return ("d" if self.descending else "a") + ("" if self.min_score is None else str(self.min_score))

    def ranked(self, score: int) -> bool:
        return self.min_score is None or score >= self.min_score


class Entry(NamedTuple):
    player_id: str
    partition: str
    score: int
    reached_us: int
    seq: int
    version: int = 0

    @property
    def reached_at(self) -> datetime:
        return from_micros(self.reached_us)


class RankIndex(Protocol):
    """What the read side needs; positions are 0-based, best first."""

    async def ready(self, ref: BoardRef) -> bool: ...

    async def prepare(self, ref: BoardRef) -> None: ...

    async def merge(self, ref: BoardRef, entries: Sequence[Entry], *, mark_ready: bool = False) -> None: ...

    async def rank(self, ref: BoardRef, player_id: str) -> tuple[int, Entry] | None: ...

    async def window(self, ref: BoardRef, partition: str, start: int, count: int) -> list[Entry]: ...

    async def size(self, ref: BoardRef, partition: str) -> int: ...

    async def lookup(self, ref: BoardRef, player_ids: Iterable[str]) -> dict[str, Entry]: ...

    async def drop(self, app_id: str | None, board: str | None = None, period_key: str | None = None) -> None: ...

    async def unready(self, refs: Iterable[BoardRef]) -> None: ...


# In memory -------------------------------------------------------------------------------------


@dataclass
class _Board:
    ref: BoardRef
    players: dict[str, Entry] = field(default_factory=dict)
    partitions: dict[str, SortedList] = field(default_factory=dict)
    ready: bool = False

    def key(self, entry: Entry) -> tuple[int, int, int, str]:
        signed = -entry.score if self.ref.descending else entry.score
        return (signed, entry.reached_us, entry.seq, entry.player_id)

    def apply(self, entry: Entry) -> None:
        old = self.players.get(entry.player_id)
        if old is not None:
            if old.version >= entry.version:
                return
            if self.ref.ranked(old.score):
                self.partitions[old.partition].discard(self.key(old))
        self.players[entry.player_id] = entry
        if self.ref.ranked(entry.score):
            part = self.partitions.get(entry.partition)
            if part is None:
                part = self.partitions[entry.partition] = SortedList()
            part.add(self.key(entry))


class MemoryIndex:
    """The embedded tier's index: in this process, rebuilt from the database on first use."""

    def __init__(self) -> None:
        self._boards: dict[BoardRef, _Board] = {}

    def _board(self, ref: BoardRef, create: bool = False) -> _Board | None:
        board = self._boards.get(ref)
        if board is None and create:
            board = self._boards[ref] = _Board(ref)
        return board

    async def ready(self, ref: BoardRef) -> bool:
        board = self._boards.get(ref)
        return board is not None and board.ready

    async def prepare(self, ref: BoardRef) -> None:
        """Start holding a board, so writes that land while it is rebuilt are kept."""
        self._board(ref, create=True)

    async def merge(self, ref: BoardRef, entries: Sequence[Entry], *, mark_ready: bool = False) -> None:
        board = self._board(ref, create=mark_ready)
        if board is None:
            return  # never read here: built from the database when first read
        for entry in entries:
            board.apply(entry)
        if mark_ready:
            board.ready = True

    async def rank(self, ref: BoardRef, player_id: str) -> tuple[int, Entry] | None:
        board = self._boards.get(ref)
        entry = board.players.get(player_id) if board else None
        if board is None or entry is None or not ref.ranked(entry.score):
            return None
        return board.partitions[entry.partition].index(board.key(entry)), entry

    async def window(self, ref: BoardRef, partition: str, start: int, count: int) -> list[Entry]:
        board = self._boards.get(ref)
        part = board.partitions.get(partition) if board else None
        if board is None or part is None or count <= 0:
            return []
        players = board.players
        return [players[key[3]] for key in part.islice(max(start, 0), max(start, 0) + count)]

    async def size(self, ref: BoardRef, partition: str) -> int:
        board = self._boards.get(ref)
        part = board.partitions.get(partition) if board else None
        return len(part) if part is not None else 0

    async def lookup(self, ref: BoardRef, player_ids: Iterable[str]) -> dict[str, Entry]:
        board = self._boards.get(ref)
        if board is None:
            return {}
        return {pid: board.players[pid] for pid in player_ids if pid in board.players}

    async def unready(self, refs: Iterable[BoardRef]) -> None:
        for ref in refs:
            self._boards.pop(ref, None)

    async def drop(self, app_id: str | None, board: str | None = None, period_key: str | None = None) -> None:
        for ref in [r for r in self._boards if app_id in (None, r.app_id) and board in (None, r.board)
                    and period_key in (None, r.period_key)]:
            del self._boards[ref]


# Redis -----------------------------------------------------------------------------------------

_SEP = "\x1f"
# The ready marker's name. Renamed ("r" -> "r2") when the entries' versions were raised by
# migration 0601, so every shared index is rebuilt once from the database after that upgrade.
_READY = "r2"
_MERGE = """
local prefix = KEYS[1]
local h = prefix .. 'm'
local changed = 0
for i = 1, #ARGV, 6 do
  local player, part, zscore, member, version, keep = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5]
  local old = redis.call('HGET', h, player)
  local newer = true
  if old then
    local p1 = string.find(old, '\\31', 1, true)
    local p2 = string.find(old, '\\31', p1 + 1, true)
    if tonumber(string.sub(old, 1, p1 - 1)) >= tonumber(version) then
      newer = false
    else
      redis.call('ZREM', prefix .. 'z:' .. string.sub(old, p1 + 1, p2 - 1), string.sub(old, p2 + 1))
    end
  end
  if newer then
    if keep == '1' then redis.call('ZADD', prefix .. 'z:' .. part, zscore, member) end
    redis.call('HSET', h, player, version .. '\\31' .. part .. '\\31' .. member)
    changed = changed + 1
  end
end
return changed
"""
_RANK = """
local old = redis.call('HGET', KEYS[1] .. 'm', ARGV[1])
if not old then return false end
local p1 = string.find(old, '\\31', 1, true)
local p2 = string.find(old, '\\31', p1 + 1, true)
local part = string.sub(old, p1 + 1, p2 - 1)
local rank = redis.call('ZRANK', KEYS[1] .. 'z:' .. part, string.sub(old, p2 + 1))
if not rank then return false end
return {rank, old}
"""
_TIE = "{:014x}{:016x}{}\x1f"


def _member(entry: Entry) -> str:
    return _TIE.format(entry.reached_us, entry.seq, entry.score) + entry.player_id


def _from_member(member: str, partition: str, version: int = 0) -> Entry:
    score, _, player_id = member[30:].partition(_SEP)
    return Entry(player_id, partition, int(score), int(member[:14], 16), int(member[14:30], 16), version)


class RedisIndex:
    """The scaled-out index: sorted sets shared by every process."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self._ns = namespace
        self._merge = redis.register_script(_MERGE)
        self._rank = redis.register_script(_RANK)

    def _prefix(self, ref: BoardRef) -> str:
        return f"{self._ns}:lb:{ref.app_id}:{ref.board}:{ref.period_key}:{ref.shape}:"

    async def ready(self, ref: BoardRef) -> bool:
        return bool(await self._redis.exists(self._prefix(ref) + _READY))

    async def prepare(self, ref: BoardRef) -> None:
        return None  # writes always land in Redis

    async def merge(self, ref: BoardRef, entries: Sequence[Entry], *, mark_ready: bool = False) -> None:
        prefix = self._prefix(ref)
        for start in range(0, len(entries), 2000):
            chunk = entries[start:start + 2000]
            args: list[Any] = []
            for e in chunk:
                zscore = -e.score if ref.descending else e.score
                args += [e.player_id, e.partition, zscore, _member(e), e.version,
                         "1" if ref.ranked(e.score) else "0"]
            await self._merge(keys=[prefix], args=args)
        if mark_ready:
            await self._redis.set(prefix + _READY, "1")

    async def unready(self, refs: Iterable[BoardRef]) -> None:
        keys = [self._prefix(ref) + _READY for ref in refs]
        if keys:
            await self._redis.delete(*keys)

    async def rank(self, ref: BoardRef, player_id: str) -> tuple[int, Entry] | None:
        found = await self._rank(keys=[self._prefix(ref)], args=[player_id])
        if not found:
            return None
        position, raw = found[0], found[1]
        version, partition, member = _decode(raw).split(_SEP, 2)
        return int(position), _from_member(member, partition, int(version))

    async def window(self, ref: BoardRef, partition: str, start: int, count: int) -> list[Entry]:
        if count <= 0:
            return []
        start = max(start, 0)
        rows: list[Any] = await self._redis.zrange(self._prefix(ref) + "z:" + partition, start, start + count - 1)
        return [_from_member(_decode(row), partition) for row in rows]

    async def size(self, ref: BoardRef, partition: str) -> int:
        return int(await self._redis.zcard(self._prefix(ref) + "z:" + partition))

    async def lookup(self, ref: BoardRef, player_ids: Iterable[str]) -> dict[str, Entry]:
        ids = list(player_ids)
        if not ids:
            return {}
        raw = await self._redis.hmget(self._prefix(ref) + "m", ids)
        out = {}
        for pid, value in zip(ids, raw, strict=True):
            if value is not None:
                version, partition, member = _decode(value).split(_SEP, 2)
                out[pid] = _from_member(member, partition, int(version))
        return out

    async def drop(self, app_id: str | None, board: str | None = None, period_key: str | None = None) -> None:
        pattern = f"{self._ns}:lb:{app_id or '*'}:{board or '*'}:{period_key or '*'}:*"
        batch: list[Any] = []
        async for key in self._redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await self._redis.unlink(*batch)
                batch = []
        if batch:
            await self._redis.unlink(*batch)


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
