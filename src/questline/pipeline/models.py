from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime

# pending: what the worker still owes an event.
DONE, LIVE, REPLAY = 0, 1, 2


class EventRecord(Base):
    """The event log: append-only, deduplicated by the sender's id within an app."""

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "event_id"),
        sa.Index("ix_events_pending", "partition", "seq", sqlite_where=sa.text("pending > 0"),
                 postgresql_where=sa.text("pending > 0")),
        sa.Index("ix_events_app_player", "app_id", "player_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    event_id: Mapped[str] = mapped_column(sa.String(128))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    type: Mapped[str] = mapped_column(sa.String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(sa.String(16))  # server | client | player | internal
    pending: Mapped[int] = mapped_column(sa.SmallInteger)
    # hash(app, player) % partitions: a player's events are processed in order by one writer.
    partition: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")


@dataclass(slots=True)
class LogEvent:
    """One event of the log as the worker reads it: a plain row, not an ORM object."""

    seq: int
    app_id: str
    event_id: str
    player_id: str
    type: str
    data: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    source: str
    pending: int
    partition: int = 0


def partition_of(app_id: str, player_id: str, partitions: int) -> int:
    """The log partition of a player's events: stable across processes and restarts."""
    return zlib.crc32(f"{app_id}\x00{player_id}".encode()) % partitions


class current_txid(FunctionElement[int]):
    """The writing transaction's id on PostgreSQL (``pg_current_xact_id``), 0 elsewhere."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(current_txid)
def _txid_default(element: current_txid, compiler: SQLCompiler, **kw: Any) -> str:
    return "0"


@compiles(current_txid, "postgresql")
def _txid_postgres(element: current_txid, compiler: SQLCompiler, **kw: Any) -> str:
    return "(pg_current_xact_id()::text::bigint)"


class OutboxMessage(Base):
    """Domain events, written in the transaction that caused them, relayed later.

    ``txid`` (PostgreSQL) is the writing transaction's id: the relay takes a row only once every
    transaction older than it has ended, so a row whose ``seq`` was taken before a neighbour's but
    committed after it is never skipped (see ``questline.relay``). ``partition`` is the relay
    partition (``outbox_partition``): a player's rows are all in one, relayed in order."""

    __tablename__ = "outbox"
    # The relay's scan: one partition, by transaction then seq (0461).
    __table_args__ = (sa.Index("ix_outbox_partition_position", "partition", "txid", "seq"),)

    seq: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    player_id: Mapped[str | None] = mapped_column(sa.String(128))
    event_seq: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    txid: Mapped[int] = mapped_column(sa.BigInteger, server_default=current_txid())
    partition: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")


def outbox_partition(app_id: str, key: str | None, partitions: int) -> int:
    """The relay partition of an outbox row: by (app, player) like the event log, or by (app, ``key``)
    for rows that order by something else (a chat room); rows with neither by app alone."""
    return partition_of(app_id, key or "", partitions) if partitions > 1 else 0


class ReplayEpoch(Base):
    """How many times an app's derived state was rebuilt by a replay, counted per replayed batch.

    ``questline replay`` raises it when it resets the app, and every batch of replayed events
    raises it again in its own transaction, so the batch that replays the last event is the
    last to raise it. A process holding derived state outside the database (an in-process rank
    index) compares the epoch it built that state under with this one and rebuilds on a change.
    """

    __tablename__ = "replay_epochs"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    epoch: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StreamOffset(Base):
    """The last JetStream sequence of a partition's stream whose events are applied.

    Written in the transaction that applies them, so a message is applied once: a redelivery
    at or below it is skipped, and the next batch must start right after it."""

    __tablename__ = "pipeline_offsets"

    stream: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInt)


class PartitionLease(Base):
    """Which worker applies a partition's stream, until when (renewed while it lives)."""

    __tablename__ = "pipeline_leases"

    stream: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerMember(Base):
    """A live worker (heartbeat): the partitions are shared out among the members of a namespace."""

    __tablename__ = "pipeline_members"

    namespace: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    worker: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
