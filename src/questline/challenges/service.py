"""The rules of challenges and quests, for the routes and the worker.

Progress is derived from events by the worker (``tasks.ChallengeProcessor``); these functions
read it, and handle what people do: claim a completion, approve or reject a claim, complete by
hand for support. Rewards come from the definition only and are posted with deterministic keys
(``challenge:<key>:<player>:<period>``), so a completion pays once however often it is
retried or replayed. A completion is unique per player, challenge and period in the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from questline.challenges import evaluate as ev
from questline.challenges import repository as repo
from questline.challenges.models import ChallengeClaim, ChallengeCompletion
from questline.challenges.schemas import (
    GROUP_OF,
    MAX_VERIFICATION_BYTES,
    ONCE,
    PERIOD_OF,
    AvailableChallenges,
    ChallengeDef,
    ChallengeView,
    ClaimIn,
    ClaimOut,
    CompletionOut,
)
from questline.fulfilment import service as fulfilment
from questline.gating import service as gating
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, ProblemError
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.periods import period_keys, period_span, zone
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.pipeline import ingest as events
from questline.pipeline import repository as event_log
from questline.pipeline.batch import PlayerState
from questline.pipeline.states import load_states
from questline.players import service as players
from questline.progression.processor import AWARD_EVENT
from questline.rules.schemas import DefinitionBody
from questline.rules.service import RuleSet, ruleset_cache

KIND = "challenge"
MAX_EVENT_ID = 128


# Definitions ----------------------------------------------------------------------------------


async def check_definition(session: AsyncSession, app_id: str, body: DefinitionBody) -> list[str]:
    """Checks that need the database: the reward currency exists."""
    assert isinstance(body, ChallengeDef)
    points = body.rewards.points
    if points is not None and not await ledger.currency_exists(session, app_id, points.currency):
        return [f"rewards.points.currency: unknown currency {points.currency!r}; "
                f"create it with PUT /v1/currencies/{points.currency}"]
    return []


def compiled(ruleset: RuleSet) -> ev.Compiled_:
    return ruleset.memo("challenges", ev.compile_challenges)


def _challenge(ruleset: RuleSet, key: str) -> ev.CompiledChallenge:
    found = compiled(ruleset).by_key.get(key)
    if found is None:
        raise NotFound(f"challenge {key!r} not found", code="challenge_not_found")
    return found


# Rewards --------------------------------------------------------------------------------------


def reward_key(key: str, player_id: str, period: str) -> str:
    """The idempotency key of a completion's rewards (points and the XP award event)."""
    return f"challenge:{key}:{player_id}:{period}"


def xp_event_id(key: str, player_id: str, period: str) -> str:
    full = reward_key(key, player_id, period)
    if len(full) <= MAX_EVENT_ID:
        return full
    return "challenge:" + hashlib.sha256(full.encode()).hexdigest()[:64]


def fulfilment_ref(key: str, player_id: str, period: str) -> str:
    """The reference of a completion's fulfilment records (their kind is appended; the column holds 200)."""
    full = reward_key(key, player_id, period)
    return full if len(full) <= 180 else "challenge:" + hashlib.sha256(full.encode()).hexdigest()[:64]


async def fulfil_rewards(session: AsyncSession, runtime: Runtime, *, app_id: str, player_id: str, key: str,
                         spec: ChallengeDef, period: str) -> None:
    """A completion's webhook, in-game and token rewards as fulfilment records: once per player, challenge
    and period, however often the completion is recorded again (a replay, a retried approval)."""
    await fulfilment.create_for(session, runtime, app_id=app_id, player_id=player_id, source="challenge",
                                source_ref=fulfilment_ref(key, player_id, period), reward=spec.rewards)


def rewards_of(spec: ChallengeDef) -> dict[str, Any]:
    return spec.rewards.model_dump(mode="json", exclude_none=True)


def xp_award(key: str, spec: ChallengeDef, period: str) -> dict[str, Any] | None:
    """The data of the ``questline.xp.award`` event that pays a completion's XP."""
    xp = spec.rewards.xp
    if xp is None:
        return None
    return {"track": xp.track, "amount": xp.amount, "reason": f"challenge {key} ({period})", "source": "challenge"}


def points_credit(player_id: str, key: str, spec: ChallengeDef, period: str,
                  actor: str | None = None) -> ledger.Credit | None:
    """A completion's points, once per player, challenge and period."""
    points = spec.rewards.points
    if points is None:
        return None
    return ledger.Credit(player_id, points.currency, points.amount, idempotency_key=reward_key(key, player_id, period),
                         source="challenge", reference={"challenge": key, "period": period},
                         description=f"challenge {key}", actor=actor)


async def credit_points(session: AsyncSession, clock: Clock, *, app_id: str, player_id: str, key: str,
                        spec: ChallengeDef, period: str, actor: str | None = None) -> str | None:
    """Post a completion's points; the transaction id, or None when it pays none or this key
    already paid (a different amount too: the definition changed since, the first payment stands)."""
    credit = points_credit(player_id, key, spec, period, actor)
    if credit is None:
        return None
    return (await ledger.post_credits(session, clock, app_id=app_id, credits=[credit]))[0]


def _announcement(runtime: Runtime, app_id: str, type_: str, player_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return event_log.outbox_row(app_id, type_, player_id, payload, runtime.clock.now())


async def _complete_now(session: AsyncSession, runtime: Runtime, *, app_id: str, player_id: str,
                        challenge: ev.CompiledChallenge, period: str, source: str, actor: str,
                        claim_id: str | None = None, note: str | None = None) -> ChallengeCompletion:
    """Record a completion made by a person (approval, support), and pay it; 409 if the period is done."""
    spec = challenge.spec
    now = runtime.clock.now()
    span = None
    name = PERIOD_OF[spec.recurrence]
    if name is not None and period != ONCE:
        tz = (await players.timezones_of(session, app_id, [player_id])).get(player_id, "UTC")
        span = period_span(name, ev.base_period(period), zone(tz))
        other = await repo.overlapping_completion(session, app_id, player_id, challenge.key, ev.base_period(period),
                                                  *span)
        if other is not None:
            raise Conflict(f"challenge {challenge.key!r} is already completed for {other}, which overlaps {period} "
                           "(the player's time zone changed)", code="already_completed",
                           extra={"challenge": challenge.key, "period": other})
    # Where the player's log stood: events after it see this completion, live and in a replay.
    log_seq = await event_log.last_done_seq(session, app_id, player_id)
    row = {"app_id": app_id, "player_id": player_id, "challenge": challenge.key, "period_key": period,
           "category": spec.category, "source": source, "rewards": rewards_of(spec), "claim_id": claim_id,
           "event_id": None, "completed_at": now, "period_start": span[0] if span else None,
           "period_end": span[1] if span else None, "log_seq": log_seq}
    completion_id = await repo.insert_completion(session, row)
    if completion_id is None:
        raise Conflict(f"challenge {challenge.key!r} is already completed for {period}", code="already_completed",
                       extra={"challenge": challenge.key, "period": period})
    outbox: list[dict[str, Any]] = []
    txn_id = await credit_points(session, runtime.clock, app_id=app_id, player_id=player_id, key=challenge.key,
                                 spec=spec, period=period, actor=actor)
    if txn_id is not None and spec.rewards.points is not None:
        outbox.append(_announcement(runtime, app_id, "points.credited", player_id, {
            "currency": spec.rewards.points.currency, "amount": spec.rewards.points.amount, "source": "challenge",
            "transaction_id": txn_id}))
    await fulfil_rewards(session, runtime, app_id=app_id, player_id=player_id, key=challenge.key, spec=spec,
                         period=period)
    award = xp_award(challenge.key, spec, period)
    if award is not None:
        await events.append_internal(session, runtime, app_id=app_id, player_id=player_id,
                                     event_id=xp_event_id(challenge.key, player_id, period), type_=AWARD_EVENT,
                                     data=award)
    outbox.insert(0, _announcement(runtime, app_id, "challenge.completed", player_id, {
        "challenge": challenge.key, "period": period, "category": spec.category, "source": source,
        "rewards": row["rewards"], "claim_id": claim_id, "note": note, "completed_at": now.isoformat()}))
    await event_log.add_outbox(session, outbox)
    return ChallengeCompletion(id=completion_id, **row)


# A player's challenges ------------------------------------------------------------------------


async def totals_of(session: AsyncSession, app_id: str, player_ids: list[str],
                    excluding: Collection[int] = ()) -> dict[str, ev.Totals]:
    """Each player's completion totals (players without any are left out), without the
    completions whose ids are in ``excluding``."""
    found: dict[str, ev.Totals] = {}
    for player_id, challenge, category, n, last in await repo.completion_summary(session, app_id, player_ids,
                                                                                 excluding):
        found.setdefault(player_id, ev.Totals()).add(challenge, category, n, last)
    return found


async def _gate_inputs(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, player_id: str, tz_name: str,
                       challenges: list[ev.CompiledChallenge]) -> tuple[PlayerState, ev.Totals]:
    """The player's levels, metrics and completions, as the worker would judge gates on them.

    Levels and metrics (such as ``achievement.<key>``, published by later areas) are loaded by
    every processor, as in a batch, but only when one of these challenges has such a gate.
    """
    state = PlayerState(player_id, zone(tz_name))
    if any(c.spec.min_level is not None or c.spec.required_achievements for c in challenges):
        state = (await load_states(session, runtime, ruleset, {player_id: tz_name}))[player_id]
    totals = (await totals_of(session, ruleset.app_id, [player_id])).get(player_id, ev.Totals())
    return state, totals


def _view(challenge: ev.CompiledChallenge, *, now: datetime, tz_name: str, period: str, locked: list[str],
          states: list[dict[str, Any]] | None, round_: int, met: bool, done: list[ChallengeCompletion],
          claim: ChallengeClaim | None, times_completed: int, last_at: datetime | None) -> ChallengeView:
    spec = challenge.spec
    if spec.repeatable:
        # The round under way: one past those completed (the stored one may predate a manual completion).
        states = states if round_ == len(done) + 1 else None
        round_ = len(done) + 1
    progress = ev.progress_of(challenge, states)
    completed_at = max((c.completed_at for c in done), default=None)
    available_again: datetime | None = None
    if locked:
        status = "locked"
    elif not spec.repeatable and done:
        status = "completed"
        progress = [p.model_copy(update={"met": True}) for p in progress]
    elif claim is not None and claim.status == "pending":
        status = "pending_approval"
    elif spec.completion_mode == "claim" and met:
        status = "ready_to_claim"
    elif spec.repeatable and spec.cooldown_seconds and last_at is not None \
            and last_at + timedelta(seconds=spec.cooldown_seconds) > now:
        status = "cooling_down"
        available_again = last_at + timedelta(seconds=spec.cooldown_seconds)
    else:
        status = "in_progress"
    shown = 100 if status == "completed" else ev.percent(progress)
    return ChallengeView(
        key=challenge.key, name=spec.name, description=spec.description, category=spec.category,
        difficulty=spec.difficulty, recurrence=spec.recurrence, completion_mode=spec.completion_mode,
        repeatable=spec.repeatable, rewards=spec.rewards, status=status, locked_reasons=locked,
        period=ev.round_key(period, round_) if spec.repeatable else period, objectives=progress,
        progress_percent=shown, completed_at=completed_at, times_completed=times_completed,
        available_again_at=available_again, expires_at=ev.next_reset(spec, now, zone(tz_name)),
        claim_id=claim.id if claim is not None else None, icon_url=spec.icon_url,
    )


async def available(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str, *,
                    category: str | None = None, difficulty: str | None = None,
                    include_locked: bool = False) -> AvailableChallenges:
    """The challenges open to the player now, grouped daily / weekly / monthly / special."""
    player = await players.get_player(session, app_id, player_id)
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    now = runtime.clock.now()
    tz_name = player.timezone
    periods = period_keys(now, zone(tz_name))
    wanted = [c for c in compiled(ruleset).by_key.values()
              if ev.in_dates(c.spec, now) and (category is None or c.spec.category == category)
              and (difficulty is None or c.spec.difficulty == difficulty)]
    groups: dict[str, list[ChallengeView]] = {"daily": [], "weekly": [], "monthly": [], "special": []}
    if wanted:
        state, totals = await _gate_inputs(session, runtime, ruleset, player_id, tz_name, wanted)
        keys = {ev.period_of(c.spec, periods) for c in wanted}
        cells = {(p.challenge, p.period_key): p for p in await repo.progress_of(session, app_id, [player_id], keys)}
        done: dict[tuple[str, str], list[ChallengeCompletion]] = {}
        for row in await repo.completions_in(session, app_id, [player_id], keys, rounds=True):
            done.setdefault((row.challenge, ev.base_period(row.period_key)), []).append(row)
        claims = {(c.challenge, c.period_key): c for c in await repo.open_claims_of(session, app_id, player_id, keys)}
        for challenge in sorted(wanted, key=lambda c: (c.spec.sort_order, c.key)):
            locked = ev.locked_reasons(challenge.spec, state.levels, state.metrics, totals.counts)
            if challenge.spec.gating is not None:
                locked += await gating.unmet(session, runtime, app_id, player_id, challenge.spec.gating)
            if locked and not include_locked:
                continue
            period = ev.period_of(challenge.spec, periods)
            cell = cells.get((challenge.key, period))
            view = _view(challenge, now=now, tz_name=tz_name, period=period, locked=locked,
                         states=cell.objectives if cell else None, round_=cell.round if cell else 1,
                         met=cell is not None and cell.met_at is not None,
                         done=done.get((challenge.key, period), []), claim=claims.get((challenge.key, period)),
                         times_completed=totals.counts.get(challenge.key, 0),
                         last_at=totals.last_at.get(challenge.key))
            groups[GROUP_OF[challenge.spec.recurrence]].append(view)
    return AvailableChallenges(player_id=player_id, timezone=tz_name, as_of=now, **groups)


async def history(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str,
                  page: PageParams) -> Page[CompletionOut]:
    """The player's completions, newest first."""
    await players.get_player(session, app_id, player_id)
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    by_key = compiled(ruleset).by_key
    rows = list(await repo.history(session, app_id, player_id, page.after_int(), page.limit))
    built = build_page(rows, page.limit, lambda r: [r.id])
    items = [CompletionOut(id=r.id, challenge=r.challenge,
                           name=by_key[r.challenge].spec.name if r.challenge in by_key else None,
                           category=r.category, period=r.period_key, source=r.source, rewards=r.rewards,
                           claim_id=r.claim_id, completed_at=r.completed_at) for r in built.items]
    return Page[CompletionOut](items=items, next_cursor=built.next_cursor)


# Claims ---------------------------------------------------------------------------------------


def _claim_out(claim: ChallengeClaim, rewards: dict[str, Any] | None = None) -> ClaimOut:
    out = ClaimOut(id=claim.id, player_id=claim.player_id, challenge=claim.challenge, period=claim.period_key,
                   status=claim.status,
                   verification=claim.verification, note=claim.note, progress=claim.progress,
                   created_at=claim.created_at, decided_at=claim.decided_at, decided_by=claim.decided_by,
                   reason=claim.reason, rewards=rewards)
    return out


async def claim(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str, key: str,
                body: ClaimIn) -> ClaimOut:
    """Ask for a claim-mode challenge whose objectives are met to be approved (one open claim per period)."""
    size = len(orjson.dumps(body.verification))
    if size > MAX_VERIFICATION_BYTES:
        raise ProblemError(f"verification is {size} bytes as JSON; at most {MAX_VERIFICATION_BYTES} are accepted",
                           status=413, code="verification_too_large", title="Payload too large")
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    challenge = _challenge(ruleset, key)
    spec = challenge.spec
    if spec.completion_mode != "claim":
        raise Conflict(f"challenge {key!r} completes by itself when its objectives are met; there is nothing to claim",
                       code="not_claimable")
    player = await players.get_player(session, app_id, player_id)
    now = runtime.clock.now()
    if not ev.in_dates(spec, now):
        raise Conflict(f"challenge {key!r} is not running now", code="challenge_not_running")
    await gating.check(session, runtime, app_id, player_id, spec.gating)
    state, totals = await _gate_inputs(session, runtime, ruleset, player_id, player.timezone, [challenge])
    locked = ev.locked_reasons(spec, state.levels, state.metrics, totals.counts)
    if locked:
        raise Conflict(f"challenge {key!r} is locked: {'; '.join(locked)}", code="challenge_locked",
                       extra={"locked_reasons": locked})
    period = ev.period_of(spec, period_keys(now, zone(player.timezone)))
    if any(c.challenge == key for c in await repo.completions_in(session, app_id, [player_id], [period])):
        raise Conflict(f"challenge {key!r} is already completed for {period}", code="already_completed")
    cells = [c for c in await repo.progress_of(session, app_id, [player_id], [period]) if c.challenge == key]
    cell = cells[0] if cells else None
    progress = ev.progress_of(challenge, cell.objectives if cell else None)
    if cell is None or cell.met_at is None:
        raise Conflict(f"the objectives of challenge {key!r} are not met yet", code="objectives_not_met",
                       extra={"objectives": [p.model_dump(mode="json") for p in progress]})
    row = {"id": new_id("clm"), "app_id": app_id, "player_id": player_id, "challenge": key, "period_key": period,
           "status": "pending", "verification": body.verification, "note": body.note,
           "progress": [p.model_dump(mode="json") for p in progress], "created_at": now, "decided_at": None,
           "decided_by": None, "reason": None}
    if not await repo.insert_claim(session, row):
        raise Conflict(f"challenge {key!r} already has an open claim for {period}", code="claim_pending")
    await event_log.add_outbox(session, [_announcement(runtime, app_id, "challenge.claimed", player_id, {
        "challenge": key, "period": period, "claim_id": row["id"]})])
    return _claim_out(ChallengeClaim(**row))


async def list_claims(session: AsyncSession, app_id: str, status: str | None, challenge: str | None,
                      player_id: str | None, page: PageParams) -> Page[ClaimOut]:
    """The approval queue (oldest first)."""
    rows = list(await repo.claims_page(session, app_id, status, challenge, player_id, page.after_str(), page.limit))
    built = build_page(rows, page.limit, lambda c: [c.id])
    return Page[ClaimOut](items=[_claim_out(c) for c in built.items], next_cursor=built.next_cursor)


async def _pending_claim(session: AsyncSession, app_id: str, claim_id: str) -> ChallengeClaim:
    found = await repo.get_claim(session, app_id, claim_id)
    if found is None:
        raise NotFound(f"claim {claim_id} not found", code="claim_not_found")
    return found


def _already_decided(found: ChallengeClaim) -> Conflict:
    return Conflict(f"claim {found.id} was already {found.status}", code="claim_already_decided",
                    extra={"claim_status": found.status})


async def approve(session: AsyncSession, runtime: Runtime, app_id: str, claim_id: str, actor: str,
                  reason: str) -> ClaimOut:
    """Approve a pending claim: the completion is recorded and paid exactly once.

    The claim moves from pending by a conditional update, so of two concurrent approvals
    one wins and the other gets ``409 claim_already_decided``.
    """
    found = await _pending_claim(session, app_id, claim_id)
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    challenge = compiled(ruleset).by_key.get(found.challenge)
    if challenge is None:
        raise Conflict(f"challenge {found.challenge!r} no longer exists; reject the claim instead",
                       code="challenge_not_found")
    now = runtime.clock.now()
    if not await repo.decide_claim(session, app_id, claim_id, "approved", now, actor, reason or None):
        await session.refresh(found)
        raise _already_decided(found)
    completion = await _complete_now(session, runtime, app_id=app_id, player_id=found.player_id,
                                     challenge=challenge, period=found.period_key, source="claim", actor=actor,
                                     claim_id=claim_id)
    await event_log.add_outbox(session, [_announcement(runtime, app_id, "challenge.approved", found.player_id, {
        "challenge": found.challenge, "period": found.period_key, "claim_id": claim_id,
        "rewards": completion.rewards})])
    await session.refresh(found)
    return _claim_out(found, completion.rewards)


async def reject(session: AsyncSession, runtime: Runtime, app_id: str, claim_id: str, actor: str,
                 reason: str) -> ClaimOut:
    """Reject a pending claim; the player may claim again in the same period."""
    found = await _pending_claim(session, app_id, claim_id)
    if not await repo.decide_claim(session, app_id, claim_id, "rejected", runtime.clock.now(), actor, reason or None):
        await session.refresh(found)
        raise _already_decided(found)
    await event_log.add_outbox(session, [_announcement(runtime, app_id, "challenge.rejected", found.player_id, {
        "challenge": found.challenge, "period": found.period_key, "claim_id": claim_id, "reason": reason})])
    await session.refresh(found)
    return _claim_out(found)


async def force_complete(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str, key: str,
                         reason: str, actor: str) -> CompletionOut:
    """Support's override: complete the current period (or next round) now, with its rewards."""
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    challenge = _challenge(ruleset, key)
    player = await players.get_player(session, app_id, player_id)
    period = ev.period_of(challenge.spec, period_keys(runtime.clock.now(), zone(player.timezone)))
    if challenge.spec.repeatable:
        done = await repo.count_round_completions(session, app_id, player_id, key, period)
        period = ev.round_key(period, done + 1)
    row = await _complete_now(session, runtime, app_id=app_id, player_id=player_id, challenge=challenge,
                              period=period, source="manual", actor=actor, note=reason)
    return CompletionOut(id=row.id, challenge=key, name=challenge.spec.name, category=row.category,
                         period=row.period_key, source=row.source, rewards=row.rewards,
                         claim_id=None, completed_at=row.completed_at)
