"""Share cards: what a card may show, drawing it once, and serving it only while the player allows.

A card is made for one thing the player achieved: an unlocked achievement, a place in a
competition's final standings, a streak milestone reached (by the longest run), a level reached
on an XP track. Asking for something not achieved is a 404, as is an unknown subject. Asking
again for the same subject returns the same card (same id and URL), redrawn only if what it
shows changed (the player renamed, the definition's name changed).

Privacy: a player's cards are private until the player (or the server key, or an app admin)
makes them public; the public routes answer 404 for a private player's card, at once. The
public responses are cacheable but must be revalidated (``Cache-Control: public, no-cache`` with
a strong ``ETag``): a shared cache may keep the bytes and ask with ``If-None-Match`` (a cheap
304), but never serves them again without asking, so turning private takes effect on the next
request through any cache that follows HTTP. The 404 itself is ``no-store``. The page never
shows the player's id: names follow the player's ``display_name_type`` (``anonymous`` shows
"A player"), and the URL's id is random.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements.schemas import AchievementDef
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound
from questline.kit.runtime import Runtime
from questline.players import service as players
from questline.players.models import Player
from questline.progression.schemas import TrackDef
from questline.rules.service import ruleset_cache
from questline.sharecards import render
from questline.sharecards import repository as repo
from questline.sharecards.models import ShareCard
from questline.sharecards.schemas import ShareCardIn, ShareCardOut, ShareCards, ShareSettingsOut
from questline.streaks.schemas import StreakDef
from questline.tenancy import service as tenancy

if TYPE_CHECKING:
    import jinja2

PAGE_PREFIX = "/v1/share/"
IMAGE_SUFFIX = "/image.png"
ANONYMOUS = "A player"
# Public responses: cacheable, revalidated on every use (see the module's docstring).
CACHE_HEADERS = {"Cache-Control": "public, no-cache", "X-Content-Type-Options": "nosniff",
                 "Cross-Origin-Resource-Policy": "cross-origin",
                 "Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {**CACHE_HEADERS,
                "Content-Security-Policy": "default-src 'none'; img-src * data:; style-src 'unsafe-inline'"}
NOT_SERVED_HEADERS = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Content:
    subject: str
    drawing: render.Drawing


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def shown_name(player: Player) -> str:
    """The name a card shows: as the player chose to be shown to others, never their id."""
    kind = player.display_name_type
    if kind == "anonymous":
        return ANONYMOUS
    if kind == "real_name" and player.real_name:
        return player.real_name
    return player.username or player.display_name or player.real_name or ANONYMOUS


def _not_achieved(what: str) -> NotFound:
    return NotFound(f"the player has not achieved {what}", code="not_achieved")


async def _content(session: AsyncSession, runtime: Runtime, app_id: str, player: Player,
                   body: ShareCardIn) -> Content:
    """What the card shows, checked against what the player really achieved (404 otherwise)."""
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    site = (await tenancy.get_app(session, app_id)).name
    who = shown_name(player)
    pid, key = player.player_id, body.subject
    if body.kind == "achievement":
        spec = ruleset.of("achievement").get(key)
        unlocked = await repo.unlocked_at(session, app_id, pid, key)
        if unlocked is None:
            if not isinstance(spec, AchievementDef):
                raise NotFound(f"achievement {key} not found", code="achievement_not_found")
            raise _not_achieved(f"achievement {key}")
        name = spec.name if isinstance(spec, AchievementDef) and spec.name else key
        description = (spec.description if isinstance(spec, AchievementDef) and spec.description
                       else f"An achievement in {site}")
        return Content(key, render.Drawing("achievement", "Achievement unlocked", f"{who} unlocked {name}",
                                           description, render.STAR, site))
    if body.kind == "level":
        track = ruleset.of("xp_track").get(key)
        if not isinstance(track, TrackDef):
            raise NotFound(f"XP track {key} not found", code="track_not_found")
        current = await repo.level_of(session, app_id, pid, key)
        level = body.level if body.level is not None else current
        if current is None or level is None or level > current or (level < 2 and body.level is None):
            raise _not_achieved(f"level {level or 'above 1'} on {key}")
        label = track.level_names.get(level)
        title = f"{who} reached level {level}" + (f": {label}" if label else "")
        return Content(f"{key}:{level}", render.Drawing(
            "level", "Level up", title, f"Level {level} on the {track.name or key} track in {site}", str(level), site))
    if body.kind == "streak":
        streak = ruleset.of("streak").get(key)
        if not isinstance(streak, StreakDef):
            raise NotFound(f"streak {key} not found", code="streak_not_found")
        longest = await repo.longest_streak(session, app_id, pid, key) or 0
        marks = [m.at for m in streak.milestones]
        if body.milestone is not None and body.milestone not in marks:
            raise NotFound(f"streak {key} has no milestone at {body.milestone}; it has {marks}",
                           code="milestone_not_found")
        reached = [m for m in marks if m <= longest]
        milestone = body.milestone if body.milestone is not None else max(reached, default=None)
        if milestone is None or milestone > longest:
            raise _not_achieved(f"a milestone of streak {key}")
        unit = "day" if streak.cadence == "daily" else "week"
        return Content(f"{key}:{milestone}", render.Drawing(
            "streak", "Streak milestone", f"{who} kept a {milestone}-{unit} streak",
            f"{streak.name or key}: {milestone} {unit}s in a row in {site}", str(milestone), site))
    found = await repo.result_of(session, app_id, pid, key)
    if found is None:
        raise NotFound(f"competition {key} not found, or the player is not in its final standings",
                       code="not_achieved")
    competition, result = found
    ranked = await repo.ranked_count(session, competition.id)
    return Content(competition.id, render.Drawing(
        "competition", "Competition result", f"{who} finished {_ordinal(result.rank)} in {competition.name}",
        f"Final score {result.score:,}: {_ordinal(result.rank)} of {ranked} in {site}", f"#{result.rank}", site))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _etag(drawing: render.Drawing, png: bytes) -> str:
    digest = hashlib.sha256(png)
    for text in (drawing.title, drawing.description, drawing.site_name):
        digest.update(b"\0" + text.encode())
    return digest.hexdigest()


def _out(card: ShareCard, base_url: str) -> ShareCardOut:
    url = page_url(base_url, card.id)
    return ShareCardOut(id=card.id, kind=card.kind, subject=card.subject,
                        title=card.title, description=card.description, url=url, image_url=url + IMAGE_SUFFIX,
                        created_at=card.created_at, updated_at=card.updated_at)


def page_url(base_url: str, card_id: str) -> str:
    return base_url.rstrip("/") + PAGE_PREFIX + card_id


async def is_public(session: AsyncSession, app_id: str, player_id: str) -> bool:
    return bool(await repo.is_public(session, app_id, player_id))


async def settings_of(session: AsyncSession, app_id: str, player_id: str) -> ShareSettingsOut:
    await players.get_player(session, app_id, player_id)
    return ShareSettingsOut(player_id=player_id, public=await is_public(session, app_id, player_id))


async def set_public(session: AsyncSession, clock: Clock, app_id: str, player_id: str,
                     public: bool) -> ShareSettingsOut:
    await players.get_player(session, app_id, player_id)
    await repo.set_public(session, app_id, player_id, public, clock.now())
    return ShareSettingsOut(player_id=player_id, public=public)


async def make_card(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str, body: ShareCardIn,
                    base_url: str) -> tuple[ShareCardOut, bool]:
    """The player's card for ``body`` (True if made now): drawn once, redrawn only when its text changed."""
    player = await players.get_player(session, app_id, player_id)
    if not await is_public(session, app_id, player_id):
        raise Conflict("the player's share cards are private; make them public first "
                       f"(PUT /v1/players/{player_id}/share-settings)", code="share_cards_private")
    content = await _content(session, runtime, app_id, player, body)
    drawing = dataclasses.replace(content.drawing, title=_clip(content.drawing.title, 400),
                                  description=_clip(content.drawing.description, 600),
                                  site_name=_clip(content.drawing.site_name, 200))
    existing = await repo.find(session, app_id, player_id, body.kind, content.subject)
    if existing is not None and (existing.title, existing.description, existing.site_name) == (
            drawing.title, drawing.description, drawing.site_name):
        return _out(existing, base_url), False
    png = render.draw(drawing)
    now = runtime.clock.now()
    values = {"title": drawing.title, "description": drawing.description, "site_name": drawing.site_name,
              "png": png, "etag": _etag(drawing, png), "updated_at": now}
    created = False
    if existing is None:
        created = await repo.insert(session, {"id": secrets.token_urlsafe(16), "app_id": app_id,
                                              "player_id": player_id, "kind": body.kind, "subject": content.subject,
                                              "created_at": now, **values})
        existing = await repo.find(session, app_id, player_id, body.kind, content.subject)
        assert existing is not None
    if not created:
        await repo.redraw(session, existing.id, values)
        await session.refresh(existing)
    return _out(existing, base_url), created


async def list_cards(session: AsyncSession, app_id: str, player_id: str, base_url: str) -> ShareCards:
    await players.get_player(session, app_id, player_id)
    cards = await repo.of_player(session, app_id, player_id)
    return ShareCards(player_id=player_id, public=await is_public(session, app_id, player_id),
                      items=[_out(card, base_url) for card in cards])


async def delete_card(session: AsyncSession, app_id: str, player_id: str, card_id: str) -> None:
    if not await repo.delete(session, app_id, player_id, card_id):
        raise NotFound(f"share card {card_id} not found", code="share_card_not_found")


# The public side --------------------------------------------------------------------------------


async def served(session: AsyncSession, card_id: str) -> ShareCard:
    """The card behind a public URL; 404 (not stored by caches) if unknown or its player's cards are private."""
    card = await repo.served(session, card_id)
    if card is None:
        raise NotFound("no such share card", code="share_card_not_found", headers=NOT_SERVED_HEADERS)
    return card


@cache
def _templates() -> jinja2.Environment:
    """Made on first use: Jinja2 is imported only by a process that renders a card (idle memory)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("questline.sharecards", "templates"),
                              autoescape=True, auto_reload=False)


def page(card: ShareCard, base_url: str) -> tuple[bytes, str]:
    """The card's HTML page (every text escaped) and its ETag."""
    url = page_url(base_url, card.id)
    html = _templates().get_template("card.html").render(
        title=card.title, description=card.description, site_name=card.site_name, url=url,
        image_url=url + IMAGE_SUFFIX).encode()
    return html, hashlib.sha256(html).hexdigest()
