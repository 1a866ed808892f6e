"""The announcements table."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, UTCDateTime


class Announcement(Base):
    """One announcement: scheduled, sent (in its recipients' inboxes) or withdrawn."""

    __tablename__ = "announcements"
    __table_args__ = (
        sa.Index("ix_announcements_list", "app_id", "id"),
        sa.Index("ix_announcements_due", "status", "send_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    target_kind: Mapped[str] = mapped_column(sa.String(16))  # app | community | competition
    target_id: Mapped[str | None] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16))  # scheduled | sent | withdrawn
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipients: Mapped[int] = mapped_column(sa.Integer)
    version: Mapped[int] = mapped_column(sa.Integer)  # each edit adds one
    # Who posted it: a player (a community admin) or "admin:…"/"key:…" for trusted callers.
    author_kind: Mapped[str] = mapped_column(sa.String(16))  # player | admin | server
    author_id: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
