from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, UTCDateTime


class RelayCursor(Base):
    """How far one subscriber has taken the outbox: the position of the last message it handled.

    A position is ``(txid, seq)``: the writing transaction's id (PostgreSQL; 0 on SQLite, whose
    writers are serial) and the row's sequence number. The row is also the subscriber's lock: the
    relay holds it (``FOR UPDATE``) while it hands a batch over, so two relays never interleave."""

    __tablename__ = "relay_cursors"

    subscriber: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    txid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    delivered: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
