"""The community rules: creation with a unique slug, joining (open or by invite, auto-approved or
queued, within ``max_members``), member metadata validation, moderation by community admins,
a starter reward of any kind (points through the ledger, an item, or a reward fulfilment record:
token, NFT, in-game, webhook), and who referred whom (declared, or proven by a link's click id).

Callers are either trusted (the server key, app admins: ``actor_player=None``) or a player; a
player moderates only the communities they administer (``403 community_admin_required``).
``member_count`` counts active members and moves only by conditional updates, so racing joins
never pass ``max_members``.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.communities import repository as repo
from questline.communities.extension import ClickVerdict, JoinSignals, extension_of
from questline.communities.models import Community, CommunityMember
from questline.communities.schemas import (
    CommunityIn,
    CommunityOut,
    CommunityUpdate,
    JoinIn,
    MemberOut,
    MemberSchema,
    SlugAvailability,
    StarterReward,
    starter_out,
)
from questline.fulfilment import service as fulfilment
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.players import service as players
from questline.tenancy import service as tenancy

STARTER_SOURCE = "community_starter"


def _link(community: Community) -> str | None:
    """The community's public link (a path on the engine's public origin); only with a redirect URL."""
    if not community.redirect_url:
        return None
    return f"/c/{community.app_id}/{community.slug}"


def _out(community: Community) -> CommunityOut:
    return CommunityOut(
        id=community.id, slug=community.slug, name=community.name, description=community.description,
        redirect_url=community.redirect_url, link=_link(community), open=community.open,
        auto_approve=community.auto_approve,
        max_members=community.max_members, member_count=community.member_count,
        member_schema=MemberSchema.model_validate(community.member_schema),
        starter_reward=starter_out(community.starter_reward),
        created_at=community.created_at,
    )


def _member_out(member: CommunityMember, community: Community) -> MemberOut:
    link = _link(community)
    return MemberOut(
        community_id=member.community_id, player_id=member.player_id, status=member.status,
        role=member.role, metadata=member.member_metadata, referred_by=member.referred_by,
        member_code=member.member_code,
        referral_link=f"{link}/{member.member_code}" if link and member.status == "active" else None,
        starter_transaction_id=member.starter_transaction_id, starter_reference=member.starter_reference,
        admin_invited_by=member.admin_invited_by,
        note=member.note, joined_at=member.joined_at, updated_at=member.updated_at,
    )


async def _community(session: AsyncSession, app_id: str, ref: str) -> Community:
    found = await repo.find(session, app_id, ref)
    if found is None:
        raise NotFound(f"community {ref!r} not found", code="community_not_found")
    return found


async def _moderator(session: AsyncSession, community: Community, actor_player: str | None) -> None:
    if actor_player is None:
        return
    found = await repo.member(session, community.id, actor_player)
    if found is None or found.status != "active" or found.role != "admin":
        raise Forbidden(f"only admins of {community.slug!r} may do this", code="community_admin_required")


async def _member(session: AsyncSession, community: Community, player_id: str) -> CommunityMember:
    found = await repo.member(session, community.id, player_id)
    if found is None:
        raise NotFound(f"player {player_id} is not in {community.slug!r}", code="member_not_found")
    return found


def validate_metadata(schema: MemberSchema, given: dict[str, str]) -> dict[str, str]:
    """The member's metadata, checked against the community's schema (``422 invalid_metadata``)."""
    fields = {f.name: f for f in schema.all_fields()}
    errors = [f"{name}: not a field of this community" for name in sorted(set(given) - set(fields))]
    kept = {}
    for name, spec in fields.items():
        value = given.get(name, "").strip()
        if not value:
            if spec.required:
                errors.append(f"{name}: required")
            continue
        if not spec.min_length <= len(value) <= spec.max_length:
            errors.append(f"{name}: {spec.min_length} to {spec.max_length} characters")
        elif spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
            what = schema.type if name == schema.all_fields()[0].name and schema.type != "custom" else "value"
            errors.append(f"{name}: not a valid {what}")
        kept[name] = value
    if errors:
        raise Unprocessable(f"member metadata is invalid: {'; '.join(errors)}", code="invalid_metadata",
                            extra={"errors": errors})
    return kept


# Communities ----------------------------------------------------------------------------------


async def _check_starter_reward(session: AsyncSession, runtime: Runtime, app_id: str,
                                reward: StarterReward | None, actor_player: str | None) -> None:
    """Only the server key or an app admin sets a starter reward (``403 starter_reward_forbidden``);
    points never above the app's ``community_starter_reward_max`` (``422 starter_reward_over_limit``)
    and in a known currency, items known to the catalog."""
    if actor_player is not None:
        raise Forbidden("only the server key or an app admin sets a community's starter reward",
                        code="starter_reward_forbidden")
    if reward is None:
        return
    if reward.currency is not None and reward.amount is not None:
        limit = await tenancy.community_starter_reward_max(session, app_id)
        if reward.amount > limit:
            raise Unprocessable(f"the starter reward {reward.amount} is above the app's limit of {limit}",
                                code="starter_reward_over_limit", extra={"limit": limit})
        if not await ledger.currency_exists(session, app_id, reward.currency):
            raise Unprocessable(f"unknown currency {reward.currency!r}; create it with PUT /v1/currencies/"
                                f"{reward.currency}", code="unknown_currency", extra={"currency": reward.currency})
    if reward.item is not None:
        extension = extension_of(runtime)
        if extension is None:  # pragma: no cover - the composition always installs one
            raise Unprocessable("item starter rewards need the links extension", code="invalid_starter_reward")
        await extension.check_item(session, runtime, app_id, reward.item)


async def create(session: AsyncSession, runtime: Runtime, app_id: str, body: CommunityIn, *, creator: str,
                 creator_player: str | None) -> CommunityOut:
    """Make a community; the creating player (if a player made it) and ``admins`` administer it."""
    clock = runtime.clock
    now = clock.now()
    community_id = new_id("cmy")
    if body.starter_reward is not None:
        await _check_starter_reward(session, runtime, app_id, body.starter_reward, creator_player)
    # A player who creates a community administers it; the others they name are offered the role.
    offered = sorted(set(body.admins) - {creator_player}) if creator_player else []
    admins = [creator_player] if creator_player else sorted(set(body.admins))
    if body.max_members is not None and len(admins) > body.max_members:
        raise Unprocessable("more admins than max_members", code="invalid_community")
    if not await repo.insert_community(session, {
        "id": community_id, "app_id": app_id, "slug": body.slug, "name": body.name, "description": body.description,
        "redirect_url": str(body.redirect_url) if body.redirect_url else None, "open": body.open,
        "auto_approve": body.auto_approve, "max_members": body.max_members, "member_count": 0,
        "member_schema": body.member_schema.model_dump(mode="json"),
        "starter_reward": body.starter_reward.model_dump(mode="json", exclude_none=True)
        if body.starter_reward else None,
        "created_by": creator, "created_at": now, "updated_at": now,
    }):
        raise Conflict(f"the slug {body.slug!r} is taken", code="slug_taken", extra={"slug": body.slug})
    await players.ensure_players(session, clock, app_id, admins)
    for admin in admins:
        await repo.insert_member(session, {
            "community_id": community_id, "player_id": admin, "app_id": app_id, "status": "active", "role": "admin",
            "member_metadata": {}, "referred_by": None, "starter_transaction_id": None, "note": None,
            "created_at": now, "updated_at": now, "joined_at": now,
        })
        await repo.take_seat(session, community_id)
    if offered:
        await players.ensure_players(session, clock, app_id, offered)
    for invitee in offered:  # invited into the community, and offered its admin role once they are in
        await repo.insert_member(session, {
            "community_id": community_id, "player_id": invitee, "app_id": app_id, "status": "invited",
            "role": "member", "member_metadata": {}, "referred_by": None, "starter_transaction_id": None,
            "admin_invited_by": creator_player, "note": None, "created_at": now, "updated_at": now,
            "joined_at": None})
    return _out(await _community(session, app_id, community_id))


async def get(session: AsyncSession, app_id: str, ref: str) -> CommunityOut:
    return _out(await _community(session, app_id, ref))


async def slug_available(session: AsyncSession, app_id: str, slug: str) -> SlugAvailability:
    return SlugAvailability(slug=slug, available=not await repo.slug_taken(session, app_id, slug))


async def list_communities(session: AsyncSession, app_id: str, page: PageParams) -> Page[CommunityOut]:
    rows = await repo.page(session, app_id, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda c: [c.id])
    return Page[CommunityOut](items=[_out(c) for c in built.items], next_cursor=built.next_cursor)


async def update(session: AsyncSession, runtime: Runtime, app_id: str, ref: str, body: CommunityUpdate, *,
                 actor_player: str | None) -> CommunityOut:
    community = await _community(session, app_id, ref)
    await _moderator(session, community, actor_player)
    values: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)
    if "starter_reward" in values:
        await _check_starter_reward(session, runtime, app_id, body.starter_reward, actor_player)
        if body.starter_reward is not None:
            values["starter_reward"] = body.starter_reward.model_dump(mode="json", exclude_none=True)
    if values:
        values["updated_at"] = runtime.clock.now()
        await repo.update_community(session, community.id, values)
    return _out(await _community(session, app_id, community.id))


# Members --------------------------------------------------------------------------------------


async def _activate(session: AsyncSession, runtime: Runtime, community: Community, player_id: str) -> None:
    """Count the member in (``409 community_full``) and give the starter reward the first time."""
    if not await repo.take_seat(session, community.id):
        raise Conflict(f"{community.slug!r} is full ({community.max_members} members)", code="community_full")
    found = await repo.member(session, community.id, player_id)
    assert found is not None
    if community.starter_reward and found.starter_transaction_id is None and found.starter_reference is None:
        reference = await _give_starter(session, runtime, community, player_id,
                                        StarterReward.model_validate(community.starter_reward))
        values = {"starter_reference": reference}
        if reference.startswith("txn_"):
            values["starter_transaction_id"] = reference
        await repo.move_member(session, community.id, player_id, from_=["active"], values=values)


async def _give_starter(session: AsyncSession, runtime: Runtime, community: Community, player_id: str,
                        reward: StarterReward) -> str:
    """Give the starter reward; each way is keyed by (community, player), so it lands once ever."""
    key = f"{community.id}:{player_id}"
    if reward.currency is not None and reward.amount is not None:
        txn = await ledger.credit_player(
            session, runtime.clock, app_id=community.app_id, player_id=player_id, currency=reward.currency,
            amount=reward.amount, idempotency_key=f"community:{community.id}:starter:{player_id}",
            source=STARTER_SOURCE, reference={"community_id": community.id},
            description=f"welcome to {community.name}"[:500],
        )
        return txn.id
    if reward.item is not None:
        extension = extension_of(runtime)
        if extension is None:  # pragma: no cover - the composition always installs one
            raise Unprocessable("item starter rewards need the links extension", code="invalid_starter_reward")
        await extension.grant_item(session, runtime, community, player_id, reward.item, reward.quantity)
        return "inventory"
    kind, spec = _fulfilment_of(reward)
    record = await fulfilment.create(session, runtime, app_id=community.app_id, player_id=player_id, kind=kind,
                                     source=STARTER_SOURCE, source_ref=key,
                                     spec={**spec, "community_id": community.id})
    return record.id


def _fulfilment_of(reward: StarterReward) -> tuple[str, dict[str, Any]]:
    """The fulfilment kind and spec of a token, NFT, in-game or webhook starter reward."""
    if reward.token is not None:
        return "token", reward.token.model_dump(mode="json", exclude_none=True)
    if reward.in_game is not None:
        return "in_game", reward.in_game.model_dump(mode="json")
    if reward.nft is not None:  # minted or transferred by the studio's webhook receiver
        return "webhook", {"type": "nft", **reward.nft.model_dump(mode="json", exclude_none=True)}
    assert reward.webhook is not None
    return "webhook", dict(reward.webhook)


async def join(session: AsyncSession, runtime: Runtime, app_id: str, ref: str, player_id: str,
               body: JoinIn, *, client_ip: str | None = None) -> tuple[MemberOut, bool]:
    """Join (or ask to join) a community; returns the membership and whether it changed.

    Refused: banned (``403 banned``), invite-only without an invite (``403 invite_required``),
    invalid metadata (``422``), a referrer who is not an active member (``422 invalid_referrer``),
    full (``409 community_full``). Already active or pending: the membership as it is.

    A ``click_id`` from the community's link that verifies attributes the join to the member whose
    link it was (over a declared ``referred_by``) and feeds the referral program; a forged,
    expired, used or foreign one attributes nothing, and the join goes on (``click`` says why).
    """
    clock = runtime.clock
    community = await _community(session, app_id, ref)
    existing = await repo.member(session, community.id, player_id)
    if existing is not None:
        if existing.status == "banned":
            raise Forbidden(f"player {player_id} is banned from {community.slug!r}", code="banned")
        if existing.status in ("active", "pending"):
            return _member_out(existing, community), False
    if not community.open and (existing is None or existing.status != "invited"):
        raise Forbidden(f"{community.slug!r} is invite-only", code="invite_required")
    metadata = validate_metadata(MemberSchema.model_validate(community.member_schema), body.metadata)
    verdict = await _verify_click(session, runtime, community, body.click_id)
    referred_by = body.referred_by
    if verdict is not None and verdict.status == "attributed" and verdict.referrer_id not in (None, player_id):
        referred_by = verdict.referrer_id
    elif body.referred_by is not None:
        referrer = await repo.member(session, community.id, body.referred_by)
        if body.referred_by == player_id or referrer is None or referrer.status != "active":
            raise Unprocessable(f"{body.referred_by} is not an active member of {community.slug!r}",
                                code="invalid_referrer")
    now = clock.now()
    status = "active" if community.auto_approve else "pending"
    attributed = verdict is not None and verdict.status == "attributed"
    values = {"status": status, "member_metadata": metadata, "referred_by": referred_by, "updated_at": now,
              "joined_at": now if status == "active" else None,
              "click_id": verdict.click_id if verdict is not None and attributed else None}
    await players.ensure_players(session, clock, app_id, [player_id])
    if existing is None:
        fresh = await repo.insert_member(session, {
            "community_id": community.id, "player_id": player_id, "app_id": app_id, "role": "member",
            "starter_transaction_id": None, "note": None, "created_at": now, **values,
        })
    else:
        fresh = await repo.move_member(session, community.id, player_id, from_=[existing.status], values=values)
    if not fresh:  # a racing join of the same player won
        found = await _member(session, community, player_id)
        return _member_out(found, community), False
    if status == "active":
        await _activate(session, runtime, community, player_id)
    extension = extension_of(runtime)
    if verdict is not None and attributed and extension is not None:
        await extension.joined(session, runtime, community, player_id, verdict, JoinSignals(
            ip=body.ip or client_ip, device_fingerprint=body.device_fingerprint, email=body.email))
    out = _member_out(await _member(session, community, player_id), community)
    out.click = verdict.status if verdict is not None else None  # type: ignore[assignment]
    return out, True


async def _verify_click(session: AsyncSession, runtime: Runtime, community: Community,
                        click_id: str | None) -> ClickVerdict | None:
    if click_id is None:
        return None
    extension = extension_of(runtime)
    if extension is None:  # pragma: no cover - the composition always installs one
        return ClickVerdict("invalid")
    return await extension.verify_click(session, runtime, community, click_id)


async def leave(session: AsyncSession, clock: Clock, app_id: str, ref: str, player_id: str) -> MemberOut:
    community = await _community(session, app_id, ref)
    was = (await _member(session, community, player_id)).status  # the update below refreshes the object
    if not await repo.move_member(session, community.id, player_id, from_=["invited", "pending", "active"],
                                  values={"status": "left", "role": "member", "admin_invited_by": None,
                                          "updated_at": clock.now()}):
        raise Conflict(f"player {player_id} is {was}", code="not_a_member", extra={"member_status": was})
    if was == "active":
        await repo.free_seat(session, community.id)
    return _member_out(await _member(session, community, player_id), community)


async def moderate(session: AsyncSession, runtime: Runtime, app_id: str, ref: str, player_id: str, action: str,
                   note: str | None, *, actor_player: str | None) -> MemberOut:
    """``approve`` or ``reject`` a pending join, ``ban`` a member (or anyone, pre-emptively)."""
    clock = runtime.clock
    community = await _community(session, app_id, ref)
    await _moderator(session, community, actor_player)
    now = clock.now()
    if action == "ban":
        await players.ensure_players(session, clock, app_id, [player_id])
        found = await repo.member(session, community.id, player_id)
        was = found.status if found is not None else None  # the update below refreshes the object
        values = {"status": "banned", "role": "member", "admin_invited_by": None, "note": note, "updated_at": now}
        if found is None:
            await repo.insert_member(session, {
                "community_id": community.id, "player_id": player_id, "app_id": app_id, "member_metadata": {},
                "referred_by": None, "starter_transaction_id": None, "created_at": now, "joined_at": None, **values})
        elif was == "banned" or not await repo.move_member(session, community.id, player_id,
                                                           from_=[found.status], values=values):
            raise Conflict(f"player {player_id} is banned already", code="already_banned")
        elif was == "active":
            await repo.free_seat(session, community.id)
    else:
        was = (await _member(session, community, player_id)).status
        target = "active" if action == "approve" else "left"
        values = {"status": target, "note": note, "updated_at": now}
        if target == "active":
            values["joined_at"] = now
        if not await repo.move_member(session, community.id, player_id, from_=["pending"], values=values):
            raise Conflict(f"player {player_id} is {was}, not waiting for approval", code="not_pending",
                           extra={"member_status": was})
        if target == "active":
            await _activate(session, runtime, community, player_id)
    return _member_out(await _member(session, community, player_id), community)


async def invite(session: AsyncSession, clock: Clock, app_id: str, ref: str, player_id: str, *,
                 actor_player: str | None) -> MemberOut:
    community = await _community(session, app_id, ref)
    await _moderator(session, community, actor_player)
    now = clock.now()
    await players.ensure_players(session, clock, app_id, [player_id])
    found = await repo.member(session, community.id, player_id)
    if found is not None and found.status in ("active", "pending", "banned"):
        raise Conflict(f"player {player_id} is {found.status}", code="cannot_invite",
                       extra={"member_status": found.status})
    if found is None:
        await repo.insert_member(session, {
            "community_id": community.id, "player_id": player_id, "app_id": app_id, "status": "invited",
            "role": "member", "member_metadata": {}, "referred_by": None, "starter_transaction_id": None,
            "note": None, "created_at": now, "updated_at": now, "joined_at": None})
    else:
        await repo.move_member(session, community.id, player_id, from_=[found.status],
                               values={"status": "invited", "updated_at": now})
    return _member_out(await _member(session, community, player_id), community)


async def set_admin(session: AsyncSession, clock: Clock, app_id: str, ref: str, player_id: str, admin: bool, *,
                    actor_player: str | None) -> MemberOut:
    """Make an active member an admin of the community, or an admin a plain member again.

    The server key and app admins grant the role at once; a community admin (a player) only
    offers it: the member becomes an admin when they accept (``accept_admin``), never without.
    """
    community = await _community(session, app_id, ref)
    await _moderator(session, community, actor_player)
    found = await _member(session, community, player_id)
    values: dict[str, Any] = {"role": "admin" if admin else "member", "admin_invited_by": None,
                              "updated_at": clock.now()}
    if admin and actor_player is not None and player_id != actor_player and found.role != "admin":
        values = {"admin_invited_by": actor_player, "updated_at": clock.now()}
    if not await repo.move_member(session, community.id, player_id, from_=["active"], values=values):
        raise Conflict(f"player {player_id} is {found.status}; only active members administer",
                       code="not_an_active_member", extra={"member_status": found.status})
    return _member_out(await _member(session, community, player_id), community)


async def answer_admin_invitation(session: AsyncSession, clock: Clock, app_id: str, ref: str, player_id: str,
                                  accept: bool) -> MemberOut:
    """The invited member accepts (becomes an admin) or declines the admin role a community admin
    offered (``409 no_admin_invitation`` when none waits)."""
    community = await _community(session, app_id, ref)
    found = await _member(session, community, player_id)
    if found.admin_invited_by is None:
        raise Conflict(f"player {player_id} has no admin invitation in {community.slug!r}",
                       code="no_admin_invitation")
    values: dict[str, Any] = {"admin_invited_by": None, "updated_at": clock.now()}
    if accept:
        values["role"] = "admin"
    if not await repo.move_member(session, community.id, player_id, from_=["active"] if accept else
                                  ["active", "invited", "pending"], values=values):
        raise Conflict(f"player {player_id} is {found.status}; join the community first, then accept",
                       code="not_an_active_member", extra={"member_status": found.status})
    return _member_out(await _member(session, community, player_id), community)


async def members(session: AsyncSession, app_id: str, ref: str, status: str | None, page: PageParams, *,
                  actor_player: str | None) -> Page[MemberOut]:
    """Members and their metadata: for the community's admins, the server key and app admins."""
    community = await _community(session, app_id, ref)
    await _moderator(session, community, actor_player)
    rows = await repo.members_page(session, community.id, status, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda m: [m.player_id])
    return Page[MemberOut](items=[_member_out(m, community) for m in built.items], next_cursor=built.next_cursor)


async def memberships(session: AsyncSession, app_id: str, player_id: str) -> list[MemberOut]:
    await players.get_player(session, app_id, player_id)
    out = []
    for row in await repo.memberships_of(session, app_id, player_id):
        community = await _community(session, app_id, row.community_id)
        out.append(_member_out(row, community))
    return out


async def moderated(session: AsyncSession, app_id: str, ref: str, *, actor_player: str | None) -> Community:
    """The community, when the caller moderates it (``403 community_admin_required`` otherwise)."""
    community = await _community(session, app_id, ref)
    await _moderator(session, community, actor_player)
    return community
