"""Brands and streamers: accounts with their own sign-in, profiles, wallets, and the app's market settings.

Who may change what:

- A brand's owners change its profile and members; its members act for it (campaigns).
- A streamer changes what they say about themself (name, content categories, channel names, bank
  details). What campaign targeting reads (audience numbers, demographics, channel verification)
  only the platform's server key or its app admins set: nothing a streamer writes opens a gate.
- Money enters a wallet only by a trusted deposit (server key or app admin) until payment
  providers exist; campaigns move it through ``ledger.service``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.kit.security import dummy_password_hash, hash_password, sign_token, verify_password
from questline.ledger import service as ledger
from questline.ledger.schemas import DepositIn, TransactionOut, WalletOut
from questline.players import service as players
from questline.players.schemas import AccountUpdate
from questline.sponsors import bridge, sealing
from questline.sponsors import repository as repo
from questline.sponsors.models import Brand, BrandMember, Streamer
from questline.sponsors.schemas import (
    AccountToken,
    AudienceIn,
    BankDetailsIn,
    BankDetailsOut,
    BrandIn,
    BrandOut,
    BrandPatch,
    Demographics,
    MarketSettings,
    MemberIn,
    MemberOut,
    PlatformIn,
    PlatformOut,
    StreamerIn,
    StreamerOut,
    StreamerPatch,
    VerificationIn,
)
from questline.tenancy.auth import ADMIN, BRAND, BRAND_AUDIENCE, SERVER, STREAMER, STREAMER_AUDIENCE, Caller

# Settings -------------------------------------------------------------------------------------


async def market_settings(session: AsyncSession, app_id: str) -> MarketSettings:
    body = await repo.settings_of(session, app_id)
    return MarketSettings() if body is None else MarketSettings.model_validate(body)


async def put_market_settings(session: AsyncSession, clock: Clock, app_id: str,
                              body: MarketSettings) -> MarketSettings:
    await repo.put_settings(session, app_id, body.model_dump(mode="json"), clock.now())
    return body


# Tokens and sign-in ---------------------------------------------------------------------------


def _token(runtime: Runtime, app_id: str, role: str, account_id: str, subject: str,
           player_id: str | None = None) -> AccountToken:
    now = runtime.clock.now()
    expires = now + timedelta(seconds=runtime.settings.account_token_ttl_seconds)
    claims: dict[str, Any] = {"app": app_id, "acct": account_id}
    if player_id is not None:
        claims["pid"] = player_id
    token = sign_token(runtime.settings.signing_key(),
                       audience=BRAND_AUDIENCE if role == "brand" else STREAMER_AUDIENCE, subject=subject,
                       issued_at=now, expires_at=expires, claims=claims)
    return AccountToken(token=token, expires_at=expires, role=role,
                        account_id=account_id, member_id=subject if role == "brand" else None)


async def _password_matches(password: str, stored: str | None) -> bool:
    # Unknown e-mails are checked against a dummy hash so timing does not tell who has an account;
    # argon2 is slow on purpose and runs in a thread.
    return await asyncio.to_thread(verify_password, password, stored or dummy_password_hash()) and stored is not None


async def _limit_logins(runtime: Runtime, app_id: str, email: str) -> None:
    await runtime.limiter.enforce(runtime.settings.rate_limit_login, "market-login", app_id, email,
                                  what="sign-ins to this account")


async def login_brand(session: AsyncSession, runtime: Runtime, app_id: str, email: str,
                      password: str) -> AccountToken:
    email = email.strip().lower()
    await _limit_logins(runtime, app_id, email)
    member = await repo.member_by_email(session, app_id, email)
    valid = await _password_matches(password, member.password_hash if member else None)
    if not valid or member is None or member.removed_at is not None:
        raise Unauthorized("e-mail or password is wrong", code="invalid_credentials")
    return _token(runtime, app_id, "brand", member.brand_id, member.id)


async def login_streamer(session: AsyncSession, runtime: Runtime, app_id: str, email: str,
                         password: str) -> AccountToken:
    email = email.strip().lower()
    await _limit_logins(runtime, app_id, email)
    streamer = await repo.streamer_by_email(session, app_id, email)
    valid = await _password_matches(password, streamer.password_hash if streamer else None)
    if not valid or streamer is None:
        raise Unauthorized("e-mail or password is wrong", code="invalid_credentials")
    return _token(runtime, app_id, "streamer", streamer.id, streamer.id, streamer.player_id)


# Brands ---------------------------------------------------------------------------------------


def brand_out(brand: Brand) -> BrandOut:
    return BrandOut(id=brand.id, company_name=brand.company_name, industry=brand.industry,
                    contact_person=brand.contact_person, billing=brand.billing,
                    marketing_preferences=brand.marketing,
                    created_at=brand.created_at, updated_at=brand.updated_at)


def member_out(member: BrandMember) -> MemberOut:
    return MemberOut(id=member.id, brand_id=member.brand_id, email=member.email, name=member.name,
                     role=member.role, created_at=member.created_at,
                     removed_at=member.removed_at)


async def _claim_email(session: AsyncSession, app_id: str, email: str) -> str:
    email = email.strip().lower()
    if await repo.email_taken(session, app_id, email):
        raise Conflict(f"{email} already has a marketplace account in this app", code="email_taken")
    return email


async def _insert_member(session: AsyncSession, clock: Clock, app_id: str, brand_id: str,
                         body: MemberIn, role: str) -> BrandMember:
    email = await _claim_email(session, app_id, body.email)
    member_id = new_id("mbr")
    password_hash = await asyncio.to_thread(hash_password, body.password)
    inserted = await repo.insert_member(session, {
        "id": member_id, "app_id": app_id, "brand_id": brand_id, "email": email, "name": body.name, "role": role,
        "password_hash": password_hash, "created_at": clock.now(), "removed_at": None,
    })
    if not inserted:
        raise Conflict(f"{email} already has a marketplace account in this app", code="email_taken")
    member = await repo.get_member(session, app_id, member_id)
    assert member is not None
    return member


async def create_brand(session: AsyncSession, clock: Clock, app_id: str, body: BrandIn) -> BrandOut:
    now = clock.now()
    brand = Brand(id=new_id("brd"), app_id=app_id, company_name=body.company_name, industry=body.industry,
                  contact_person=body.contact_person.model_dump(), billing=body.billing.model_dump(),
                  marketing=body.marketing_preferences.model_dump(), created_at=now, updated_at=now)
    await _claim_email(session, app_id, body.owner.email)
    await repo.add(session, brand)
    await _insert_member(session, clock, app_id, brand.id, body.owner, "owner")
    return brand_out(brand)


async def get_brand(session: AsyncSession, app_id: str, brand_id: str) -> Brand:
    brand = await repo.get_brand(session, app_id, brand_id)
    if brand is None:
        raise NotFound(f"brand {brand_id} not found", code="brand_not_found")
    return brand


async def brands_by_id(session: AsyncSession, app_id: str, ids: list[str]) -> dict[str, Brand]:
    return await repo.brands_by_id(session, app_id, ids)


async def list_brands(session: AsyncSession, app_id: str, page: PageParams) -> Page[BrandOut]:
    rows = await repo.brands_page(session, app_id, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda b: [b.id])
    return Page[BrandOut](items=[brand_out(b) for b in built.items], next_cursor=built.next_cursor)


async def acting_member(session: AsyncSession, caller: Caller, brand_id: str) -> BrandMember | None:
    """The brand member behind a brand token (None for the server key and admins).

    A token of another brand is a 404 (no probing); a member removed since signing in is a 401.
    """
    if caller.kind is not BRAND:
        return None
    if caller.account_id != brand_id:
        raise NotFound(f"brand {brand_id} not found", code="brand_not_found")
    assert caller.member_id is not None
    member = await repo.get_member(session, caller.app, caller.member_id)
    if member is None or member.removed_at is not None or member.brand_id != brand_id:
        raise Unauthorized("this brand member was removed; sign in again", code="invalid_token")
    return member


async def authorize_brand(session: AsyncSession, caller: Caller, brand_id: str, *, owner: bool = False) -> Brand:
    """The brand, if the caller may act for it: the server key, an app admin, or one of its members
    (its owners only, with ``owner``)."""
    if caller.kind not in (SERVER, ADMIN, BRAND):
        raise Forbidden(f"a {caller.kind} credential may not act for a brand", code="caller_not_allowed")
    member = await acting_member(session, caller, brand_id)
    if owner and member is not None and member.role != "owner":
        raise Forbidden("only the brand's owners may do this", code="brand_owner_required")
    return await get_brand(session, caller.app, brand_id)


async def update_brand(session: AsyncSession, clock: Clock, caller: Caller, brand_id: str,
                       patch: BrandPatch) -> BrandOut:
    await authorize_brand(session, caller, brand_id, owner=True)
    values: dict[str, Any] = {}
    for field, column in (("company_name", "company_name"), ("industry", "industry"),
                          ("contact_person", "contact_person"), ("billing", "billing"),
                          ("marketing_preferences", "marketing")):
        value = getattr(patch, field)
        if value is not None:
            values[column] = value.model_dump() if hasattr(value, "model_dump") else value
    if values:
        values["updated_at"] = clock.now()
        await repo.update_brand(session, caller.app, brand_id, values)
    return brand_out(await get_brand(session, caller.app, brand_id))


async def add_member(session: AsyncSession, clock: Clock, caller: Caller, brand_id: str, body: MemberIn) -> MemberOut:
    await authorize_brand(session, caller, brand_id, owner=True)
    return member_out(await _insert_member(session, clock, caller.app, brand_id, body, body.role))


async def list_members(session: AsyncSession, caller: Caller, brand_id: str) -> list[MemberOut]:
    await authorize_brand(session, caller, brand_id)
    return [member_out(m) for m in await repo.members_of(session, caller.app, brand_id)]


async def remove_member(session: AsyncSession, clock: Clock, caller: Caller, brand_id: str,
                        member_id: str) -> MemberOut:
    await authorize_brand(session, caller, brand_id, owner=True)
    member = await repo.get_member(session, caller.app, member_id)
    if member is None or member.brand_id != brand_id:
        raise NotFound(f"member {member_id} not found", code="member_not_found")
    if member.removed_at is not None:
        raise Conflict(f"member {member_id} was already removed", code="member_removed")
    if member.role == "owner" and await repo.count_owners(session, caller.app, brand_id) <= 1:
        raise Conflict("a brand keeps at least one owner; add another owner first", code="last_owner")
    await repo.remove_member(session, caller.app, member_id, clock.now())
    updated = await repo.get_member(session, caller.app, member_id)
    assert updated is not None
    return member_out(updated)


# Streamers ------------------------------------------------------------------------------------


def _platform_row(given: PlatformIn, before: dict[str, Any] | None) -> dict[str, Any]:
    same_channel = before is not None and before["username"] == given.username \
        and before["channel_url"] == given.channel_url
    if same_channel:
        assert before is not None
        return dict(before)
    # A new or changed channel is unverified and has no audience numbers until the platform sets them.
    return {"name": given.name, "username": given.username, "channel_url": given.channel_url, "followers": 0,
            "average_viewers": 0, "peak_viewers": 0, "content_categories": [], "verification_status": "pending",
            "verification_reason": None}


def _seal_bank(runtime: Runtime, app_id: str, streamer_id: str, bank: BankDetailsIn) -> tuple[str, dict[str, Any]]:
    plaintext = orjson.dumps(bank.model_dump())
    sealed = sealing.seal(sealing.data_key(runtime.settings), plaintext, f"{app_id}/{streamer_id}/bank")
    hint = {"account_holder": bank.account_holder, "last4": bank.account_details[-4:],
            "preferred_payment_method": bank.preferred_payment_method}
    return sealed, hint


def bank_details(runtime: Runtime, streamer: Streamer) -> BankDetailsIn | None:
    """The full bank details, unsealed (for payouts; never for a response)."""
    if streamer.bank_sealed is None:
        return None
    plaintext = sealing.unseal(sealing.data_key(runtime.settings), streamer.bank_sealed,
                               f"{streamer.app_id}/{streamer.id}/bank")
    return BankDetailsIn.model_validate(orjson.loads(plaintext))


def streamer_out(streamer: Streamer) -> StreamerOut:
    hint = streamer.bank_hint
    bank = None if hint is None else BankDetailsOut(
        account_holder=hint["account_holder"], account_details=f"•••• {hint['last4']}",
        preferred_payment_method=hint["preferred_payment_method"])
    return StreamerOut(id=streamer.id, player_id=streamer.player_id, email=streamer.email,
                       display_name=streamer.display_name, content_categories=streamer.content_categories,
                       platforms=[PlatformOut.model_validate(p) for p in streamer.platforms],
                       demographics=Demographics.model_validate(streamer.demographics), bank_details=bank,
                       created_at=streamer.created_at, updated_at=streamer.updated_at)


async def create_streamer(session: AsyncSession, runtime: Runtime, caller: Caller, body: StreamerIn) -> StreamerOut:
    """Sign a streamer up: their account, their player (created or linked), and the signup rewards, once."""
    app_id = caller.app
    if body.player_id is not None and not caller.is_trusted:
        raise Forbidden("only the server key or an app admin may link a streamer to an existing player",
                        code="player_link_not_allowed")
    email = await _claim_email(session, app_id, body.email)
    streamer_id = new_id("str")
    player_id = body.player_id or streamer_id
    if await repo.streamer_by_player(session, app_id, player_id) is not None:
        raise Conflict(f"player {player_id} is already a streamer", code="player_is_streamer")
    now = runtime.clock.now()
    sealed, hint = (None, None)
    if body.bank_details is not None:
        sealed, hint = _seal_bank(runtime, app_id, streamer_id, body.bank_details)
    password_hash = await asyncio.to_thread(hash_password, body.password)
    inserted = await repo.insert_streamer(session, {
        "id": streamer_id, "app_id": app_id, "player_id": player_id, "email": email, "password_hash": password_hash,
        "display_name": body.display_name, "content_categories": list(dict.fromkeys(body.content_categories)),
        "platforms": [_platform_row(p, None) for p in body.platforms], "demographics": Demographics().model_dump(),
        "bank_sealed": sealed, "bank_hint": hint, "created_at": now, "updated_at": now,
    })
    if not inserted:  # a racing sign-up with the same e-mail or player won
        raise Conflict(f"{email} or player {player_id} already has a streamer account", code="email_taken")
    # A new player is named after the streamer; a linked one keeps its name. A time zone is set if given.
    fields: dict[str, Any] = {} if body.player_id is not None else {"display_name": body.display_name}
    if body.timezone is not None:
        fields["timezone"] = body.timezone
    changes = AccountUpdate(**fields)
    await players.upsert_player(session, runtime.clock, app_id, player_id, changes)
    for reward in (await market_settings(session, app_id)).signup_rewards:
        await bridge.award_xp(session, runtime, app_id=app_id, player_id=player_id, track=reward.track,
                              amount=reward.amount, event_id=f"streamer-signup:{streamer_id}:{reward.track}",
                              reason="streamer_signup")
    return streamer_out(await get_streamer(session, app_id, streamer_id))


async def get_streamer(session: AsyncSession, app_id: str, streamer_id: str, *, lock: bool = False) -> Streamer:
    streamer = await repo.get_streamer(session, app_id, streamer_id, lock=lock)
    if streamer is None:
        raise NotFound(f"streamer {streamer_id} not found", code="streamer_not_found")
    return streamer


async def streamers_by_id(session: AsyncSession, app_id: str, ids: list[str]) -> dict[str, Streamer]:
    return await repo.streamers_by_id(session, app_id, ids)


async def list_streamers(session: AsyncSession, app_id: str, page: PageParams) -> Page[StreamerOut]:
    rows = await repo.streamers_page(session, app_id, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda s: [s.id])
    return Page[StreamerOut](items=[streamer_out(s) for s in built.items], next_cursor=built.next_cursor)


def authorize_streamer(caller: Caller, streamer_id: str) -> None:
    """The streamer themself, the server key or an app admin; another streamer's token is a 404."""
    if caller.kind is STREAMER:
        if caller.account_id != streamer_id:
            raise NotFound(f"streamer {streamer_id} not found", code="streamer_not_found")
        return
    if caller.kind not in (SERVER, ADMIN):
        raise Forbidden(f"a {caller.kind} credential may not act for a streamer", code="caller_not_allowed")


async def update_streamer(session: AsyncSession, runtime: Runtime, caller: Caller, streamer_id: str,
                          patch: StreamerPatch) -> StreamerOut:
    authorize_streamer(caller, streamer_id)
    app_id = caller.app
    streamer = await get_streamer(session, app_id, streamer_id)
    values: dict[str, Any] = {}
    if patch.display_name is not None:
        values["display_name"] = patch.display_name
    if patch.content_categories is not None:
        values["content_categories"] = list(dict.fromkeys(patch.content_categories))
    if patch.platforms is not None:
        before = {p["name"]: p for p in streamer.platforms}
        values["platforms"] = [_platform_row(p, before.get(p.name)) for p in patch.platforms]
    if patch.bank_details is not None:
        values["bank_sealed"], values["bank_hint"] = _seal_bank(runtime, app_id, streamer_id, patch.bank_details)
    if patch.password is not None:
        values["password_hash"] = await asyncio.to_thread(hash_password, patch.password)
    if values:
        values["updated_at"] = runtime.clock.now()
        await repo.update_streamer(session, app_id, streamer_id, values)
    return streamer_out(await get_streamer(session, app_id, streamer_id))


async def set_audience(session: AsyncSession, clock: Clock, app_id: str, streamer_id: str,
                       body: AudienceIn) -> StreamerOut:
    """Trusted facts about a streamer's audience (targeting reads these)."""
    streamer = await get_streamer(session, app_id, streamer_id)
    platforms = [dict(p) for p in streamer.platforms]
    by_name = {p["name"]: p for p in platforms}
    unknown = sorted(set(body.platforms) - set(by_name))
    if unknown:
        raise Unprocessable(f"the streamer has no {unknown[0]} channel", code="unknown_platform",
                            extra={"platforms": unknown})
    for name, facts in body.platforms.items():
        by_name[name].update(facts.model_dump())
    values: dict[str, Any] = {"platforms": platforms, "updated_at": clock.now()}
    if body.demographics is not None:
        values["demographics"] = body.demographics.model_dump()
    await repo.update_streamer(session, app_id, streamer_id, values)
    return streamer_out(await get_streamer(session, app_id, streamer_id))


async def set_verification(session: AsyncSession, clock: Clock, app_id: str, streamer_id: str, platform: str,
                           body: VerificationIn) -> StreamerOut:
    streamer = await get_streamer(session, app_id, streamer_id)
    platforms = [dict(p) for p in streamer.platforms]
    found = next((p for p in platforms if p["name"] == platform), None)
    if found is None:
        raise NotFound(f"the streamer has no {platform} channel", code="unknown_platform")
    found["verification_status"], found["verification_reason"] = body.status, body.reason
    await repo.update_streamer(session, app_id, streamer_id, {"platforms": platforms, "updated_at": clock.now()})
    return streamer_out(await get_streamer(session, app_id, streamer_id))


@dataclass(frozen=True)
class StreamerFacts:
    """What targeting and conflict rules may rely on: only trusted facts and verified channels."""

    streamer_id: str
    player_id: str
    verified_platforms: tuple[str, ...]
    followers: int  # the largest audience among verified channels
    categories: tuple[str, ...]  # the verified channels' content categories
    country: str | None
    content_categories: tuple[str, ...]  # what the streamer says they stream (discovery only)

    def as_data(self) -> dict[str, Any]:
        return {"id": self.streamer_id, "player_id": self.player_id, "platforms": list(self.verified_platforms),
                "followers": self.followers, "categories": list(self.categories), "country": self.country,
                "content_categories": list(self.content_categories)}


def facts_of(streamer: Streamer) -> StreamerFacts:
    verified = [p for p in streamer.platforms if p.get("verification_status") == "verified"]
    categories = dict.fromkeys(c for p in verified for c in p.get("content_categories", []))
    return StreamerFacts(
        streamer_id=streamer.id, player_id=streamer.player_id,
        verified_platforms=tuple(sorted(p["name"] for p in verified)),
        followers=max((int(p.get("followers", 0)) for p in verified), default=0),
        categories=tuple(categories), country=(streamer.demographics or {}).get("primary_country"),
        content_categories=tuple(streamer.content_categories),
    )


# Wallets --------------------------------------------------------------------------------------


async def deposit_to_brand(session: AsyncSession, clock: Clock, caller: Caller, brand_id: str, body: DepositIn,
                           idempotency_key: str) -> TransactionOut:
    """A trusted deposit into a brand's wallet (the server key or an app admin says the money arrived)."""
    await get_brand(session, caller.app, brand_id)
    return await ledger.deposit(session, clock, app_id=caller.app, owner_kind="brand", owner_id=brand_id,
                                currency=body.currency, amount=body.amount,
                                idempotency_key=f"deposit:{brand_id}:{idempotency_key}",
                                reference=body.reference, description=body.description, actor=caller.identity)


async def brand_wallet(session: AsyncSession, caller: Caller, brand_id: str) -> WalletOut:
    await authorize_brand(session, caller, brand_id)
    return await ledger.wallet_of(session, caller.app, "brand", brand_id)


async def streamer_wallet(session: AsyncSession, caller: Caller, streamer_id: str) -> WalletOut:
    authorize_streamer(caller, streamer_id)
    await get_streamer(session, caller.app, streamer_id)
    return await ledger.wallet_of(session, caller.app, "streamer", streamer_id)


async def platform_wallet(session: AsyncSession, app_id: str) -> WalletOut:
    return await ledger.wallet_of(session, app_id, "platform", ledger.PLATFORM_REVENUE)
