"""Community tables: communities and their members."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, JSONType, UTCDateTime


class Community(Base):
    __tablename__ = "communities"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "slug"),
        sa.CheckConstraint("member_count >= 0", name="non_negative"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    slug: Mapped[str] = mapped_column(sa.String(40))
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(1000))
    redirect_url: Mapped[str | None] = mapped_column(sa.String(500))
    open: Mapped[bool] = mapped_column(sa.Boolean)  # False: invite-only
    auto_approve: Mapped[bool] = mapped_column(sa.Boolean)  # False: joins wait in an approval queue
    max_members: Mapped[int | None] = mapped_column(sa.Integer)
    member_count: Mapped[int] = mapped_column(sa.Integer)  # active members, kept by atomic updates
    member_schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    starter_reward: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_by: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CommunityMember(Base):
    """A player's place in a community: invited, pending approval, active, left or banned."""

    __tablename__ = "community_members"
    __table_args__ = (
        sa.Index("ix_community_members_player", "app_id", "player_id"),
        sa.Index("ix_community_members_status", "community_id", "status", "player_id"),
        sa.UniqueConstraint("community_id", "member_code"),
    )

    community_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(16))  # invited | pending | active | left | banned
    role: Mapped[str] = mapped_column(sa.String(16))  # member | admin
    member_metadata: Mapped[dict[str, Any]] = mapped_column(JSONType)
    referred_by: Mapped[str | None] = mapped_column(sa.String(128))
    # The member's own short code in their referral link (/c/{app}/{slug}/{member_code}), stable.
    member_code: Mapped[str | None] = mapped_column(sa.String(16))
    # The link click (lck_…) whose signed id the join presented, when it attributed the join.
    click_id: Mapped[str | None] = mapped_column(sa.String(40))
    starter_transaction_id: Mapped[str | None] = mapped_column(sa.String(40))
    # What the starter reward became: txn_… (points), ful_… (fulfilment) or "inventory" (an item).
    starter_reference: Mapped[str | None] = mapped_column(sa.String(200))
    # A community admin offered this member the admin role; it waits for their accept or decline.
    admin_invited_by: Mapped[str | None] = mapped_column(sa.String(128))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
