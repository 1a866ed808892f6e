"""The battle pass's rules: seasons and tiers, premium, tier boosts and reward claims.

A player's tier comes from their pass XP in the season (earned from events by the worker,
see ``tasks``) plus the XP they bought with tier boosts. Premium and boosts are paid through
the ledger in the request's transaction: a refused payment undoes the whole purchase.
A tier's reward on a track is claimable once: the claim's unique key decides between
racing claims, and rewards are posted with keys derived from the claim. A reward's badge is an
achievement, granted through ``achievements.service.grant`` in the claim's transaction.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements import service as achievements
from questline.battlepass import repository as repo
from questline.battlepass.schemas import (
    BattlePassDef,
    ClaimOut,
    PassOut,
    PassXpRuleDef,
    PremiumIn,
    ProgressOut,
    SeasonOut,
    TierReward,
    TierRewardOut,
    Track,
)
from questline.fulfilment import service as fulfilment
from questline.gating import service as gating
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, Forbidden, NotFound
from questline.kit.ids import new_id
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.players import service as players
from questline.rules import repository as definitions
from questline.rules.conditions import Compiled, compile_condition
from questline.rules.schemas import DefinitionBody
from questline.rules.service import RuleSet
from questline.shop import service as shop

KIND, RULE_KIND = "battle_pass", "pass_xp_rule"


# Compiled seasons -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Season:
    key: str
    spec: BattlePassDef
    starts: tuple[int, ...]  # total XP at which tier n is reached (index n); starts[0] == 0

    def tier_of(self, xp: int) -> int:
        return min(bisect_right(self.starts, xp) - 1, self.spec.tiers)

    def running_at(self, moment: datetime) -> bool:
        return self.spec.starts_at <= moment < self.spec.ends_at


@dataclass
class CompiledPasses:
    seasons: dict[str, Season] = field(default_factory=dict)
    featured: str | None = None
    rules_by_type: dict[str, list[tuple[str, PassXpRuleDef, Compiled]]] = field(default_factory=dict)


def compile_passes(ruleset: RuleSet) -> CompiledPasses:
    compiled = CompiledPasses()
    for key, spec in ruleset.of(KIND).items():
        assert isinstance(spec, BattlePassDef)
        compiled.seasons[key] = Season(key, spec, tuple(spec.starts()))
    featured = sorted((s.spec.starts_at, s.key) for s in compiled.seasons.values() if s.spec.featured)
    compiled.featured = featured[-1][1] if featured else None
    for key, rule in ruleset.of(RULE_KIND).items():
        assert isinstance(rule, PassXpRuleDef)
        compiled.rules_by_type.setdefault(rule.event_type, []).append((key, rule, compile_condition(rule.filter)))
    return compiled


def passes_of(ruleset: RuleSet) -> CompiledPasses:
    return ruleset.memo("battlepass", compile_passes)


def season_of(ruleset: RuleSet, key: str | None) -> Season:
    """A season by key, or the app's featured season when ``key`` is None."""
    compiled = passes_of(ruleset)
    if key is None:
        if compiled.featured is None:
            raise NotFound("this app has no featured battle pass season", code="no_featured_season")
        key = compiled.featured
    season = compiled.seasons.get(key)
    if season is None:
        raise NotFound(f"battle pass season {key!r} not found", code="season_not_found")
    return season


# Definition checks ------------------------------------------------------------------------------


async def check_currencies(session: AsyncSession, app_id: str, body: DefinitionBody) -> list[str]:
    assert isinstance(body, BattlePassDef)
    return [f"unknown currency {code!r}; create it with PUT /v1/currencies/{code}"
            for code in sorted(body.currencies()) if not await ledger.currency_exists(session, app_id, code)]


async def check_one_featured(session: AsyncSession, app_id: str, key: str, body: DefinitionBody,
                             pending: set[tuple[str, str]]) -> list[str]:
    """At most one featured season per app: featuring a second one is refused, not silently moved."""
    assert isinstance(body, BattlePassDef)
    if not body.featured:
        return []
    after: str | None = None
    while True:
        rows = await definitions.page_of_kind(session, app_id, KIND, after, 200)
        for row in rows[:200]:
            if row.key != key and row.body.get("featured") is True:
                return [f"battle pass {row.key!r} is already featured (one featured season per app); "
                        f"set featured: false on it first"]
        if len(rows) <= 200:
            return []
        after = rows[199].key


# Reading progress -------------------------------------------------------------------------------


def _season_out(season: Season, now: datetime, featured: str | None) -> SeasonOut:
    spec = season.spec
    return SeasonOut(season=season.key, name=spec.name, season_number=spec.season_number,
                     description=spec.description, starts_at=spec.starts_at, ends_at=spec.ends_at,
                     featured=season.key == featured, active=season.running_at(now), total_tiers=spec.tiers,
                     premium_price=spec.premium_price, tier_boost_price=spec.tier_boost_price)


def list_seasons(ruleset: RuleSet, now: datetime) -> list[SeasonOut]:
    compiled = passes_of(ruleset)
    ordered = sorted(compiled.seasons.values(), key=lambda s: (s.spec.starts_at, s.key))
    return [_season_out(s, now, compiled.featured) for s in ordered]


async def progress(session: AsyncSession, clock: Clock, ruleset: RuleSet, app_id: str, player_id: str,
                   season_key: str | None) -> ProgressOut:
    """The player's tier, XP and rewards (claimed, claimable, locked) in a season (default: featured)."""
    await players.get_player(session, app_id, player_id)
    season = season_of(ruleset, season_key)
    spec = season.spec
    owned = await repo.pass_of(session, app_id, player_id, season.key)
    xp = await repo.xp_of(session, app_id, player_id, season.key) + (owned.boost_xp if owned else 0)
    tier = season.tier_of(xp)
    premium = bool(owned and owned.premium)
    claimed = await repo.claims_of(session, app_id, player_id, season.key)

    def rewards(track: Track, table: dict[int, TierReward]) -> list[TierRewardOut]:
        locked = track == "premium" and not premium
        return [TierRewardOut(tier=t, reward=r, reached=t <= tier, claimed=(t, track) in claimed,
                              claimable=t <= tier and not locked and (t, track) not in claimed, locked=locked)
                for t, r in sorted(table.items())]

    free, prem = rewards("free", spec.free), rewards("premium", spec.premium)
    base = _season_out(season, clock.now(), passes_of(ruleset).featured)
    return ProgressOut(
        **base.model_dump(), player_id=player_id, current_tier=tier, xp=xp, xp_in_tier=xp - season.starts[tier],
        xp_for_next_tier=season.starts[tier + 1] - season.starts[tier] if tier < spec.tiers else None,
        has_premium=premium, premium_source=owned.premium_source if owned and premium else None,
        premium_at=owned.premium_at if owned else None, boost_tiers=owned.boost_tiers if owned else 0,
        free_rewards=free, premium_rewards=prem,
        claimable={"free": [r.tier for r in free if r.claimable], "premium": [r.tier for r in prem if r.claimable]},
    )


# Purchases --------------------------------------------------------------------------------------


def _running(season: Season, now: datetime) -> None:
    if not season.running_at(now):
        raise Conflict(f"season {season.key!r} runs from {season.spec.starts_at.isoformat()} to "
                       f"{season.spec.ends_at.isoformat()}", code="season_not_active")


async def _pass_out(session: AsyncSession, season: Season, app_id: str, player_id: str,
                    transaction_id: str | None) -> PassOut:
    owned = await repo.pass_of(session, app_id, player_id, season.key)
    assert owned is not None
    xp = await repo.xp_of(session, app_id, player_id, season.key) + owned.boost_xp
    return PassOut(season=season.key, player_id=player_id, has_premium=owned.premium,
                   premium_source=owned.premium_source,
                   premium_at=owned.premium_at, transaction_id=transaction_id or owned.premium_transaction_id,
                   current_tier=season.tier_of(xp), boost_tiers=owned.boost_tiers)


async def buy_premium(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, player_id: str,
                      season_key: str, body: PremiumIn, *, trusted: bool) -> PassOut:
    """Unlock the premium track: paid in points through the ledger, or recorded after a cash sale.

    ``paid_externally`` is for the server key only (``trusted``). Buying twice is
    ``409 already_premium``; racing buyers are ordered by the pass row's lock, and the
    loser pays nothing.
    """
    clock = runtime.clock
    season = season_of(ruleset, season_key)
    now = clock.now()
    if body.paid_externally and not trusted:
        raise Forbidden("only the server key records a premium pass paid outside Questline",
                        code="server_key_required")
    price = season.spec.premium_price
    if not body.paid_externally and price is None:
        raise Conflict(f"season {season.key!r} sells premium for cash only", code="premium_not_for_sale")
    _running(season, now)
    await players.ensure_players(session, clock, app_id, [player_id])
    await gating.check(session, runtime, app_id, player_id, season.spec.gating)
    await repo.ensure_pass(session, app_id, player_id, season.key, now)
    source = "external" if body.paid_externally else "points"
    if not await repo.grant_premium(session, app_id, player_id, season.key, source=source,
                                    reference=body.external_reference, now=now):
        raise Conflict(f"the player already has premium in season {season.key!r}", code="already_premium")
    txn_id = None
    if price is not None and not body.paid_externally:
        txn = await ledger.debit_player(
            session, clock, app_id=app_id, player_id=player_id, currency=price.currency, amount=price.amount,
            idempotency_key=f"battle-pass:premium:{season.key}:{player_id}", source="battle_pass_premium",
            reference={"season": season.key}, description=f"{season.spec.name}: premium pass",
        )
        txn_id = txn.id
        await repo.set_premium_transaction(session, app_id, player_id, season.key, txn.id)
    return await _pass_out(session, season, app_id, player_id, txn_id)


async def buy_boost(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, player_id: str,
                    season_key: str, tiers: int) -> PassOut:
    """Skip ``tiers`` tiers (fewer at the top): the XP to the start of the target tier is bought."""
    clock = runtime.clock
    season = season_of(ruleset, season_key)
    now = clock.now()
    price = season.spec.tier_boost_price
    if price is None:
        raise Conflict(f"season {season.key!r} sells no tier boosts", code="boosts_not_for_sale")
    _running(season, now)
    await players.ensure_players(session, clock, app_id, [player_id])
    await gating.check(session, runtime, app_id, player_id, season.spec.gating)
    await repo.ensure_pass(session, app_id, player_id, season.key, now)
    # Take the pass row's lock before reading, so racing boosts each start from the other's result.
    await repo.add_boost(session, app_id, player_id, season.key, tiers=0, xp=0, now=now)
    owned = await repo.pass_of(session, app_id, player_id, season.key)
    assert owned is not None
    xp = await repo.xp_of(session, app_id, player_id, season.key) + owned.boost_xp
    tier = season.tier_of(xp)
    if tier >= season.spec.tiers:
        raise Conflict(f"the player is at the top tier of season {season.key!r}", code="max_tier_reached")
    target = min(season.spec.tiers, tier + tiers)
    bought = target - tier
    txn = await ledger.debit_player(
        session, clock, app_id=app_id, player_id=player_id, currency=price.currency, amount=price.amount * bought,
        idempotency_key=f"battle-pass:boost:{season.key}:{player_id}:{new_id('bst')}", source="battle_pass_boost",
        reference={"season": season.key, "tiers": bought, "from_tier": tier},
        description=f"{season.spec.name}: {bought} tier boost{'s' if bought > 1 else ''}",
    )
    await repo.add_boost(session, app_id, player_id, season.key, tiers=bought, xp=season.starts[target] - xp, now=now)
    out = await _pass_out(session, season, app_id, player_id, None)
    out.transaction_id = txn.id
    return out


# Claims -----------------------------------------------------------------------------------------


async def claim(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, player_id: str,
                season_key: str, tier: int, track: Track) -> ClaimOut:
    """Claim one tier's reward on one track: once, only when reached, premium only with premium."""
    clock = runtime.clock
    season = season_of(ruleset, season_key)
    reward = (season.spec.free if track == "free" else season.spec.premium).get(tier)
    if reward is None:
        raise NotFound(f"tier {tier} of season {season.key!r} has no {track} reward", code="reward_not_found")
    await players.get_player(session, app_id, player_id)
    await gating.check(session, runtime, app_id, player_id, season.spec.gating)
    owned = await repo.pass_of(session, app_id, player_id, season.key)
    xp = await repo.xp_of(session, app_id, player_id, season.key) + (owned.boost_xp if owned else 0)
    current = season.tier_of(xp)
    if current < tier:
        raise Conflict(f"tier {tier} is not reached yet (the player is at tier {current})", code="tier_not_reached",
                       extra={"current_tier": current, "xp": xp, "xp_needed": season.starts[tier] - xp})
    if track == "premium" and not (owned and owned.premium):
        raise Forbidden("premium rewards need the premium pass", code="premium_required")
    now = clock.now()
    stored = reward.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    if not await repo.insert_claim(session, {"app_id": app_id, "player_id": player_id, "season": season.key,
                                             "tier": tier, "track": track, "reward": stored, "claimed_at": now}):
        raise Conflict(f"the {track} reward of tier {tier} was claimed already", code="already_claimed")
    base = f"battle-pass:claim:{season.key}:{player_id}:{track}:{tier}"
    reference = {"season": season.key, "tier": tier, "track": track}
    txn_ids = []
    for points in reward.points:
        txn = await ledger.credit_player(
            session, clock, app_id=app_id, player_id=player_id, currency=points.currency, amount=points.amount,
            idempotency_key=f"{base}:{points.currency}", source="battle_pass", reference=reference,
            description=f"{season.spec.name}: tier {tier} ({track})",
        )
        txn_ids.append(txn.id)
    for grant in reward.items:
        await shop.grant_item(session, clock, app_id=app_id, player_id=player_id, item=grant.item,
                              quantity=grant.quantity, key=f"{base}:{grant.item}", source="battle_pass",
                              reference=reference)
    if reward.badge is not None:
        await achievements.grant_badge(session, clock, ruleset, app_id, player_id, reward.badge, source="battle_pass",
                                       reference=reference)
    # Webhook, in-game and token rewards: fulfilment records, once per claim (the claim is unique).
    await fulfilment.create_for(session, runtime, app_id=app_id, player_id=player_id, source="battle_pass",
                                source_ref=base, reward=reward)
    return ClaimOut(season=season.key, player_id=player_id, tier=tier, track=track, reward=reward,
                    transaction_ids=txn_ids, claimed_at=now)


async def titles_of(session: AsyncSession, app_id: str, player_id: str) -> list[tuple[str, str, datetime]]:
    """(title, season:track:tier, claimed at) of every claimed tier reward that carried a title."""
    return [(str(c.reward["title"]), f"{c.season}:{c.track}:{c.tier}", c.claimed_at)
            for c in await repo.titled_claims(session, app_id, player_id)]
