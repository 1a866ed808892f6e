"""Requests and replies for billing: settings, invoices and lines, credit notes, plans, subscriptions."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.kit.ids import ID_PATTERN
from questline.ledger.schemas import FIAT_PATTERN
from questline.players.schemas import check_timezone

InvoiceStatus = Literal["draft", "open", "paid", "void", "uncollectible"]
InvoiceFormat = Literal["json", "html", "pdf"]
LineKind = Literal["media", "commission", "subscription", "usage"]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. DE")]
Bps = Annotated[int, Field(strict=True, ge=0, le=10_000, description="basis points (1900 = 19%)")]
Prefix = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{0,11}$", description="e.g. INV")]
Amount = Annotated[int, Field(strict=True, ge=1, le=10**15, description="minor units")]
PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BillingSettingsBody(Strict):
    """One app's billing rules; an app that never set them gets these defaults."""

    invoice_prefix: Prefix = Field(default="INV", description="numbers read <prefix>-<year>-<000123>")
    credit_note_prefix: Prefix = Field(default="CN")
    timezone: str = Field(default="UTC", max_length=64,
                          description="months (invoice periods, number years) are counted in this zone")
    tax_rates: dict[Country, Bps] = Field(default_factory=dict, max_length=300,
                                          description="tax per brand country, in basis points of the subtotal")
    unknown_country: Literal["refuse", "zero"] = Field(
        default="refuse", description="a brand whose country has no rate (or no country): refuse to invoice "
                                      "(422 tax_rate_unknown) or charge no tax")
    due_days: int = Field(default=14, strict=True, ge=0, le=365, description="an open invoice is due this many "
                                                                             "days after finalization")
    reminder_days: list[Annotated[int, Field(strict=True, ge=0, le=365)]] = Field(
        default_factory=lambda: [1, 7, 14], max_length=10,
        description="days after the due date a reminder goes out for an unpaid invoice, one per step")
    auto_generate: bool = Field(default=False, description="the monthly job invoices and finalizes every brand's "
                                                           "past month on its own")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("reminder_days")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in pairwise(value)):
            raise ValueError("reminder_days must increase")
        return value


class GenerateIn(Strict):
    """Invoice one brand: for a calendar month (``period``) or for one finished campaign."""

    brand_id: str = Field(pattern=ID_PATTERN)
    period: str | None = Field(default=None, pattern=PERIOD_PATTERN, description="a month, e.g. 2026-11")
    campaign_id: str | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _one(self) -> GenerateIn:
        if (self.period is None) == (self.campaign_id is None):
            raise ValueError("give either period or campaign_id")
        return self


class LineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    position: int
    kind: LineKind
    description: str
    campaign_id: str | None
    amount: int
    prepaid: bool = Field(description="already paid from the campaign's budget")


class InvoiceLineOut(LineOut):
    """A line with its invoice (what a dispute refers to)."""

    invoice_id: str
    brand_id: str
    currency: str
    invoice_status: InvoiceStatus
    invoice_number: str | None


class CreditNoteIn(Strict):
    amount: Amount
    reason: str = Field(min_length=3, max_length=500)
    line_id: str | None = Field(default=None, pattern=ID_PATTERN, description="the line it corrects, if one")


class CreditNoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    invoice_id: str
    line_id: str | None
    number: str
    amount: int
    reason: str
    created_by: str
    created_at: datetime


class InvoiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    brand_id: str
    kind: Literal["monthly", "campaign"]
    period_key: str
    period_start: datetime
    period_end: datetime
    currency: str
    exponent: int
    status: InvoiceStatus
    number: str | None = Field(description="assigned at finalization; a draft has none")
    bill_to: dict[str, str]
    tax_country: str | None
    tax_rate_bps: int
    subtotal: int
    tax: int
    total: int
    prepaid: int
    credited: int
    paid: int
    amount_due: int
    payment_transaction_id: str | None
    due_at: datetime | None
    finalized_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    lines: list[LineOut]
    credit_notes: list[CreditNoteOut]


class PlanIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    currency: str = Field(pattern=FIAT_PATTERN)
    monthly_fee: int = Field(strict=True, ge=0, le=10**12, description="minor units, billed each month")
    usage_bps: Bps = Field(default=0, description="on top: this share of the month's campaign spend")


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    currency: str
    monthly_fee: int
    usage_bps: int
    created_at: datetime


class SubscriptionIn(Strict):
    plan_id: str = Field(pattern=ID_PATTERN)


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    brand_id: str
    plan_id: str
    started_at: datetime
    ended_at: datetime | None


class RunOut(BaseModel):
    invoices: int
    finalized: int
    skipped: list[dict[str, str]]
