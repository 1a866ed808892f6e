from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from questline.rules.conditions import FIELD_PATH, Condition, Period, references

DEFINITION_KEY = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
EVENT_TYPE = r"^[A-Za-z0-9_.:-]{1,100}$"


class DefinitionBody(BaseModel):
    """Base of every definition kind's schema."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    def references(self) -> list[tuple[str, str]]:
        """(kind, key) pairs that must exist for this definition to make sense."""
        return []


class StatDef(DefinitionBody):
    """A per-player aggregate over events of one type, kept per period."""

    event_type: str = Field(pattern=EVENT_TYPE)
    filter: Condition | None = None
    aggregation: Literal["count", "sum", "max", "min", "last"] = "count"
    field: str | None = Field(default=None, pattern=FIELD_PATH, description="the number to aggregate, e.g. data.score")
    scale: int = Field(default=1, ge=1, le=1_000_000, description="multiply before rounding: stats are integers")
    periods: list[Period] = Field(default=["all", "day", "week", "month"], min_length=1)

    @model_validator(mode="after")
    def _field_needed(self) -> StatDef:
        if self.aggregation != "count" and self.field is None:
            raise ValueError(f"aggregation {self.aggregation!r} needs a field (e.g. data.score)")
        return self

    def references(self) -> list[tuple[str, str]]:
        return references(self.filter)


class DefinitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    key: str
    version: int
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class DefinitionVersionOut(BaseModel):
    """One version of a definition, as it was saved."""

    model_config = ConfigDict(from_attributes=True)

    kind: str
    key: str
    version: int
    body: dict[str, Any]
    created_at: datetime


class StatTotal(BaseModel):
    period_key: str = Field(description="2026-03-10, 2026-W11 or 2026-03 (in each player's own time zone)")
    total: int = Field(description="the stat's values of every player in that period, added up")
    players: int = Field(description="players with a value in that period")


class StatSeries(BaseModel):
    stat: str
    period: Literal["day", "week", "month"]
    items: list[StatTotal] = Field(description="oldest first")


class KindOut(BaseModel):
    kind: str
    description: str
    json_schema: dict[str, Any]


class Bundle(BaseModel):
    """A whole configuration: ``{kind: {key: body}}``, as kept in a game's repository."""

    model_config = ConfigDict(extra="forbid")

    definitions: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    client_event_types: list[str] | None = None
    prune: bool = Field(default=False, description="delete definitions of the listed kinds that the bundle omits")


class BundleResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    deleted: int
    config_version: int
