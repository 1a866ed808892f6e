"""Finance desk request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from questline.kit.ids import ID_PATTERN
from questline.ledger.schemas import FIAT_PATTERN, MAX_AMOUNT

FiatKey = Annotated[str, Field(pattern=FIAT_PATTERN)]
TypeKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Bps = Annotated[int, Field(strict=True, ge=0, le=10_000, description="basis points: 1000 is 10%")]
Minor = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT, description="minor units")]
ReportFormat = Literal["json", "csv", "xlsx"]
ExportFormat = Literal["csv", "xlsx"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# Fee structure --------------------------------------------------------------------------------


class FeesIn(Strict):
    commission_bps: Bps = Field(description="the platform's commission on campaign earnings, by default")
    by_type: dict[TypeKey, Bps] = Field(default_factory=dict, max_length=50,
                                        description="commission per campaign type: a campaign's type is its first "
                                                    "category with a rate here (e.g. {\"gaming\": 1200})")
    fixed_fees: dict[FiatKey, Minor] = Field(default_factory=dict, max_length=100,
                                             description="a fixed fee per campaign, per currency, charged to the "
                                                         "brand's available money when the campaign is approved")


class FeesOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int = Field(description="0: never set (the marketplace's commission applies, no fixed fee)")
    commission_bps: int
    by_type: dict[str, int]
    fixed_fees: dict[str, int]
    set_by: str | None
    created_at: datetime | None


# Review queue ---------------------------------------------------------------------------------


class DeskSettingsBody(Strict):
    default_review_above: Minor = Field(default=1_000_000, description="transactions of at least this much (minor "
                                                                       "units) wait for a review, in a currency "
                                                                       "without its own threshold")
    review_above: dict[FiatKey, Minor] = Field(default_factory=dict, max_length=100,
                                               description="the threshold per currency (ISO 4217 code)")


ReviewStatus = Literal["pending", "approved", "rejected"]


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    transaction_id: str
    account: str
    kind: str
    currency: str
    amount: int
    reference: dict[str, Any] | None
    transacted_at: datetime
    status: str
    note: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class ReviewIn(Strict):
    note: str | None = Field(default=None, max_length=500)


class RejectIn(Strict):
    note: str = Field(min_length=1, max_length=500, description="why the transaction is not accepted")


# Disputes -------------------------------------------------------------------------------------

DisputeKind = Literal["impressions", "chargeback", "invoice_line"]
DisputeStatus = Literal["open", "refunded", "rejected", "won", "lost"]


class DisputeIn(Strict):
    """Either a participation's impressions (``campaign_id``, ``streamer_id``, ``impressions``) or an invoice
    line (``invoice_line_id``, optionally part of its ``amount``)."""

    campaign_id: str | None = Field(default=None, pattern=ID_PATTERN, max_length=40)
    streamer_id: str | None = Field(default=None, pattern=ID_PATTERN, max_length=40)
    impressions: int | None = Field(default=None, strict=True, ge=1, le=MAX_AMOUNT,
                                    description="how many of the participation's impressions the brand disputes")
    invoice_line_id: str | None = Field(default=None, pattern=ID_PATTERN, max_length=40)
    amount: int | None = Field(default=None, strict=True, ge=1, le=MAX_AMOUNT,
                               description="an invoice line: how much of it is disputed (all of it by default)")
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_subject(self) -> DisputeIn:
        impressions = (self.campaign_id, self.streamer_id, self.impressions)
        if self.invoice_line_id is not None:
            if any(v is not None for v in impressions):
                raise ValueError("dispute either an invoice line or a participation's impressions, not both")
        elif any(v is None for v in impressions) or self.amount is not None:
            raise ValueError("give campaign_id, streamer_id and impressions (or invoice_line_id, with an amount)")
        return self


class EvidenceIn(Strict):
    statement: str = Field(min_length=1, max_length=4000)
    links: list[Annotated[str, Field(pattern=r"^https://[^\s]{1,500}$")]] = Field(default_factory=list, max_length=10)


class EvidenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    party: str
    author: str
    statement: str
    links: list[str]
    created_at: datetime


class DisputeDecisionIn(Strict):
    verdict: Literal["refund", "reject"]
    impressions: int | None = Field(default=None, strict=True, ge=1, le=MAX_AMOUNT,
                                    description="refund: how many of the disputed impressions (all by default)")
    amount: int | None = Field(default=None, strict=True, ge=1, le=MAX_AMOUNT,
                               description="refund of an invoice line: how much (the disputed amount by default)")
    recover_from_streamer: bool = Field(default=True, description="refund: take the streamer's share back from "
                                                                  "their available earnings (never below zero)")
    reason: str = Field(min_length=1, max_length=2000)


class DisputeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    status: str
    brand_id: str
    streamer_id: str | None
    campaign_id: str | None
    participation_id: str | None
    subject_ref: str | None = Field(description="a chargeback's deposit, or the disputed invoice line")
    currency: str
    impressions: int
    amount: int = Field(description="what is disputed, minor units")
    reason: str
    opened_by: str
    verdict: str | None
    decision: dict[str, Any] | None
    refunded: int = Field(description="what the brand got back, minor units")
    from_revenue: int
    from_streamer: int
    loss: int = Field(description="what could not be recovered: the platform's loss")
    transactions: list[str]
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
    updated_at: datetime
    evidence: list[EvidenceOut] = Field(default_factory=list)


# Reports --------------------------------------------------------------------------------------


class RevenueLine(BaseModel):
    kind: str
    amount: int
    transactions: int


class RevenueReport(BaseModel):
    currency: str
    exponent: int
    start: datetime
    end: datetime
    opening_balance: int
    closing_balance: int
    commissions: int = Field(description="campaign commissions booked in the period")
    fixed_fees: int
    refunds: int = Field(description="given back on disputes (negative)")
    other: int
    net: int = Field(description="every movement of the revenue account in the period")
    disputes_loss: int = Field(description="what disputes decided in the period could not recover")
    by_kind: list[RevenueLine]
    by_campaign: dict[str, int] = Field(description="commission per campaign")


class Mismatch(BaseModel):
    kind: Literal["missing_in_ledger", "missing_at_provider", "amount_mismatch"]
    object: Literal["payment", "payout"]
    provider_ref: str | None
    local_id: str | None
    ledger_amount: int | None
    provider_amount: int | None


class ReconciliationReport(BaseModel):
    provider: str
    currency: str
    start: datetime
    end: datetime
    ledger_in: int = Field(description="PSP deposits credited in the ledger in the period")
    provider_in: int = Field(description="payments the provider reports succeeded")
    ledger_out: int
    provider_out: int
    matched: int
    mismatches: list[Mismatch]
    balanced: bool


class AuditLine(BaseModel):
    at: datetime
    actor: str
    action: str
    target: dict[str, Any]
    status: int


class AuditReport(BaseModel):
    start: datetime
    end: datetime
    entries: list[AuditLine]
    by_action: dict[str, int]
    disputes_decided: int
    reviews_decided: int
