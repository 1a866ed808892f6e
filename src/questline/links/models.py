"""Link tables: clicks, the day's visits (for counting a visitor once) and the day's salt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class LinkClick(Base):
    """One request of a community's link: counted, or why not (a repeat, a bot, a prefetch).

    The visitor is a salted hash of address and user agent whose salt lives one day: no address
    is stored, and visitors cannot be followed from one day to the next.
    """

    __tablename__ = "link_clicks"
    __table_args__ = (
        sa.Index("ix_link_clicks_day", "community_id", "day"),
        sa.Index("ix_link_clicks_joined", "community_id", "joined_day"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    community_id: Mapped[str] = mapped_column(sa.String(40))
    member_code: Mapped[str | None] = mapped_column(sa.String(16))  # None: the community's own link
    referrer_id: Mapped[str | None] = mapped_column(sa.String(128))  # the member at click time
    day: Mapped[str] = mapped_column(sa.String(10))  # UTC, YYYY-MM-DD
    visitor: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(16))  # counted | repeat | bot | prefetch
    hints: Mapped[dict[str, Any]] = mapped_column(JSONType)  # coarse: device, os, browser, language, from
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    joined_player_id: Mapped[str | None] = mapped_column(sa.String(128))  # the one join it attributed
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    joined_day: Mapped[str | None] = mapped_column(sa.String(10))


class LinkVisit(Base):
    """A visitor seen on a link on a day: the first click of the day counts, repeats do not."""

    __tablename__ = "link_visits"

    community_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    link: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # the member code, "-" for the community's
    day: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    visitor: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))


class LinkSalt(Base):
    """The day's random salt of visitor hashes; older days' salts are deleted."""

    __tablename__ = "link_salts"

    day: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    salt: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
