"""Achievement reads (catalog with rarity, a player's list with progress), grants and badge uploads.

A grant awards an achievement outside the event pipeline (an admin's API call, a battle pass
tier's badge, a referral milestone's badge): it is claimed once with the same conditional upsert
as the processor's unlocks (``unlocked_by = 'grant'``), announced as ``achievement.unlocked``
(``source: "grant"``) and pays ``points_reward`` under the processor's ledger key
(``achievement:{key}:{player}``), so whichever comes first pays and nothing pays twice. Grant-only
achievements (no criteria) are awarded only this way.

Rarity is the share of the app's players (every player the engine has seen for the app)
who have unlocked an achievement, in percent with two decimals.

Badge files live under ``settings.media_dir`` as ``badges/{app}/{key}/v{n}.png|svg`` (and
``v{n}-256.png`` thumbnails for PNGs). Uploading again makes version n+1; older files are
kept so cached URLs keep working. They are served at ``/v1/media/…``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements import repository as repo
from questline.achievements.images import PreparedBadge, prepare_badge
from questline.achievements.models import AchievementBadge, PlayerAchievement
from questline.achievements.schemas import (
    AchievementDef,
    AchievementOut,
    Badge,
    Catalog,
    GrantIn,
    GrantOut,
    PlayerAchievementOut,
    PlayerAchievements,
    Progress,
)
from questline.kit.clock import Clock
from questline.kit.errors import NotFound
from questline.kit.ids import ID_PATTERN
from questline.kit.periods import period_keys, zone
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.pipeline import repository as event_log
from questline.players import service as players
from questline.rules.schemas import DEFINITION_KEY, DefinitionBody
from questline.rules.service import RuleSet, ruleset_cache

MEDIA_PREFIX = "/v1/media/"
SECRET_NAME = "Secret achievement"
SECRET_DESCRIPTION = "Keep playing to discover this one."
MEDIA_FILE = re.compile(r"^v[0-9]{1,9}(-256)?\.(png|svg)$")
_APP_ID = re.compile(ID_PATTERN)
_log = structlog.get_logger("questline.achievements")


async def check_definition(session: AsyncSession, app_id: str, body: DefinitionBody) -> list[str]:
    """Database checks of an achievement: its reward's currency exists."""
    assert isinstance(body, AchievementDef)
    reward = body.points_reward
    if reward is not None and not await ledger.currency_exists(session, app_id, reward.currency):
        return [f"points_reward: unknown currency {reward.currency!r}; create it with PUT /v1/currencies/"
                f"{reward.currency}"]
    return []


def _specs(ruleset: RuleSet) -> list[tuple[str, AchievementDef]]:
    found = [(k, v) for k, v in ruleset.of("achievement").items() if isinstance(v, AchievementDef)]
    return sorted(found, key=lambda kv: (kv[1].sort_order, kv[0]))


def _badge(row: AchievementBadge | None) -> Badge | None:
    if row is None:
        return None
    return Badge(version=row.version, content_type=row.content_type, url=MEDIA_PREFIX + row.path,
                 thumbnail_url=MEDIA_PREFIX + row.thumbnail_path if row.thumbnail_path else None,
                 width=row.width, height=row.height, bytes=row.bytes, sha256=row.sha256, uploaded_at=row.uploaded_at)


def _percent(count: int, total: int) -> float:
    return round(count * 100 / total, 2) if total else 0.0


async def catalog(session: AsyncSession, runtime: Runtime, app_id: str, *, reveal: bool) -> Catalog:
    """Every achievement with how many players have it; ``reveal=False`` leaves out secret and hidden ones."""
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    counts = await repo.unlocked_counts(session, app_id)
    total = await repo.count_players(session, app_id)
    badges = await repo.badges_of(session, app_id)
    items = []
    for key, spec in _specs(ruleset):
        if not reveal and (spec.is_secret or not spec.is_visible):
            continue
        items.append(AchievementOut(
            key=key, name=spec.name, description=spec.description, category=spec.category, rarity=spec.rarity,
            points_reward=spec.points_reward, title_unlock=spec.unlocks.title, cosmetic_unlock=spec.unlocks.cosmetic,
            is_secret=spec.is_secret, is_visible=spec.is_visible, sort_order=spec.sort_order,
            badge=_badge(badges.get(key)), unlocked_count=counts.get(key, 0),
            rarity_percent=_percent(counts.get(key, 0), total),
        ))
    return Catalog(total_players=total, achievements=items)


def _progress(spec: AchievementDef, row: PlayerAchievement | None, periods: Mapping[str, str]) -> Progress:
    unlocked = row is not None and row.unlocked_at is not None
    shown = spec.progress_spec()
    target = shown.target if shown is not None else 1
    if unlocked:
        current = target
    elif row is None or shown is None:
        current = 0
    elif shown.stat is not None and shown.period != "all" and row.progress_period != periods.get(shown.period):
        current = 0  # counted in an earlier day/week/month
    else:
        current = min(row.progress_current, target)
    return Progress(current=current, target=target, percent=current * 100 // target)


async def player_achievements(session: AsyncSession, runtime: Runtime, app_id: str,
                              player_id: str) -> PlayerAchievements:
    """The player's view: visible achievements (and any retired ones they hold), secrets masked until unlocked."""
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    items = await _player_items(session, runtime.clock.now(), ruleset, app_id, player_id)
    return PlayerAchievements(player_id=player_id, total=len(items), unlocked=sum(1 for i in items if i.unlocked),
                              achievements=items)


async def _player_items(session: AsyncSession, now: datetime, ruleset: RuleSet, app_id: str,
                        player_id: str) -> list[PlayerAchievementOut]:
    player = await players.get_player(session, app_id, player_id)
    rows = {r.achievement: r for r in await repo.rows_of(session, app_id, [player_id])}
    counts = await repo.unlocked_counts(session, app_id)
    total = await repo.count_players(session, app_id)
    badges = await repo.badges_of(session, app_id)
    periods = period_keys(now, zone(player.timezone))
    items = []
    for key, spec in _specs(ruleset):
        row = rows.get(key)
        unlocked = row is not None and row.unlocked_at is not None
        if not spec.is_visible and not unlocked:
            continue
        hidden = spec.is_secret and not unlocked
        items.append(PlayerAchievementOut(
            key=key, name=SECRET_NAME if hidden else spec.name,
            description=SECRET_DESCRIPTION if hidden else spec.description,
            category=spec.category, rarity=spec.rarity,
            points_reward=None if hidden else spec.points_reward,
            title_unlock=None if hidden else spec.unlocks.title,
            cosmetic_unlock=None if hidden else spec.unlocks.cosmetic,
            is_secret=spec.is_secret, hidden=hidden, badge=None if hidden else _badge(badges.get(key)),
            unlocked=unlocked, unlocked_at=row.unlocked_at if row is not None else None,
            progress=Progress(current=0, target=1, percent=0) if hidden else _progress(spec, row, periods),
            rarity_percent=_percent(counts.get(key, 0), total),
        ))
    return items


# Unlocks outside the pipeline -------------------------------------------------------------------


def unlocked_payload(key: str, spec: AchievementDef, source: str) -> dict[str, Any]:
    """The ``achievement.unlocked`` announcement (source: event, backfill or grant)."""
    return {
        "achievement": key, "name": spec.name, "category": spec.category, "rarity": spec.rarity,
        "points_reward": spec.points_reward.model_dump() if spec.points_reward else None,
        "title_unlock": spec.unlocks.title, "cosmetic_unlock": spec.unlocks.cosmetic, "source": source,
    }


def reward_key(key: str, player_id: str) -> str:
    return f"achievement:{key}:{player_id}"


def reward_credit(player_id: str, key: str, spec: AchievementDef, actor: str | None = None) -> ledger.Credit | None:
    """The ``points_reward`` posting, once per player under ``achievement:{key}:{player}``."""
    reward = spec.points_reward
    if reward is None:
        return None
    return ledger.Credit(player_id, reward.currency, reward.amount, idempotency_key=reward_key(key, player_id),
                         source="achievement", reference={"achievement": key}, description=f"achievement {key}",
                         actor=actor)


async def pay_reward(session: AsyncSession, clock: Clock, app_id: str, player_id: str, key: str,
                     spec: AchievementDef, actor: str | None = None) -> dict[str, Any] | None:
    """Post ``points_reward`` once; returns the ``points.credited`` payload when this call paid,
    None when there is nothing to pay or it was paid before (under a reward since edited too)."""
    credit = reward_credit(player_id, key, spec, actor)
    if credit is None:
        return None
    paid = (await ledger.post_credits(session, clock, app_id=app_id, credits=[credit]))[0]
    if paid is None:
        return None
    return {"currency": credit.currency, "amount": credit.amount, "source": "achievement", "transaction_id": paid}


def _definition(ruleset: RuleSet, key: str) -> AchievementDef:
    spec = ruleset.of("achievement").get(key)
    if not isinstance(spec, AchievementDef):
        raise NotFound(f"achievement {key!r} not found; define it first with PUT /v1/definitions/achievement/{key}",
                       code="achievement_not_found")
    return spec


async def grant(session: AsyncSession, clock: Clock, app_id: str, player_id: str, key: str, *, ruleset: RuleSet,
                source: str, reference: dict[str, Any], actor: str | None = None) -> bool:
    """Award an achievement to a player, once; True if this call unlocked it (False: they had it already).

    ``source`` says what granted it (``api``, ``battle_pass``, ``referral_milestone``) and ``reference``
    which action; both go into the ``achievement.unlocked`` announcement. 404 ``achievement_not_found``
    for a key the app does not define. Creates the player if new.
    """
    spec = _definition(ruleset, key)
    await players.ensure_players(session, clock, app_id, [player_id])
    now = clock.now()
    shown = spec.progress_spec()
    target = shown.target if shown is not None else 1
    won = await repo.claim_unlock(session, {
        "app_id": app_id, "player_id": player_id, "achievement": key, "progress_current": target,
        "progress_target": target, "progress_period": "all", "unlocked_at": now, "unlocked_by": repo.GRANT,
        "event_id": None, "updated_at": now,
    })
    if not won:
        return False
    outbox = [event_log.outbox_row(app_id, "achievement.unlocked", player_id,
                                   {**unlocked_payload(key, spec, "grant"), "granted_by": source,
                                    "reference": reference}, now)]
    credited = await pay_reward(session, clock, app_id, player_id, key, spec, actor=actor)
    if credited is not None:
        outbox.append(event_log.outbox_row(app_id, "points.credited", player_id, credited, now))
    await event_log.add_outbox(session, outbox)
    return True


async def grant_badge(session: AsyncSession, clock: Clock, ruleset: RuleSet, app_id: str, player_id: str,
                      badge: str, *, source: str, reference: dict[str, Any]) -> bool:
    """Grant the achievement a badge names (a battle pass tier's, a referral milestone's), once.

    A season or program saved before badges had to name an achievement may name none: the badge
    then stays recorded where it was earned, and this only logs it.
    """
    if not isinstance(ruleset.of("achievement").get(badge), AchievementDef):
        _log.warning("badge_not_an_achievement", app_id=app_id, badge=badge, source=source, **reference)
        return False
    return await grant(session, clock, app_id, player_id, badge, ruleset=ruleset, source=source, reference=reference)


async def grant_by_request(session: AsyncSession, clock: Clock, ruleset: RuleSet, app_id: str, player_id: str,
                           key: str, body: GrantIn, actor: str) -> GrantOut:
    """The grant route: grant, then the player's view of the achievement with whether this call granted it."""
    reference: dict[str, Any] = {"actor": actor}
    if body.reason is not None:
        reference["reason"] = body.reason
    granted = await grant(session, clock, app_id, player_id, key, ruleset=ruleset, source="api", reference=reference,
                          actor=actor)
    items = await _player_items(session, clock.now(), ruleset, app_id, player_id)
    shown = next(i for i in items if i.key == key)  # unlocked now, so listed even when retired
    return GrantOut(**shown.model_dump(), granted=granted)


# Badges -----------------------------------------------------------------------------------------


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(content)
        os.replace(partial, target)


async def upload_badge(session: AsyncSession, runtime: Runtime, app_id: str, key: str, data: bytes,
                       actor: str) -> Badge:
    """Validate, store and version an achievement's badge image (PNG or SVG, up to 5 MiB)."""
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    if not isinstance(ruleset.of("achievement").get(key), AchievementDef):
        raise NotFound(f"achievement {key!r} not found; define it first with PUT /v1/definitions/achievement/{key}",
                       code="achievement_not_found")
    prepared: PreparedBadge = await asyncio.to_thread(prepare_badge, data)
    now = runtime.clock.now()
    version = await repo.next_badge_version(session, {
        "app_id": app_id, "achievement": key, "content_type": prepared.content_type, "path": "",
        "thumbnail_path": None, "width": prepared.width, "height": prepared.height, "bytes": len(prepared.data),
        "sha256": prepared.sha256, "uploaded_at": now, "uploaded_by": actor,
    })
    folder = f"badges/{app_id}/{key}"
    path = f"{folder}/v{version}.{prepared.extension}"
    files = {path: prepared.data}
    thumbnail = None
    if prepared.thumbnail is not None:
        thumbnail = f"{folder}/v{version}-256.png"
        files[thumbnail] = prepared.thumbnail
    # Written before commit: a rollback leaves an unreferenced file, never a reference without one.
    await asyncio.to_thread(_write_files, runtime.settings.media_dir, files)
    await repo.set_badge_paths(session, app_id, key, path, thumbnail)
    row = await repo.get_badge(session, app_id, key)
    badge = _badge(row)
    assert badge is not None
    return badge


def media_file(runtime: Runtime, app_id: str, key: str, filename: str) -> tuple[Path, str]:
    """The file behind ``/v1/media/badges/{app}/{key}/{file}`` and its content type (404 if none)."""
    if not (_APP_ID.match(app_id) and re.match(DEFINITION_KEY, key) and MEDIA_FILE.match(filename)):
        raise NotFound("no such media file", code="media_not_found")
    path = Path(runtime.settings.media_dir) / "badges" / app_id / key / filename
    if not path.is_file():
        raise NotFound("no such media file", code="media_not_found")
    return path, "image/svg+xml" if filename.endswith(".svg") else "image/png"


async def titles_of(session: AsyncSession, ruleset: RuleSet, app_id: str,
                    player_id: str) -> list[tuple[str, str, datetime]]:
    """(title, achievement key, unlocked at) of every unlocked achievement whose definition unlocks a title."""
    specs = dict(_specs(ruleset))
    out = []
    for row in await repo.rows_of(session, app_id, [player_id]):
        spec = specs.get(row.achievement)
        if row.unlocked_at is not None and spec is not None and spec.unlocks.title:
            out.append((spec.unlocks.title, row.achievement, row.unlocked_at))
    return out
