"""Players' in-memory state as the processors build it, for code outside a batch.

A batch's processors load each player's levels, metrics and per-area state before handling
events. Reads that must judge a player as the worker would (a gate, a locked challenge, an
achievement backfill) load the same state through the same processors, from an empty batch.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.pipeline.batch import Batch, PlayerState, Processor
from questline.rules.service import RuleSet

PROCESSORS = "pipeline.processors"  # runtime.extensions key of the installed processors


def processors_of(runtime: Runtime) -> list[Processor]:
    """The processors ``questline.mechanics.install`` put on this runtime, in order."""
    found = runtime.extensions.get(PROCESSORS)
    if not isinstance(found, list):  # pragma: no cover - a wiring bug
        raise RuntimeError("no processors on this runtime; call questline.mechanics.install(runtime) first")
    return found


async def load_states(session: AsyncSession, runtime: Runtime, ruleset: RuleSet,
                      timezones: Mapping[str, str]) -> dict[str, PlayerState]:
    """Each player's state (levels, metrics, per-area parts) as a batch would start with it."""
    states = {player_id: PlayerState(player_id, zone(tz)) for player_id, tz in timezones.items()}
    if states:
        batch = Batch(session, runtime.clock, ruleset, [], states)
        for step in processors_of(runtime):
            await step.load(batch)
    return states
