"""Community referral links.

``GET /c/{app_id}/{slug}[/{member_code}]`` answers a redirect to the community's own
``redirect_url`` (https, checked when saved; nothing in the request can change the target) with
a signed click id in ``ql_click``, and records the click. The click id is
``{click}.{community}.{member code or -}.{issued at}.{signature}``: an HMAC-SHA256 under a key
derived from the install's secret and the app, so it verifies without a look-up, cannot be
moved to another app, and expires after ``link_click_ttl_seconds``.

Counting: HEAD requests are not recorded; known bots (by user agent) and prefetches
(``Purpose``/``Sec-Purpose``) are recorded but not counted; a visitor counts once a day per
link. A visitor is a SHA-256 of the day's random salt, the app, the address and the user agent;
the salt is deleted the next day, so no address is kept and nobody can follow a visitor from
one day to the next, or recompute the hash from an address later.

A join that presents the click id (``JoinIn.click_id``) is attributed to the member whose link
it was, once per click, and tracked as a referral of theirs: the referral program's fraud
rules judge it like any other signup.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import ipaddress
import re
import secrets
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from questline.communities import repository as communities_repo
from questline.communities import service as communities
from questline.communities.extension import ClickVerdict, JoinSignals
from questline.communities.models import Community
from questline.kit.db import unit_of_work
from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.links import repository as repo
from questline.links.schemas import DayStats, LinkAnalytics, LinkStats, MemberStats
from questline.referrals import service as referrals
from questline.referrals.schemas import CodeIn, TrackIn
from questline.rules.service import ruleset_cache
from questline.shop import service as shop

CLICK_PARAM = "ql_click"
# User agents of crawlers, link previewers, monitors and HTTP libraries: recorded, never counted.
BOT_AGENTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|preview|facebookexternalhit|facebookcatalog|whatsapp|embedly|pinterest|"
    r"vkshare|outbrain|quora link|bitly|curl/|wget/|python-|httpx|aiohttp|go-http-client|java/|okhttp|"
    r"libwww|headless|lighthouse|pingdom|uptime|monitor|scanner|ahrefs|semrush|archiver", re.IGNORECASE)
PURPOSE_HEADERS = ("purpose", "sec-purpose", "x-purpose", "x-moz")
MAX_DAYS = 366
_CLICK_SHAPE = re.compile(r"^lck_[0-9A-HJKMNP-TV-Z]{26}\.cmy_[0-9A-HJKMNP-TV-Z]{26}\.(?:[0-9A-HJKMNP-TV-Z]{8}|-)"
                          r"\.[0-9]{1,12}\.[A-Za-z0-9_-]{24}$")


# Click ids ----------------------------------------------------------------------------------------


def _key(settings: Settings, app_id: str) -> bytes:
    return hmac.new(settings.signing_key().encode(), b"questline.link-click:" + app_id.encode(),
                    hashlib.sha256).digest()


def _signature(settings: Settings, app_id: str, body: str) -> str:
    digest = hmac.new(_key(settings, app_id), body.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode()


def sign_click(settings: Settings, app_id: str, click_id: str, community_id: str, member_code: str | None,
               issued_at: datetime) -> str:
    body = f"{click_id}.{community_id}.{member_code or '-'}.{int(issued_at.timestamp())}"
    return f"{body}.{_signature(settings, app_id, body)}"


def read_click(settings: Settings, app_id: str, token: str, now: datetime) -> tuple[str, list[str]]:
    """(``ok`` and the parts: click, community, member code, issued at) or (``invalid``/``expired``, [])."""
    if not _CLICK_SHAPE.match(token):
        return "invalid", []
    body, _, signature = token.rpartition(".")
    if not hmac.compare_digest(signature, _signature(settings, app_id, body)):
        return "invalid", []
    parts = body.split(".")
    issued = int(parts[3])
    if issued > now.timestamp() + 60:  # signed in the future: not by this install's clock
        return "invalid", []
    if now.timestamp() - issued > settings.link_click_ttl_seconds:
        return "expired", []
    return "ok", parts


def _with_click(url: str, token: str) -> str:
    """The community's URL with ``ql_click`` added to its query (its own parameters kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != CLICK_PARAM]
    query.append((CLICK_PARAM, token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


# Requests -------------------------------------------------------------------------------------------


def is_bot(headers: Mapping[str, str]) -> bool:
    agent = headers.get("user-agent", "").strip()
    return not agent or BOT_AGENTS.search(agent) is not None


def is_prefetch(headers: Mapping[str, str]) -> bool:
    return any(word in headers.get(name, "").lower() for name in PURPOSE_HEADERS
               for word in ("prefetch", "prerender", "preview"))


def hints(headers: Mapping[str, str]) -> dict[str, str]:
    """Coarse client hints: device class, OS, browser family, language and the referring site's host."""
    agent = headers.get("user-agent", "")
    low = agent.lower()
    platform = headers.get("sec-ch-ua-platform", "").strip('" ').lower()
    if "ipad" in low or "tablet" in low:
        device = "tablet"
    elif headers.get("sec-ch-ua-mobile") == "?1" or "mobi" in low:
        device = "mobile"
    else:
        device = "desktop"
    oses = (("android", "android"), ("iphone", "ios"), ("ipad", "ios"), ("windows", "windows"),
            ("mac os x", "macos"), ("macintosh", "macos"), ("cros", "chromeos"), ("linux", "linux"))
    os_name = platform.replace(" ", "") if platform else next((n for k, n in oses if k in low), "other")
    browsers = (("edg/", "edge"), ("opr/", "opera"), ("firefox/", "firefox"), ("fxios/", "firefox"),
                ("crios/", "chrome"), ("chrome/", "chrome"), ("safari/", "safari"))
    out = {"device": device, "os": os_name[:16], "browser": next((n for k, n in browsers if k in low), "other")}
    language = headers.get("accept-language", "").split(",")[0].split(";")[0].split("-")[0].strip().lower()
    if re.fullmatch(r"[a-z]{2,3}", language):
        out["language"] = language
    referer = urlsplit(headers.get("referer", "")).hostname
    if referer:
        out["from"] = referer[:100]
    return out


async def _salt(session: AsyncSession, day: str, now: datetime) -> str:
    """The day's salt, made (and earlier days' salts and visits deleted) by the day's first click."""
    found = await repo.salt_of(session, day)
    if found is None:
        if await repo.add_salt(session, day, secrets.token_hex(32), now):
            await repo.forget_before(session, day)
        found = await repo.salt_of(session, day)
        assert found is not None
    return found


async def follow(runtime: Runtime, app_id: str, slug: str, member_code: str | None, *, method: str,
                 headers: Mapping[str, str], address: str) -> str:
    """Record a click of a community's link and return where it redirects (``404 link_not_found``)."""
    settings = runtime.settings
    await runtime.limiter.enforce(settings.rate_limit_links, "links", address, what="link clicks from this address")
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as session:
        community = await communities_repo.find_in_app(session, app_id, slug)
        if community is None or not community.redirect_url:
            raise NotFound("no such community link", code="link_not_found")
        target = community.redirect_url
        if method == "HEAD":  # not a visit: the target without a click id
            return target
        referrer = None
        if member_code is not None:
            member = await communities_repo.member_by_code(session, community.id, member_code)
            if member is not None and member.status == "active":
                referrer = member.player_id
            else:  # an old or mistyped member code still leads to the community, unattributed
                member_code = None
        day = now.date().isoformat()
        agent = headers.get("user-agent", "")
        visitor = hashlib.sha256("\0".join((await _salt(session, day, now), app_id, address, agent)).encode())
        outcome = "bot" if is_bot(headers) else "prefetch" if is_prefetch(headers) else ""
        if not outcome:
            first = await repo.first_visit(session, {"community_id": community.id, "link": member_code or "-",
                                                     "day": day, "visitor": visitor.hexdigest(), "app_id": app_id})
            outcome = "counted" if first else "repeat"
        click_id = new_id("lck")
        await repo.add_click(session, {
            "id": click_id, "app_id": app_id, "community_id": community.id, "member_code": member_code,
            "referrer_id": referrer, "day": day, "visitor": visitor.hexdigest(), "outcome": outcome,
            "hints": hints(headers), "created_at": now, "joined_player_id": None, "joined_at": None,
            "joined_day": None})
    return _with_click(target, sign_click(settings, app_id, click_id, community.id, member_code, now))


# Attribution ----------------------------------------------------------------------------------------


def _ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


class LinkExtension:
    """What communities call on a join (installed by ``questline.mechanics``)."""

    async def verify_click(self, session: AsyncSession, runtime: Runtime, community: Community,
                           click_id: str) -> ClickVerdict:
        status, parts = read_click(runtime.settings, community.app_id, click_id, runtime.clock.now())
        if status != "ok":
            return ClickVerdict(status)
        if parts[1] != community.id:
            return ClickVerdict("other_community")
        row = await repo.click(session, community.app_id, parts[0])
        if row is None:
            return ClickVerdict("invalid")
        if row.joined_player_id is not None:
            return ClickVerdict("used", click_id=row.id)
        referrer = None
        if row.member_code is not None:  # the member must still be active when the join comes
            member = await communities_repo.member_by_code(session, community.id, row.member_code)
            referrer = member.player_id if member is not None and member.status == "active" else None
        return ClickVerdict("attributed", click_id=row.id, referrer_id=referrer)

    async def joined(self, session: AsyncSession, runtime: Runtime, community: Community, player_id: str,
                     verdict: ClickVerdict, signals: JoinSignals) -> None:
        assert verdict.click_id is not None
        if not await repo.mark_joined(session, community.app_id, verdict.click_id, player_id, runtime.clock.now()):
            return  # a racing join took this click
        referrer = verdict.referrer_id
        if referrer is None or referrer == player_id:
            return
        app_id = community.app_id
        ruleset = await ruleset_cache(runtime).get(session, app_id)
        code, _ = await referrals.code_for(session, runtime, ruleset, app_id, referrer, CodeIn(), trusted=True)
        body = TrackIn(code=code.code, referred_player_id=player_id, ip=_ip(signals.ip),
                       device_fingerprint=signals.device_fingerprint, email=signals.email,
                       attribution={"source": "community_link", "community": community.slug,
                                    "click_id": verdict.click_id})
        try:
            async with session.begin_nested():  # a refusal leaves nothing of the attempt behind
                await referrals.track(session, runtime, ruleset, app_id, body)
        except Conflict as exc:
            if exc.code != "already_referred":  # referred once before (elsewhere): the join stands
                raise

    async def check_item(self, session: AsyncSession, runtime: Runtime, app_id: str, item: str) -> None:
        ruleset = await ruleset_cache(runtime).get(session, app_id)
        try:
            shop.item_of(ruleset, item)
        except NotFound as exc:
            raise Unprocessable(f"unknown item {item!r}; define it with PUT /v1/definitions/item/{item}",
                                code="item_not_found", extra={"item": item}) from exc

    async def grant_item(self, session: AsyncSession, runtime: Runtime, community: Community, player_id: str,
                         item: str, quantity: int) -> None:
        await shop.grant_item(session, runtime.clock, app_id=community.app_id, player_id=player_id, item=item,
                              quantity=quantity, key=f"community:{community.id}:starter:{player_id}",
                              source=communities.STARTER_SOURCE, reference={"community_id": community.id})


# Analytics ------------------------------------------------------------------------------------------


def _ratio(joins: int, visitors: int) -> float:
    return round(joins / visitors, 4) if visitors else 0.0


def _days(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    last = last or today
    first = first or last - timedelta(days=29)
    if first > last:
        raise Unprocessable("first_day is after last_day", code="invalid_range")
    if (last - first).days >= MAX_DAYS:
        raise Unprocessable(f"at most {MAX_DAYS} days at once", code="invalid_range", extra={"max_days": MAX_DAYS})
    return first, last


async def analytics(session: AsyncSession, runtime: Runtime, app_id: str, ref: str, *, actor_player: str | None,
                    first_day: date | None, last_day: date | None) -> LinkAnalytics:
    """Clicks, unique visitors, joins and conversion of a community's links, by day and by member."""
    community = await communities.moderated(session, app_id, ref, actor_player=actor_player)
    first, last = _days(first_day, last_day, runtime.clock.now().date())
    lo, hi = first.isoformat(), last.isoformat()
    clicks: dict[tuple[str, str | None], int] = defaultdict(int)
    filtered: dict[str, int] = defaultdict(int)
    for day, code, outcome, count, _visitors in await repo.click_counts(session, community.id, lo, hi):
        if outcome == "counted":
            clicks[(day, code)] += count
        else:
            filtered[day] += count
    visitors = {day: count for day, count in await repo.day_visitors(session, community.id, lo, hi)}
    joins: dict[tuple[str, str | None], int] = defaultdict(int)
    for day, code, count in await repo.join_counts(session, community.id, lo, hi):
        joins[(day, code)] += count
    codes = {code for _, code in [*clicks, *joins] if code is not None}
    players = await communities_repo.codes_of(session, community.id, codes)

    by_day = []
    for offset in range((last - first).days + 1):
        day = (first + timedelta(days=offset)).isoformat()
        day_clicks = sum(n for (d, _), n in clicks.items() if d == day)
        day_joins = sum(n for (d, _), n in joins.items() if d == day)
        by_day.append(DayStats(day=date.fromisoformat(day), clicks=day_clicks, unique_visitors=visitors.get(day, 0),
                               joins=day_joins, conversion=_ratio(day_joins, visitors.get(day, 0)),
                               filtered=filtered.get(day, 0)))
    by_member = []
    for code in sorted({c for _, c in [*clicks, *joins]}, key=lambda c: (c is not None, c or "")):
        member_clicks = sum(n for (_, c), n in clicks.items() if c == code)
        member_joins = sum(n for (_, c), n in joins.items() if c == code)
        # A visitor counts once a day per link: on one member's link, clicks are that day's visitors.
        by_member.append(MemberStats(member_code=code, player_id=players.get(code) if code else None,
                                     clicks=member_clicks, unique_visitors=member_clicks, joins=member_joins,
                                     conversion=_ratio(member_joins, member_clicks)))
    total_visitors = sum(visitors.values())
    total_joins = sum(joins.values())
    return LinkAnalytics(
        community_id=community.id, slug=community.slug,
        link=f"/c/{community.app_id}/{community.slug}" if community.redirect_url else None,
        first_day=first, last_day=last,
        totals=LinkStats(clicks=sum(clicks.values()), unique_visitors=total_visitors, joins=total_joins,
                         conversion=_ratio(total_joins, total_visitors)),
        filtered=sum(filtered.values()), by_day=by_day, by_member=by_member)


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in text that came from outside (player ids)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def analytics_csv(found: LinkAnalytics) -> str:
    """The analytics as CSV: one row per day, then one per member link."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "day", "member_code", "player_id", "clicks", "unique_visitors", "filtered",
                     "joins", "conversion"])
    for d in found.by_day:
        writer.writerow(["day", d.day.isoformat(), "", "", d.clicks, d.unique_visitors, d.filtered, d.joins,
                         f"{d.conversion:.4f}"])
    for m in found.by_member:
        writer.writerow(["member", "", m.member_code or "", _cell(m.player_id or ""), m.clicks, m.unique_visitors,
                         "", m.joins, f"{m.conversion:.4f}"])
    t = found.totals
    writer.writerow(["total", "", "", "", t.clicks, t.unique_visitors, found.filtered, t.joins,
                     f"{t.conversion:.4f}"])
    return out.getvalue()
