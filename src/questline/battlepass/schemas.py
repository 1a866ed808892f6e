"""Battle pass definitions (seasons and pass XP rules) and the shapes the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from questline.fulfilment.schemas import InGameReward, TokenReward
from questline.gating.schemas import Requirement
from questline.kit.jsonvalue import JsonObject
from questline.progression.schemas import Curve
from questline.rules.conditions import Condition, references
from questline.rules.schemas import DEFINITION_KEY, EVENT_TYPE, DefinitionBody
from questline.shop.schemas import ItemGrant, Price

MAX_TIERS = 500
Track = Literal["free", "premium"]
PremiumSource = Literal["points", "external"]


class TierReward(BaseModel):
    """What claiming one tier of one track gives: currency through the ledger, items into the
    inventory, a badge (an achievement, granted on claim) and/or a title recorded with the claim."""

    model_config = ConfigDict(extra="forbid")

    points: list[Price] = Field(default_factory=list, max_length=10, description="[{currency, amount}]")
    items: list[ItemGrant] = Field(default_factory=list, max_length=20)
    badge: str | None = Field(default=None, min_length=1, max_length=64,
                              description="an achievement's key: the achievement is granted on claim")
    title: str | None = Field(default=None, min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=500, description="e.g. a physical reward, for display")
    webhook: JsonObject | None = Field(default=None, description="a reward your server delivers: a fulfilment "
                                                                 "record, sent signed to the app's webhook target")
    in_game: InGameReward | None = Field(default=None, description="an item the game server grants: a fulfilment "
                                                                   "record, a signed call to the in_game target")
    token: TokenReward | None = Field(default=None, description="a token transfer to the player's wallet: a "
                                                                "fulfilment record")

    @model_validator(mode="after")
    def _not_empty(self) -> TierReward:
        if not (self.points or self.items or self.badge or self.title or self.note or self.webhook or self.in_game
                or self.token):
            raise ValueError("a tier reward needs at least one of points, items, badge, title, note, webhook, "
                             "in_game, token")
        if len({p.currency for p in self.points}) != len(self.points):
            raise ValueError("list each currency once in points")
        return self


class BattlePassDef(DefinitionBody):
    """A season: tiers reached with pass XP, a reward per tier on a free and a premium track."""

    name: str = Field(min_length=1, max_length=100)
    season_number: int | None = Field(default=None, ge=1, le=100_000)
    description: str = Field(default="", max_length=1000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    featured: bool = Field(default=False, description="the app's current season; at most one per app")
    tiers: int = Field(default=50, ge=1, le=MAX_TIERS)
    xp_per_tier: int = Field(default=500, ge=1, le=100_000_000, description="pass XP per tier (without a curve)")
    curve: Curve | None = Field(default=None, description="tier n+1 costs what level n+1 costs on this curve")
    free: dict[int, TierReward] = Field(default_factory=dict, description="tier -> reward on the free track")
    premium: dict[int, TierReward] = Field(default_factory=dict, description="tier -> reward on the premium track")
    premium_price: Price | None = Field(default=None, description="buy premium with points; absent: cash only")
    tier_boost_price: Price | None = Field(default=None, description="price of skipping one tier; absent: no boosts")
    gating: Requirement | None = Field(default=None,
                                       description="who earns pass XP, buys premium and boosts, and claims (403 gated)")

    @model_validator(mode="after")
    def _shape(self) -> BattlePassDef:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        for track, rewards in (("free", self.free), ("premium", self.premium)):
            wrong = sorted(t for t in rewards if not 1 <= t <= self.tiers)
            if wrong:
                raise ValueError(f"{track}: tiers {wrong} are outside 1..{self.tiers}")
        if self.curve is not None and self.curve.type == "table":
            assert self.curve.thresholds is not None
            if len(self.curve.thresholds) < self.tiers:
                raise ValueError(f"a table curve needs {self.tiers} thresholds, one per tier")
        return self

    def references(self) -> list[tuple[str, str]]:
        rewards = [r for table in (self.free, self.premium) for r in table.values()]
        items = {g.item for r in rewards for g in r.items}
        badges = {r.badge for r in rewards if r.badge is not None}
        return (sorted(("item", key) for key in items) + sorted(("achievement", key) for key in badges)
                + (self.gating.references() if self.gating else []))

    def currencies(self) -> set[str]:
        found = {p.currency for rewards in (self.free, self.premium) for r in rewards.values() for p in r.points}
        found |= {p.currency for p in (self.premium_price, self.tier_boost_price) if p is not None}
        return found

    def starts(self) -> list[int]:
        """Total pass XP at which each tier is reached; index 0 is tier 0 (0 XP)."""
        if self.curve is not None:
            return self.curve.starts(self.tiers + 1)
        return [n * self.xp_per_tier for n in range(self.tiers + 1)]


class PassXpRuleDef(DefinitionBody):
    """Events of a type (matching an optional filter) earn pass XP, optionally capped per local day."""

    event_type: str = Field(pattern=EVENT_TYPE)
    filter: Condition | None = None
    amount: int = Field(ge=1, le=1_000_000)
    daily_limit: int | None = Field(default=None, ge=1, le=1_000_000_000,
                                    description="pass XP this rule gives a player per local day and season")
    season: str | None = Field(default=None, pattern=DEFINITION_KEY,
                               description="one season; absent: every season running when the event happened")

    def references(self) -> list[tuple[str, str]]:
        own = [("battle_pass", self.season)] if self.season else []
        return [*own, *references(self.filter)]


# API shapes -----------------------------------------------------------------------------------


class PremiumIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paid_externally: bool = Field(default=False, description="server key only: premium was bought with cash")
    external_reference: str | None = Field(default=None, max_length=200, description="e.g. your payment id")


class BoostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: int = Field(default=1, strict=True, ge=1, le=MAX_TIERS)


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: int = Field(strict=True, ge=1, le=MAX_TIERS)
    track: Track


class TierRewardOut(BaseModel):
    tier: int
    reward: TierReward
    reached: bool
    claimed: bool
    claimable: bool
    locked: bool = Field(description="premium track without premium")


class SeasonOut(BaseModel):
    season: str
    name: str
    season_number: int | None
    description: str
    starts_at: datetime
    ends_at: datetime
    featured: bool
    active: bool
    total_tiers: int
    premium_price: Price | None
    tier_boost_price: Price | None


class ProgressOut(SeasonOut):
    player_id: str
    current_tier: int
    xp: int = Field(description="pass XP earned, plus XP bought with tier boosts")
    xp_in_tier: int
    xp_for_next_tier: int | None
    has_premium: bool
    premium_source: PremiumSource | None
    premium_at: datetime | None
    boost_tiers: int
    free_rewards: list[TierRewardOut]
    premium_rewards: list[TierRewardOut]
    claimable: dict[str, list[int]] = Field(description="tiers claimable now, per track (free, premium)")


class PassOut(BaseModel):
    season: str
    player_id: str
    has_premium: bool
    premium_source: PremiumSource | None
    premium_at: datetime | None
    transaction_id: str | None
    current_tier: int
    boost_tiers: int


class ClaimOut(BaseModel):
    season: str
    player_id: str
    tier: int
    track: Track
    reward: TierReward
    transaction_ids: list[str]
    claimed_at: datetime
