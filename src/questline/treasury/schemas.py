"""Treasury request and response models."""

from __future__ import annotations

from datetime import date, datetime
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


# Payment methods ------------------------------------------------------------------------------

ProviderName = Literal["manual", "psp"]


class BankAccountIn(Strict):
    kind: Literal["bank_account"]
    holder: str = Field(min_length=2, max_length=140)
    iban: str | None = Field(default=None, pattern=r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$",
                             description="without spaces, e.g. DE89370400440532013000")
    account_number: str | None = Field(default=None, pattern=r"^[0-9]{4,20}$")
    routing_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{6,11}$", description="a BIC or a sort code")


class PaypalIn(Strict):
    kind: Literal["paypal"]
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class PspTokenIn(Strict):
    kind: Literal["psp_token"]
    token: str = Field(min_length=6, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                       description="the token the PSP gave for a card or account (never a card number)")


PaymentMethodIn = Annotated[BankAccountIn | PaypalIn | PspTokenIn, Field(discriminator="kind")]


class PaymentMethodOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_kind: str
    owner_id: str
    kind: str
    masked: str = Field(description="the details as shown: never the whole number, address or token")
    created_at: datetime


# Deposits -------------------------------------------------------------------------------------

class DepositRequestIn(Strict):
    provider: ProviderName = Field(description="manual (a bank transfer finance staff record) or psp")
    currency: FiatCode
    amount: PositiveAmount = Field(description="in minor units")
    payment_method_id: str | None = Field(default=None, max_length=40,
                                          description="psp: the brand's stored psp_token to charge")


class DepositOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_kind: str
    owner_id: str
    currency: str
    amount: int
    provider: str
    provider_ref: str
    status: Literal["pending", "confirmed", "failed"]
    instructions: dict[str, object] | None
    confirmation: str | None
    failure_reason: str | None
    transaction_id: str | None
    created_at: datetime
    settled_at: datetime | None


class ConfirmIn(Strict):
    reference: str = Field(min_length=1, max_length=128, description="the bank's reference of the transfer")
    amount: PositiveAmount = Field(description="what arrived, in minor units: must be the deposit's amount")


class FailIn(Strict):
    reason: str = Field(min_length=3, max_length=500)


class WebhookOut(BaseModel):
    outcome: str = Field(description="applied, duplicate or ignored")


# Withdrawals ----------------------------------------------------------------------------------

LimitAmount = Annotated[int, Field(strict=True, ge=0, le=10**12)]


class WithdrawalLimits(Strict):
    """In the currency's minor units. Above ``approval_above`` a finance approval is needed; above
    ``two_approvers_above``, two by different people."""

    min: LimitAmount = 1_000
    max_per_request: LimitAmount = 1_000_000
    per_day: LimitAmount = 2_000_000
    per_month: LimitAmount = 10_000_000
    approval_above: LimitAmount = 50_000
    two_approvers_above: LimitAmount = 500_000
    kyc_required_above: LimitAmount = Field(default=100_000, description="above this a verified KYC is needed")


class KycRules(Strict):
    validity_days: int = Field(default=365, strict=True, ge=1, le=3650,
                               description="a verification expires after this long")
    retention_days: int = Field(default=90, strict=True, ge=1, le=3650,
                                description="documents are deleted this long after the decision")
    high_risk_countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(default_factory=list,
                                                                                   max_length=250)
    high_volume_above: LimitAmount = Field(default=1_000_000, description=(
        "withdrawals asked for in the last 30 days above this (minor units, any currency) add to the risk"))


class TreasurySettingsBody(Strict):
    default_limits: WithdrawalLimits = Field(default_factory=WithdrawalLimits,
                                             description="for every currency without its own")
    limits: dict[Annotated[str, Field(pattern=FIAT_PATTERN)], WithdrawalLimits] = Field(
        default_factory=dict, max_length=100, description="per currency (ISO 4217 code)")
    kyc: KycRules = Field(default_factory=KycRules)


class WithdrawalIn(Strict):
    currency: FiatCode
    amount: PositiveAmount = Field(description="in minor units")
    payment_method_id: str = Field(max_length=40, description="where to pay: a bank account or PayPal-style "
                                                              "e-mail (paid by finance staff) or a psp_token")


WithdrawalStatus = Literal["awaiting_approval", "approved", "processing", "paid", "failed", "rejected"]


class ApprovalOut(BaseModel):
    by: str
    at: datetime


class WithdrawalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_kind: str
    owner_id: str
    currency: str
    amount: int
    payment_method_id: str
    provider: str
    status: WithdrawalStatus
    approvals_needed: int
    approvals: list[ApprovalOut]
    provider_ref: str | None
    reference: str | None
    failure_reason: str | None
    last_error: str | None = Field(description="why the last attempt to send it to the provider failed")
    hold_transaction_id: str
    settle_transaction_id: str | None
    created_at: datetime
    updated_at: datetime
    settled_at: datetime | None


class PaidIn(Strict):
    reference: str = Field(min_length=1, max_length=128, description="the bank's reference of the sent payout")


# KYC ------------------------------------------------------------------------------------------

DocumentKind = Literal["passport", "drivers_licence", "national_id"]
KycStatus = Literal["not_started", "submitted", "in_review", "verified", "rejected", "expired"]


class KycSubmitIn(Strict):
    full_name: str = Field(min_length=2, max_length=200)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. DE")
    date_of_birth: date


class KycDecisionIn(Strict):
    verdict: Literal["verified", "rejected"]
    reasons: list[Annotated[str, Field(min_length=3, max_length=300)]] = Field(
        default_factory=list, max_length=10, description="why (required to reject)")


class KycDocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    content_type: str
    bytes: int
    sha256: str
    uploaded_at: datetime
    deleted_at: datetime | None


class KycOut(BaseModel):
    """What the subject sees of their case."""

    model_config = ConfigDict(from_attributes=True)

    status: KycStatus
    reasons: list[str] = Field(default_factory=list)
    documents: int = 0
    submitted_at: datetime | None = None
    decided_at: datetime | None = None
    expires_at: datetime | None = None


class RiskFactor(BaseModel):
    rule: str
    points: int
    detail: str


class KycCaseOut(BaseModel):
    """What reviewers see: the details, the risk and the documents (their content is a separate read)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    subject_kind: str
    subject_id: str
    status: KycStatus
    full_name: str | None
    country: str | None
    date_of_birth: date | None
    reasons: list[str]
    risk_score: int
    risk_factors: list[RiskFactor]
    submissions: int
    reviewer: str | None
    submitted_at: datetime | None
    decided_at: datetime | None
    expires_at: datetime | None
    documents: list[KycDocumentOut] = Field(default_factory=list)


class KycReport(BaseModel):
    by_status: dict[str, int]
    high_risk_open: int = Field(description="submitted or in review with a risk score of 50 or more")
    expiring_within_30_days: int
    documents_held: int
    documents_deleted: int
