"""The rules of competitions: lifecycle, entry, a board over the window, prizes, claims, analytics.

Lifecycle: ``upcoming`` -> ``active`` at ``starts_at`` -> ``completed`` at ``ends_at`` (or when an
admin ends it early), or ``cancelled`` by an admin (entry fees refunded). The scheduler moves
competitions on; every move is a conditional ``UPDATE … WHERE status = :seen``, so with several
schedulers (or an admin racing one) each change happens once.

Money goes only through the ledger, under deterministic keys: entry fees
``competition-fee:{id}:{player}``, refunds ``competition-refund:{id}:{player}``, prizes
``prize:{id}:{rank}:{player}`` (``:b{n}`` for a batch after a rollback) and their reversal
``prize-rollback:…``. Posting the same prize twice posts nothing new.

The prize pool is the entry fees collected plus the sponsor amount; a distribution is refused
when its points would exceed the pool.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.competitions import repository as repo
from questline.competitions.models import ACTIVE, CANCELLED, COMPLETED, UPCOMING, Competition, Prize
from questline.competitions.schemas import (
    ActivityPoint,
    Analytics,
    CompetitionIn,
    CompetitionOut,
    DistributionOut,
    ParticipantOut,
    PrizeEventOut,
    PrizeOut,
    PrizeRules,
)
from questline.fulfilment import service as fulfilment
from questline.fulfilment.models import Fulfilment
from questline.gating import service as gating
from questline.gating.schemas import Requirement
from questline.kit.errors import Conflict, Forbidden, NotFound, ProblemError, Unprocessable
from questline.kit.ids import ID_PATTERN, new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.leaderboards import service as boards
from questline.leaderboards.service import BoardInfo
from questline.ledger import service as ledger
from questline.pipeline import repository as event_log
from questline.players import service as players
from questline.progression import repository as progression
from questline.rules import service as definitions
from questline.shop import service as shop

BOARD_PREFIX = "@"
PERIOD = "custom"
TOP_POSITIONS = 3
# How long completion waits for the worker to catch up on events from inside the window.
SETTLE_LIMIT = timedelta(minutes=5)


def board_key(competition_id: str) -> str:
    return f"{BOARD_PREFIX}{competition_id}"


def board_info(comp: Competition) -> BoardInfo:
    scoring = comp.config["scoring"]
    return BoardInfo(board_key(comp.id), comp.name, "competition", None, PERIOD, "UTC",
                     scoring.get("order", "desc") == "desc", scoring.get("min_score"), comp.ends_at)


def _out(comp: Competition) -> CompetitionOut:
    cfg = comp.config
    return CompetitionOut(
        id=comp.id, name=comp.name, description=comp.description, status=comp.status,
        starts_at=comp.starts_at, ends_at=comp.ends_at, scoring=cfg["scoring"], entry=cfg["entry"],
        prizes=cfg["prizes"], participants=comp.participant_count, fees_collected=comp.fees_collected,
        pool=comp.fees_collected + comp.sponsor_amount, leaders=list(comp.leaders or []),
        distribution_status=comp.distribution_status, distribution_batch=comp.distribution_batch,
        distribution_error=comp.distribution_error, created_at=comp.created_at, started_at=comp.started_at,
        completed_at=comp.completed_at, cancelled_at=comp.cancelled_at, cancel_reason=comp.cancel_reason,
    )


async def _announce(session: AsyncSession, comp: Competition, type_: str, player_id: str | None,
                    payload: dict[str, Any], now: datetime) -> None:
    await event_log.add_outbox(session, [event_log.outbox_row(comp.app_id, type_, player_id,
                                                              {"competition_id": comp.id, **payload}, now)])


# Definition and reads ----------------------------------------------------------------------------


async def create(session: AsyncSession, runtime: Runtime, app_id: str, body: CompetitionIn) -> CompetitionOut:
    clock = runtime.clock
    gate = body.entry.gating
    if gate is not None:
        registry = definitions.registry_of(runtime)
        missing = await definitions.missing_references(session, registry, app_id, gate.references())
        if missing:
            raise Unprocessable(f"entry.gating refers to unknown {', '.join(missing)}", code="unknown_reference",
                                extra={"missing": missing})
    currencies = {body.prizes.currency} if any(t.kind == "points" for t in body.prizes.tiers) else set()
    if body.entry.fee is not None:
        currencies.add(body.entry.fee.currency)
    for code in sorted(currencies):
        if not await ledger.currency_exists(session, app_id, code):
            raise Unprocessable(f"currency {code!r} is not defined for this app; create it with PUT /v1/currencies/"
                                f"{code}", code="unknown_currency", extra={"currency": code})
    now = clock.now()
    comp = Competition(
        id=new_id("cmp"), app_id=app_id, name=body.name, description=body.description, status=UPCOMING,
        starts_at=body.starts_at, ends_at=body.ends_at,
        config={"scoring": body.scoring.model_dump(mode="json", exclude_none=True),
                "entry": body.entry.model_dump(mode="json", exclude_none=True),
                "prizes": body.prizes.model_dump(mode="json", exclude_none=True)},
        participant_count=0, max_participants=body.entry.max_participants, fees_collected=0,
        sponsor_amount=body.prizes.sponsor_amount, leaders=[], distribution_batch=0, distribution_status="none",
        created_at=now,
    )
    await repo.add(session, comp)
    # Announced to players who took part in the app's earlier competitions (notifications).
    await _announce(session, comp, "competition.created", None, {
        "name": comp.name, "starts_at": comp.starts_at.strftime("%Y-%m-%d %H:%M"),
        "ends_at": comp.ends_at.strftime("%Y-%m-%d %H:%M")}, now)
    return _out(comp)


async def _get(session: AsyncSession, app_id: str, competition_id: str) -> Competition:
    import re

    comp = await repo.get(session, app_id, competition_id) if re.match(ID_PATTERN, competition_id) else None
    if comp is None:
        raise NotFound(f"competition {competition_id} not found", code="competition_not_found")
    return comp


async def get(session: AsyncSession, app_id: str, competition_id: str) -> CompetitionOut:
    return _out(await _get(session, app_id, competition_id))


async def info_of(session: AsyncSession, app_id: str, competition_id: str) -> BoardInfo:
    return board_info(await _get(session, app_id, competition_id))


async def list_competitions(session: AsyncSession, app_id: str, status: str | None,
                            page: PageParams) -> Page[CompetitionOut]:
    rows = await repo.page(session, app_id, status, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda c: [c.id])
    return Page[CompetitionOut](items=[_out(c) for c in built.items], next_cursor=built.next_cursor)


async def list_participants(session: AsyncSession, app_id: str, competition_id: str,
                            page: PageParams) -> Page[ParticipantOut]:
    comp = await _get(session, app_id, competition_id)
    rows = await repo.participants(session, comp.id, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda p: [p.player_id])
    return Page[ParticipantOut](items=[ParticipantOut.model_validate(p) for p in built.items],
                                next_cursor=built.next_cursor)


# Entry -------------------------------------------------------------------------------------------


async def join(session: AsyncSession, runtime: Runtime, app_id: str, competition_id: str,
               player_id: str) -> tuple[ParticipantOut, bool]:
    """Enter a player (checks, entry fee, a free slot); returns the entry and whether it is new."""
    comp = await _get(session, app_id, competition_id)
    now = runtime.clock.now()
    existing = await repo.participant(session, comp.id, player_id)
    if existing is not None:
        return ParticipantOut.model_validate(existing), False
    if comp.status not in (UPCOMING, ACTIVE) or now >= comp.ends_at:
        raise Conflict(f"competition {comp.id} is {comp.status if comp.status != ACTIVE else 'over'}; it takes no "
                       "more entries", code="competition_closed", extra={"competition_status": comp.status})
    await players.ensure_players(session, runtime.clock, app_id, [player_id])
    entry_gate = comp.config["entry"].get("gating")
    await gating.check(session, runtime, app_id, player_id,
                       Requirement.model_validate(entry_gate) if entry_gate else None)
    unmet = await _unmet(session, comp, player_id)
    if unmet:
        raise Forbidden(f"entry requirements not met: {'; '.join(unmet)}", code="entry_requirements_not_met",
                        extra={"unmet": unmet})
    entry = comp.config["entry"]
    fee = entry.get("fee")
    amount = int(fee["amount"]) if fee else 0
    if not await repo.add_participant(session, {
        "competition_id": comp.id, "player_id": player_id, "app_id": app_id, "status": "joined", "fee_paid": amount,
        "fee_transaction_id": None, "joined_at": now,
    }):
        found = await repo.participant(session, comp.id, player_id)
        assert found is not None
        return ParticipantOut.model_validate(found), False
    if not await repo.take_slot(session, comp.id, amount if fee and _pooled(comp, fee["currency"]) else 0):
        raise Conflict(f"competition {comp.id} is full ({comp.max_participants} participants)",
                       code="competition_full")
    if fee:
        txn = await ledger.debit_player(
            session, runtime.clock, app_id=app_id, player_id=player_id, currency=fee["currency"], amount=amount,
            idempotency_key=f"competition-fee:{comp.id}:{player_id}", source="competition_fee",
            reference={"competition_id": comp.id}, description=f"entry fee: {comp.name}"[:500])
        await repo.set_fee_transaction(session, comp.id, player_id, txn.id)
    await repo.add_activity(session, [{"competition_id": comp.id, "bucket": _hour(now), "app_id": app_id,
                                       "joins": 1, "events": 0, "volume": 0}])
    found = await repo.participant(session, comp.id, player_id)
    assert found is not None
    return ParticipantOut.model_validate(found), True


def _pooled(comp: Competition, currency: str) -> bool:
    return bool(comp.config["prizes"].get("currency", "points") == currency)


async def _unmet(session: AsyncSession, comp: Competition, player_id: str) -> list[str]:
    entry = comp.config["entry"]
    unmet = []
    need = entry.get("min_level")
    if need:
        tracks = {t.track: t.level for t in await progression.track_of_player(session, comp.app_id, player_id)}
        have = tracks.get(need["track"], 1)
        if have < need["level"]:
            unmet.append(f"level {need['level']} on {need['track']} (has {have})")
    return unmet


async def disqualify(session: AsyncSession, runtime: Runtime, app_id: str, competition_id: str,
                     player_id: str) -> ParticipantOut:
    """Take a player off the board (their fee is kept); a later distribution skips them."""
    comp = await _get(session, app_id, competition_id)
    part = await repo.participant(session, comp.id, player_id)
    if part is None:
        raise NotFound(f"player {player_id} is not in competition {comp.id}", code="participant_not_found")
    await repo.set_participant_status(session, comp.id, player_id, "disqualified")
    await boards.remove_entries(session, runtime, app_id, [board_key(comp.id)], player_id)
    found = await repo.participant(session, comp.id, player_id)
    assert found is not None
    return ParticipantOut.model_validate(found)


# Lifecycle ---------------------------------------------------------------------------------------


async def advance(session: AsyncSession, runtime: Runtime, now: datetime) -> dict[str, int]:
    """The scheduler's tick: start, complete and expire what is due. Safe to run anywhere, any number of times."""
    started = completed = 0
    for cid in await repo.due_to_start(session, now):
        if await repo.transition(session, cid, [UPCOMING], ACTIVE, started_at=now):
            comp = await repo.get_any(session, cid)
            assert comp is not None
            await _announce(session, comp, "competition.started", None, {"name": comp.name}, now)
            started += 1
    for cid in await repo.due_to_end(session, now):
        comp = await repo.get_any(session, cid)
        assert comp is not None
        # Wait (a little) for the worker to score events from inside the window.
        if now < comp.ends_at + SETTLE_LIMIT and await repo.pending_events_before(session, comp.app_id,
                                                                                   comp.ends_at):
            continue
        if await _complete(session, runtime, comp, now, actor="scheduler"):
            completed += 1
    expired = await expire_claims(session, now)
    return {"started": started, "completed": completed, "expired": expired}


async def _complete(session: AsyncSession, runtime: Runtime, comp: Competition, now: datetime, *,
                    actor: str, ends_at: datetime | None = None) -> bool:
    values: dict[str, Any] = {"completed_at": now}
    if ends_at is not None:
        values["ends_at"] = ends_at
    if comp.started_at is None:
        values["started_at"] = min(now, comp.starts_at) if ends_at is None else comp.starts_at
    if not await repo.transition(session, comp.id, [UPCOMING, ACTIVE], COMPLETED, **values):
        return False
    fresh = await repo.get_any(session, comp.id)
    assert fresh is not None
    standings = await _freeze(session, fresh)
    await _announce(session, fresh, "competition.ended", None,
                    {"participants": fresh.participant_count, "ranked": len(standings),
                     "winners": [s.player_id for s in standings[:TOP_POSITIONS]]}, now)
    try:
        async with session.begin_nested():
            await _distribute(session, runtime, fresh, now, actor=actor)
    except ProblemError as exc:
        await repo.update(session, fresh.id, distribution_status="failed", distribution_error=exc.detail[:500])
        await _announce(session, fresh, "competition.distribution_failed", None, {"reason": exc.detail}, now)
    return True


async def _freeze(session: AsyncSession, comp: Competition) -> list[boards.Standing]:
    """Final standings from the board, without disqualified players; one player per rank."""
    excluded = await repo.disqualified(session, comp.id)
    standings = await boards.standings(session, comp.app_id, board_info(comp), PERIOD, exclude=excluded)
    await repo.replace_results(session, comp.id, [
        {"competition_id": comp.id, "rank": s.rank, "app_id": comp.app_id, "player_id": s.player_id,
         "score": s.score, "reached_at": s.reached_at} for s in standings])
    return standings


async def end_early(session: AsyncSession, runtime: Runtime, app_id: str, competition_id: str,
                    actor: str) -> CompetitionOut:
    comp = await _get(session, app_id, competition_id)
    now = runtime.clock.now()
    if comp.status not in (UPCOMING, ACTIVE):
        raise Conflict(f"competition {comp.id} is already {comp.status}", code="competition_not_running",
                       extra={"competition_status": comp.status})
    if not await _complete(session, runtime, comp, now, actor=actor, ends_at=min(now, comp.ends_at)):
        raise Conflict(f"competition {comp.id} changed meanwhile; reload it", code="competition_changed")
    return _out(await _get_fresh(session, comp.id))


async def cancel(session: AsyncSession, runtime: Runtime, app_id: str, competition_id: str, reason: str,
                 actor: str) -> CompetitionOut:
    """Call a competition off: no prizes; every entry fee goes back to its player."""
    comp = await _get(session, app_id, competition_id)
    now = runtime.clock.now()
    if not await repo.transition(session, comp.id, [UPCOMING, ACTIVE], CANCELLED, cancelled_at=now,
                                 cancel_reason=reason):
        raise Conflict(f"competition {comp.id} is {comp.status}; only upcoming or active ones can be cancelled",
                       code="competition_not_running", extra={"competition_status": comp.status})
    refunded = 0
    for part in await repo.participants(session, comp.id):
        if part.fee_paid > 0 and part.fee_transaction_id is not None:
            fee = comp.config["entry"]["fee"]
            await ledger.credit_player(
                session, runtime.clock, app_id=app_id, player_id=part.player_id, currency=fee["currency"],
                amount=part.fee_paid, idempotency_key=f"competition-refund:{comp.id}:{part.player_id}",
                source="competition_refund", reference={"competition_id": comp.id},
                description=f"entry fee refund: {comp.name}"[:500], actor=actor)
            refunded += 1
    await repo.set_participant_status(session, comp.id, None, "refunded", only="joined")
    await _announce(session, comp, "competition.cancelled", None, {"reason": reason, "refunds": refunded}, now)
    return _out(await _get_fresh(session, comp.id))


async def _get_fresh(session: AsyncSession, competition_id: str) -> Competition:
    comp = await repo.get_any(session, competition_id)
    assert comp is not None
    return comp


# Prizes -------------------------------------------------------------------------------------------

PRIZE_SOURCE = "competition_prize"


async def upcoming_edges(session: AsyncSession, now: datetime, within: timedelta) -> list[dict[str, Any]]:
    """Competitions that start or end within ``within`` of ``now`` (for reminders): one entry per edge."""
    edges = []
    for comp in await repo.edges_between(session, now, now + within):
        for edge, at in (("starting", comp.starts_at), ("ending", comp.ends_at)):
            if now < at <= now + within and (edge == "ending" or comp.status == UPCOMING):
                edges.append({"app_id": comp.app_id, "competition_id": comp.id, "name": comp.name, "edge": edge,
                              "at": at})
    return edges


async def participant_ids(session: AsyncSession, app_id: str, competition_id: str) -> list[str]:
    """The players who are in a competition (joined, not disqualified): whom its news concerns."""
    comp = await repo.get_any(session, competition_id)
    if comp is None or comp.app_id != app_id:
        return []
    return [p.player_id for p in await repo.participants(session, competition_id) if p.status == "joined"]


async def returning_players(session: AsyncSession, app_id: str, competition_id: str, limit: int) -> list[str]:
    """Players who took part in the app's other competitions: whom a new competition is announced to."""
    return await repo.past_participants(session, app_id, competition_id, limit)


async def on_fulfilment(session: AsyncSession, runtime: Runtime, record: Fulfilment) -> None:
    """A prize's fulfilment record changed status: the prize shows it (fulfilment listener)."""
    await repo.set_prize(session, record.source_ref, fulfilment=record.status)



def _key(comp_id: str, rank: int, player_id: str, batch: int, prefix: str = "prize") -> str:
    base = f"{prefix}:{comp_id}:{rank}:{player_id}"
    return base if batch == 1 else f"{base}:b{batch}"


def plan_prizes(rules: PrizeRules, standings: Sequence[tuple[int, str]], pool: int) -> list[dict[str, Any]]:
    """Prizes for ranks that have a player, validated: one prize per rank, points within the pool."""
    by_rank = dict(standings)
    if len(by_rank) != len(standings) or len(set(by_rank.values())) != len(by_rank):
        raise Conflict("standings must hold one player per rank", code="invalid_standings")
    planned, total = [], 0
    for tier in rules.tiers:
        for rank in range(tier.from_rank, tier.last + 1):
            player = by_rank.get(rank)
            if player is None:
                continue
            if tier.percent is not None:
                amount = int((Decimal(pool) * tier.percent / 100).to_integral_value(rounding=ROUND_FLOOR))
                if amount <= 0:
                    continue
            elif tier.points is not None:
                amount = tier.points
            elif tier.item is not None:
                amount = tier.quantity
            else:
                amount = tier.in_game.quantity if tier.in_game is not None else 1
            kind = tier.kind
            if kind == "points":
                total += amount
            planned.append({"rank": rank, "player_id": player, "kind": kind, "amount": amount,
                            "currency": rules.currency if kind == "points" else None,
                            "item": tier.item if tier.in_game is None else tier.in_game.item,
                            "data": tier.reward_data()})
    if total > pool:
        raise Conflict(f"the prizes add up to {total} {rules.currency} but the pool holds {pool}",
                       code="prizes_exceed_pool", extra={"total": total, "pool": pool})
    return planned


async def _distribute(session: AsyncSession, runtime: Runtime, comp: Competition, now: datetime, *,
                      actor: str) -> tuple[int, bool]:
    """Post the next distribution batch (or find the one already posted): returns it and whether it is new."""
    batch = max(comp.distribution_batch, 1)
    existing = await repo.distribution(session, comp.id, batch)
    if existing is not None:
        if existing.status == "distributed":
            return batch, False
        batch += 1
    rules = PrizeRules.model_validate(comp.config["prizes"])
    pool = comp.fees_collected + comp.sponsor_amount
    results = await repo.results(session, comp.id)
    planned = plan_prizes(rules, [(r.rank, r.player_id) for r in results], pool)
    dist_id = new_id("dst")
    if not await repo.add_distribution(session, {
        "id": dist_id, "app_id": comp.app_id, "competition_id": comp.id, "batch": batch, "status": "distributed",
        "pool": pool, "total_points": sum(p["amount"] for p in planned if p["kind"] == "points"),
        "prizes": len(planned), "actor": actor, "created_at": now, "rolled_back_at": None, "rollback_reason": None,
    }):
        return batch, False  # another process posted this batch first
    automatic = rules.claim == "automatic"
    deadline = None if automatic else now + timedelta(hours=rules.claim_window_hours)
    rows, history = [], []
    for plan in planned:
        prize_id = new_id("prz")
        rows.append({**plan, "id": prize_id, "app_id": comp.app_id, "competition_id": comp.id,
                     "distribution_id": dist_id, "batch": batch, "status": "claimable", "fulfilment": "none",
                     "claim_deadline": deadline, "claimed_at": None, "transaction_id": None,
                     "rollback_transaction_id": None, "created_at": now})
        history.append(_event(comp, prize_id, plan["player_id"], "awarded", actor, now))
    await repo.add_prizes(session, rows)
    await repo.add_history(session, history)
    await repo.update(session, comp.id, distribution_batch=batch, distribution_status="distributed",
                      distribution_error=None)
    for row in rows:
        await _announce(session, comp, "prize.awarded", row["player_id"],
                        {"prize_id": row["id"], "rank": row["rank"], "kind": row["kind"], "amount": row["amount"],
                         "currency": row["currency"], "claim_deadline": deadline.isoformat() if deadline else None},
                        now)
        if automatic:
            await _pay(session, runtime, comp, row["id"], now, actor)
    await _announce(session, comp, "competition.prizes_distributed", None,
                    {"batch": batch, "prizes": len(rows), "pool": pool,
                     "total_points": sum(p["amount"] for p in planned if p["kind"] == "points")}, now)
    return batch, True


def _event(comp: Competition, prize_id: str, player_id: str, action: str, actor: str | None,
           now: datetime) -> dict[str, Any]:
    return {"app_id": comp.app_id, "prize_id": prize_id, "competition_id": comp.id, "player_id": player_id,
            "action": action, "actor": actor, "at": now}


async def _pay(session: AsyncSession, runtime: Runtime, comp: Competition, prize_id: str, now: datetime,
               actor: str | None) -> Prize:
    """Turn a claimable prize into a claimed one: points through the ledger, items into the inventory, other
    rewards into fulfilment records (webhook, in-game, token, external)."""
    prize = await repo.prize(session, prize_id)
    assert prize is not None
    if not await repo.set_prize(session, prize_id, expect=["claimable"], before=now, status="claimed",
                                claimed_at=now, fulfilment="none" if prize.kind == "points" else "pending"):
        raise _unclaimable(await _reload(session, prize))
    if prize.kind == "points":
        assert prize.currency is not None
        txn = await ledger.credit_player(
            session, runtime.clock, app_id=comp.app_id, player_id=prize.player_id, currency=prize.currency,
            amount=prize.amount, idempotency_key=_key(comp.id, prize.rank, prize.player_id, prize.batch),
            source="competition_prize", reference={"competition_id": comp.id, "rank": prize.rank,
                                                   "prize_id": prize.id},
            description=f"prize for rank {prize.rank}: {comp.name}"[:500], actor=actor)
        await repo.set_prize(session, prize_id, transaction_id=txn.id)
    elif prize.kind == "item":
        assert prize.item is not None
        await shop.grant_item(session, runtime.clock, app_id=comp.app_id, player_id=prize.player_id, item=prize.item,
                              quantity=prize.amount, key=_key(comp.id, prize.rank, prize.player_id, prize.batch,
                                                              "prize-item"),
                              source="competition_prize", reference={"competition_id": comp.id, "rank": prize.rank,
                                                                     "prize_id": prize.id})
        await repo.set_prize(session, prize_id, fulfilment="completed")
    else:
        await fulfilment.create(session, runtime, app_id=comp.app_id, player_id=prize.player_id, kind=prize.kind,
                                source=PRIZE_SOURCE, source_ref=prize.id, spec=dict(prize.data or {}))
    await repo.add_history(session, [_event(comp, prize_id, prize.player_id, "claimed", actor, now)])
    await _announce(session, comp, "prize.claimed", prize.player_id,
                    {"prize_id": prize.id, "kind": prize.kind, "amount": prize.amount, "currency": prize.currency},
                    now)
    return await _reload(session, prize)


async def _reload(session: AsyncSession, prize: Prize) -> Prize:
    fresh = await repo.prize(session, prize.id)
    assert fresh is not None
    return fresh


def _unclaimable(prize: Prize) -> ProblemError:
    if prize.status == "claimed":
        return Conflict(f"prize {prize.id} is already claimed", code="prize_already_claimed")
    if prize.status == "rolled_back":
        return Conflict(f"prize {prize.id} was withdrawn", code="prize_rolled_back")
    return _too_late(prize)


def _too_late(prize: Prize) -> ProblemError:
    deadline = prize.claim_deadline.isoformat() if prize.claim_deadline else "its deadline"
    return ProblemError(f"the claim deadline of prize {prize.id} passed at {deadline}", status=410,
                        code="claim_deadline_passed", title="Gone",
                        extra={"claim_deadline": prize.claim_deadline.isoformat() if prize.claim_deadline else None})


async def distribute(session: AsyncSession, runtime: Runtime, app_id: str, competition_id: str,
                     actor: str) -> DistributionOut:
    """Distribute a completed competition's prizes (again, after a rollback); idempotent otherwise."""
    comp = await _get(session, app_id, competition_id)
    if comp.status != COMPLETED:
        raise Conflict(f"competition {comp.id} is {comp.status}; prizes follow completion",
                       code="competition_not_completed", extra={"competition_status": comp.status})
    now = runtime.clock.now()
    existing = await repo.distribution(session, comp.id, max(comp.distribution_batch, 1))
    if existing is None or existing.status == "rolled_back":
        await _freeze(session, comp)
    batch, _ = await _distribute(session, runtime, comp, now, actor=actor)
    return await distribution(session, app_id, comp.id, batch)


async def distribution(session: AsyncSession, app_id: str, competition_id: str, batch: int) -> DistributionOut:
    comp = await _get(session, app_id, competition_id)
    dist = await repo.distribution(session, comp.id, batch)
    if dist is None:
        raise NotFound(f"competition {comp.id} has no distribution batch {batch}", code="distribution_not_found")
    prizes = [PrizeOut.model_validate(p) for p in await repo.prizes_of_batch(session, comp.id, batch)]
    return DistributionOut(id=dist.id, competition_id=comp.id, batch=dist.batch, status=dist.status, pool=dist.pool,
                           total_points=dist.total_points, created_at=dist.created_at,
                           rolled_back_at=dist.rolled_back_at, rollback_reason=dist.rollback_reason, prizes=prizes)


async def distributions(session: AsyncSession, app_id: str, competition_id: str) -> list[DistributionOut]:
    comp = await _get(session, app_id, competition_id)
    return [await distribution(session, app_id, comp.id, d.batch) for d in await repo.distributions(session, comp.id)]


async def roll_back(session: AsyncSession, runtime: Runtime, app_id: str, competition_id: str, batch: int,
                    reason: str, actor: str) -> DistributionOut:
    """Reverse a distribution: paid points come back through compensating ledger entries.

    All or nothing: if a winner no longer holds their prize's points the whole rollback is
    refused (``409 insufficient_funds``) and nothing changes.
    """
    comp = await _get(session, app_id, competition_id)
    dist = await repo.distribution(session, comp.id, batch)
    if dist is None:
        raise NotFound(f"competition {comp.id} has no distribution batch {batch}", code="distribution_not_found")
    if dist.status == "rolled_back":
        return await distribution(session, app_id, comp.id, batch)
    now = runtime.clock.now()
    if not await repo.roll_back_distribution(session, dist.id, now, reason):
        raise Conflict("this distribution changed meanwhile; reload it", code="distribution_changed")
    for prize in await repo.prizes_of_batch(session, comp.id, batch):
        if prize.status in ("expired", "rolled_back"):
            continue
        txn_id = None
        withdrawn = prize.fulfilment
        if prize.status == "claimed" and prize.kind == "item" and prize.item is not None:
            await shop.consume_item(session, runtime.clock, app_id=app_id, player_id=prize.player_id, item=prize.item,
                                    quantity=prize.amount, key=_key(comp.id, prize.rank, prize.player_id, batch,
                                                                    "prize-item-rollback"),
                                    reason=f"prize withdrawn: {reason}"[:200])
            withdrawn = "cancelled"
        elif prize.status == "claimed" and prize.kind not in ("points", "item"):
            await fulfilment.cancel(session, runtime, app_id, PRIZE_SOURCE, prize.id)
        if prize.status == "claimed" and prize.kind == "points" and prize.transaction_id is not None:
            assert prize.currency is not None
            txn = await ledger.debit_player(
                session, runtime.clock, app_id=app_id, player_id=prize.player_id, currency=prize.currency,
                amount=prize.amount, idempotency_key=_key(comp.id, prize.rank, prize.player_id, batch,
                                                          "prize-rollback"),
                source="competition_prize_rollback", reference={"competition_id": comp.id, "prize_id": prize.id},
                description=f"prize withdrawn: {reason}"[:500], actor=actor)
            txn_id = txn.id
        if prize.status != "claimed" and withdrawn == "pending":
            withdrawn = "cancelled"
        kept = prize.kind not in ("points", "item") and prize.status == "claimed"  # the listener has set it
        await repo.set_prize(session, prize.id, status="rolled_back", rollback_transaction_id=txn_id,
                             fulfilment=(await _reload(session, prize)).fulfilment if kept else withdrawn)
        await repo.add_history(session, [_event(comp, prize.id, prize.player_id, "rolled_back", actor, now)])
    await repo.update(session, comp.id, distribution_status="rolled_back")
    await _announce(session, comp, "competition.prizes_rolled_back", None, {"batch": batch, "reason": reason}, now)
    return await distribution(session, app_id, comp.id, batch)


async def expire_claims(session: AsyncSession, now: datetime) -> int:
    expired = 0
    for prize in await repo.expiring(session, now):
        if await repo.set_prize(session, prize.id, expect=["claimable"], status="expired"):
            await repo.add_history(session, [{"app_id": prize.app_id, "prize_id": prize.id,
                                              "competition_id": prize.competition_id, "player_id": prize.player_id,
                                              "action": "expired", "actor": "scheduler", "at": now}])
            expired += 1
    return expired


# Claims (players) ----------------------------------------------------------------------------------


async def player_prizes(session: AsyncSession, app_id: str, player_id: str, status: str | None,
                        page: PageParams) -> Page[PrizeOut]:
    rows = await repo.player_prizes(session, app_id, player_id, status, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda p: [p.id])
    return Page[PrizeOut](items=[PrizeOut.model_validate(p) for p in built.items], next_cursor=built.next_cursor)


async def claim(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str, prize_id: str,
                actor: str) -> PrizeOut:
    """A winner claims their own prize before its deadline; anyone else's is not found."""
    prize = await repo.player_prize(session, app_id, player_id, prize_id)
    if prize is None:
        raise NotFound(f"prize {prize_id} not found", code="prize_not_found")
    now = runtime.clock.now()
    if prize.status == "claimable" and prize.claim_deadline is not None and now >= prize.claim_deadline:
        raise _too_late(prize)
    if prize.status != "claimable":
        raise _unclaimable(prize)
    comp = await _get_fresh(session, prize.competition_id)
    return PrizeOut.model_validate(await _pay(session, runtime, comp, prize.id, now, actor))


async def prize_history(session: AsyncSession, app_id: str, player_id: str, page: PageParams) -> Page[PrizeEventOut]:
    rows = await repo.history(session, app_id, player_id, page.after_int(), page.limit)
    built = build_page(list(rows), page.limit, lambda e: [e.id])
    return Page[PrizeEventOut](items=[PrizeEventOut.model_validate(e) for e in built.items],
                               next_cursor=built.next_cursor)


# Analytics and export ------------------------------------------------------------------------------


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def analytics(session: AsyncSession, app_id: str, competition_id: str) -> Analytics:
    comp = await _get(session, app_id, competition_id)
    timeline, running = [], 0
    for row in await repo.activity(session, comp.id):
        running += row.joins
        timeline.append(ActivityPoint(at=row.bucket, joins=row.joins, participants=running, events=row.events,
                                      volume=row.volume))
    prizes = [PrizeOut.model_validate(p) for p in await repo.prizes_of_batch(session, comp.id,
                                                                               max(comp.distribution_batch, 1))]
    return Analytics(competition_id=comp.id, status=comp.status, participants=comp.participant_count,
                     pool=comp.fees_collected + comp.sponsor_amount, timeline=timeline, distribution=prizes)


DATASETS = ("participants", "results", "prizes", "activity")


async def export_csv(session: AsyncSession, app_id: str, competition_id: str,
                     dataset: str) -> str:
    comp = await _get(session, app_id, competition_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if dataset == "participants":
        results = {r.player_id: r for r in await repo.results(session, comp.id)}
        writer.writerow(["player_id", "status", "joined_at", "fee_paid", "rank", "score"])
        for p in await repo.participants(session, comp.id):
            r = results.get(p.player_id)
            writer.writerow([_cell(p.player_id), p.status, p.joined_at.isoformat(), p.fee_paid,
                             r.rank if r else "", r.score if r else ""])
    elif dataset == "results":
        writer.writerow(["rank", "player_id", "score", "reached_at"])
        for r in await repo.results(session, comp.id):
            writer.writerow([r.rank, _cell(r.player_id), r.score, r.reached_at.isoformat()])
    elif dataset == "prizes":
        writer.writerow(["batch", "rank", "player_id", "kind", "amount", "currency", "item", "status", "fulfilment",
                         "claim_deadline", "claimed_at", "transaction_id", "rollback_transaction_id"])
        for z in await repo.prizes_of_competition(session, comp.id):
            writer.writerow([z.batch, z.rank, _cell(z.player_id), z.kind, z.amount, z.currency or "",
                             _cell(z.item or ""), z.status, z.fulfilment,
                             z.claim_deadline.isoformat() if z.claim_deadline else "",
                             z.claimed_at.isoformat() if z.claimed_at else "", z.transaction_id or "",
                             z.rollback_transaction_id or ""])
    else:
        writer.writerow(["hour", "joins", "participants", "events", "volume"])
        for point in (await analytics(session, app_id, comp.id)).timeline:
            writer.writerow([point.at.isoformat(), point.joins, point.participants, point.events, point.volume])
    return out.getvalue()


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in text that came from outside."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
