"""Gating: one requirement model, one check, called by every mechanic that lets some players in.

A ``Requirement`` (``communities``, ``whitelist``, ``min_level``, ``completed_challenges``,
``traits``) is
embedded as ``gating`` (items, battle pass seasons, challenges, leaderboards, competition
entry) and checked where a player acts::

    from questline.communities import gating
    await gating.check(session, app_id, player_id, spec.gating)   # None: allowed; else 403 gated

``unmet`` says what is missing (for a UI).

Inside the worker, processors that gate per event (challenges, leaderboards, pass XP) use a
``BatchGate``: community membership is read once per batch (the worker never changes it), while
levels and completed challenges come from the player's in-batch state, so an event is judged by
what the events before it in the same batch did (a level-up, a completed quest) — the same
answer a one-event-per-batch run would give. Traits are read once per batch too (only the server
key or an admin changes them, never an event).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from questline.challenges import repository as challenges
from questline.challenges.schemas import completed_metric
from questline.communities import repository as repo
from questline.communities.schemas import Requirement
from questline.kit.errors import Forbidden
from questline.players import service as player_service
from questline.progression import repository as progression
from questline.rules.pipeline import Batch, PlayerState

__all__ = ["BatchGate", "batch_gate", "check", "gate_of", "unmet"]


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
        for player in players - requirement.whitelisted:
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
    if requirement.traits:
        traits = await player_service.traits_of(session, app_id, players)
        for player in players:
            out[player].extend(_unmet_traits(requirement, traits.get(player, {})))
    return out


def _unmet_traits(requirement: Requirement, have: dict[str, object]) -> list[str]:
    return [f"trait {name} = {value!r}" for name, value in sorted(requirement.traits.items())
            if not _same(have.get(name), value)]


def _same(have: object, want: object) -> bool:
    """Trait values compare by type too: the trait ``1`` is not ``true``, nor ``"1"``."""
    return type(have) is type(want) and have == want


class BatchGate:
    """Requirements judged per event inside one batch (see the module docstring)."""

    def __init__(self) -> None:
        self._members: dict[tuple[str, ...], set[str]] = {}
        self._traits: dict[str, dict[str, object]] | None = None

    async def prepare(self, batch: Batch, requirements: Iterable[Requirement | None]) -> None:
        """Read the community memberships and traits these requirements need, for the batch's players."""
        for requirement in requirements:
            if requirement is None:
                continue
            if requirement.traits and self._traits is None:
                self._traits = await player_service.traits_of(batch.session, batch.app_id, batch.players)
            if not requirement.communities:
                continue
            key = tuple(sorted(requirement.communities))
            if key not in self._members:
                self._members[key] = await repo.active_members_among(batch.session, batch.app_id, key, batch.players)

    def allows(self, requirement: Requirement | None, state: PlayerState) -> bool:
        if requirement is None:
            return True
        player = state.player_id
        if requirement.whitelist and player not in requirement.whitelisted:
            return False
        if requirement.communities and player not in self._members[tuple(sorted(requirement.communities))]:
            return False
        need = requirement.min_level
        if need is not None and state.levels.get(need.track, 1) < need.level:
            return False
        if requirement.traits and _unmet_traits(requirement, (self._traits or {}).get(player, {})):
            return False
        return all(state.metrics.get(completed_metric(key), 0) >= 1 for key in requirement.completed_challenges)


def gate_of(batch: Batch) -> BatchGate:
    """The gate ``batch_gate`` prepared for this batch in a processor's ``load``."""
    gate = batch.memo["gating"]
    assert isinstance(gate, BatchGate)
    return gate


async def batch_gate(batch: Batch, requirements: Iterable[Requirement | None]) -> BatchGate:
    """The batch's gate (shared by every processor of the batch), ready for these requirements."""
    gate = batch.memo.get("gating")
    if not isinstance(gate, BatchGate):
        gate = batch.memo["gating"] = BatchGate()
    await gate.prepare(batch, requirements)
    return gate
