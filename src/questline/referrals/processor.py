"""The referral metric for other mechanics: ``referrals.count`` and ``referrals.conversions``.

A tiny processor that only loads: before achievements see an event, each player in the batch
carries how many referrals count for them (signed up, not held or rejected as fraud) and how
many of those converted. Referrals are not derived from events, so replay resets nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.referrals import repository as repo
from questline.rules.service import RuleSet, metrics_read

COUNT_METRIC, CONVERSIONS_METRIC = "referrals.count", "referrals.conversions"
PUBLISHED = frozenset({COUNT_METRIC, CONVERSIONS_METRIC})


class ReferralsMetricProcessor:
    name = "referrals"

    def concerned(self, ruleset: RuleSet) -> bool:
        return bool(PUBLISHED & metrics_read(ruleset))  # nothing else looks at these metrics

    async def load(self, batch: Batch) -> None:
        if not batch.players or not PUBLISHED & metrics_read(batch.ruleset):
            return  # no definition reads them: no query (nothing else looks at these metrics)
        counts = await repo.counted_of(batch.session, batch.app_id, batch.players)
        for player_id, state in batch.players.items():
            count, conversions = counts.get(player_id, (0, 0))
            state.metrics[COUNT_METRIC] = count
            state.metrics[CONVERSIONS_METRIC] = conversions

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        return None

    async def flush(self, batch: Batch) -> None:
        return None

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        return None
