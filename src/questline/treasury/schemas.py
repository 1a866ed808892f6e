"""Treasury request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from questline.ledger.schemas import FIAT_PATTERN, PositiveAmount, Reference

StatementFormat = Literal["json", "csv", "pdf"]
FiatCode = Annotated[str, Field(pattern=FIAT_PATTERN, description="an ISO 4217 code, e.g. USD")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RateIn(Strict):
    rate: str = Field(min_length=1, max_length=40, pattern=r"^[0-9]+(?:\.[0-9]+)?$",
                      description="major units of the quote currency one major unit of the base buys, as a "
                                  "decimal string (\"0.9215\"; never a JSON number)")


class RateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    base: str
    quote: str
    rate: str
    set_by: str
    set_at: datetime


class ConversionIn(Strict):
    source: FiatCode = Field(alias="from", description="the currency paid in")
    target: FiatCode = Field(alias="to", description="the currency received")
    amount: PositiveAmount = Field(description="in the source currency's minor units")
    reference: Reference = None

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
