"""Live channels: who may subscribe to what, what each channel carries, and a client's session.

Channels (all within the caller's app):

- ``player:{id}``: that player's own progress (every outbox message about the player). The player's
  own token, the server key and the app's admins.
- ``leaderboard:{key}``: a board moved (``players_changed``; clients re-read the standings, which
  apply the board's privacy). Any caller of the app, the publishable client key included; a player
  subscribed with their own token also gets ``rank`` frames: their own place, at once and after each move.
- ``competition:{id}``: a competition's lifecycle and leader changes (without player ids). Any caller.
- ``brand:{id}``, ``streamer:{id}``: a marketplace account's inbox, live: its new entries and unread
  count. The account's own token, the server key and the app's admins (as its inbox over HTTP).
- ``campaign:{id}``: a sponsorship campaign's messages, for its brand, its participating streamers
  and players, the server key and admins; also ``campaign.totals`` (impressions, spend, commission,
  status) after impression batches commit, at most one frame per ``realtime_campaign_seconds``
  per campaign (``CampaignTotalsPublisher``).
- ``chat:community:{id}``, ``chat:competition:{id}``: a chat room's messages and deletions, for
  the community's active members (the competition's entrants) not banned from it, the server key
  and admins (``questline.chat``).
- ``announcements:app``, ``announcements:community:{id}``, ``announcements:competition:{id}``:
  announcements as they are sent, edited and withdrawn; the app's for any caller of the app, a
  community's or competition's for those in it, the server key and admins.
- ``admin:monitor``: events/s, backlog, relay lag, webhook errors, live connections, every few
  seconds (not kept in history). The server key and admins.

Every message carries its channel's offset; a client that subscribes with its last offset (and
epoch) gets what it missed from the bounded history, or ``resync`` when that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from questline.chat import service as chat
from questline.kit.errors import Forbidden, NotFound, ProblemError, ServiceUnavailable
from questline.kit.ids import new_id
from questline.kit.runtime import Runtime
from questline.leaderboards import service as leaderboards
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.realtime import repository as repo
from questline.realtime.hub import Hub, MemoryHub, Publication, RedisHub
from questline.relay import service as relay
from questline.relay.service import RelayMessage
from questline.tenancy.auth import ADMIN, BRAND, CLIENT, PLAYER, SERVER, STREAMER, Caller, identify
from questline.tenancy.schemas import Role

_log = structlog.get_logger("questline.realtime")
HUB = "realtime.hub"
MONITOR = "admin:monitor"
CHANNEL_PATTERN = (r"^(player|brand|streamer|leaderboard|competition|campaign|admin|chat|announcements):"
                   r"[A-Za-z0-9_.:@-]{1,128}$")
_PUBLIC_DROP = ("players", "leaders", "previous", "player_id")
KINDS = frozenset({SERVER, CLIENT, PLAYER, ADMIN, BRAND, STREAMER})


def hub(runtime: Runtime) -> Hub:
    """The runtime's hub: Redis when configured (every process hears every message), else memory."""
    found = runtime.extensions.get(HUB)
    if found is None:
        settings = runtime.settings
        if runtime.redis is not None:
            found = RedisHub(runtime.redis, runtime.clock, namespace=settings.redis_namespace,
                             history_size=settings.realtime_history_size,
                             history_seconds=settings.realtime_history_seconds)
        else:
            found = MemoryHub(runtime.clock, history_size=settings.realtime_history_size,
                              history_seconds=settings.realtime_history_seconds)
        runtime.extensions[HUB] = found
        runtime.on_close(found.stop)
    return found


def key_of(app_id: str, channel: str) -> str:
    return f"{app_id}|{channel}"


async def identify_connection(connection: HTTPConnection, runtime: Runtime) -> Caller:
    """Who is connecting: ``Authorization: Bearer`` or ``?token=`` (browsers cannot set headers on a
    WebSocket); an admin names the app with ``X-Questline-App`` or ``?app=``."""
    headers = dict(connection.headers)
    token = connection.query_params.get("token")
    if token and "authorization" not in headers:
        headers["authorization"] = f"Bearer {token}"
    app = connection.query_params.get("app")
    if app and "x-questline-app" not in headers:
        headers["x-questline-app"] = app
    scope = {**connection.scope, "type": "http",
             "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]}
    async with runtime.read_sessions() as session:
        caller = await identify(Request(scope), session, runtime, want_app=True)
    if caller.kind not in KINDS or caller.app_id is None:
        raise Forbidden("this credential may not use live channels", code="caller_not_allowed")
    if caller.kind is ADMIN:
        caller.ensure_role(Role.VIEWER)
    return caller


async def authorize(session: AsyncSession, runtime: Runtime, caller: Caller, channel: str) -> str:
    """Check ``caller`` may subscribe to ``channel``; returns the hub key."""
    if len(channel) > 160 or not re.match(CHANNEL_PATTERN, channel):
        raise ProblemError(f"unknown channel {channel[:160]!r}: player:{{id}}, brand:{{id}}, streamer:{{id}}, "
                           "leaderboard:{key}, competition:{id}, campaign:{id} or admin:monitor",
                           code="unknown_channel")
    kind, _, name = channel.partition(":")
    app = caller.app
    trusted = caller.kind in (SERVER, ADMIN)
    if kind == "player":
        if not re.match(PLAYER_ID_PATTERN, name):
            raise ProblemError(f"{name!r} is not a player id", code="unknown_channel")
        if not (trusted or (caller.kind is PLAYER and caller.player_id == name)):
            raise Forbidden("a player subscribes only to their own channel", code="channel_forbidden")
    elif kind in ("brand", "streamer"):
        own = BRAND if kind == "brand" else STREAMER
        if not (trusted or (caller.kind is own and caller.account_id == name)):
            raise Forbidden(f"a {kind} subscribes only to its own inbox channel", code="channel_forbidden")
    elif kind == "leaderboard":
        await leaderboards.board_info(session, runtime, app, name)  # 404 leaderboard_not_found
    elif kind == "competition":
        if not await repo.competition_exists(session, app, name):
            raise NotFound(f"competition {name} not found", code="competition_not_found")
    elif kind == "campaign":
        brand = await repo.campaign_brand(session, app, name)
        if brand is None:
            raise NotFound(f"campaign {name} not found", code="campaign_not_found")
        allowed = trusted or (caller.kind is BRAND and caller.account_id == brand) or (
            caller.kind is STREAMER and await repo.takes_part(session, app, name, streamer_id=caller.account_id)) or (
            caller.kind is PLAYER and await repo.takes_part(session, app, name, player_id=caller.player_id))
        if not allowed:
            raise Forbidden("only the campaign's brand and participants follow it", code="channel_forbidden")
    elif kind == "chat":
        await _room(session, caller, name, runtime, chat_ban=True)
    elif kind == "announcements":
        if name != "app":
            await _room(session, caller, name, runtime, chat_ban=False)
    elif channel == MONITOR:
        if not trusted:
            raise Forbidden("the monitoring channel is for the server key and admins", code="channel_forbidden")
    else:
        raise ProblemError(f"unknown channel {channel!r}", code="unknown_channel")
    return key_of(app, channel)


async def _room(session: AsyncSession, caller: Caller, name: str, runtime: Runtime, *, chat_ban: bool) -> None:
    """A community's or competition's channel: for those in it (``chat_ban``: and not banned from its chat)."""
    room = await chat.room_of(session, caller.app, name)
    if room != name:
        raise ProblemError(f"name the community by its id: {room}", code="unknown_channel")
    if chat_ban:
        await chat.authorize_read(session, caller, room, runtime.clock.now())
    elif not (caller.is_trusted or (caller.kind is PLAYER and caller.player_id is not None
                                    and await chat.in_room(session, caller.app, room, caller.player_id))):
        raise Forbidden(f"only those in {room} follow its announcements", code="channel_forbidden")


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in _PUBLIC_DROP}


def routes(message: RelayMessage) -> list[tuple[str, dict[str, Any]]]:
    """The channels a relayed message goes to, each with what it shows there."""
    base = {"id": message.id, "type": message.type, "at": message.created_at.isoformat()}
    out: list[tuple[str, dict[str, Any]]] = []
    payload = message.payload
    if message.type.startswith("chat.") and isinstance(payload.get("room"), str):
        return [(f"chat:{payload['room']}", {**base, "data": payload})]  # the room only, not the author's channel
    if message.type.startswith("announcement.") and isinstance(payload.get("channel"), str):
        out.append((payload["channel"], {**base, "data": payload}))
    if message.player_id is not None:
        out.append((f"player:{message.player_id}", {**base, "data": payload}))
    if message.type == "leaderboard.updated" and isinstance(payload.get("board"), str):
        out.append((f"leaderboard:{payload['board']}", {**base, "data": _public(payload)}))
    if message.type.startswith("competition.") and isinstance(payload.get("competition_id"), str):
        out.append((f"competition:{payload['competition_id']}", {**base, "data": _public(payload)}))
    if isinstance(payload.get("campaign_id"), str):
        out.append((f"campaign:{payload['campaign_id']}", {**base, "data": payload}))
    return out


async def publish(runtime: Runtime, messages: Sequence[RelayMessage]) -> int:
    """Publish relayed messages on their channels (each once per channel, even when relayed twice)."""
    items = [(key_of(message.app_id, channel), data, message.id) for message in messages
             for channel, data in routes(message)]
    if not items:
        return 0
    return sum(offset is not None for offset in await hub(runtime).publish_many(items))


class InboxPublisher:
    """Publishes an inbox's new entries and unread count on its owner's channel: ``player:{id}``,
    ``brand:{id}`` or ``streamer:{id}`` (a listener of ``notifications.listen_inbox``, told after
    commit). Not an outbox message: webhooks never see the engine's own bookkeeping. An entry is
    published under its id, so it appears once per channel."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, app_id: str, kind: str, recipient: str, entry: dict[str, Any] | None,
                       unread: int) -> None:
        at = self.runtime.clock.now().isoformat()
        channel = key_of(app_id, f"{kind}:{recipient}")
        if entry is not None:
            data = {"id": entry["id"], "type": "notification.created", "at": at,
                    "data": {"notification": entry, "unread": unread}}
            await hub(self.runtime).publish(channel, data, entry["id"])
        else:
            data = {"id": new_id("unr"), "type": "notification.unread", "at": at, "data": {"unread": unread}}
            await hub(self.runtime).publish(channel, data)


@dataclass
class _Coalesce:
    task: asyncio.Task[None]
    again: bool = False


class CampaignTotalsPublisher:
    """Publishes a campaign's totals on ``campaign:{id}`` after impression batches commit (a listener
    of ``campaigns.live.listen_totals``), coalesced: the first change is published at once, changes
    within the next ``realtime_campaign_seconds`` make one more frame after it, and so on. Each frame
    reads the totals when it is sent, after the commits that asked for it, so the last frame of a
    burst carries the totals of its last batch, never an older figure. Counters only grow: a client
    that hears frames from several processes keeps the highest ``impressions``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pending: dict[tuple[str, str], _Coalesce] = {}
        runtime.on_close(self.stop)

    def __call__(self, app_id: str, campaign_id: str) -> None:
        key = (app_id, campaign_id)
        found = self.pending.get(key)
        if found is not None and not found.task.done():
            found.again = True  # the running read (or the next, after the pause) includes this change
            return
        self.pending[key] = _Coalesce(asyncio.get_running_loop().create_task(self._run(key)))

    async def _run(self, key: tuple[str, str]) -> None:
        try:
            while True:
                entry = self.pending.get(key)
                if entry is not None:
                    entry.again = False
                try:
                    await self.publish(*key)
                except Exception:  # Redis away: the next batch publishes again
                    _log.warning("campaign_totals_publish_failed", campaign_id=key[1], exc_info=True)
                await self.pause()
                entry = self.pending.get(key)
                if entry is None or not entry.again:
                    return
        finally:
            entry = self.pending.get(key)
            if entry is not None and entry.task is asyncio.current_task():
                del self.pending[key]

    async def pause(self) -> None:
        """The quiet time after a frame, during which changes wait for the next one."""
        await asyncio.sleep(self.runtime.settings.realtime_campaign_seconds)

    async def publish(self, app_id: str, campaign_id: str) -> int | None:
        """Read the campaign's totals now and publish them; returns the channel's offset (None: the
        campaign is gone, the read failed, or these totals were published already)."""
        try:
            async with self.runtime.read_sessions() as session:
                found = await repo.campaign(session, app_id, campaign_id)
        except Exception:  # the database away: the next batch publishes again
            _log.warning("campaign_totals_read_failed", campaign_id=campaign_id, exc_info=True)
            return None
        if found is None:
            return None
        totals = {"campaign_id": found.id, "status": found.status, "currency": found.currency,
                  "impressions": found.impressions, "impression_target": found.impression_target,
                  "spent": found.spent, "budget": found.budget, "remaining": found.budget - found.spent,
                  "commission": found.commission}
        # Named by its figures: the same totals read twice (two processes, one batch) go out once.
        message_id = f"totals:{found.impressions}:{found.spent}:{found.status}"
        data = {"id": new_id("cmt"), "type": "campaign.totals", "at": self.runtime.clock.now().isoformat(),
                "data": totals}
        return await hub(self.runtime).publish(key_of(app_id, f"campaign:{campaign_id}"), data, message_id)

    async def stop(self) -> None:
        tasks = [entry.task for entry in self.pending.values()]
        self.pending.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


@dataclass
class _Sub:
    channel: str
    last: int = 0
    buffer: list[tuple[str, Publication]] | None = field(default_factory=list)


@dataclass
class _RankWatch:
    """A player's own place on a board they follow: re-read when the board moves, one read at a time
    (moves during a read ask for one more read after it, not one each)."""

    channel: str
    board: str
    task: asyncio.Task[None] | None = None
    again: bool = False


class LiveSession:
    """One client's subscriptions; frames to send go to a bounded queue. A client that lets the
    queue fill is dropped (``dropped`` is set): it never holds the publishers back."""

    def __init__(self, runtime: Runtime, caller: Caller) -> None:
        self.runtime, self.caller = runtime, caller
        self.hub = hub(runtime)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(runtime.settings.realtime_queue_size)
        self.dropped = asyncio.Event()
        self.subs: dict[str, _Sub] = {}
        self.ranks: dict[str, _RankWatch] = {}

    def _rank_changed(self, key: str) -> None:
        watch = self.ranks.get(key)
        if watch is None or self.dropped.is_set():
            return
        if watch.task is not None and not watch.task.done():
            watch.again = True
            return
        watch.task = asyncio.get_running_loop().create_task(self._send_rank(key, watch))

    async def _send_rank(self, key: str, watch: _RankWatch) -> None:
        """Read the player's place and send it as a ``rank`` frame (not kept in the channel's history)."""
        player_id = self.caller.player_id
        assert player_id is not None
        while True:
            watch.again = False
            try:
                async with self.runtime.read_sessions() as session:
                    info = await leaderboards.board_info(session, self.runtime, self.caller.app, watch.board)
                    view = await leaderboards.player_place(session, self.runtime, self.caller.app, info, player_id)
            except Exception:  # a board removed meanwhile, the database away: the next move tries again
                _log.warning("live_rank_failed", board=watch.board, exc_info=True)
                return
            me = view.me
            if key not in self.ranks:
                return
            self.put({"type": "rank", "channel": watch.channel, "data": {
                "board": view.board, "period_key": view.period_key, "partition": view.partition,
                "player_id": player_id, "rank": me.rank if me else None, "score": me.score if me else None,
                "ranked": view.ranked}})
            if not watch.again:
                return

    def put(self, frame: dict[str, Any]) -> None:
        if self.dropped.is_set():
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped.set()

    def _on_publication(self, key: str, epoch: str, publication: Publication) -> None:
        sub = self.subs.get(key)
        if sub is None:
            return
        if sub.buffer is not None:
            sub.buffer.append((epoch, publication))
            if len(sub.buffer) > self.queue.maxsize:
                self.dropped.set()
            return
        if publication.offset > sub.last:
            sub.last = publication.offset
            self.put(_frame(sub.channel, epoch, publication))
            if key in self.ranks:
                self._rank_changed(key)

    async def subscribe(self, channel: str, offset: int | None = None, epoch: str | None = None) -> None:
        """Authorize, then answer ``subscribed`` and, from ``offset``, the missed messages in order
        (or ``resync``), then live ones."""
        async with self.runtime.read_sessions() as session:
            key = await authorize(session, self.runtime, self.caller, channel)
        if key in self.subs:
            raise ProblemError(f"already subscribed to {channel}", code="already_subscribed")
        if len(self.subs) >= self.runtime.settings.realtime_max_channels:
            raise ProblemError("too many channels on one connection", code="too_many_channels")
        try:
            await self.hub.start()
        except (TimeoutError, OSError) as exc:
            raise ServiceUnavailable("live channels are unavailable right now", code="realtime_unavailable") from exc
        sub = self.subs[key] = _Sub(channel)
        self.hub.fanout.add(key, self._on_publication)
        try:
            recovery = await self.hub.recover(key, offset, epoch)
        except BaseException:
            self._forget(key)
            raise
        self.put({"type": "subscribed", "channel": channel, "offset": recovery.top, "epoch": recovery.epoch,
                  "recovered": offset is not None and recovery.missed is not None})
        if recovery.missed is None:
            self.put({"type": "resync", "channel": channel, "offset": recovery.top, "epoch": recovery.epoch})
        else:
            for publication in recovery.missed:
                self.put(_frame(channel, recovery.epoch, publication))
        sub.last = recovery.top
        buffered, sub.buffer = sub.buffer or [], None
        for buffered_epoch, publication in buffered:
            if publication.offset > sub.last:
                sub.last = publication.offset
                self.put(_frame(channel, buffered_epoch, publication))
        if channel.startswith("leaderboard:") and self.caller.kind is PLAYER and self.caller.player_id:
            # A player following a board also gets their own place: now, and after every move.
            self.ranks[key] = _RankWatch(channel, channel.partition(":")[2])
            self._rank_changed(key)

    def _forget(self, key: str) -> None:
        self.subs.pop(key, None)
        self.hub.fanout.remove(key, self._on_publication)
        watch = self.ranks.pop(key, None)
        if watch is not None and watch.task is not None:
            watch.task.cancel()

    def unsubscribe(self, channel: str) -> None:
        self._forget(key_of(self.caller.app, channel))

    def close(self) -> None:
        for key in list(self.subs):
            self._forget(key)


class MessageFrame(dict[str, Any]):
    """A ``message`` frame that carries its JSON text: one encoding per publication, shared by every
    subscriber in this process (a fan-out to 1,000 sockets encoded once, not 1,000 times)."""

    __slots__ = ("text",)
    text: str


def _frame(channel: str, epoch: str, publication: Publication) -> MessageFrame:
    frame = MessageFrame(type="message", channel=channel, offset=publication.offset, epoch=epoch,
                         data=publication.data)
    text = publication.texts.get((channel, epoch))
    if text is None:
        text = publication.texts[(channel, epoch)] = orjson.dumps(frame).decode()
    frame.text = text
    return frame


def frame_text(frame: dict[str, Any]) -> str:
    """A frame as the JSON text sent on a socket."""
    return frame.text if isinstance(frame, MessageFrame) else orjson.dumps(frame).decode()


@dataclass
class _MonitorState:
    last_seq: dict[str, int] = field(default_factory=dict)
    offset: int = 0


async def monitor_round(runtime: Runtime, state: _MonitorState, seconds: float) -> int:
    """Publish one monitoring frame to this process's ``admin:monitor`` listeners; returns apps served."""
    target = hub(runtime)
    keys = [k for k in list(target.fanout.listeners) if k.endswith(f"|{MONITOR}")]
    if not keys:
        return 0
    lag = await relay.lag(runtime)
    now = runtime.clock.now()
    connections = sum(len(v) for v in target.fanout.listeners.values())
    for key in keys:
        app_id = key.split("|", 1)[0]
        async with runtime.read_sessions() as session:
            first = app_id not in state.last_seq
            count, top = await repo.events_since(session, app_id, state.last_seq.get(app_id, 0))
            pending = await repo.pending_events(session, app_id)
            failures = await repo.webhook_failures_since(session, app_id, now - timedelta(seconds=seconds))
        state.last_seq[app_id] = top
        state.offset += 1
        data = {"type": "monitor", "at": now.isoformat(), "data": {
            "events_per_second": 0.0 if first else round(count / seconds, 2), "events_pending": pending,
            "relay": {name: {"behind": v["behind"], "delivered": v["delivered"]} for name, v in lag.items()},
            "webhook_errors": failures, "subscriptions_here": connections}}
        target.fanout.deliver(key, "monitor", Publication(state.offset, now.timestamp(), data))
    return len(keys)


async def run_monitor(runtime: Runtime, stop: asyncio.Event) -> None:
    seconds = runtime.settings.realtime_monitor_seconds
    state = _MonitorState()
    while not stop.is_set():
        try:
            await monitor_round(runtime, state, seconds)
        except Exception:  # monitoring must never take the process down
            _log.exception("monitor_round_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
