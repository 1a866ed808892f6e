"""Notifications: made from outbox messages, kept in inboxes, sent on outside channels once each.

``NotificationsSubscriber`` is the relay's subscriber: for each outbox message of a known type
(``catalog.py``) it finds the recipients (the player named, a competition's participants, the
brand or streamer concerned), reads their preferences and, in the relay's transaction:

- adds an inbox entry (unless the player turned in-app off for the type);
- adds a delivery per outside channel the player turned on and has an address for (traits
  ``email``, ``discord_channel_id``, ``telegram_chat_id``), due now, at the end of the player's
  quiet hours (their time zone), or at their daily digest hour.

Both are unique per (recipient, channel, outbox message id and type), so a message the relay
hands over twice makes each notification once per channel. ``process_due`` (the notifications
loop) sends due deliveries, a recipient's due digest entries as one message, with retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.competitions import service as competitions
from questline.kit import egress
from questline.kit.cache import CacheSpec
from questline.kit.db import after_commit, unit_of_work
from questline.kit.errors import NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.notifications import repository as repo
from questline.notifications.catalog import BY_SOURCE, BY_TYPE, TYPES, Kind, wanted
from questline.notifications.models import Delivery, Preferences
from questline.notifications.schemas import (
    ADDRESS_TRAITS,
    OUTSIDE,
    Marked,
    NotificationOut,
    PreferencesIn,
    PreferencesOut,
    QuietHours,
    TemplateIn,
    TemplateOut,
    UnreadCount,
)
from questline.players import service as players
from questline.sponsors import service as sponsors
from questline.streaks import service as streaks

if TYPE_CHECKING:
    import httpx  # imported where it is used: most processes never call out (idle memory)
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

_log = structlog.get_logger("questline.notifications")
WAKE = "notifications.wake"
DEFAULT_LOCALE = "en"
LEASE = timedelta(seconds=120)
MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 30
BODY_LIMIT = 4000
# A new competition is announced to at most this many returning players (the relay's transaction holds them).
ANNOUNCE_LIMIT = 10_000


class Message(Protocol):
    """An outbox message as the relay hands it over (``relay.service.RelayMessage``)."""

    @property
    def id(self) -> str: ...
    @property
    def app_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def player_id(self) -> str | None: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...


class NotificationsSubscriber:
    """The relay's subscriber: outbox messages in, inbox entries and deliveries out (same transaction)."""

    name = "notifications"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def handle(self, session: AsyncSession, messages: Sequence[Message]) -> None:
        # Most outbox messages (stat changes, XP earned) make no notification: only those of a
        # catalogued type are looked at, and the whole batch's are made together.
        known = [message for message in messages if message.type in BY_SOURCE]
        if known and await produce(session, self.runtime, known):
            after_commit(session, wake_event(self.runtime).set)


# Live inboxes -------------------------------------------------------------------------------------

INBOX_LISTENERS = "notifications.inbox_listeners"
_FRESH = "notifications.fresh"


class InboxListener(Protocol):
    """Told, after commit, of a new entry in an inbox (``kind``: player, brand or streamer; ``entry``: the
    entry as the API shows it, or None when only the count changed) and its unread count. Live channels
    publish it on ``player:{id}``, ``brand:{id}`` or ``streamer:{id}``."""

    async def __call__(self, app_id: str, kind: str, recipient: str, entry: dict[str, Any] | None,
                       unread: int) -> None: ...


def listen_inbox(runtime: Runtime, name: str, listener: InboxListener) -> None:
    """Register a listener of inboxes under a name (``mechanics.install`` registers the live
    channels'; installing again replaces it)."""
    runtime.extensions.setdefault(INBOX_LISTENERS, {})[name] = listener


def _inbox_changed(session: AsyncSession, runtime: Runtime, app_id: str, kind: str, recipient: str,
                   row: dict[str, Any] | None) -> None:
    """Queue a change of an inbox (a player's, brand's or streamer's; ``row``: its new entry's row, if
    any), told to the listeners once the transaction has committed (never before: a rolled-back entry
    is never shown, and the outbox is not used, so webhooks never see it)."""
    if not runtime.extensions.get(INBOX_LISTENERS):
        return
    entry = None if row is None else NotificationOut.model_validate(row).model_dump(mode="json")
    fresh: list[tuple[str, str, str, dict[str, Any] | None]] | None = session.info.get(_FRESH)
    if fresh is None:
        fresh = session.info[_FRESH] = []

        async def tell() -> None:
            await _tell(runtime, session.info.pop(_FRESH, []))

        after_commit(session, tell)
    fresh.append((app_id, kind, recipient, entry))


async def _tell(runtime: Runtime, fresh: list[tuple[str, str, str, dict[str, Any] | None]]) -> None:
    inboxes: dict[tuple[str, str], list[str]] = {}
    for app_id, kind, recipient, _ in fresh:
        inboxes.setdefault((app_id, kind), []).append(recipient)
    counts: dict[tuple[str, str, str], int] = {}
    async with runtime.read_sessions() as session:  # one count per app and kind of inbox, not per inbox
        for (app_id, kind), recipients in inboxes.items():
            found = await repo.unread_of(session, app_id, kind, sorted(set(recipients)))
            counts.update({(app_id, kind, r): found.get(r, 0) for r in recipients})
    told: set[tuple[str, str, str]] = set()
    for app_id, kind, recipient, entry in fresh:
        inbox = (app_id, kind, recipient)
        if entry is None and inbox in told:
            continue
        told.add(inbox)
        for listener in list(runtime.extensions.get(INBOX_LISTENERS, {}).values()):
            try:
                await listener(app_id, kind, recipient, entry, counts[inbox])
            except Exception:  # a live channel away (Redis) never undoes what has committed
                _log.exception("inbox_listener_failed", app_id=app_id, kind=kind, recipient=recipient)


def wake_event(runtime: Runtime) -> asyncio.Event:
    event: asyncio.Event = runtime.extensions.setdefault(WAKE, asyncio.Event())
    return event


# Making notifications ----------------------------------------------------------------------------


async def _recipients(session: AsyncSession, kind: Kind, message: Message) -> list[tuple[str, str, dict[str, Any]]]:
    """(recipient kind, recipient id, extra context) for one notification kind of a message."""
    payload = message.payload
    if kind.recipients == "player":
        return [("player", message.player_id, {})] if message.player_id else []
    if kind.recipients == "participants":
        competition_id = payload.get("competition_id")
        if not isinstance(competition_id, str):
            return []
        return [("player", p, {}) for p in await competitions.participant_ids(session, message.app_id,
                                                                              competition_id)]
    if kind.recipients == "returning":
        competition_id = payload.get("competition_id")
        if not isinstance(competition_id, str):
            return []
        return [("player", p, {}) for p in await competitions.returning_players(session, message.app_id,
                                                                                competition_id, ANNOUNCE_LIMIT)]
    if kind.recipients in ("brand", "streamer"):
        account = payload.get(f"{kind.recipients}_id")
        return [(kind.recipients, account, {})] if isinstance(account, str) else []
    if kind.recipients == "owner":
        owner_kind, owner = payload.get("owner_kind"), payload.get("owner_id")
        return [(owner_kind, owner, {})] if owner_kind in ("brand", "streamer") and isinstance(owner, str) else []
    leaders = [entry for entry in payload.get("leaders", []) if isinstance(entry, dict)]
    now_rank = {str(e.get("player_id")): int(e.get("rank", 0)) for e in leaders}
    before = [str(p) for p in payload.get("previous", [])]
    top = len(leaders) or len(before)
    if kind.recipients == "entered_top":
        return [("player", p, {"rank": r, "top": top}) for p, r in now_rank.items() if p not in before]
    # overtaken: someone now stands above a player who was in the top before
    return [("player", p, {"rank": now_rank.get(p), "top": top}) for i, p in enumerate(before)
            if now_rank.get(p, top + 1) > i + 1]


async def produce(session: AsyncSession, runtime: Runtime, messages: Sequence[Message]) -> int:
    """Make the notifications of some outbox messages (idempotent); returns how many rows were new.

    The messages are made together: each app's recipients' preferences, time zones and addresses are
    read once for all of them, its templates come from the process's cache, and the rows are
    written with one multi-row insert per table."""
    now = runtime.clock.now()
    todo: list[tuple[Message, Kind, list[tuple[str, str, dict[str, Any]]]]] = []
    players: dict[str, set[str]] = {}
    for message in messages:
        for kind in BY_SOURCE.get(message.type, ()):
            if not wanted(kind, message.payload):
                continue
            targets = await _recipients(session, kind, message)
            todo.append((message, kind, targets))
            players.setdefault(message.app_id, set()).update(r for k, r, _ in targets if k == "player")
    if not todo:
        return 0
    audiences = {app_id: await _Audience.read(session, app_id, sorted(ids)) for app_id, ids in players.items()}
    templates = {app_id: await _app_templates(session, app_id) for app_id in players}
    rows = _Rows()
    for message, kind, targets in todo:
        app_id = message.app_id
        key = f"{message.id}:{kind.type}"
        for recipient_kind, recipient, extra in targets:
            context = {**message.payload, **extra, "type": kind.type, "player_id": message.player_id}
            rows.plan(runtime.settings, kind, templates[app_id].get(kind.type, {}), audiences[app_id], now, key,
                      (app_id, recipient_kind, recipient), context, message.payload)
    _, made = await rows.write(session, runtime)
    return made


@dataclass(frozen=True, slots=True)
class _Audience:
    """What notifying a page of players reads once: preferences, time zones and addresses."""

    prefs: dict[str, Preferences]
    zones: dict[str, str]
    traits: dict[str, dict[str, Any]]

    @classmethod
    async def read(cls, session: AsyncSession, app_id: str, player_ids: list[str]) -> _Audience:
        if not player_ids:
            return cls({}, {}, {})
        return cls(await repo.preferences(session, app_id, player_ids),
                   await players.timezones_of(session, app_id, player_ids),
                   await players.traits_of(session, app_id, player_ids))


class _Rows:
    """The inbox entries and outside deliveries some notifications make, written together."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []

    def plan(self, settings: Settings, kind: Kind, templates: dict[str, TemplateIn], audience: _Audience,
             now: datetime, key: str, to: tuple[str, str, str], context: dict[str, Any],
             data: dict[str, Any]) -> None:
        """One recipient's inbox entry and (players only) the outside deliveries their preferences
        allow, held for quiet hours and digests; each made once per ``key`` (``write``)."""
        app_id, recipient_kind, recipient = to
        pref = audience.prefs.get(recipient)
        subject, text, html = render(kind, templates, pref.locale if pref else DEFAULT_LOCALE, context)
        if _enabled(pref, kind.type, "in_app"):
            self.entries.append({
                "app_id": app_id, "recipient_kind": recipient_kind, "recipient_id": recipient,
                "type": kind.type, "title": subject, "body": text, "data": data, "status": "unread",
                "dedupe_key": key, "created_at": now, "read_at": None, "archived_at": None})
        if recipient_kind != "player":
            return
        for channel in OUTSIDE:
            address = audience.traits.get(recipient, {}).get(ADDRESS_TRAITS[channel])
            if not (_enabled(pref, kind.type, channel) and channel_ready(settings, channel)
                    and isinstance(address, str | int) and str(address)):
                continue
            digest = pref is not None and pref.digest == "daily"
            self.deliveries.append({
                "app_id": app_id, "recipient_kind": "player", "recipient_id": recipient,
                "type": kind.type, "channel": channel, "address": str(address)[:320], "dedupe_key": key,
                "subject": subject[:300], "text": text, "html": html if channel == "email" else None,
                "status": "pending", "digest": digest,
                "send_after": schedule(now, audience.zones.get(recipient, "UTC"), pref, digest=digest),
                "attempts": 0, "lease_until": None, "error": None, "created_at": now, "sent_at": None})

    async def write(self, session: AsyncSession, runtime: Runtime) -> tuple[int, int]:
        """Insert what is not there yet (a message handed over twice makes nothing twice); the live
        inboxes hear of each new entry after commit. Returns (inbox entries new, rows new)."""
        # Ids sort by time, and within a millisecond at random: drawn together and handed out in
        # order, so an inbox (newest first) shows a batch's entries in the order of its messages.
        for rows, prefix in ((self.entries, "ntf"), (self.deliveries, "ndl")):
            for row, id_ in zip(rows, sorted(new_id(prefix) for _ in rows), strict=True):
                row["id"] = id_
        entered = await repo.add_notifications(session, self.entries)
        for entry in self.entries:
            if entry["id"] in entered:
                _inbox_changed(session, runtime, entry["app_id"], entry["recipient_kind"], entry["recipient_id"],
                               entry)
        sent = await repo.add_deliveries(session, self.deliveries)
        self.entries, self.deliveries = [], []
        return len(entered), len(entered) + len(sent)


def _enabled(pref: Preferences | None, type_: str, channel: str) -> bool:
    default = channel == "in_app"
    if pref is None:
        return default
    per_type = pref.channels.get(type_, {})
    if channel in per_type:
        return bool(per_type[channel])
    return bool(pref.defaults.get(channel, default))


def channel_ready(settings: Settings, channel: str) -> bool:
    if channel == "email":
        return settings.smtp_host is not None
    if channel == "discord":
        return settings.discord_bot_token is not None
    return settings.telegram_bot_token is not None


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _quiet_until(local: datetime, quiet: QuietHours) -> datetime | None:
    """When the quiet hours around ``local`` end (local time), or None outside them."""
    start, end, now = _minutes(quiet.start), _minutes(quiet.end), local.hour * 60 + local.minute
    inside = start <= now < end if start < end else (now >= start or now < end)
    if not inside:
        return None
    ends = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    return ends if ends > local else ends + timedelta(days=1)


def schedule(now: datetime, zone: str, pref: Preferences | None, *, digest: bool) -> datetime:
    """When a delivery may go: now, its digest hour, or the end of quiet hours (the player's time zone)."""
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    when = local
    if pref is not None and digest:
        at = datetime.combine(local.date(), time(pref.digest_hour), tzinfo=tz)
        when = at if at > local else datetime.combine(local.date() + timedelta(days=1), time(pref.digest_hour),
                                                      tzinfo=tz)
    if pref is not None and pref.quiet_start and pref.quiet_end:
        until = _quiet_until(when, QuietHours(start=pref.quiet_start, end=pref.quiet_end))
        if until is not None:
            when = until
    return when.astimezone(now.tzinfo)


# Reminders ---------------------------------------------------------------------------------------

REMINDER_WINDOW = timedelta(hours=1)
# A streak is at risk this long before its period ends (the player's local midnight) without activity;
# the job looks at streaks ending within a band that far ahead, so each is reminded once per period
# even when a run is late (by less than the band).
STREAK_RISK_AHEAD = timedelta(hours=4)
STREAK_RISK_BAND = timedelta(minutes=30)


@dataclass(frozen=True)
class Reminder:
    """A reminder made by the scheduler, shaped like an outbox message (its id makes it once)."""

    id: str
    app_id: str
    type: str
    player_id: str | None
    payload: dict[str, Any]
    created_at: datetime


async def remind(session: AsyncSession, runtime: Runtime, now: datetime) -> int:
    """Remind participants of competitions that start or end within the hour (once per edge), and players
    whose streak ends in four hours without activity this period (once per streak period)."""
    reminders: list[Reminder] = []
    for edge in await competitions.upcoming_edges(session, now, REMINDER_WINDOW):
        at = edge["at"].strftime("%Y-%m-%d %H:%M")
        reminders.append(Reminder(
            id=f"reminder_{edge['edge']}_{edge['competition_id']}", app_id=edge["app_id"],
            type=f"competition.{edge['edge']}_soon", player_id=None,
            payload={"competition_id": edge["competition_id"], "name": edge["name"], "at": at}, created_at=now))
    for risk in await streaks.at_risk(session, runtime, now + STREAK_RISK_AHEAD - STREAK_RISK_BAND,
                                      now + STREAK_RISK_AHEAD):
        # Once per streak period: the period at stake names the reminder.
        reminders.append(Reminder(
            id=f"streak_at_risk_{risk['streak']}_{risk['period']}", app_id=str(risk["app_id"]),
            type="streak.at_risk", player_id=str(risk["player_id"]),
            payload={k: v for k, v in risk.items() if k not in ("app_id", "player_id")}, created_at=now))
    made = await produce(session, runtime, reminders)
    if made:
        after_commit(session, wake_event(runtime).set)
    return made


# Templates ---------------------------------------------------------------------------------------


# An app's own templates, by type and locale: read for every relayed message that makes a
# notification, so held in process; ``set_template`` and ``delete_template`` drop an app's entry
# here and, with Redis, in every process once they commit.
TEMPLATES = CacheSpec[str, dict[str, dict[str, TemplateIn]]]("notifications.templates", max_entries=10_000)


async def _app_templates(session: AsyncSession, app_id: str) -> dict[str, dict[str, TemplateIn]]:
    """type -> locale -> the app's own template (cached; callers must not change what it returns)."""

    async def load() -> dict[str, dict[str, TemplateIn]]:
        found: dict[str, dict[str, TemplateIn]] = {}
        for t in await repo.templates(session, app_id):
            found.setdefault(t.type, {})[t.locale] = TemplateIn(subject=t.subject, text=t.text, html=t.html)
        return found

    return await TEMPLATES.get(session, app_id, load)


async def _templates(session: AsyncSession, app_id: str, type_: str) -> dict[str, TemplateIn]:
    return (await _app_templates(session, app_id)).get(type_, {})


@cache
def _environment(html: bool) -> SandboxedEnvironment:
    """Jinja2 imported on first use: a server that sends nothing does not hold it (idle memory)."""
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(autoescape=html)


@lru_cache(maxsize=4096)
def _compiled(source: str, html: bool) -> Template:
    """A template compiled once per source text (compiling costs far more than rendering); keyed by
    the text itself, so an edited template is a new entry and never needs invalidating."""
    return _environment(html).from_string(source)


def render(kind: Kind, templates: dict[str, TemplateIn], locale: str,
           context: dict[str, Any]) -> tuple[str, str, str | None]:
    """Subject, plain text and HTML (or None) in the locale, else its language, else English, else built-in."""
    chosen = templates.get(locale) or templates.get(locale.split("-", maxsplit=1)[0]) or templates.get(DEFAULT_LOCALE)
    subject_source, text_source = (chosen.subject, chosen.text) if chosen else (kind.wording.subject, kind.wording.text)
    try:
        subject = _compiled(subject_source, False).render(context).strip()
        text = _compiled(text_source, False).render(context).strip()
        html = _compiled(chosen.html, True).render(context) if chosen and chosen.html else None
    except Exception as exc:  # a template that fails on this message's data: the built-in wording
        _log.warning("notification_template_failed", type=kind.type, locale=locale, error=str(exc)[:200])
        subject = _compiled(kind.wording.subject, False).render(context).strip()
        text = _compiled(kind.wording.text, False).render(context).strip()
        html = None
    return " ".join(subject.split())[:300] or kind.type, text[:BODY_LIMIT], html


def _check_template(body: TemplateIn) -> None:
    from jinja2 import TemplateSyntaxError

    for name in ("subject", "text", "html"):
        source = getattr(body, name)
        if source is None:
            continue
        try:
            _environment(name == "html").parse(source)
        except TemplateSyntaxError as exc:
            raise Unprocessable(f"{name}: {exc.message} (line {exc.lineno})", code="invalid_template") from exc


def _known_type(type_: str) -> None:
    if type_ not in BY_TYPE:
        raise NotFound(f"unknown notification type {type_!r}; known: {', '.join(TYPES)}",
                       code="notification_type_not_found")


async def list_templates(session: AsyncSession, app_id: str) -> list[TemplateOut]:
    """The app's own templates, then the built-in English wording of every type it has not replaced."""
    own = [TemplateOut(type=t.type, locale=t.locale, subject=t.subject, text=t.text, html=t.html,
                       updated_at=t.updated_at) for t in await repo.templates(session, app_id)]
    replaced = {(t.type, t.locale) for t in own}
    built_in = [TemplateOut(type=k.type, locale=DEFAULT_LOCALE, subject=k.wording.subject, text=k.wording.text,
                            html=None, updated_at=None)
                for k in BY_TYPE.values() if (k.type, DEFAULT_LOCALE) not in replaced]
    return own + built_in


async def set_template(session: AsyncSession, runtime: Runtime, app_id: str, type_: str, locale: str,
                       body: TemplateIn) -> TemplateOut:
    _known_type(type_)
    _check_template(body)
    now = runtime.clock.now()
    await repo.save_template(session, {"app_id": app_id, "type": type_, "locale": locale, "subject": body.subject,
                                       "text": body.text, "html": body.html, "updated_at": now})
    TEMPLATES.invalidate(session, app_id)
    return TemplateOut(type=type_, locale=locale, subject=body.subject, text=body.text, html=body.html,
                       updated_at=now)


async def delete_template(session: AsyncSession, app_id: str, type_: str, locale: str) -> None:
    _known_type(type_)
    if not await repo.delete_template(session, app_id, type_, locale):
        raise NotFound(f"no {locale} template of {type_}", code="template_not_found")
    TEMPLATES.invalidate(session, app_id)


# Preferences -------------------------------------------------------------------------------------


def _prefs_out(player_id: str, pref: Preferences | None) -> PreferencesOut:
    if pref is None:
        return PreferencesOut(player_id=player_id, updated_at=None)
    quiet = QuietHours(start=pref.quiet_start, end=pref.quiet_end) if pref.quiet_start and pref.quiet_end else None
    return PreferencesOut(player_id=player_id, defaults=pref.defaults, types=pref.channels, quiet_hours=quiet,
                          digest=pref.digest, digest_hour=pref.digest_hour, locale=pref.locale,
                          updated_at=pref.updated_at)


async def get_preferences(session: AsyncSession, app_id: str, player_id: str) -> PreferencesOut:
    await players.get_player(session, app_id, player_id)
    return _prefs_out(player_id, (await repo.preferences(session, app_id, [player_id])).get(player_id))


async def set_preferences(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str,
                          body: PreferencesIn) -> PreferencesOut:
    await players.get_player(session, app_id, player_id)
    quiet = body.quiet_hours
    await repo.save_preferences(session, {
        "app_id": app_id, "player_id": player_id, "channels": {t: dict(c) for t, c in body.types.items()},
        "defaults": dict(body.defaults), "quiet_start": quiet.start if quiet else None,
        "quiet_end": quiet.end if quiet else None, "digest": body.digest, "digest_hour": body.digest_hour,
        "locale": body.locale, "updated_at": runtime.clock.now()})
    return await get_preferences(session, app_id, player_id)


# Inboxes -----------------------------------------------------------------------------------------


async def _ensure_recipient(session: AsyncSession, app_id: str, kind: str, recipient: str) -> None:
    """The brand or streamer is the app's own (404 otherwise); players are scoped by app already."""
    if kind == "brand":
        await sponsors.get_brand(session, app_id, recipient)
    elif kind == "streamer":
        await sponsors.get_streamer(session, app_id, recipient)


async def inbox(session: AsyncSession, app_id: str, kind: str, recipient: str, status: str | None,
                page: PageParams) -> Page[NotificationOut]:
    await _ensure_recipient(session, app_id, kind, recipient)
    statuses = [status] if status else ["unread", "read"]
    rows = await repo.inbox(session, app_id, kind, recipient, statuses, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda n: [n.id])
    return Page[NotificationOut](items=[NotificationOut.model_validate(n) for n in built.items],
                                 next_cursor=built.next_cursor)


async def unread_count(session: AsyncSession, app_id: str, kind: str, recipient: str) -> UnreadCount:
    await _ensure_recipient(session, app_id, kind, recipient)
    return UnreadCount(unread=await repo.unread(session, app_id, kind, recipient))


async def mark(session: AsyncSession, runtime: Runtime, app_id: str, kind: str, recipient: str,
               notification_id: str, to: str) -> NotificationOut:
    """Mark one entry read or archived (again: no change)."""
    entry = await repo.notification(session, app_id, kind, recipient, notification_id)
    if entry is None:
        raise NotFound(f"notification {notification_id} not found", code="notification_not_found")
    now = runtime.clock.now()
    before = entry.status
    if to == "read":
        await repo.set_status(session, app_id, kind, recipient, [entry.id], ["unread"], status="read", read_at=now)
    else:
        await repo.set_status(session, app_id, kind, recipient, [entry.id], ["unread", "read"], status="archived",
                              archived_at=now, read_at=entry.read_at or now)
    fresh = await repo.notification(session, app_id, kind, recipient, notification_id)
    assert fresh is not None
    if before == "unread" and fresh.status != before:
        _inbox_changed(session, runtime, app_id, kind, recipient, None)
    return NotificationOut.model_validate(fresh)


async def mark_all_read(session: AsyncSession, runtime: Runtime, app_id: str, kind: str, recipient: str) -> Marked:
    changed = await repo.set_status(session, app_id, kind, recipient, None, ["unread"], status="read",
                                    read_at=runtime.clock.now())
    if changed:
        _inbox_changed(session, runtime, app_id, kind, recipient, None)
    return Marked(changed=changed)


# Sending -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    ids: list[str]
    channel: str
    address: str
    subject: str
    text: str
    html: str | None
    message_id: str


def _bundle(rows: Sequence[Delivery]) -> list[Outgoing]:
    """One message per plain delivery, one per recipient and channel for digest entries."""
    out: list[Outgoing] = []
    digests: dict[tuple[str, str, str, str], list[Delivery]] = {}
    for row in rows:
        if not row.digest:
            out.append(Outgoing([row.id], row.channel, row.address, row.subject, row.text, row.html, row.id))
            continue
        digests.setdefault((row.app_id, row.recipient_id, row.channel, row.address), []).append(row)
    for (_, _, channel, address), group in digests.items():
        text = "\n\n".join(f"{r.subject}\n{r.text}" for r in group)
        subject = f"Your daily digest: {len(group)} update{'s' if len(group) > 1 else ''}"
        out.append(Outgoing([r.id for r in group], channel, address, subject, text, None, group[0].id))
    return out


async def process_due(runtime: Runtime, *, limit: int = 100) -> int:
    """Send what is due on outside channels; returns how many deliveries were worked on."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as session:
        due = await repo.due(session, now, limit)
        won = await repo.claim(session, [d.id for d in due], now, now + LEASE)
        rows = await repo.deliveries(session, won) if won else []
    if not rows:
        return 0
    settings = runtime.settings
    # Guarded like webhooks: the chat API's address is checked where the connection opens (one lookup).
    async with egress.client(timeout=settings.outbound_timeout_seconds,
                             allow_private=lambda: settings.outbound_private_allowed,
                             resolver=egress.resolver_of(runtime.extensions)) as client:
        for outgoing in _bundle(rows):
            try:
                await _send(runtime.settings, client, outgoing)
            except Exception as exc:
                await _failed(runtime, outgoing, rows, f"{type(exc).__name__}: {exc}"[:1000])
                continue
            async with unit_of_work(runtime.sessions) as session:
                await repo.finish(session, outgoing.ids, status="sent", sent_at=runtime.clock.now(), error=None,
                                  lease_until=None)
    return len(rows)


async def _failed(runtime: Runtime, outgoing: Outgoing, rows: Sequence[Delivery], error: str) -> None:
    attempts = max(r.attempts for r in rows if r.id in outgoing.ids)
    now = runtime.clock.now()
    _log.warning("notification_send_failed", channel=outgoing.channel, error=error, attempts=attempts)
    async with unit_of_work(runtime.sessions) as session:
        if attempts >= MAX_ATTEMPTS:
            await repo.finish(session, outgoing.ids, status="failed", error=error, lease_until=None)
        else:
            await repo.finish(session, outgoing.ids, status="pending", error=error, lease_until=None,
                              send_after=now + timedelta(seconds=RETRY_BASE_SECONDS * 2 ** (attempts - 1)))


async def _send(settings: Settings, client: httpx.AsyncClient, outgoing: Outgoing) -> None:
    if outgoing.channel == "email":
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = outgoing.address
        message["Subject"] = outgoing.subject
        message["Message-ID"] = f"<{outgoing.message_id}@questline>"
        message.set_content(outgoing.text)
        if outgoing.html:
            message.add_alternative(outgoing.html, subtype="html")
        assert settings.smtp_host is not None
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        import aiosmtplib  # on first use: an engine that sends no email never loads it (about 1 MB)

        await aiosmtplib.send(message, hostname=settings.smtp_host, port=settings.smtp_port,
                              username=settings.smtp_username, password=password, start_tls=settings.smtp_starttls,
                              timeout=settings.outbound_timeout_seconds)
        return
    if outgoing.channel == "discord":
        assert settings.discord_bot_token is not None
        resp = await client.post(f"{settings.discord_api_url.rstrip('/')}/channels/{outgoing.address}/messages",
                                 json={"content": f"**{outgoing.subject}**\n{outgoing.text}"[:2000]},
                                 headers={"Authorization": f"Bot {settings.discord_bot_token.get_secret_value()}"})
    else:
        assert settings.telegram_bot_token is not None
        token = settings.telegram_bot_token.get_secret_value()
        resp = await client.post(f"{settings.telegram_api_url.rstrip('/')}/bot{token}/sendMessage",
                                 json={"chat_id": outgoing.address, "text": f"{outgoing.subject}\n\n{outgoing.text}"})
    if resp.status_code >= 300:
        raise RuntimeError(f"{outgoing.channel} answered {resp.status_code}: {resp.text[:200]}")


async def deliveries_of(session: AsyncSession, app_id: str, player_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """A player's recent outside deliveries (for the admin and tests)."""
    return [{"id": d.id, "type": d.type, "channel": d.channel, "status": d.status, "digest": d.digest,
             "send_after": d.send_after, "sent_at": d.sent_at, "attempts": d.attempts, "error": d.error}
            for d in await repo.recipient_deliveries(session, app_id, "player", player_id, limit)]


# Direct sends (announcements) --------------------------------------------------------------------

DIRECT_BATCH = 500


async def send_direct(session: AsyncSession, runtime: Runtime, app_id: str, type_: str, player_ids: Sequence[str],
                      context: dict[str, Any], key: str) -> int:
    """Notify players of something that is not an outbox message (an announcement), as ``produce``
    does: an inbox entry and the outside deliveries each player's preferences allow, held for quiet
    hours and digests; once per (player, ``key``). Returns how many players got an inbox entry."""
    kind = BY_TYPE[type_]
    now = runtime.clock.now()
    templates = await _templates(session, app_id, kind.type)
    entries = made = 0
    rows = _Rows()
    for start in range(0, len(player_ids), DIRECT_BATCH):
        chunk = list(player_ids[start:start + DIRECT_BATCH])
        audience = await _Audience.read(session, app_id, chunk)
        for recipient in chunk:
            rows.plan(runtime.settings, kind, templates, audience, now, key, (app_id, "player", recipient),
                      {**context, "type": kind.type, "player_id": recipient}, context)
        entered, new = await rows.write(session, runtime)
        entries += entered
        made += new
    if made:
        after_commit(session, wake_event(runtime).set)
    return entries


async def revise_direct(session: AsyncSession, app_id: str, type_: str, context: dict[str, Any], key: str) -> int:
    """Reword what ``send_direct`` made under ``key`` (an edited announcement): inbox entries and
    deliveries not sent yet, each in its player's locale. Returns the inbox entries changed."""
    kind = BY_TYPE[type_]
    templates = await _templates(session, app_id, kind.type)
    entries = await repo.entries_by_key(session, app_id, key)
    pending = await repo.pending_by_key(session, app_id, key)
    prefs = await repo.preferences(session, app_id, sorted({e.recipient_id for e in entries}
                                                          | {d.recipient_id for d in pending}))
    worded: dict[str, tuple[str, str, str | None]] = {}

    def words(player_id: str) -> tuple[str, str, str | None]:
        pref = prefs.get(player_id)
        locale = pref.locale if pref else DEFAULT_LOCALE
        if locale not in worded:
            worded[locale] = render(kind, templates, locale, {**context, "type": kind.type})
        return worded[locale]

    for entry in entries:
        subject, text, _ = words(entry.recipient_id)
        await repo.update_entries(session, [entry.id], title=subject, body=text, data=context)
    for delivery in pending:
        subject, text, html = words(delivery.recipient_id)
        await repo.update_delivery(session, delivery.id, subject=subject[:300], text=text,
                                   html=html if delivery.channel == "email" else None)
    return len(entries)


async def retract_direct(session: AsyncSession, runtime: Runtime, app_id: str, key: str) -> int:
    """Take back what ``send_direct`` made under ``key`` (a withdrawn announcement): its inbox
    entries go (live inboxes hear the unread count) and its deliveries not sent yet are not sent.
    Returns the inbox entries removed."""
    unread = sorted({e.recipient_id for e in await repo.entries_by_key(session, app_id, key) if e.status == "unread"})
    await repo.withdraw_pending(session, app_id, key)
    removed = await repo.delete_entries(session, app_id, key)
    for player_id in unread:
        _inbox_changed(session, runtime, app_id, "player", player_id, None)
    return removed
