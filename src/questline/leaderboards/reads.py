"""Leaderboard reads: the top, a player's place and the players around them, archived periods.

Ranks come from the rank index (``boards.py``), never from counting rows per request; the
database stays the truth and the index is rebuilt from it lazily, per board and period.
Privacy (``privacy.py``) applies per viewer after the index gives the order.

Ranks are competitive positions: a hidden player keeps their place, so a listing may skip a
number. Friends boards rank the viewer among the friends they can see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.cache import CacheHub
from questline.kit.errors import NotFound, Unprocessable
from questline.kit.pagination import PageParams, encode_cursor
from questline.kit.runtime import Runtime
from questline.leaderboards import repository as repo
from questline.leaderboards.boards import boards_of
from questline.leaderboards.definitions import PERIOD_KEY, BoardInfo
from questline.leaderboards.friends import FRIENDS, MAX_FRIENDS
from questline.leaderboards.index import BoardRef, RankIndex, from_micros
from questline.leaderboards.pages import PublicTop, RenderedRows, held_by, rendered_of
from questline.leaderboards.privacy import Lens
from questline.leaderboards.views import ArchiveView, BoardView, Row
from questline.players import service as players

MAX_AROUND = 50


@dataclass(frozen=True)
class Reading:
    """One read's coordinates: which board, period and partition, for whom."""

    info: BoardInfo
    ref: BoardRef
    partition: str
    lens: Lens
    now: datetime
    index: RankIndex
    hub: CacheHub


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
    return Reading(info, ref, part, lens, now, boards.index, runtime.caches)


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
        lens = reading.lens
        await lens.load([e.player_id for e in chunk])
        pairs = list(enumerate(chunk, start=first))
        settled, show = lens.settled, lens.show  # bound once: this loop runs for every row read
        for position, entry in reversed(pairs) if backwards else pairs:
            budget -= 1
            player_id = entry.player_id
            seen = settled(player_id)
            if seen is None:
                seen = await lens.visible(player_id)
            if seen:
                found.append(show(position + 1, player_id, entry.score, from_micros(entry.reached_us)))
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
    if page.cursor is None:
        view = await _first_page(reading, page.limit)
        if view is not None:
            return view
    start = await _resume(reading, page)
    items, following = await _scan(reading, start, page.limit)
    size = await reading.index.size(reading.ref, reading.partition)
    cursor = None
    if following is not None and following < size and items:
        last = items[-1]
        cursor = encode_cursor([following, last.player_id or "", last.score])
    return _view(reading, size, items, next_cursor=cursor, me=await _me(reading))


def _stamp(hub: CacheHub) -> tuple[int, int]:
    """What rendered pages depend on besides the index: how players are shown, and friendships."""
    return players.SHOWN.of(hub).generation, FRIENDS.of(hub).generation


def _cursor(following: int | None, size: int, items: list[Row]) -> str | None:
    if following is None or following >= size or not items:
        return None
    last = items[-1]
    return encode_cursor([following, last.player_id or "", last.score])


async def _first_page(reading: Reading, limit: int) -> BoardView | None:
    """The first page from the public one rendered for this board (``pages``), or None when the
    viewer would see more than the public does (their own read then follows)."""
    stamp = _stamp(reading.hub)
    app_id = reading.ref.app_id
    rendered = rendered_of(reading.hub, app_id, stamp)
    key = (reading.ref, reading.partition, limit)
    public = rendered.tops.get(key)
    if public is None:
        public = await _public_top(reading, limit)
        if public is None:
            return None
        if held_by(reading.hub, app_id, rendered, stamp):
            rendered.keep(rendered.tops, key, public)
    lens = reading.lens
    viewer = lens.viewer
    friends = await lens.friends() if viewer is not None and public.friends_only else None
    items = public.for_viewer(viewer, friends)
    if items is None:
        return None
    me: Row | None = None
    if viewer is not None:
        mine = (reading.ref, reading.partition, viewer)
        if mine in rendered.mes:
            me = rendered.mes[mine]
        else:
            me = await _me(reading)
            if held_by(reading.hub, app_id, rendered, stamp) and not lens.incomplete:
                rendered.keep(rendered.mes, mine, me)
    return _view(reading, public.size, items, next_cursor=_cursor(public.following, public.size, items), me=me)


async def _public_top(reading: Reading, limit: int) -> PublicTop | None:
    """The board's first ``limit`` entries as the public sees them (None: a player has no row yet)."""
    lens = Lens(reading.lens.session, reading.ref.app_id, None, reading.info.scope)
    public = Reading(reading.info, reading.ref, reading.partition, lens, reading.now, reading.index, reading.hub)
    items, following = await _scan(public, 0, limit)
    size = await reading.index.size(reading.ref, reading.partition)
    scanned = await reading.index.window(reading.ref, reading.partition, 0, size if following is None else following)
    await lens.load([e.player_id for e in scanned])
    hidden, friends_only = set(), set()
    if lens.incomplete:
        return None
    for entry in scanned:
        player_id = entry.player_id
        if lens.settled(player_id):
            continue
        hidden.add(player_id)
        if lens.friends_see(player_id):
            friends_only.add(player_id)
    ids = tuple(entry.player_id for entry in scanned if entry.player_id not in hidden)
    return PublicTop(RenderedRows(items), ids[:len(items)], following, size, frozenset(hidden),
                     frozenset(friends_only))


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
    stamp = _stamp(reading.hub)
    rendered = rendered_of(reading.hub, app_id, stamp)
    place = (reading.ref, reading.partition, player_id, around)
    hit = rendered.places.get(place)
    if hit is not None:
        return _view(reading, hit[0], hit[1], me=hit[2])
    found = await reading.index.rank(reading.ref, player_id)
    if around and found is not None and found[1].partition == reading.partition:
        # One privacy query for the neighbourhood (with room for a few hidden players).
        first = max(found[0] - around - 16, 0)
        nearby = await reading.index.window(reading.ref, reading.partition, first, found[0] - first + around + 17)
        await reading.lens.load([e.player_id for e in nearby])
    me = await _me(reading)
    size = await reading.index.size(reading.ref, reading.partition)
    items: list[Row] = [] if me is None else [me]
    if around and me is not None:
        above, _ = await _scan(reading, me.rank - 2, around, backwards=True)
        below, _ = await _scan(reading, me.rank, around)
        items = [*reversed(above), me, *below]
    rows = RenderedRows(items)
    if held_by(reading.hub, app_id, rendered, stamp) and not reading.lens.incomplete:
        rendered.keep(rendered.places, place, (size, rows, me))
    return _view(reading, size, rows, me=me)


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
