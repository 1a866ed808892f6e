"""Campaign creatives; their files live under ``settings.media_dir``."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, UTCDateTime


class Asset(Base):
    __tablename__ = "campaign_assets"
    __table_args__ = (sa.Index("ix_campaign_assets_campaign", "app_id", "campaign_id", "id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"))
    campaign_id: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(8))  # image | video
    content_type: Mapped[str] = mapped_column(sa.String(40))
    bytes: Mapped[int] = mapped_column(sa.Integer)
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    path: Mapped[str] = mapped_column(sa.String(300))
    overlay_path: Mapped[str | None] = mapped_column(sa.String(300))
    overlay_width: Mapped[int | None] = mapped_column(sa.Integer)
    overlay_height: Mapped[int | None] = mapped_column(sa.Integer)
    uploaded_by: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
