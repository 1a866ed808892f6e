"""One row per state-changing request of a server key or an admin, written in that request's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_app", "app_id", "id"),
        sa.Index("ix_audit_log_org", "org_id", "id"),
        sa.Index("ix_audit_log_app_actor", "app_id", "actor_id", "id"),
        sa.Index("ix_audit_log_app_action", "app_id", "action", "id"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str | None] = mapped_column(sa.String(40))  # None: an organization-level action
    org_id: Mapped[str | None] = mapped_column(sa.String(40))
    actor_kind: Mapped[str] = mapped_column(sa.String(16))  # server | admin
    actor_id: Mapped[str] = mapped_column(sa.String(64))  # the key id or the admin id
    action: Mapped[str] = mapped_column(sa.String(100))  # the operation id, e.g. ledger_adjust
    target: Mapped[dict[str, Any]] = mapped_column(JSONType)  # path parameters, and the id of what was created
    status: Mapped[int] = mapped_column(sa.Integer)
    address: Mapped[str | None] = mapped_column(sa.String(64))  # the peer address of the request
    request_id: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
