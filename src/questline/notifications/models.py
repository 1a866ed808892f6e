"""Notification tables: inboxes, deliveries per channel, preferences and templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class Notification(Base):
    """One entry of an inbox (a player's, a brand's or a streamer's): unread, read or archived."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "recipient_kind", "recipient_id", "dedupe_key",
                            name="uq_notifications_app_id"),  # the name 0452 gave it
        sa.Index("ix_notifications_inbox", "app_id", "recipient_kind", "recipient_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    recipient_kind: Mapped[str] = mapped_column(sa.String(16))  # player | brand | streamer
    recipient_id: Mapped[str] = mapped_column(sa.String(128))
    type: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(sa.String(16))  # unread | read | archived
    dedupe_key: Mapped[str] = mapped_column(sa.String(200))  # the outbox message and type it came from
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(Base):
    """A notification to send on one outside channel (e-mail, Discord, Telegram): once per channel."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "channel", "recipient_kind", "recipient_id", "dedupe_key",
                            name="uq_notification_deliveries_app_id"),  # the name 0452 gave it
        sa.Index("ix_notification_deliveries_due", "status", "send_after"),
        sa.Index("ix_notification_deliveries_recipient", "app_id", "recipient_kind", "recipient_id", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    recipient_kind: Mapped[str] = mapped_column(sa.String(16))
    recipient_id: Mapped[str] = mapped_column(sa.String(128))
    type: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(16))  # email | discord | telegram
    address: Mapped[str] = mapped_column(sa.String(320))  # e-mail address, Discord channel id, Telegram chat id
    dedupe_key: Mapped[str] = mapped_column(sa.String(200))
    subject: Mapped[str] = mapped_column(sa.String(300))
    text: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | sending | sent | failed
    digest: Mapped[bool] = mapped_column(sa.Boolean)  # sent with others in the recipient's digest
    send_after: Mapped[datetime] = mapped_column(UTCDateTime)  # quiet hours and digests move it
    attempts: Mapped[int] = mapped_column(sa.Integer)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Preferences(Base):
    """A player's choices: channels per notification type, quiet hours, digest, locale."""

    __tablename__ = "notification_preferences"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    channels: Mapped[dict[str, Any]] = mapped_column(JSONType)  # {"level_up": {"email": true}, ...}
    defaults: Mapped[dict[str, Any]] = mapped_column(JSONType)  # {"email": true, ...}: for types not named
    quiet_start: Mapped[str | None] = mapped_column(sa.String(5))  # "22:00", the player's local time
    quiet_end: Mapped[str | None] = mapped_column(sa.String(5))
    digest: Mapped[str] = mapped_column(sa.String(8))  # off | daily
    digest_hour: Mapped[int] = mapped_column(sa.Integer)
    locale: Mapped[str] = mapped_column(sa.String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Template(Base):
    """An app's own wording of a notification type in one locale (Jinja2)."""

    __tablename__ = "notification_templates"

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    locale: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(300))
    text: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
