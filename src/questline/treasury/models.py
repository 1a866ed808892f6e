"""Treasury tables: exchange rates finance staff set."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, UTCDateTime


class ExchangeRate(Base):
    """How much of ``quote`` one unit of ``base`` buys (major units), as finance staff last set it."""

    __tablename__ = "treasury_rates"
    __table_args__ = (sa.UniqueConstraint("app_id", "base", "quote"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.ForeignKey("apps.id"))
    base: Mapped[str] = mapped_column(sa.String(3))
    quote: Mapped[str] = mapped_column(sa.String(3))
    rate: Mapped[str] = mapped_column(sa.String(40))  # a decimal string: never a float
    set_by: Mapped[str] = mapped_column(sa.String(160))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
