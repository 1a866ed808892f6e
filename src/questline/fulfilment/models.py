"""Fulfilment tables: one record per reward to deliver, and each app's delivery targets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class Fulfilment(Base):
    """A reward to deliver: pending -> processing -> completed, or failed (retried with backoff first)."""

    __tablename__ = "fulfilments"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "source", "source_ref", name="uq_fulfilments_app_id"),  # the name 0451 gave it
        sa.Index("ix_fulfilments_app", "app_id", "id"),
        sa.Index("ix_fulfilments_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(16))  # external | webhook | in_game | token
    source: Mapped[str] = mapped_column(sa.String(64))  # competition_prize, ...
    source_ref: Mapped[str] = mapped_column(sa.String(200))  # the prize id, ...
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)  # what to deliver, from the server's definition
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | processing | completed | failed | cancelled
    attempts: Mapped[int] = mapped_column(sa.Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: not automatic (external)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a processing claim's end
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # the callback's answer, the transaction
    reference: Mapped[str | None] = mapped_column(sa.String(200))  # set when marked fulfilled by hand
    tx_hash: Mapped[str | None] = mapped_column(sa.String(66))
    tx_raw: Mapped[str | None] = mapped_column(sa.Text)  # the signed transaction, recorded before it is sent
    tx_nonce: Mapped[int | None] = mapped_column(BigInt)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FulfilmentTarget(Base):
    """Where an app's ``webhook`` and ``in_game`` rewards are sent, and the secret that signs them."""

    __tablename__ = "fulfilment_targets"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # webhook | in_game
    url: Mapped[str] = mapped_column(sa.String(2000))
    secret: Mapped[str] = mapped_column(sa.String(200))  # whsec_…, Standard Webhooks
    description: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
