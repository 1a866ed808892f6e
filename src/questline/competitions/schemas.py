"""Competition configuration (entry, scoring, prizes) and the shapes of replies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from questline.fulfilment.schemas import InGameReward, TokenReward
from questline.gating.schemas import Requirement
from questline.kit.jsonvalue import JsonObject
from questline.leaderboards.schemas import Scoring
from questline.ledger.schemas import CURRENCY_PATTERN, MAX_AMOUNT

MAX_PRIZE_RANK = 10_000
Status = Literal["upcoming", "active", "completed", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Fee(Strict):
    currency: str = Field(pattern=CURRENCY_PATTERN)
    amount: int = Field(gt=0, le=MAX_AMOUNT)


class MinLevel(Strict):
    track: str = Field(min_length=1, max_length=64, description="an XP track key")
    level: int = Field(ge=1, le=1000)


class EntryRules(Strict):
    fee: Fee | None = Field(default=None, description="taken from the player's balance on joining")
    min_level: MinLevel | None = None
    max_participants: int | None = Field(default=None, ge=1, le=10_000_000)
    gating: Requirement | None = Field(default=None, description="who may enter (communities, whitelist, level, "
                                                                 "completed challenges, traits); others get 403 gated")


REWARD_FIELDS = ("points", "percent", "item", "external", "webhook", "in_game", "token")


class PrizeTier(Strict):
    """What each rank from ``from_rank`` to ``to_rank`` wins: exactly one of the reward fields."""

    from_rank: int = Field(ge=1, le=MAX_PRIZE_RANK)
    to_rank: int | None = Field(default=None, ge=1, le=MAX_PRIZE_RANK, description="default: from_rank")
    points: int | None = Field(default=None, gt=0, le=MAX_AMOUNT, description="a fixed amount of the prize currency")
    percent: Decimal | None = Field(default=None, gt=0, le=100, max_digits=6, decimal_places=3,
                                    description="a share of the pool (fees collected + sponsor amount), per rank")
    item: str | None = Field(default=None, min_length=1, max_length=128, description="an item, fulfilled later")
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    external: JsonObject | None = Field(default=None, description="an external reward: a fulfilment record that "
                                                                  "an admin marks fulfilled with a reference")
    webhook: JsonObject | None = Field(default=None, description="a reward your server delivers: sent to the app's "
                                                                 "webhook fulfilment target, signed")
    in_game: InGameReward | None = Field(default=None, description="an item the game server grants: a signed call "
                                                                   "to the app's in_game fulfilment target")
    token: TokenReward | None = Field(default=None, description="a transfer of a native coin or an ERC-20 token to "
                                                                "the player's address")

    @model_validator(mode="after")
    def _one_reward(self) -> PrizeTier:
        given = [n for n in REWARD_FIELDS if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"a prize tier has exactly one of: {', '.join(REWARD_FIELDS)}")
        if self.to_rank is not None and self.to_rank < self.from_rank:
            raise ValueError("to_rank must not be below from_rank")
        return self

    @property
    def last(self) -> int:
        return self.to_rank or self.from_rank

    @property
    def kind(self) -> str:
        if self.points is not None or self.percent is not None:
            return "points"
        return next(n for n in REWARD_FIELDS[2:] if getattr(self, n) is not None)

    def reward_data(self) -> dict[str, Any] | None:
        """What a fulfilled prize delivers (kept on the prize as ``data``)."""
        if self.in_game is not None:
            return self.in_game.model_dump()
        if self.token is not None:
            return self.token.model_dump()
        return self.external if self.external is not None else self.webhook


class PrizeRules(Strict):
    currency: str = Field(default="points", pattern=CURRENCY_PATTERN, description="of points and percent prizes")
    sponsor_amount: int = Field(default=0, ge=0, le=MAX_AMOUNT, description="added to the fees to make the pool")
    tiers: list[PrizeTier] = Field(default_factory=list, max_length=100)
    claim: Literal["automatic", "manual"] = Field(
        default="automatic", description="automatic: paid on completion; manual: each winner claims before a deadline")
    claim_window_hours: int = Field(default=72, ge=1, le=24 * 365)

    @model_validator(mode="after")
    def _ranks(self) -> PrizeRules:
        taken: list[tuple[int, int]] = []
        share = Decimal(0)
        for tier in self.tiers:
            if any(tier.from_rank <= b and a <= tier.last for a, b in taken):
                raise ValueError(f"ranks {tier.from_rank}-{tier.last} are given a prize twice")
            taken.append((tier.from_rank, tier.last))
            if tier.percent is not None:
                share += tier.percent * (tier.last - tier.from_rank + 1)
        if share > 100:
            raise ValueError(f"percent prizes add up to {share}% of the pool; at most 100%")
        return self


class CompetitionIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    scoring: Scoring
    entry: EntryRules = Field(default_factory=EntryRules)
    prizes: PrizeRules = Field(default_factory=PrizeRules)

    @model_validator(mode="after")
    def _window(self) -> CompetitionIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        fee = self.entry.fee
        if fee is not None and any(t.percent is not None for t in self.prizes.tiers) \
                and fee.currency != self.prizes.currency:
            raise ValueError("percent prizes share a pool of fees: the fee and prize currencies must match")
        return self


class CompetitionOut(BaseModel):
    id: str
    name: str
    description: str | None
    status: Status
    starts_at: datetime
    ends_at: datetime
    scoring: dict[str, Any]
    entry: dict[str, Any]
    prizes: dict[str, Any]
    participants: int
    fees_collected: int
    pool: int
    leaders: list[str]
    distribution_status: str
    distribution_batch: int
    distribution_error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class ParticipantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    competition_id: str
    player_id: str
    status: str
    fee_paid: int
    fee_transaction_id: str | None
    joined_at: datetime


class PrizeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    competition_id: str
    batch: int
    rank: int
    player_id: str
    kind: str
    currency: str | None
    amount: int
    item: str | None
    data: dict[str, Any] | None
    status: str
    fulfilment: str
    claim_deadline: datetime | None
    claimed_at: datetime | None
    transaction_id: str | None
    rollback_transaction_id: str | None
    created_at: datetime


class PrizeEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    prize_id: str
    competition_id: str
    action: str
    actor: str | None
    at: datetime


class DistributionOut(BaseModel):
    id: str
    competition_id: str
    batch: int
    status: str
    pool: int
    total_points: int
    created_at: datetime
    rolled_back_at: datetime | None
    rollback_reason: str | None
    prizes: list[PrizeOut]


class Reason(Strict):
    reason: str = Field(min_length=3, max_length=500)


class ActivityPoint(BaseModel):
    at: datetime
    joins: int
    participants: int = Field(description="participants who had joined by the end of this hour")
    events: int
    volume: int


class Analytics(BaseModel):
    competition_id: str
    status: str
    participants: int
    pool: int
    timeline: list[ActivityPoint]
    distribution: list[PrizeOut]
