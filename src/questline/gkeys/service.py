"""G-Keys and energy packs: what rations how many campaigns a streamer can take.

G-Keys (one per streamer and category, created on first use)::

    available --lock (join)--> locked --release (leave, completion)--> cooloff --ends--> available
        ^                                                                 |
        +------------- same brand that last used it: usable at once ------+

A key in cooloff is usable at once by a campaign of the brand that last used it (same-brand
exception). Releasing a key after a campaign of that same brand keeps the higher of the two
cooloffs; after another brand's campaign, the new brand and its cooloff are remembered. A cooloff
that has ended counts as available at once; a scheduled job also turns such keys back to
``available`` and announces ``gkey.cooloff_expired``.

Energy packs: ``energy_max`` per streamer (the app's setting), one consumed per join, back to the
maximum at the streamer's local midnight (their player's time zone), and, if the app sets
``energy_regen_minutes``, one more every that many minutes up to the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.gkeys import repository as repo
from questline.gkeys.models import Energy, GKey
from questline.gkeys.schemas import EnergyOut, KeyDebug, KeyOut, KeysOut, KeysSummary, UnlockOut
from questline.kit.clock import Clock
from questline.kit.errors import NotFound
from questline.kit.periods import zone
from questline.players import service as players
from questline.sponsors import bridge
from questline.sponsors import service as sponsors
from questline.sponsors.models import Streamer
from questline.sponsors.schemas import MarketSettings

# Keys -----------------------------------------------------------------------------------------


def _status_now(key: GKey | None, now: datetime) -> str:
    if key is None:
        return "available"
    if key.status == "cooloff" and (key.cooloff_until is None or key.cooloff_until <= now):
        return "available"
    return key.status


def _key_out(category: str, key: GKey | None, now: datetime) -> KeyOut:
    if key is None:
        return KeyOut(category=category, status="available")
    status = _status_now(key, now)
    return KeyOut(category=category, status=status,
                  locked_campaign_id=key.locked_campaign_id, locked_at=key.locked_at,
                  cooloff_until=key.cooloff_until if status == "cooloff" else None, usage_count=key.usage_count,
                  last_used_at=key.last_used_at, last_brand_id=key.last_brand_id,
                  last_brand_cooloff_hours=key.last_brand_cooloff_hours)


async def keys_of(session: AsyncSession, clock: Clock, app_id: str, streamer_id: str) -> KeysOut:
    """Every key of the app's categories (those never used show as available), with a summary by state."""
    await sponsors.get_streamer(session, app_id, streamer_id)
    settings = await sponsors.market_settings(session, app_id)
    rows = {k.category: k for k in await repo.keys_of(session, app_id, streamer_id)}
    now = clock.now()
    categories = list(settings.categories) + sorted(set(rows) - set(settings.categories))
    keys = [_key_out(c, rows.get(c), now) for c in categories]
    summary = KeysSummary(total=len(keys), available=sum(k.status == "available" for k in keys),
                          locked=sum(k.status == "locked" for k in keys),
                          cooloff=sum(k.status == "cooloff" for k in keys))
    return KeysOut(streamer_id=streamer_id, keys=keys, summary=summary)


async def _known_category(session: AsyncSession, app_id: str, streamer_id: str, category: str) -> GKey | None:
    settings = await sponsors.market_settings(session, app_id)
    key = await repo.get_key(session, app_id, streamer_id, category)
    if key is None and category not in settings.categories:
        raise NotFound(f"{category!r} is not a G-Key category of this app", code="unknown_category",
                       extra={"categories": settings.categories})
    return key


async def key_of(session: AsyncSession, clock: Clock, app_id: str, streamer_id: str, category: str) -> KeyOut:
    await sponsors.get_streamer(session, app_id, streamer_id)
    return _key_out(category, await _known_category(session, app_id, streamer_id, category), clock.now())


def _remaining(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h {mins}m"


async def debug_key(session: AsyncSession, clock: Clock, app_id: str, streamer_id: str, category: str) -> KeyDebug:
    """The key's state explained: what it is locked with, how long its cooloff runs, who may use it now."""
    await sponsors.get_streamer(session, app_id, streamer_id)
    key = await _known_category(session, app_id, streamer_id, category)
    now = clock.now()
    out = _key_out(category, key, now)
    remaining = None
    by_brand = None
    if key is None:
        text = "never used: the key is created, available, on its first use"
    elif key.status == "locked":
        text = f"locked with campaign {key.locked_campaign_id} (brand {key.locked_brand_id}) since " \
               f"{key.locked_at.isoformat() if key.locked_at else '?'}; released when the streamer leaves or the " \
               "campaign completes"
    elif out.status == "cooloff":
        assert key.cooloff_until is not None
        remaining = _remaining(key.cooloff_until - now)
        by_brand = key.last_brand_id
        text = f"in cooloff until {key.cooloff_until.isoformat()} ({remaining} left, " \
               f"{key.last_brand_cooloff_hours}h after brand {key.last_brand_id}'s campaign); brand " \
               f"{key.last_brand_id} may use it now (same-brand exception), other brands after the cooloff"
    elif key.status == "cooloff":
        text = f"its cooloff ended at {key.cooloff_until.isoformat() if key.cooloff_until else '?'}: usable now " \
               "(the scheduled job marks it available)"
    else:
        text = f"available; used {key.usage_count} time(s)"
    return KeyDebug(streamer_id=streamer_id, category=category, key=out, stored_status=key.status if key else None,
                    usable_now=out.status == "available", usable_by_brand=by_brand, cooloff_remaining=remaining,
                    explanation=text)


async def force_unlock(session: AsyncSession, clock: Clock, app_id: str, streamer_id: str, category: str,
                       actor: str) -> UnlockOut:
    """An admin's tool: make the key available whatever its state (the participation it was locked
    with stays as it is)."""
    streamer = await sponsors.get_streamer(session, app_id, streamer_id)
    await _known_category(session, app_id, streamer_id, category)
    now = clock.now()
    await repo.ensure_keys(session, app_id, streamer_id, [category], now)
    key = await repo.get_key(session, app_id, streamer_id, category, lock=True)
    assert key is not None
    previous, campaign = key.status, key.locked_campaign_id
    await repo.force_available(session, key.id, now)
    await bridge.announce(session, app_id, now, "gkey.force_unlocked", {
        "streamer_id": streamer_id, "category": category, "previous_status": previous, "campaign_id": campaign,
        "actor": actor}, streamer.player_id)
    fresh = await repo.get_key(session, app_id, streamer_id, category)
    return UnlockOut(key=_key_out(category, fresh, now), previous_status=previous,
                     previous_campaign_id=campaign)


@dataclass(frozen=True)
class KeyChoice:
    category: str | None
    reason: str  # why none is usable, when category is None
    was_cooloff: bool = False
    same_brand: bool = False


async def choose_key(session: AsyncSession, clock: Clock, app_id: str, streamer: Streamer, categories: list[str],
                     brand_id: str, settings: MarketSettings) -> KeyChoice:
    """The first of ``categories`` whose key this brand may use now (same-brand exception included).

    An uncategorized campaign may use a key of any category: the streamer's own content categories
    first, then the app's, in order.
    """
    wanted = list(categories) or list(dict.fromkeys([*[c for c in streamer.content_categories
                                                        if c in settings.categories], *settings.categories]))
    rows = {k.category: k for k in await repo.keys_of(session, app_id, streamer.id)}
    now = clock.now()
    reasons = []
    for category in wanted:
        key = rows.get(category)
        status = _status_now(key, now)
        if status == "available":
            return KeyChoice(category, "", was_cooloff=key is not None and key.status == "cooloff")
        assert key is not None
        if status == "cooloff" and key.last_brand_id == brand_id:
            return KeyChoice(category, "", was_cooloff=True, same_brand=True)
        if status == "locked":
            reasons.append(f"{category}: locked with campaign {key.locked_campaign_id}")
        else:
            until = key.cooloff_until.isoformat() if key.cooloff_until else "?"
            reasons.append(f"{category}: in cooloff until {until}")
    return KeyChoice(None, "; ".join(reasons) or "no category to use")


async def lock_key(session: AsyncSession, clock: Clock, app_id: str, streamer: Streamer, choice: KeyChoice,
                   campaign_id: str, brand_id: str, out: bridge.Announcements) -> bool:
    """Lock the chosen key with the campaign; False if it stopped being usable (a racing join won)."""
    assert choice.category is not None
    now = clock.now()
    await repo.ensure_keys(session, app_id, streamer.id, [choice.category], now)
    if not await repo.lock_key(session, app_id, streamer.id, choice.category, campaign_id=campaign_id,
                               brand_id=brand_id, now=now):
        return False
    if choice.was_cooloff and not choice.same_brand:
        out.add("gkey.cooloff_expired", {"streamer_id": streamer.id, "category": choice.category},
                streamer.player_id)
    out.add("gkey.consumed", {"streamer_id": streamer.id, "category": choice.category, "campaign_id": campaign_id,
                              "brand_id": brand_id, "same_brand_exception": choice.same_brand}, streamer.player_id)
    return True


async def release_key(session: AsyncSession, clock: Clock, app_id: str, streamer_id: str, player_id: str,
                      campaign_id: str, brand_id: str, cooloff_hours: int,
                      out: bridge.Announcements) -> dict[str, Any] | None:
    """The key locked with this campaign goes to cooloff (None if no key is locked with it).

    Same brand as the key's last: the higher of the two cooloffs, remembered. Another brand: this
    campaign's brand and cooloff are remembered.
    """
    key = await repo.key_locked_with(session, app_id, streamer_id, campaign_id)
    if key is None:
        return None
    hours = cooloff_hours
    if key.last_brand_id == brand_id and key.last_brand_cooloff_hours is not None:
        hours = max(cooloff_hours, key.last_brand_cooloff_hours)
    now = clock.now()
    until = now + timedelta(hours=hours)
    if not await repo.cool_off(session, key.id, campaign_id, until=until, brand_id=brand_id, brand_hours=hours,
                               now=now):
        return None
    released = {"streamer_id": streamer_id, "category": key.category, "campaign_id": campaign_id,
                "brand_id": brand_id, "cooloff_hours": hours, "cooloff_until": until.isoformat()}
    out.add("gkey.released", released, player_id)
    return released


async def expire_cooloffs(session: AsyncSession, clock: Clock, limit: int = 1000) -> int:
    """The scheduled job: ended cooloffs become available, each announced once."""
    now = clock.now()
    moved = await repo.expire_cooloffs(session, now, limit)
    by_app: dict[str, list[tuple[str, str]]] = {}
    for app_id, streamer_id, category in moved:
        by_app.setdefault(app_id, []).append((streamer_id, category))
    for app_id, keys in by_app.items():
        streamers = await sponsors.streamers_by_id(session, app_id, [s for s, _ in keys])
        out = bridge.Announcements(app_id, now)
        for streamer_id, category in keys:
            found = streamers.get(streamer_id)
            out.add("gkey.cooloff_expired", {"streamer_id": streamer_id, "category": category},
                    found.player_id if found else None)
        await out.flush(session)
    return len(moved)


# Energy ---------------------------------------------------------------------------------------


def _next_midnight(now: datetime, tz_name: str) -> tuple[str, datetime]:
    """(the local date now, the next local midnight as a UTC instant)."""
    tz = zone(tz_name)
    local = now.astimezone(tz)
    tomorrow = (local + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz)
    return local.strftime("%Y-%m-%d"), midnight.astimezone(now.tzinfo)


@dataclass
class EnergyState:
    current: int
    maximum: int
    daily_used: int
    day: str
    next_reset_at: datetime
    regen_at: datetime | None
    reset: bool = False  # this computation crossed a local midnight

    def values(self) -> dict[str, Any]:
        return {"current": self.current, "maximum": self.maximum, "daily_used": self.daily_used, "day": self.day,
                "next_reset_at": self.next_reset_at, "regen_at": self.regen_at}


def _advance(row: Energy | None, now: datetime, tz_name: str, settings: MarketSettings) -> EnergyState:
    """The energy as of ``now``: a local midnight refills it, regeneration adds packs up to the maximum."""
    maximum = settings.energy_max
    if row is None or now >= row.next_reset_at:
        day, next_reset = _next_midnight(now, tz_name)
        return EnergyState(maximum, maximum, 0, day, next_reset, None, reset=row is not None)
    state = EnergyState(min(row.current, maximum), maximum, row.daily_used, row.day, row.next_reset_at, row.regen_at)
    interval = settings.energy_regen_minutes
    if interval is None or state.current >= maximum:
        state.regen_at = None
    elif state.regen_at is not None and now >= state.regen_at:
        step = timedelta(minutes=interval)
        gained = 1 + int((now - state.regen_at) / step)
        state.current = min(maximum, state.current + gained)
        state.regen_at = None if state.current >= maximum else state.regen_at + gained * step
    return state


async def _timezone(session: AsyncSession, clock: Clock, app_id: str, player_id: str) -> str:
    known = await players.ensure_players(session, clock, app_id, [player_id])
    return known[player_id][1] or "UTC"


def _energy_out(streamer_id: str, state: EnergyState, tz_name: str) -> EnergyOut:
    return EnergyOut(streamer_id=streamer_id, current=state.current, maximum=state.maximum,
                     daily_used=state.daily_used, day=state.day, next_reset_at=state.next_reset_at,
                     next_regen_at=state.regen_at, timezone=tz_name)


async def energy_of(session: AsyncSession, clock: Clock, app_id: str, streamer_id: str) -> EnergyOut:
    streamer = await sponsors.get_streamer(session, app_id, streamer_id)
    settings = await sponsors.market_settings(session, app_id)
    tz_name = (await players.get_player(session, app_id, streamer.player_id)).timezone or "UTC"
    row = await repo.get_energy(session, app_id, streamer_id)
    return _energy_out(streamer_id, _advance(row, clock.now(), tz_name, settings), tz_name)


async def lock_energy(session: AsyncSession, clock: Clock, app_id: str, streamer: Streamer) -> Energy:
    """Create (full) and lock the streamer's energy row: every join of one streamer queues here, so the
    checks that follow see a settled state."""
    now = clock.now()
    tz_name = await _timezone(session, clock, app_id, streamer.player_id)
    settings = await sponsors.market_settings(session, app_id)
    day, next_reset = _next_midnight(now, tz_name)
    await repo.ensure_energy(session, {"app_id": app_id, "streamer_id": streamer.id, "current": settings.energy_max,
                                       "maximum": settings.energy_max, "daily_used": 0, "day": day,
                                       "next_reset_at": next_reset, "regen_at": None, "updated_at": now})
    row = await repo.get_energy(session, app_id, streamer.id, lock=True)
    assert row is not None
    return row


async def energy_available(session: AsyncSession, clock: Clock, app_id: str, streamer: Streamer, row: Energy,
                           settings: MarketSettings) -> EnergyState:
    tz_name = await _timezone(session, clock, app_id, streamer.player_id)
    return _advance(row, clock.now(), tz_name, settings)


async def consume_energy(session: AsyncSession, clock: Clock, app_id: str, streamer: Streamer, row: Energy,
                         state: EnergyState, settings: MarketSettings, campaign_id: str,
                         out: bridge.Announcements) -> bool:
    """Take one pack (the state must have one); False if the row changed under us."""
    now = clock.now()
    after = EnergyState(state.current - 1, state.maximum, state.daily_used + 1, state.day, state.next_reset_at,
                        state.regen_at)
    if settings.energy_regen_minutes is not None and after.regen_at is None and after.current < after.maximum:
        after.regen_at = now + timedelta(minutes=settings.energy_regen_minutes)
    expected = {"current": row.current, "day": row.day, "next_reset_at": row.next_reset_at, "regen_at": row.regen_at}
    if not await repo.save_energy(session, app_id, streamer.id, expected=expected,
                                  values={**after.values(), "updated_at": now}):
        return False
    if state.reset:
        out.add("energy.reset", {"streamer_id": streamer.id, "current": state.maximum, "day": state.day},
                streamer.player_id)
    out.add("energy.consumed", {"streamer_id": streamer.id, "campaign_id": campaign_id, "remaining": after.current,
                                "daily_used": after.daily_used}, streamer.player_id)
    return True


async def reset_due_energy(session: AsyncSession, clock: Clock, limit: int = 1000) -> int:
    """The scheduled job: energy whose local midnight has passed goes back to the maximum, announced once."""
    now = clock.now()
    done = 0
    for row in await repo.due_resets(session, now, limit):
        streamer = (await sponsors.streamers_by_id(session, row.app_id, [row.streamer_id])).get(row.streamer_id)
        if streamer is None:
            continue
        settings = await sponsors.market_settings(session, row.app_id)
        tz_name = await _timezone(session, clock, row.app_id, streamer.player_id)
        state = _advance(row, now, tz_name, settings)
        expected = {"current": row.current, "day": row.day, "next_reset_at": row.next_reset_at,
                    "regen_at": row.regen_at}
        if await repo.save_energy(session, row.app_id, row.streamer_id, expected=expected,
                                  values={**state.values(), "updated_at": now}):
            await bridge.announce(session, row.app_id, now, "energy.reset", {
                "streamer_id": row.streamer_id, "current": state.current, "day": state.day}, streamer.player_id)
            done += 1
    return done
