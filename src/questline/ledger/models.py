"""Ledger tables. Balances live on accounts and are changed only by conditional, atomic updates;
every change is a posting, so each account's postings replay to its balance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class Currency(Base):
    __tablename__ = "ledger_currencies"
    __table_args__ = (sa.UniqueConstraint("app_id", "code"),)

    pk: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    code: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(100))
    # points (lowercase codes) or fiat (ISO 4217 style, three capitals); amounts are in minor units,
    # and ``exponent`` says how many of them make one major unit as a power of ten (USD 2, JPY 0).
    kind: Mapped[str] = mapped_column(sa.String(16), default="points", server_default="points")
    exponent: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerAccount(Base):
    """One balance of one owner in one currency: a player's, a brand's, a streamer's, the platform's
    or a system account's. ``sub`` names a sub-account of the owner: ``""`` is what they may use
    (available), ``pending`` earnings not yet released, ``hold:<ref>`` money set aside for one purpose."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "owner_kind", "owner_id", "currency", "sub"),
        sa.ForeignKeyConstraint(["app_id", "currency"], ["ledger_currencies.app_id", "ledger_currencies.code"],
                                name="fk_ledger_accounts_currency"),
        # The database refuses a negative balance even if a bug skipped the conditional update.
        sa.CheckConstraint("allow_negative OR balance >= 0", name="non_negative"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    owner_kind: Mapped[str] = mapped_column(sa.String(16))  # player | system | brand | streamer | platform
    owner_id: Mapped[str] = mapped_column(sa.String(128))  # the integrator's player_id, or issuance/sink/holds
    currency: Mapped[str] = mapped_column(sa.String(32))
    sub: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    allow_negative: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    balance: Mapped[int] = mapped_column(BigInt, default=0)
    # Bumped with every posting: postings carry it, so an account's history is a gapless chain.
    seq: Mapped[int] = mapped_column(BigInt, default=0)
    lifetime_credited: Mapped[int] = mapped_column(BigInt, default=0)
    lifetime_debited: Mapped[int] = mapped_column(BigInt, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "idempotency_key"),
        sa.Index("ix_ledger_transactions_app_created", "app_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    idempotency_key: Mapped[str] = mapped_column(sa.String(255))
    # Hash of what the transaction does; a reused key must match it to be a replay.
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(32))
    source: Mapped[str] = mapped_column(sa.String(64))
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    description: Mapped[str | None] = mapped_column(sa.String(500))
    actor: Mapped[str | None] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Posting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "account_seq"),
        sa.Index("ix_ledger_postings_account_id_id", "account_id", "id"),
        sa.CheckConstraint("balance_after = balance_before + amount", name="balance_change"),
        sa.CheckConstraint("amount <> 0", name="non_zero"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(sa.ForeignKey("ledger_transactions.id"), index=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_accounts.id"))
    currency: Mapped[str] = mapped_column(sa.String(32))
    amount: Mapped[int] = mapped_column(BigInt)
    balance_before: Mapped[int] = mapped_column(BigInt)
    balance_after: Mapped[int] = mapped_column(BigInt)
    account_seq: Mapped[int] = mapped_column(BigInt)


class Hold(Base):
    """Points set aside for a two-phase purchase: committed to the sink or released back."""

    __tablename__ = "ledger_holds"
    __table_args__ = (sa.Index("ix_ledger_holds_status_expires", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    currency: Mapped[str] = mapped_column(sa.String(32))
    amount: Mapped[int] = mapped_column(BigInt)
    status: Mapped[str] = mapped_column(sa.String(16))  # active | committed | released
    release_reason: Mapped[str | None] = mapped_column(sa.String(16))  # requested | expired
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    hold_transaction_id: Mapped[str] = mapped_column(sa.ForeignKey("ledger_transactions.id"), unique=True)
    settle_transaction_id: Mapped[str | None] = mapped_column(sa.ForeignKey("ledger_transactions.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
