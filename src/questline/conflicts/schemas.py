"""Conflict rule definitions and verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from questline.kit.ids import ID_PATTERN
from questline.rules.conditions import (
    AllCondition,
    AnyCondition,
    Condition,
    FieldCondition,
    LevelCondition,
    NotCondition,
    depth_of,
)
from questline.sponsors.schemas import Category, Platform

Kind = Literal["time_overlap", "category_conflict", "platform_exclusivity", "custom"]
Stage = Literal["join", "approval"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TimeOverlap(Strict):
    """A streamer cannot run campaigns of competing brands at overlapping times (their start-end windows)."""

    kind: Literal["time_overlap"] = "time_overlap"
    competitors: Literal["same_industry", "brand_groups"] = Field(
        default="same_industry", description="brands of one industry compete, or the brands of each listed group")
    brand_groups: list[list[Annotated[str, Field(pattern=ID_PATTERN)]]] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _groups(self) -> TimeOverlap:
        if self.competitors == "brand_groups" and not any(len(g) >= 2 for g in self.brand_groups):
            raise ValueError("brand_groups needs at least one group of two or more brands")
        return self


class CategoryConflict(Strict):
    """Categories that may not run side by side (a pair of one category: at most one such campaign at a
    time), and at most ``max_active_per_category`` campaigns sharing a category."""

    kind: Literal["category_conflict"] = "category_conflict"
    pairs: list[Annotated[list[Category], Field(min_length=2, max_length=2)]] = Field(default_factory=list,
                                                                                     max_length=200)
    max_active_per_category: int | None = Field(default=None, strict=True, ge=1, le=100)
    categories: list[Category] = Field(default_factory=list, max_length=50,
                                       description="the categories max_active_per_category counts (empty: all)")

    @model_validator(mode="after")
    def _something(self) -> CategoryConflict:
        if not self.pairs and self.max_active_per_category is None:
            raise ValueError("give pairs, max_active_per_category, or both")
        return self


class PlatformExclusivity(Strict):
    """At most ``max_active`` running campaigns that target the same platform."""

    kind: Literal["platform_exclusivity"] = "platform_exclusivity"
    platforms: list[Platform] = Field(default_factory=list, description="the platforms this applies to (empty: all)")
    max_active: int = Field(default=1, strict=True, ge=1, le=100)


class Custom(Strict):
    """Refuses when ``condition`` holds. Conditions read ``data.streamer.*``, ``data.campaign.*``,
    ``data.active.*`` (the streamer's running campaigns) with ``field``, and the streamer's ``level``s."""

    kind: Literal["custom"] = "custom"
    condition: Condition
    message: str = Field(default="", max_length=300, description="the explanation a refused caller sees")

    @model_validator(mode="after")
    def _allowed(self) -> Custom:
        def check(node: Any) -> None:
            if isinstance(node, AllCondition | AnyCondition):
                for item in (node.all if isinstance(node, AllCondition) else node.any):
                    check(item)
            elif isinstance(node, NotCondition):
                check(node.not_)
            elif isinstance(node, FieldCondition):
                if not node.field.startswith(("data.streamer.", "data.campaign.", "data.active.")):
                    raise ValueError(f"{node.field!r}: conflict rules read data.streamer.*, data.campaign.* "
                                     "or data.active.*")
            elif not isinstance(node, LevelCondition):
                raise ValueError("conflict rules use field and level conditions (with all, any, not)")
        check(self.condition)
        if depth_of(self.condition) > 8:
            raise ValueError("conditions nest at most 8 deep")
        return self


RuleConfig = Annotated[TimeOverlap | CategoryConflict | PlatformExclusivity | Custom, Field(discriminator="kind")]


class RuleIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)
    enabled: bool = True
    applies_on: list[Stage] = Field(default_factory=lambda: list[Stage](["join"]), min_length=1, max_length=2,
                                    description="join: when a streamer joins; approval: when an admin approves")
    rule: RuleConfig


class RuleOut(BaseModel):
    id: str
    name: str
    description: str
    enabled: bool
    applies_on: list[Stage]
    rule: RuleConfig
    created_at: datetime
    updated_at: datetime


class Verdict(BaseModel):
    rule_id: str
    name: str
    kind: Kind
    refused: bool
    reason: str
