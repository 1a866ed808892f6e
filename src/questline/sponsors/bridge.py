"""The marketplace's one door into the event pipeline: domain events to the outbox (in the caller's
transaction) and trusted XP awards into the event log (paid by progression like any award)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.runtime import Runtime
from questline.pipeline import ingest
from questline.pipeline import repository as event_log
from questline.progression.processor import AWARD_EVENT


class Announcements:
    """Outbox rows gathered during one unit of work and written together."""

    def __init__(self, app_id: str, at: datetime) -> None:
        self.app_id = app_id
        self.at = at
        self.rows: list[dict[str, Any]] = []

    def add(self, type_: str, payload: dict[str, Any], player_id: str | None = None) -> None:
        self.rows.append(event_log.outbox_row(self.app_id, type_, player_id, payload, self.at))

    async def flush(self, session: AsyncSession) -> None:
        rows, self.rows = self.rows, []
        await event_log.add_outbox(session, rows)


async def announce(session: AsyncSession, app_id: str, at: datetime, type_: str, payload: dict[str, Any],
                   player_id: str | None = None) -> None:
    await event_log.add_outbox(session, [event_log.outbox_row(app_id, type_, player_id, payload, at)])


async def award_xp(session: AsyncSession, runtime: Runtime, *, app_id: str, player_id: str, track: str, amount: int,
                   event_id: str, reason: str) -> None:
    """A trusted XP award, processed by progression like any other (once per ``event_id``)."""
    await ingest.append_internal(session, runtime, app_id=app_id, player_id=player_id, event_id=event_id,
                                 type_=AWARD_EVENT, data={"track": track, "amount": amount, "reason": reason})
