"""Chat tables: messages, restrictions (mutes and bans), reports and the app's chat settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class ChatMessage(Base):
    """One message of a room (``community:{id}`` or ``competition:{id}``); deleted ones keep no text."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        sa.Index("ix_chat_messages_room", "app_id", "room", "id"),
        sa.Index("ix_chat_messages_player", "app_id", "player_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    room: Mapped[str] = mapped_column(sa.String(80))
    player_id: Mapped[str] = mapped_column(sa.String(128))  # the author
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by: Mapped[str | None] = mapped_column(sa.String(160))


class ChatRestriction(Base):
    """A mute (may read, may not write) or a ban (neither) of a player in a room, until a time."""

    __tablename__ = "chat_restrictions"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    room: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)  # mute | ban
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: until lifted
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChatReport(Base):
    """A player's report of a message: open in the moderation queue until a moderator acts."""

    __tablename__ = "chat_reports"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "message_id", "player_id"),
        sa.Index("ix_chat_reports_queue", "app_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    room: Mapped[str] = mapped_column(sa.String(80))
    message_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))  # who reported
    author_id: Mapped[str] = mapped_column(sa.String(128))  # whose message
    reason: Mapped[str] = mapped_column(sa.String(500))
    status: Mapped[str] = mapped_column(sa.String(16))  # open | resolved
    action: Mapped[str | None] = mapped_column(sa.String(16))  # dismiss | delete | mute | ban
    resolved_by: Mapped[str | None] = mapped_column(sa.String(160))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChatSettings(Base):
    """An app's chat rules: blocked words, message size, messages per player per window."""

    __tablename__ = "chat_settings"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    blocked_words: Mapped[list[Any]] = mapped_column(JSONType)
    max_length: Mapped[int] = mapped_column(sa.Integer)
    rate_count: Mapped[int] = mapped_column(sa.Integer)
    rate_seconds: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
