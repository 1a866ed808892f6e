"""Announcements: an app admin (or the server key) writes to the whole app, a community or a
competition; a community's admins write to their community.

Sending puts the announcement in each recipient's inbox through the notifications service (type
``announcement``), so their preferences apply: in-app or not, outside channels held for quiet
hours, daily digests, their locale's template. It is also written to the outbox
(``announcement.published``), which the live channels publish on ``announcements:{target}``.

A scheduled announcement is sent by the ``announcements.send`` job. The move from ``scheduled``
to ``sent`` is one conditional update, so when two schedulers (or a job and an edit) race, one
sends it and the other finds nothing to do; the inbox entries are keyed by the announcement too.
Editing a sent announcement rewords its inbox entries (and deliveries still waiting), withdrawing
it removes them; both are published on the live channel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.announcements import repository as repo
from questline.announcements.models import Announcement
from questline.announcements.schemas import AnnouncementIn, AnnouncementOut, AnnouncementUpdate, Target
from questline.chat import repository as chat_repo
from questline.chat import service as chat
from questline.competitions import service as competitions
from questline.kit.errors import Conflict, Forbidden, NotFound
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.notifications import service as notifications
from questline.pipeline import repository as event_log
from questline.tenancy.auth import ADMIN, PLAYER, Caller

TYPE = "announcement"
DUE_BATCH = 50


def channel_of(target_kind: str, target_id: str | None) -> str:
    """The live channel an announcement is published on."""
    return "announcements:app" if target_kind == "app" else f"announcements:{target_kind}:{target_id}"


def _key(row: Announcement) -> str:
    return f"announcement:{row.id}"


def _out(row: Announcement) -> AnnouncementOut:
    author = row.author_id if row.author_kind != PLAYER else f"player:{row.author_id}"
    return AnnouncementOut(id=row.id, target=Target(kind=row.target_kind, id=row.target_id),
                           title=row.title, body=row.body, status=row.status,
                           send_at=row.send_at, sent_at=row.sent_at, recipients=row.recipients, version=row.version,
                           author=author, created_at=row.created_at, updated_at=row.updated_at,
                           withdrawn_at=row.withdrawn_at)


def _context(row: Announcement) -> dict[str, Any]:
    return {"announcement_id": row.id, "title": row.title, "body": row.body, "version": row.version,
            "target": {"kind": row.target_kind, "id": row.target_id}}


async def _target(session: AsyncSession, caller: Caller, target: Target) -> tuple[str, str | None]:
    """The target by its canonical id; refuses callers who may not write to it."""
    if target.kind == "app":
        if not caller.is_trusted:
            raise Forbidden("app-wide announcements are for the server key and app admins",
                            code="announcer_required")
        return "app", None
    assert target.id is not None
    room = await chat.room_of(session, caller.app, f"{target.kind}:{target.id}")
    try:
        await chat.ensure_moderator(session, caller, room)
    except Forbidden as exc:
        raise Forbidden(f"announcing to {room} is for its community's admins, the server key and app admins",
                        code="announcer_required") from exc
    return target.kind, room.partition(":")[2]


async def _get(session: AsyncSession, app_id: str, announcement_id: str) -> Announcement:
    found = await repo.get(session, app_id, announcement_id)
    if found is None:
        raise NotFound(f"announcement {announcement_id} not found", code="announcement_not_found")
    return found


async def _may_change(session: AsyncSession, caller: Caller, row: Announcement) -> None:
    """The server key and app admins; a player only while they administer the community."""
    if caller.is_trusted:
        return
    if row.target_kind == "community":
        try:
            await chat.ensure_moderator(session, caller, f"community:{row.target_id}")
            return
        except Forbidden:
            pass
    raise NotFound(f"announcement {row.id} not found", code="announcement_not_found")


async def _recipients(session: AsyncSession, row: Announcement) -> list[str]:
    if row.target_kind == "app":
        return await repo.player_ids(session, row.app_id)
    assert row.target_id is not None
    if row.target_kind == "community":
        return await chat_repo.active_members(session, row.app_id, row.target_id)
    return await competitions.participant_ids(session, row.app_id, row.target_id)


async def _publish(session: AsyncSession, row: Announcement, type_: str, now: datetime) -> None:
    payload = {"channel": channel_of(row.target_kind, row.target_id),
               "announcement": _out(row).model_dump(mode="json")}
    await event_log.add_outbox(session, [event_log.outbox_row(row.app_id, type_, None, payload, now)])


async def _deliver(session: AsyncSession, runtime: Runtime, row: Announcement, now: datetime) -> None:
    """Send a claimed announcement (its status is ``sent`` already): inboxes, then the live channel."""
    fresh = await _get(session, row.app_id, row.id)
    count = await notifications.send_direct(session, runtime, fresh.app_id, TYPE, await _recipients(session, fresh),
                                            _context(fresh), _key(fresh))
    await repo.move(session, fresh.app_id, fresh.id, ["sent"], recipients=count)
    await _publish(session, await _get(session, fresh.app_id, fresh.id), "announcement.published", now)


async def create(session: AsyncSession, runtime: Runtime, caller: Caller, body: AnnouncementIn) -> AnnouncementOut:
    kind, target_id = await _target(session, caller, body.target)
    now = runtime.clock.now()
    send_at = max(body.send_at, now) if body.send_at is not None else now
    author_kind = "player" if caller.kind is PLAYER else "admin" if caller.kind is ADMIN else "server"
    announcement_id = new_id("ann")
    row: dict[str, Any] = {"id": announcement_id, "app_id": caller.app, "target_kind": kind, "target_id": target_id,
           "title": body.title, "body": body.body, "status": "scheduled", "send_at": send_at, "sent_at": None,
           "recipients": 0, "version": 1, "author_kind": author_kind,
           "author_id": caller.player_id if caller.kind is PLAYER else caller.identity,
           "created_at": now, "updated_at": now, "withdrawn_at": None}
    await repo.insert(session, row)
    if send_at <= now and await repo.move(session, caller.app, announcement_id, ["scheduled"], status="sent",
                                          sent_at=now):
        await _deliver(session, runtime, await _get(session, caller.app, announcement_id), now)
    return _out(await _get(session, caller.app, announcement_id))


async def get(session: AsyncSession, caller: Caller, announcement_id: str) -> AnnouncementOut:
    row = await _get(session, caller.app, announcement_id)
    await _may_change(session, caller, row)
    return _out(row)


async def list_announcements(session: AsyncSession, app_id: str, target_kind: str | None, target_id: str | None,
                             status: str | None, page: PageParams) -> Page[AnnouncementOut]:
    rows = await repo.page(session, app_id, target_kind, target_id, status, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda a: [a.id])
    return Page[AnnouncementOut](items=[_out(a) for a in built.items], next_cursor=built.next_cursor)


async def update(session: AsyncSession, runtime: Runtime, caller: Caller, announcement_id: str,
                 body: AnnouncementUpdate) -> AnnouncementOut:
    """Edit the words (a sent one's inbox entries follow), or a scheduled one's time."""
    row = await _get(session, caller.app, announcement_id)
    await _may_change(session, caller, row)
    if row.status == "withdrawn":
        raise Conflict(f"announcement {row.id} was withdrawn", code="announcement_withdrawn")
    if body.send_at is not None and row.status != "scheduled":
        raise Conflict(f"announcement {row.id} was sent already; its time cannot move", code="announcement_sent")
    now = runtime.clock.now()
    values: dict[str, Any] = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if not values:
        return _out(row)
    if "send_at" in values:
        values["send_at"] = max(values["send_at"], now)
    values.update(updated_at=now, version=row.version + 1)
    if not await repo.move(session, row.app_id, row.id, [row.status], **values):
        raise Conflict(f"announcement {row.id} changed meanwhile; read it again", code="announcement_changed")
    fresh = await _get(session, row.app_id, row.id)
    if fresh.status == "sent" and ("title" in values or "body" in values):
        await notifications.revise_direct(session, fresh.app_id, TYPE, _context(fresh), _key(fresh))
        await _publish(session, fresh, "announcement.updated", now)
    elif fresh.status == "scheduled" and fresh.send_at <= now and await repo.move(
            session, fresh.app_id, fresh.id, ["scheduled"], status="sent", sent_at=now):
        await _deliver(session, runtime, fresh, now)
    return _out(await _get(session, row.app_id, row.id))


async def withdraw(session: AsyncSession, runtime: Runtime, caller: Caller, announcement_id: str) -> AnnouncementOut:
    """Withdraw: a scheduled one is never sent; a sent one leaves every inbox (and the live channel says so)."""
    row = await _get(session, caller.app, announcement_id)
    await _may_change(session, caller, row)
    now = runtime.clock.now()
    was = row.status
    if was == "withdrawn" or not await repo.move(session, row.app_id, row.id, [was], status="withdrawn",
                                                 withdrawn_at=now, updated_at=now):
        raise Conflict(f"announcement {row.id} was withdrawn already", code="announcement_withdrawn")
    fresh = await _get(session, row.app_id, row.id)
    if was == "sent":
        await notifications.retract_direct(session, runtime, fresh.app_id, _key(fresh))
        await _publish(session, fresh, "announcement.withdrawn", now)
    return _out(fresh)


async def send_due(session: AsyncSession, runtime: Runtime, now: datetime) -> int:
    """Send the scheduled announcements whose time has come (each once, whoever else runs this)."""
    sent = 0
    for row in await repo.due(session, now, DUE_BATCH):
        if await repo.move(session, row.app_id, row.id, ["scheduled"], status="sent", sent_at=now):
            await _deliver(session, runtime, row, now)
            sent += 1
    return sent
