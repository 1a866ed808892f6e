from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class RelayCursor(Base):
    """How far one subscriber has taken one relay partition of the outbox.

    On PostgreSQL outbox rows are taken by transaction, as their transactions commit: every
    transaction below ``low`` is done with (its rows handed over, or it never committed any);
    ``done`` lists the transactions at or above ``low`` handed over in full; ``partial`` maps a
    transaction cut by a batch's size to the last ``seq`` of it handed over. On SQLite (serial
    writers, so ``seq`` order is commit order) ``seq`` alone is the cursor.
    The row is also the lock of (subscriber, partition): the relay holds it while it hands a batch over."""

    __tablename__ = "relay_cursors"

    subscriber: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    partition: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False,
                                           default=0, server_default="0")
    low: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    done: Mapped[list[int]] = mapped_column(JSONType)
    partial: Mapped[dict[str, int]] = mapped_column(JSONType)
    seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    delivered: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
