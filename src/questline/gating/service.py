"""Gating: one requirement model, one check, called by every mechanic that lets some players in.

A ``Requirement`` (``communities``, ``whitelist``, ``min_level``, ``completed_challenges``,
``traits``) is embedded as ``gating`` (items, battle pass seasons, challenges, leaderboards, competition
entry) and checked where a player acts::

    from questline.gating import service as gating
    await gating.check(session, runtime, app_id, player_id, spec.gating)   # else 403 gated

``unmet`` says what is missing (for a UI).

Levels and completed challenges are judged on the player's state as the processors load it
(``pipeline.states``), the same state the worker judges events on; so this package needs no
area above the pipeline, and the areas that gate (challenges among them) sit above it.

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

from questline.communities import repository as communities
from questline.gating.schemas import Requirement, completed_metric
from questline.kit.errors import Forbidden
from questline.kit.runtime import Runtime
from questline.pipeline.batch import Batch, PlayerState
from questline.pipeline.states import load_states
from questline.players import service as players
from questline.rules.service import ruleset_cache

__all__ = ["BatchGate", "batch_gate", "check", "gate_of", "unmet"]


async def unmet(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str,
                requirement: Requirement | None) -> list[str]:
    """What the player lacks, in words (empty: allowed)."""
    if requirement is None:
        return []
    out: list[str] = []
    if requirement.whitelist and player_id not in requirement.whitelisted:
        out.append("not on the whitelist")
    if requirement.communities:
        members = await communities.active_members_among(session, app_id, requirement.communities, {player_id})
        if player_id not in members:
            out.append(f"an active member of one of: {', '.join(requirement.communities)}")
    if requirement.traits:
        traits = (await players.traits_of(session, app_id, [player_id])).get(player_id, {})
        out.extend(_unmet_traits(requirement, traits))
    if requirement.min_level is None and not requirement.completed_challenges:
        return out
    timezone = (await players.timezones_of(session, app_id, [player_id])).get(player_id, "UTC")
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    state = (await load_states(session, runtime, ruleset, {player_id: timezone}))[player_id]
    need = requirement.min_level
    if need is not None:
        have = state.levels.get(need.track, 1)
        if have < need.level:
            out.append(f"level {need.level} on {need.track} (has {have})")
    missing = [key for key in requirement.completed_challenges if state.metrics.get(completed_metric(key), 0) < 1]
    if missing:
        out.append(f"completed challenges: {', '.join(missing)}")
    return out


async def check(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str,
                requirement: Requirement | None) -> None:
    """Pass, or raise ``403 gated`` with ``unmet`` listing what is missing."""
    missing = await unmet(session, runtime, app_id, player_id, requirement)
    if missing:
        raise Forbidden(f"this is gated: {'; '.join(missing)}", code="gated", extra={"unmet": missing})


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
                self._traits = await players.traits_of(batch.session, batch.app_id, batch.players)
            if not requirement.communities:
                continue
            key = tuple(sorted(requirement.communities))
            if key not in self._members:
                self._members[key] = await communities.active_members_among(batch.session, batch.app_id, key,
                                                                             batch.players)

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
