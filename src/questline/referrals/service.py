"""The referral rules: codes, tracking with anti-fraud, the status pipeline, rewards and milestones.

A referral is tracked from the referrer's code when the referred player signs up. Five checks
run first; any hit flags the referral and sends it to the review queue instead of paying out:

- ``self_referral``: the referred player is the referrer;
- ``same_ip_as_referrer``: the signup IP is the referrer's recorded IP (given when their code was
  made, or their own signup's when they were referred themselves);
- ``ip_velocity``: ``max_referrals_per_ip`` (3) referrals came from the IP in ``ip_window_days`` (7);
- ``device_reused``: the device fingerprint was seen on another referral or on a referrer;
- ``duplicate_email``: another referral has the same normalized e-mail (see ``normalize_email``).

Statuses only move forward: ``pending → signed_up → converted → paid_client``, and ``churned``
after signing up. Reaching a status pays the program's rewards for it to both sides (every
status passed on the way too), through the ledger under keys derived from the referral, and
checks the referrer's milestones (a milestone's badge is an achievement, granted with it).
A flagged referral pays nothing until an admin approves it (then everything reached so far is
paid); a rejected one never pays and never counts.
All changes to one referrer's referrals are serialized by their code row's lock.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements import service as achievements
from questline.kit.errors import Conflict, Forbidden, NotFound
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.pipeline import ingest as events
from questline.players import service as players
from questline.referrals import repository as repo
from questline.referrals.models import Referral, ReferralCode
from questline.referrals.schemas import (
    PROGRAM_KEY,
    STATUS_ORDER,
    CodeIn,
    CodeOut,
    MilestoneOut,
    ReferralOut,
    ReferralProgramDef,
    ReferralSummary,
    ReviewIn,
    StatusIn,
    TrackIn,
)
from questline.rules.schemas import DefinitionBody
from questline.rules.service import RuleSet

KIND = "referral_program"
EVENT_TYPE = "questline.referral"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
GMAIL_LIKE = frozenset({"gmail.com", "googlemail.com"})
_REWARDED = ("signed_up", "converted", "paid_client")
_STAMP = {"signed_up": "signed_up_at", "converted": "converted_at", "paid_client": "paid_client_at",
          "churned": "churned_at"}


# The program ----------------------------------------------------------------------------------


def program_of(ruleset: RuleSet) -> ReferralProgramDef | None:
    spec = ruleset.of(KIND).get(PROGRAM_KEY)
    return spec if isinstance(spec, ReferralProgramDef) else None


async def check_program(session: AsyncSession, app_id: str, key: str, body: DefinitionBody,
                        pending: set[tuple[str, str]]) -> list[str]:
    assert isinstance(body, ReferralProgramDef)
    errors = []
    if key != PROGRAM_KEY:
        errors.append(f"an app has one referral program, under the key {PROGRAM_KEY!r}")
    if not await ledger.currency_exists(session, app_id, body.currency):
        errors.append(f"unknown currency {body.currency!r}; create it with PUT /v1/currencies/{body.currency}")
    return errors


# Codes ----------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """Lowercase; drop a ``+tag`` from the local part on every domain; on gmail-like domains
    (gmail.com, googlemail.com) also drop the dots and treat both domains as gmail.com."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_LIKE:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _name_part(*candidates: str | None) -> str:
    for candidate in candidates:
        if candidate:
            ascii_only = unicodedata.normalize("NFKD", candidate).encode("ascii", "ignore").decode()
            letters = "".join(ch for ch in ascii_only.split(" ")[0].upper() if ch.isalnum())[:10]
            if letters:
                return letters
    return "PLAYER"


def _code_out(row: ReferralCode, program: ReferralProgramDef | None) -> CodeOut:
    link = program.link.replace("{code}", row.code) if program and program.link else None
    message = None
    if program and program.sharing_message:
        message = program.sharing_message.replace("{code}", row.code).replace("{link}", link or "")
    return CodeOut(player_id=row.player_id, code=row.code, referral_url=link, sharing_message=message,
                   created_at=row.created_at)


async def code_for(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, player_id: str,
                   body: CodeIn, *, trusted: bool) -> tuple[CodeOut, bool]:
    """The player's code, made on first request (``NAME-WORD-X7Y2``); returns it and whether it is new.

    Only the server key may record the referrer's IP and device (for the anti-fraud checks).
    """
    if (body.ip or body.device_fingerprint) and not trusted:
        raise Forbidden("only the server key records a referrer's IP and device", code="server_key_required")
    clock = runtime.clock
    program = program_of(ruleset)
    await players.ensure_players(session, clock, app_id, [player_id])
    now = clock.now()
    existing = await repo.code_of_player(session, app_id, player_id)
    if existing is None:
        player = await players.get_player(session, app_id, player_id)
        name = _name_part(player.display_name, player.username, player.real_name, player_id)
        word = program.code_word if program else "REF"
        for attempt in range(30):
            length = 4 if attempt < 10 else 6
            code = f"{name}-{word}-{''.join(secrets.choice(CODE_ALPHABET) for _ in range(length))}"
            if await repo.insert_code(session, {"app_id": app_id, "player_id": player_id, "code": code,
                                                "ip": body.ip, "device_fingerprint": body.device_fingerprint,
                                                "created_at": now, "updated_at": now}):
                break
            if await repo.code_of_player(session, app_id, player_id) is not None:
                break  # made meanwhile by a racing request
        row = await repo.code_of_player(session, app_id, player_id)
        if row is None:  # pragma: no cover - 30 collisions in a row
            raise Conflict("could not find a free referral code; retry", code="code_space_exhausted")
        return _code_out(row, program), row.code == code
    if body.ip or body.device_fingerprint:
        await repo.record_referrer_device(session, app_id, player_id, body.ip, body.device_fingerprint, now)
    return _code_out(existing, program), False


# Tracking -------------------------------------------------------------------------------------


async def _fraud_reasons(session: AsyncSession, app_id: str, code: ReferralCode, body: TrackIn,
                         program: ReferralProgramDef, email_hash: str | None, now: Any) -> list[str]:
    reasons = []
    if body.referred_player_id == code.player_id:
        reasons.append("self_referral")
    if body.ip is not None:
        own = await repo.of_referee(session, app_id, code.player_id)
        if body.ip in {code.ip, own.ip if own else None}:
            reasons.append("same_ip_as_referrer")
        since = now - timedelta(days=program.ip_window_days)
        if await repo.count_from_ip(session, app_id, body.ip, since) >= program.max_referrals_per_ip:
            reasons.append("ip_velocity")
    if body.device_fingerprint is not None and await repo.device_used(session, app_id, body.device_fingerprint):
        reasons.append("device_reused")
    if email_hash is not None and await repo.email_used(session, app_id, email_hash):
        reasons.append("duplicate_email")
    return reasons


async def track(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str,
                body: TrackIn) -> ReferralOut:
    """Record that a player signed up (or was invited) with a referrer's code."""
    now = runtime.clock.now()
    code = await repo.lock_code(session, app_id, body.code.upper(), now)
    if code is None:
        raise NotFound(f"referral code {body.code!r} not found", code="referral_code_not_found")
    if (existing := await repo.of_referee(session, app_id, body.referred_player_id)) is not None:
        raise Conflict(f"player {body.referred_player_id} was referred already", code="already_referred",
                       extra={"referral_id": existing.id})
    program = program_of(ruleset) or ReferralProgramDef()
    normalized = normalize_email(body.email) if body.email else None
    email_hash = hashlib.sha256(normalized.encode()).hexdigest() if normalized else None
    reasons = await _fraud_reasons(session, app_id, code, body, program, email_hash, now)
    await players.ensure_players(session, runtime.clock, app_id, {code.player_id, body.referred_player_id})
    referral_id = new_id("rfl")
    inserted = await repo.insert_referral(session, {
        "id": referral_id, "app_id": app_id, "code": code.code, "referrer_id": code.player_id,
        "referee_id": body.referred_player_id, "status": body.status, "flagged": bool(reasons),
        "fraud_reasons": reasons, "review": "pending" if reasons else "none", "reviewed_by": None,
        "review_note": None, "email_hash": email_hash,
        "email_domain": normalized.rpartition("@")[2] if normalized else None,
        "ip": body.ip, "device_fingerprint": body.device_fingerprint, "attribution": body.attribution, "revenue": 0,
        "referrer_points": 0, "referee_points": 0, "rewarded": [], "created_at": now, "updated_at": now,
        "signed_up_at": now if body.status == "signed_up" else None, "converted_at": None, "paid_client_at": None,
        "churned_at": None,
    })
    if not inserted:
        raise Conflict(f"player {body.referred_player_id} was referred already", code="already_referred")
    return await _after_change(session, runtime, ruleset, app_id, referral_id, body.status)


# Status and review ----------------------------------------------------------------------------


async def _locked(session: AsyncSession, runtime: Runtime, app_id: str, referral_id: str) -> Referral:
    found = await repo.get(session, app_id, referral_id)
    if found is None:
        raise NotFound(f"referral {referral_id} not found", code="referral_not_found")
    await repo.lock_code(session, app_id, found.code, runtime.clock.now())
    locked = await repo.get(session, app_id, referral_id)
    assert locked is not None
    return locked


async def set_status(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, referral_id: str,
                     body: StatusIn) -> ReferralOut:
    """Move a referral forward (statuses skipped on the way count as reached); never backwards."""
    referral = await _locked(session, runtime, app_id, referral_id)
    now = runtime.clock.now()
    current, wanted = STATUS_ORDER.index(referral.status), STATUS_ORDER.index(body.status)
    if referral.status == "churned" or wanted < current or (body.status == "churned" and current == 0):
        raise Conflict(f"a referral cannot go from {referral.status} to {body.status}", code="invalid_transition",
                       extra={"from": referral.status, "to": body.status})
    values: dict[str, Any] = {"updated_at": now}
    if body.revenue is not None:
        values["revenue"] = body.revenue
    if wanted > current:
        values["status"] = body.status
        passed = STATUS_ORDER[current + 1:wanted + 1] if body.status != "churned" else ("churned",)
        for status in passed:
            if getattr(referral, _STAMP[status]) is None:
                values[_STAMP[status]] = now
        if body.status == "churned" and referral.signed_up_at is None:  # pragma: no cover - refused above
            values["signed_up_at"] = now
    await repo.update(session, app_id, referral_id, values)
    return await _after_change(session, runtime, ruleset, app_id, referral_id, body.status)


async def review(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, referral_id: str,
                 decision: str, body: ReviewIn, actor: str) -> ReferralOut:
    """An admin's verdict on a flagged referral: ``approved`` pays what it reached, ``rejected`` never pays."""
    referral = await _locked(session, runtime, app_id, referral_id)
    if referral.review != "pending":
        raise Conflict(f"referral {referral_id} is not waiting for review (review: {referral.review})",
                       code="not_in_review", extra={"review": referral.review})
    await repo.update(session, app_id, referral_id, {"review": decision, "reviewed_by": actor,
                                                     "review_note": body.note, "updated_at": runtime.clock.now()})
    return await _after_change(session, runtime, ruleset, app_id, referral_id, decision)


async def _after_change(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, referral_id: str,
                        what: str) -> ReferralOut:
    """Pay what is due, award milestones, and tell the pipeline about the referrer."""
    referral = await repo.get(session, app_id, referral_id)
    assert referral is not None
    program = program_of(ruleset)
    milestones: list[MilestoneOut] = []
    if program is not None and referral.review in repo.COUNTED_REVIEWS:
        await _pay(session, runtime, program, referral)
        milestones = await _milestones(session, runtime, ruleset, program, app_id, referral.referrer_id)
    # An engine event for the referrer, so achievements see referrals.count without waiting for their next event.
    await events.append_internal(session, runtime, app_id=app_id, player_id=referral.referrer_id,
                                 event_id=f"referral:{referral_id}:{what}", type_=EVENT_TYPE,
                                 data={"referral_id": referral_id, "referee_id": referral.referee_id,
                                       "status": referral.status, "review": referral.review})
    refreshed = await repo.get(session, app_id, referral_id)
    out = ReferralOut.model_validate(refreshed)
    out.milestones = milestones
    return out


async def _pay(session: AsyncSession, runtime: Runtime, program: ReferralProgramDef, referral: Referral) -> None:
    paid = list(referral.rewarded)
    to_referrer = to_referee = 0
    for status in _REWARDED:
        if status in paid or getattr(referral, _STAMP[status]) is None:
            continue
        paid.append(status)
        rewards = program.rewards.get(status)  # type: ignore[call-overload]
        if rewards is None:
            continue
        for side, player_id, amount in (("referrer", referral.referrer_id, rewards.referrer),
                                        ("referee", referral.referee_id, rewards.referee)):
            if amount <= 0 or referral.referrer_id == referral.referee_id:
                continue
            await ledger.credit_player(
                session, runtime.clock, app_id=referral.app_id, player_id=player_id, currency=program.currency,
                amount=amount, idempotency_key=f"referral:{referral.id}:{status}:{side}", source="referral",
                reference={"referral_id": referral.id, "status": status, "side": side},
                description=f"referral {status.replace('_', ' ')} bonus ({side})",
            )
            if side == "referrer":
                to_referrer += amount
            else:
                to_referee += amount
    if paid != referral.rewarded:
        await repo.update(session, referral.app_id, referral.id, {"rewarded": paid})
        await repo.add_points(session, referral.app_id, referral.id, to_referrer, to_referee)


async def _milestones(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, program: ReferralProgramDef,
                      app_id: str, referrer_id: str) -> list[MilestoneOut]:
    count, conversions = await repo.counted(session, app_id, referrer_id)
    reached = []
    now = runtime.clock.now()
    for milestone in program.milestones:
        if count < milestone.referrals or (milestone.conversions and conversions < milestone.conversions):
            continue
        row = {"app_id": app_id, "player_id": referrer_id, "tier": milestone.tier, "name": milestone.name,
               "referrals": count, "points": milestone.points, "badge": milestone.badge, "title": milestone.title,
               "transaction_id": None, "awarded_at": now}
        if not await repo.insert_milestone(session, row):
            continue
        if milestone.points:
            txn = await ledger.credit_player(
                session, runtime.clock, app_id=app_id, player_id=referrer_id, currency=program.currency,
                amount=milestone.points, idempotency_key=f"referral-milestone:{referrer_id}:{milestone.tier}",
                source="referral_milestone", reference={"tier": milestone.tier}, description=milestone.name,
            )
            await repo.set_milestone_transaction(session, app_id, referrer_id, milestone.tier, txn.id)
        if milestone.badge is not None:
            await achievements.grant_badge(session, runtime.clock, ruleset, app_id, referrer_id, milestone.badge,
                                           source="referral_milestone", reference={"tier": milestone.tier})
        reached.append(MilestoneOut(tier=milestone.tier, name=milestone.name, referrals=count,
                                    points=milestone.points, badge=milestone.badge, title=milestone.title,
                                    awarded_at=now))
    return reached


# Reads ----------------------------------------------------------------------------------------


async def get_referral(session: AsyncSession, app_id: str, referral_id: str) -> ReferralOut:
    found = await repo.get(session, app_id, referral_id)
    if found is None:
        raise NotFound(f"referral {referral_id} not found", code="referral_not_found")
    return ReferralOut.model_validate(found)


async def review_queue(session: AsyncSession, app_id: str, page: PageParams) -> Page[ReferralOut]:
    rows = await repo.review_page(session, app_id, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda r: [r.id])
    return Page[ReferralOut](items=[ReferralOut.model_validate(r) for r in built.items],
                             next_cursor=built.next_cursor)


async def summary(session: AsyncSession, ruleset: RuleSet, app_id: str, player_id: str) -> ReferralSummary:
    await players.get_player(session, app_id, player_id)
    program = program_of(ruleset)
    code = await repo.code_of_player(session, app_id, player_id)
    count, conversions = await repo.counted(session, app_id, player_id)
    awarded = await repo.milestones_of(session, app_id, player_id)
    have = {m.tier for m in awarded}
    upcoming = [m for m in (program.milestones if program else []) if m.tier not in have]
    return ReferralSummary(
        player_id=player_id, code=code.code if code else None,
        referral_url=_code_out(code, program).referral_url if code else None, counted=count,
        conversions=conversions, by_status=await repo.by_status(session, app_id, player_id),
        milestones=[MilestoneOut.model_validate(m) for m in awarded], next_milestone=upcoming[0] if upcoming else None,
    )


async def titles_of(session: AsyncSession, app_id: str, player_id: str) -> list[tuple[str, str, datetime]]:
    """(title, milestone tier, awarded at) of every referral milestone reached that carried a title."""
    return [(m.title, m.tier, m.awarded_at) for m in await repo.milestones_of(session, app_id, player_id) if m.title]
