"""The rules for players: created on first sight, private to themselves and their app."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from math import ceil
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from questline.kit import privacy
from questline.kit.cache import CacheSpec
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, Forbidden, NotFound, RateLimited
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.players import repository as repo
from questline.players.models import Player
from questline.players.repository import SHOWN_FIELDS, Shown
from questline.players.schemas import AccountUpdate, PlayerErasure, PlayerExport, ProfileUpdate
from questline.tenancy import service as tenancy

# How each player is shown on boards (privacy flags, name fields): read on every board read, so
# held in process; dropped here and in every process when ``upsert_player`` changes one of them.
SHOWN = CacheSpec[tuple[str, str], Shown | None]("players.shown", max_entries=200_000, keep_missing=False)


# A player's traits as board reads need them (the viewer's partition): dropped when they change.
TRAITS = CacheSpec[tuple[str, str], dict[str, object]]("players.traits", max_entries=100_000)


async def cached_traits(session: AsyncSession, app_id: str, player_id: str) -> dict[str, object]:
    """One player's traits through the process's cache (reads; batches read them with ``traits_of``)."""

    async def load() -> dict[str, object]:
        return (await repo.traits_of(session, app_id, [player_id])).get(player_id, {})

    return await TRAITS.get(session, (app_id, player_id), load)


async def shown_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, Shown]:
    """player_id -> how they may be shown, for the players that exist (cached; one query for the rest)."""

    async def load(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Shown | None]:
        found = await repo.shown_of(session, app_id, [pid for _, pid in keys])
        return {(app_id, pid): shown for pid, shown in found.items()}

    cached = await SHOWN.get_many(session, [(app_id, pid) for pid in player_ids], load)
    return {pid: shown for (_, pid), shown in cached.items() if shown is not None}


async def ensure_players(session: AsyncSession, clock: Clock, app_id: str,
                         player_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Create any player not seen before; returns player_id -> (internal key, time zone)."""
    wanted = set(player_ids)
    known = await repo.keys_of(session, app_id, wanted)
    missing = wanted - known.keys()
    if missing:
        await repo.insert_missing(session, app_id, sorted(missing), clock.now())
        known.update(await repo.keys_of(session, app_id, missing))
    return known


async def timezones_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, str]:
    """player_id -> IANA time zone, for the players that exist."""
    return {player_id: tz for player_id, (_, tz) in (await repo.keys_of(session, app_id, player_ids)).items()}


async def get_player(session: AsyncSession, app_id: str, player_id: str) -> Player:
    player = await repo.get(session, app_id, player_id)
    if player is None:
        raise NotFound(f"player {player_id} not found", code="player_not_found")
    return player


async def account(engine: AsyncEngine, app_id: str, player_id: str) -> dict[str, Any]:
    """The player's account as the API shows it, by field (a read on the engine's pool: no session)."""
    row = await repo.account(engine, app_id, player_id)
    if row is None:
        raise NotFound(f"player {player_id} not found", code="player_not_found")
    return row

async def upsert_player(session: AsyncSession, clock: Clock, app_id: str, player_id: str,
                        changes: ProfileUpdate) -> Player:
    """Create the player if new and set the given fields (an ``AccountUpdate`` with traits: trusted callers)."""
    await ensure_players(session, clock, app_id, [player_id])
    values = changes.model_dump(exclude_unset=True)
    if values:
        values["updated_at"] = clock.now()
        await repo.update(session, app_id, player_id, values)
        if SHOWN_FIELDS.intersection(values):
            SHOWN.invalidate(session, (app_id, player_id))
        if "traits" in values:
            TRAITS.invalidate(session, (app_id, player_id))
    player = await get_player(session, app_id, player_id)
    await session.refresh(player)
    return player


async def update_player(session: AsyncSession, clock: Clock, app_id: str, player_id: str,
                        changes: ProfileUpdate, *, trusted: bool, timezone_interval: int = 0) -> Player:
    """Change an existing player. Traits only from a trusted caller (server key, app admin): a
    player writes their profile, never what gates read. A player changes their own time zone at
    most once per ``timezone_interval`` seconds (``429 timezone_change_too_soon``)."""
    if not trusted and isinstance(changes, AccountUpdate) and "traits" in changes.model_fields_set:
        raise Forbidden("traits are set by the server key or an app admin, not by the player",
                        code="traits_not_writable")
    player = await get_player(session, app_id, player_id)
    if not trusted and changes.timezone is not None and changes.timezone != player.timezone:
        now = clock.now()
        if player.timezone_changed_at is not None and timezone_interval:
            allowed_at = player.timezone_changed_at + timedelta(seconds=timezone_interval)
            if now < allowed_at:
                raise RateLimited(f"the time zone may change once every {timezone_interval} seconds; next at "
                                  f"{allowed_at.isoformat()}", code="timezone_change_too_soon",
                                  retry_after=ceil((allowed_at - now).total_seconds()),
                                  extra={"allowed_at": allowed_at.isoformat()})
        # Stamped only if the player's own change is still the one stored (racing changes: one wins).
        if not await repo.stamp_timezone_change(session, app_id, player_id, player.timezone_changed_at, now):
            raise Conflict("the time zone was changed meanwhile; read it again", code="timezone_change_conflict")
    return await upsert_player(session, clock, app_id, player_id, changes)


async def traits_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, dict[str, object]]:
    """Players' traits (absent: none): the only player data gates and requirements read."""
    return await repo.traits_of(session, app_id, player_ids)


async def revoke_tokens(session: AsyncSession, clock: Clock, app_id: str, player_id: str) -> None:
    """End every token minted for the player so far (new ones can be minted at once)."""
    await get_player(session, app_id, player_id)
    await tenancy.revoke_player_tokens(session, clock, app_id, player_id)


async def list_players(session: AsyncSession, app_id: str, page: PageParams, prefix: str | None = None) -> Page[Player]:
    rows = await repo.page(session, app_id, page.after_str(), page.limit, prefix)
    return build_page(list(rows), page.limit, lambda p: [p.player_id])


# Export and erasure ------------------------------------------------------------------------------


async def export(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str) -> PlayerExport:
    """Everything the engine holds about the player, area by area (404 for an unknown player)."""
    await get_player(session, app_id, player_id)
    areas = await privacy.export_player(session, privacy.registry_of(runtime), app_id, player_id)
    return PlayerExport(player_id=player_id, exported_at=runtime.clock.now(), areas=areas)


async def erase(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str) -> PlayerErasure:
    """Erase the player: their tokens stop working, every area deletes or anonymizes its rows (the
    ledger's accounts pass to an anonymous holder, so the books stay balanced), their ranks leave
    every board. Erasing an unknown (or already erased) player changes nothing."""
    if await repo.get(session, app_id, player_id) is None:
        return PlayerErasure(player_id=player_id, erased=False, anonymous_id=None, rows={})
    await tenancy.revoke_player_tokens(session, runtime.clock, app_id, player_id)
    anonymous_id = new_id("anon")
    rows = await privacy.erase_player(session, runtime, privacy.registry_of(runtime), app_id, player_id,
                                      anonymous_id)
    SHOWN.invalidate(session, (app_id, player_id))  # here and, once this commits, in every process
    TRAITS.invalidate(session, (app_id, player_id))
    return PlayerErasure(player_id=player_id, erased=True, anonymous_id=anonymous_id, rows=rows)
