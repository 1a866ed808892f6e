"""Rendered reads, kept until the rank index or a player's privacy changes.

A top page costs a row loop over a hundred entries (privacy, names, a ``Row`` each) and their
JSON; an around-me read several index calls. Both are kept per app, in the process's cache hub
(``PAGES``), and reused until something they were made from changes:

- the app's rank index: ``Boards`` invalidates the app's entry after every merge, rebuild and
  drop (with Redis, in every process, through the hub's pub/sub; the worker may live elsewhere);
- how players are shown, or who is whose friend: an entry carries the generations of the
  ``players.shown`` and ``leaderboards.friends`` caches it was made under, and is dropped when
  either moved (those caches move on every change, here or heard from another process).

A top page is made for the public (no viewer) and given to a viewer when it is what they would
see: they are not among the entries it hides and none of those is a ``friends_only`` friend of
theirs. Then only their own row (``is_me``, their id) and ``me`` differ. A page with a player who
has no row yet is not kept (nothing would tell it when the row appears).

Like every hub cache: nothing is kept while the hub is not serving (Redis unsubscribed), and
what was computed while the entry was dropped is returned but not kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from questline.kit.cache import CacheHub, CacheSpec
from questline.leaderboards.index import BoardRef
from questline.leaderboards.views import Row

__all__ = ["PAGES", "PublicTop", "Rendered", "RenderedRows", "forget_pages", "held_by", "rendered_of"]

# Per app: one ``Rendered``. Few apps are read at once; each holds bounded maps.
PAGES = CacheSpec[str, "Rendered | None"]("leaderboards.pages", max_entries=1_000, keep_missing=False)
_MAX_PER_KIND = 20_000  # tops, me rows and places each; emptied when full


class RenderedRows(list[Row]):
    """A page's rows with their JSON made once (``views.to_json`` splices it in). Read-only."""

    __slots__ = ("fragment",)

    def __init__(self, rows: Iterable[Row], fragment: orjson.Fragment | None = None) -> None:
        super().__init__(rows)
        self.fragment = fragment if fragment is not None else orjson.Fragment(
            orjson.dumps(list(self), option=orjson.OPT_UTC_Z))


@dataclass(frozen=True)
class PublicTop:
    """The first ``limit`` entries of a board as the public sees them, and what that hides."""

    rows: RenderedRows
    ids: tuple[str, ...]  # each row's player (an anonymous row shows none)
    following: int | None  # where the next page starts (None: the board ends here)
    size: int
    hidden: frozenset[str]  # players ranked before ``following`` whom the public does not see
    friends_only: frozenset[str]  # those of them a friend would see

    def for_viewer(self, viewer: str | None, friends: Iterable[str] | None) -> RenderedRows | None:
        """The rows ``viewer`` sees, or None when they see more than the public (then read for them).

        ``friends`` (the viewer's) is needed only when ``friends_only`` is not empty."""
        if viewer is None:
            return self.rows
        if viewer in self.hidden:
            return None
        if self.friends_only and (friends is None or not self.friends_only.isdisjoint(friends)):
            return None
        try:
            mine = self.ids.index(viewer)
        except ValueError:
            return self.rows
        rows = list(self.rows)
        own = rows[mine]
        rows[mine] = Row(own.rank, viewer, own.display_name, own.score, own.reached_at, True)
        return RenderedRows(rows)


@dataclass
class Rendered:
    """What the reads of one app made since its boards or its players' privacy last changed."""

    stamp: tuple[int, int]  # generations of players.shown and leaderboards.friends when made
    tops: dict[tuple[BoardRef, str, int], PublicTop] = field(default_factory=dict)
    mes: dict[tuple[BoardRef, str, str], Row | None] = field(default_factory=dict)
    places: dict[tuple[BoardRef, str, str, int], tuple[int, RenderedRows, Row | None]] = field(default_factory=dict)

    def keep(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        if len(table) >= _MAX_PER_KIND:
            table.clear()
        table[key] = value


def rendered_of(hub: CacheHub, app_id: str, stamp: tuple[int, int]) -> Rendered:
    """The app's live entry, or a new one (kept only while the hub serves)."""
    cache = PAGES.of(hub)
    found, held = cache.peek(app_id)
    if found and held is not None and held.stamp == stamp:
        return held
    held = Rendered(stamp)
    cache.put(app_id, held)
    return held


def held_by(hub: CacheHub, app_id: str, rendered: Rendered, stamp: tuple[int, int]) -> bool:
    """Whether ``rendered`` is still the app's live entry (nothing changed while a read was made)."""
    found, held = PAGES.of(hub).peek(app_id)
    return found and held is rendered and rendered.stamp == stamp


async def forget_pages(hub: CacheHub, app_id: str | None) -> None:
    """The app's boards changed (every app's, for None): drop what was rendered, in every process."""
    if app_id is None:
        await hub.invalidate_all(PAGES.name)
    else:
        await hub.invalidate(PAGES.name, [app_id])
