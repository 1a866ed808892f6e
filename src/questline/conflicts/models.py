"""Conflict rules of an app."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class ConflictRule(Base):
    __tablename__ = "conflict_rules"
    __table_args__ = (sa.Index("ix_conflict_rules_app", "app_id", "id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(1000))
    kind: Mapped[str] = mapped_column(sa.String(32))  # time_overlap | category_conflict | platform_exclusivity | custom
    enabled: Mapped[bool] = mapped_column(sa.Boolean)
    applies_on: Mapped[list[str]] = mapped_column(JSONType)  # join, approval
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
