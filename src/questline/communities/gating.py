"""Gating: one requirement model, one check, called by every mechanic that lets some players in.

A ``Requirement`` (``communities``, ``whitelist``, ``min_level``, ``completed_challenges``) is
embedded in a definition (an item's or a battle pass season's ``gating``) and checked where a
player acts::

    from questline.communities import gating
    await gating.check(session, app_id, player_id, spec.gating)   # None: allowed; else 403 gated

``unmet`` says what is missing (for a UI); ``allowed_players`` answers for many players in two
or three queries, for processors that gate per event (a leaderboard counting only members).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from questline.challenges import repository as challenges
from questline.communities import repository as repo
from questline.communities.schemas import Requirement
from questline.kit.errors import Forbidden
from questline.progression import repository as progression

__all__ = ["allowed_players", "check", "unmet"]


async def allowed_players(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                          requirement: Requirement | None) -> set[str]:
    """The players among ``player_ids`` who meet the requirement."""
    return {p for p, why in (await _unmet_of(session, app_id, set(player_ids), requirement)).items() if not why}


async def unmet(session: AsyncSession, app_id: str, player_id: str, requirement: Requirement | None) -> list[str]:
    """What the player lacks, in words (empty: allowed)."""
    return (await _unmet_of(session, app_id, {player_id}, requirement))[player_id]


async def check(session: AsyncSession, app_id: str, player_id: str, requirement: Requirement | None) -> None:
    """Pass, or raise ``403 gated`` with ``unmet`` listing what is missing."""
    missing = await unmet(session, app_id, player_id, requirement)
    if missing:
        raise Forbidden(f"this is gated: {'; '.join(missing)}", code="gated", extra={"unmet": missing})


async def _unmet_of(session: AsyncSession, app_id: str, players: set[str],
                    requirement: Requirement | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {p: [] for p in players}
    if requirement is None or not players:
        return out
    if requirement.whitelist:
        allowed = set(requirement.whitelist)
        for player in players - allowed:
            out[player].append("not on the whitelist")
    if requirement.communities:
        members = await repo.active_members_among(session, app_id, requirement.communities, players)
        names = ", ".join(requirement.communities)
        for player in players - members:
            out[player].append(f"an active member of one of: {names}")
    if requirement.min_level is not None:
        need = requirement.min_level
        levels = {(t.player_id, t.track): t.level for t in await progression.tracks_of(session, app_id, players)}
        for player in players:
            have = levels.get((player, need.track), 1)
            if have < need.level:
                out[player].append(f"level {need.level} on {need.track} (has {have})")
    if requirement.completed_challenges:
        done: dict[str, set[str]] = {p: set() for p in players}
        for player, challenge, _category, count, _last in await challenges.completion_summary(session, app_id, players):
            if count > 0:
                done[player].add(challenge)
        for player in players:
            missing = [key for key in requirement.completed_challenges if key not in done[player]]
            if missing:
                out[player].append(f"completed challenges: {', '.join(missing)}")
    return out
