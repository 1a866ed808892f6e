"""Ledger request/response models, and the value types other areas pass to ``ledger.service``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from questline.kit.jsonvalue import JSON_CHECKED
from questline.players.schemas import PLAYER_ID_PATTERN

# Points are lowercase (points, gems); fiat money is three capitals, as in ISO 4217 (USD, EUR, JPY).
CURRENCY_PATTERN = r"^(?:[a-z][a-z0-9_]{0,31}|[A-Z]{3})$"
FIAT_PATTERN = r"^[A-Z]{3}$"
# Sub-accounts of one owner: "" (available), "pending", "hold:<ref>".
SUB_PATTERN = r"^(?:|[a-z][A-Za-z0-9_.:-]{0,63})$"
ACCOUNT_ID_PATTERN = r"^[a-z]{1,12}_[0-9A-HJKMNP-TV-Z]{26}$"
MAX_EXPONENT = 4
SOURCE_PATTERN = r"^[a-z][a-z0-9_.:-]{0,63}$"
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
SYSTEM_OWNER_PATTERN = r"^[a-z][a-z0-9_.:-]{0,127}$"
# One posting moves at most a trillion minor units: far above any real grant, far below 2**63.
MAX_AMOUNT = 1_000_000_000_000
MAX_REFERENCE_KEYS = 20

OwnerKind = Literal["player", "system", "brand", "streamer", "platform"]
CurrencyKind = Literal["points", "fiat"]
HoldStatus = Literal["active", "committed", "released"]

# Strict: a JSON float (5.0), a string ("5") or a boolean is refused rather than coerced.
PositiveAmount = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT, description="a positive integer")]
SignedAmount = Annotated[int, Field(strict=True, ge=-MAX_AMOUNT, le=MAX_AMOUNT,
                                    description="a non-zero integer; negative takes points away")]
PlayerIdField = Annotated[str, Field(pattern=PLAYER_ID_PATTERN, description="your own id for the player")]
CurrencyCode = Annotated[str, Field(pattern=CURRENCY_PATTERN, description="e.g. points, gems")]
Reference = Annotated[dict[str, str | int | bool | None] | None,
                      Field(default=None, max_length=MAX_REFERENCE_KEYS,
                            description="your own ids this relates to, e.g. {\"order_id\": \"o_1\"}"),
                      JSON_CHECKED]


@dataclass(frozen=True, order=True)
class AccountRef:
    """Names an account: a player's (owner_id = player_id), the app's system account, or a wallet
    of a brand, a streamer or the platform (``sub`` picks available, pending or a hold)."""

    owner_kind: OwnerKind
    owner_id: str
    currency: str
    sub: str = ""

    @classmethod
    def player(cls, player_id: str, currency: str) -> AccountRef:
        return cls("player", player_id, currency)

    @classmethod
    def system(cls, name: str, currency: str) -> AccountRef:
        return cls("system", name, currency)

    @classmethod
    def wallet(cls, owner_kind: OwnerKind, owner_id: str, currency: str, sub: str = "") -> AccountRef:
        return cls(owner_kind, owner_id, currency, sub)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# Currencies -----------------------------------------------------------------------------------

class CurrencyIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    exponent: int | None = Field(default=None, strict=True, ge=0, le=MAX_EXPONENT, description=(
        "fiat only: minor units per major unit as a power of ten; known ISO 4217 codes (USD, EUR, GBP 2, "
        "JPY 0, ...) default to theirs and may not differ, other three-capital codes must give it"))


class CurrencyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: CurrencyKind = "points"
    exponent: int = 0
    created_at: datetime
    updated_at: datetime


# Transactions ---------------------------------------------------------------------------------

class PostingOut(BaseModel):
    owner_kind: OwnerKind
    owner_id: str
    currency: str
    sub: str = Field(default="", description="a wallet's sub-account: pending, or hold:<ref> (empty: the main one)")
    amount: int
    balance_before: int
    balance_after: int
    seq: int

class TransactionOut(BaseModel):
    id: str
    idempotency_key: str
    kind: str
    source: str
    reference: dict[str, Any] | None
    description: str | None
    actor: str | None
    created_at: datetime
    postings: list[PostingOut]
    # True when this key had already posted this transaction. Not in the body: routes answer it
    # with the ``Idempotent-Replayed`` header (kit.idempotency.mark_replayed), its one signal.
    replayed: bool = Field(default=False, exclude=True)

    def balance_of(self, owner_kind: OwnerKind, owner_id: str, currency: str) -> int | None:
        """The balance an account was left with by this transaction (None if it took no part)."""
        for posting in self.postings:
            if (posting.owner_kind, posting.owner_id, posting.currency) == (owner_kind, owner_id, currency):
                return posting.balance_after
        return None


class GrantIn(Strict):
    player_id: PlayerIdField
    currency: CurrencyCode
    amount: PositiveAmount
    source: str = Field(default="api", pattern=SOURCE_PATTERN, description="what earned it, e.g. level_up")
    description: str | None = Field(default=None, max_length=500)
    reference: Reference = None


class SpendIn(GrantIn):
    source: str = Field(default="api", pattern=SOURCE_PATTERN, description="what it paid for, e.g. purchase")


class AdjustmentIn(Strict):
    player_id: PlayerIdField
    currency: CurrencyCode
    amount: SignedAmount
    reason: str = Field(min_length=3, max_length=500, description="why, for the audit trail")

    @field_validator("amount")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment must change the balance (amount may not be 0)")
        return value


# Balances and history -------------------------------------------------------------------------

class BalanceOut(BaseModel):
    currency: str
    balance: int
    lifetime_earned: int
    lifetime_spent: int


class BalancesOut(BaseModel):
    player_id: str
    balances: list[BalanceOut]


class HistoryEntry(BaseModel):
    transaction_id: str
    currency: str
    amount: int
    balance_before: int
    balance_after: int
    kind: str
    source: str
    description: str | None
    reference: dict[str, Any] | None
    actor: str | None
    created_at: datetime


class HistorySummary(BaseModel):
    total_earned: int
    total_spent: int
    net: int


class HistoryOut(BaseModel):
    player_id: str
    total: int = Field(description="entries matching the filter, across all pages")
    items: list[HistoryEntry]
    next_cursor: str | None = None
    summary: dict[str, HistorySummary] = Field(
        description="per currency (amounts of different currencies are never added together)")


# Holds ----------------------------------------------------------------------------------------

class HoldIn(Strict):
    player_id: PlayerIdField
    currency: CurrencyCode
    amount: PositiveAmount
    ttl_seconds: int = Field(default=60, strict=True, ge=1, le=3600,
                             description="released automatically after this long unless committed")
    reference: Reference = None


class HoldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    player_id: str
    currency: str
    amount: int
    status: HoldStatus
    release_reason: str | None
    reference: dict[str, Any] | None
    hold_transaction_id: str
    settle_transaction_id: str | None
    expires_at: datetime
    created_at: datetime
    settled_at: datetime | None
    player_balance: int | None = Field(default=None, description="the player's balance after this step")


# Spending from holds ---------------------------------------------------------------------------

@dataclass(frozen=True)
class HoldSpending:
    """What an owner's hold (e.g. a campaign's budget) paid out in a period: ``gross`` left the hold,
    ``fee`` of it went to the platform's revenue, in ``transactions`` earning transactions."""

    owner_id: str
    hold: str
    currency: str
    gross: int
    fee: int
    transactions: int


# Verification ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Violation:
    """One broken ledger invariant, found by ``ledger verify``."""

    check: str
    app_id: str
    subject: str
    detail: str


@dataclass(frozen=True)
class CurrencyTotals:
    app_id: str
    currency: str
    accounts: int
    postings: int
    player_balances: int
    issued: int
    held: int
    sunk: int


# Wallets --------------------------------------------------------------------------------------

WalletOwnerKind = Literal["brand", "streamer", "platform"]


class WalletBalance(BaseModel):
    currency: str
    exponent: int = Field(description="minor units per major unit, as a power of ten (USD 2, JPY 0)")
    available: int = Field(description="what the owner may use or withdraw, in minor units")
    held: int = Field(description="set aside (a campaign's budget), in minor units")
    pending: int = Field(description="earned but not yet released (until the campaign completes), in minor units")


class WalletOut(BaseModel):
    owner_kind: WalletOwnerKind
    owner_id: str
    balances: list[WalletBalance]


class DepositIn(Strict):
    currency: str = Field(pattern=FIAT_PATTERN, description="a fiat currency, e.g. USD")
    amount: PositiveAmount = Field(description="in minor units (cents for USD)")
    reference: Reference = None
    description: str | None = Field(default=None, max_length=500)


# Statements -----------------------------------------------------------------------------------

class StatementLine(BaseModel):
    transaction_id: str
    created_at: datetime
    kind: str
    source: str
    description: str | None
    reference: dict[str, Any] | None
    amount: int = Field(description="in minor units: positive came in, negative went out")
    balance: int = Field(description="the running balance after this movement, in minor units")


class StatementOut(BaseModel):
    owner_kind: WalletOwnerKind
    owner_id: str
    currency: str
    exponent: int
    sub: str = Field(description="the sub-account: empty for available money, pending, or hold:<ref>")
    start: datetime
    end: datetime
    opening_balance: int
    total_in: int
    total_out: int
    closing_balance: int = Field(description="opening_balance + total_in - total_out, to the minor unit")
    movements: list[StatementLine]
