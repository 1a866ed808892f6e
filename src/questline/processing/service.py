"""Batch processing, the worker loop, and replay.

One batch is one transaction: every processor's writes, the outbox rows and the events'
"done" marks commit together or not at all. On PostgreSQL a transaction-scoped advisory lock
makes one worker process batches at a time (others wait their turn), so derived state has a
single writer; SQLite's write lock does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from itertools import groupby

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements import service as achievements
from questline.achievements.schemas import AchievementDef
from questline.achievements.tasks import AchievementsProcessor
from questline.battlepass import service as battlepass
from questline.battlepass.schemas import BattlePassDef, PassXpRuleDef
from questline.battlepass.tasks import BattlePassProcessor
from questline.challenges import service as challenges
from questline.challenges.schemas import ChallengeDef
from questline.challenges.tasks import ChallengeProcessor
from questline.competitions.tasks import CompetitionProcessor
from questline.events import repository as event_log
from questline.events.models import REPLAY, EventRecord
from questline.events.service import signals
from questline.kit.db import run_after_commit
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.leaderboards.schemas import LeaderboardDef
from questline.leaderboards.tasks import LeaderboardProcessor
from questline.ledger import service as ledger
from questline.players import service as players
from questline.progression.schemas import CombinedLevelDef, TrackDef, XpRuleDef
from questline.progression.tasks import ProgressionProcessor
from questline.referrals import service as referrals
from questline.referrals.schemas import ReferralProgramDef
from questline.referrals.tasks import ReferralsMetricProcessor
from questline.rules.pipeline import Batch, EventView, PlayerState, Processor
from questline.rules.registry import DefinitionKind, KindRegistry
from questline.rules.schemas import DefinitionBody, StatDef
from questline.rules.service import ruleset_cache
from questline.rules.tasks import StatsProcessor
from questline.shop import service as shop
from questline.shop.schemas import ItemDef
from questline.streaks import service as streaks
from questline.streaks.schemas import StreakDef
from questline.streaks.tasks import StreaksProcessor

_log = structlog.get_logger("questline.worker")
PIPELINE_LOCK = 0x5155_4553  # "QUES": the advisory lock id of the batch writer


async def _reward_currency_exists(session: AsyncSession, app_id: str, body: DefinitionBody) -> list[str]:
    assert isinstance(body, TrackDef)
    reward = body.level_up_reward
    if reward is not None and not await ledger.currency_exists(session, app_id, reward.currency):
        return [f"level_up_reward: unknown currency {reward.currency!r}; create it with PUT /v1/currencies/{{code}}"]
    return []


def definition_kinds() -> list[DefinitionKind]:
    """Every kind of definition the engine understands; one line per area."""
    return [
        DefinitionKind("stat", StatDef, "a per-player aggregate over events, per period"),
        DefinitionKind("xp_track", TrackDef, "an XP track with its level curve", check=_reward_currency_exists,
                       answers_for=("level",)),
        DefinitionKind("xp_rule", XpRuleDef, "events earn XP on a track, with an optional daily cap"),
        DefinitionKind("combined_level", CombinedLevelDef, "levels that need thresholds on several tracks",
                       answers_for=("level",)),
        DefinitionKind("item", ItemDef, "an item of the catalog: sold in the shop with a price, or granted",
                       check=shop.check_currency),
        DefinitionKind("battle_pass", BattlePassDef, "a battle pass season: tiers, free and premium rewards",
                       check=battlepass.check_currencies, keyed_check=battlepass.check_one_featured),
        DefinitionKind("pass_xp_rule", PassXpRuleDef, "events earn battle pass XP, with an optional daily limit"),
        DefinitionKind("referral_program", ReferralProgramDef, "referral rewards per status, milestones, fraud limits",
                       keyed_check=referrals.check_program),
        DefinitionKind("challenge", ChallengeDef, "a challenge or quest: objectives over events, per period",
                       check=challenges.check_definition),
        DefinitionKind("streak", StreakDef, "consecutive days or weeks of activity", check=streaks.check_definition),
        DefinitionKind("achievement", AchievementDef, "unlocked once when criteria hold",
                       check=achievements.check_definition),
        DefinitionKind("leaderboard", LeaderboardDef, "a ranked board by a stat or event field, per period and scope"),
    ]


def processors(runtime: Runtime) -> list[Processor]:
    """Every processor, in the order they see each event (stats first); one line per area."""
    return [StatsProcessor(), ProgressionProcessor(), BattlePassProcessor(), ReferralsMetricProcessor(),
            StreaksProcessor(), ChallengeProcessor(),
            AchievementsProcessor(), LeaderboardProcessor(runtime),
            CompetitionProcessor(runtime)]


def install(runtime: Runtime) -> None:
    """Put the engine's definition kinds and processors on a runtime (app start, CLI, worker)."""
    runtime.extensions.setdefault("rules.registry", KindRegistry(definition_kinds()))
    runtime.extensions.setdefault("processing.processors", processors(runtime))


def _processors(runtime: Runtime) -> list[Processor]:
    found = runtime.extensions["processing.processors"]
    assert isinstance(found, list)
    return found


async def _take_lock(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # BEGIN IMMEDIATE already made this the only writer
    got = await session.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PIPELINE_LOCK})
    return bool(got.scalar_one())


async def process_batch(runtime: Runtime, limit: int | None = None) -> int:
    """Process up to ``limit`` pending events in one transaction; returns how many."""
    limit = limit or runtime.settings.worker_batch_size
    async with runtime.sessions() as session:
        async with session.begin():
            if not await _take_lock(session):
                return 0
            events = list(await event_log.next_pending(session, limit))
            if not events:
                return 0
            for app_id, group in groupby(sorted(events, key=lambda e: (e.app_id, e.seq)), key=lambda e: e.app_id):
                await _process_app(session, runtime, app_id, list(group))
            await event_log.mark_done(session, [e.seq for e in events])
        await run_after_commit(session)
    signals(runtime).announce_progress()
    return len(events)


async def _process_app(session: AsyncSession, runtime: Runtime, app_id: str, events: list[EventRecord]) -> None:
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    known = await players.ensure_players(session, runtime.clock, app_id, {e.player_id for e in events})
    states = {pid: PlayerState(pid, zone(tz)) for pid, (_, tz) in known.items()}
    batch = Batch(session, runtime.clock, ruleset, events, states)
    steps = _processors(runtime)
    for step in steps:
        await step.load(batch)
    for record in events:
        state = states[record.player_id]
        view = EventView.of(record, state.timezone)
        for step in steps:
            step.handle(batch, view, state)
    for step in steps:
        await step.flush(batch)
    await event_log.add_outbox(session, batch.outbox)


class BatchSizer:
    """Adapts the batch size so one batch holds the write lock about ``target`` seconds.

    Bigger batches amortize per-batch reads; shorter lock holds keep API writes (which wait for
    SQLite's single write lock) fast. Starts at the configured size, which is also the ceiling.
    """

    def __init__(self, ceiling: int, target: float = 1.0, floor: int = 20) -> None:
        self.ceiling, self.target, self.floor = ceiling, target, min(floor, ceiling)
        self.size = ceiling

    def observe(self, processed: int, seconds: float) -> None:
        if processed < self.size:
            return  # the log ran dry; the time says nothing about the size
        if seconds > self.target * 2:
            self.size = max(self.floor, self.size // 2)
        elif seconds < self.target / 2:
            self.size = min(self.ceiling, self.size * 2)


async def _timed_batch(runtime: Runtime, sizer: BatchSizer) -> int:
    started = time.perf_counter()
    done = await process_batch(runtime, sizer.size)
    sizer.observe(done, time.perf_counter() - started)
    return done


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Process batches until ``stop``; sleeps when idle until woken by ingest (or a short poll)."""
    install(runtime)
    sig = signals(runtime)
    idle_poll = max(runtime.settings.worker_idle_seconds, 0.01)
    sizer = BatchSizer(runtime.settings.worker_batch_size)
    while not stop.is_set():
        try:
            done = await _timed_batch(runtime, sizer)
        except Exception:
            _log.exception("batch_failed")
            done = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        if done:
            continue
        sig.new_events.clear()
        waiter = asyncio.ensure_future(sig.new_events.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=max(idle_poll, 0.25), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()


async def drain(runtime: Runtime, on_progress: Callable[[int], None] | None = None) -> int:
    """Process until nothing is pending; returns how many events were processed."""
    install(runtime)
    total = 0
    sizer = BatchSizer(runtime.settings.worker_batch_size)
    while True:
        done = await _timed_batch(runtime, sizer)
        if done == 0:
            async with runtime.read_sessions() as session:
                if await event_log.count_all_pending(session) == 0:
                    return total
            await asyncio.sleep(0.05)  # another worker holds the lock
            continue
        total += done
        if on_progress is not None:
            on_progress(done)


async def start_replay(runtime: Runtime, app_id: str | None) -> int:
    """Delete derived state and mark the log for reprocessing, in one transaction.

    The ledger is not touched: rewards are posted with deterministic idempotency keys, so
    reprocessing finds them already there. Replayed events emit no outbox messages.
    """
    install(runtime)
    async with runtime.sessions() as session, session.begin():
        if not await _take_lock(session):
            await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PIPELINE_LOCK})
        for step in _processors(runtime):
            await step.reset(session, app_id)
        return await event_log.mark_for_replay(session, app_id, REPLAY)
