"""Routes for communities: create, join, moderate, administer; and a gating check for integrators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from questline.communities import service
from questline.communities.schemas import (
    SLUG_PATTERN,
    CommunityIn,
    CommunityOut,
    CommunityUpdate,
    InviteIn,
    JoinIn,
    MemberOut,
    MemberStatus,
    ModerationIn,
    SlugAvailability,
)
from questline.kit.errors import Forbidden, Unprocessable
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.tenancy.auth import PLAYER, SERVER, AnyAppCaller, Caller, PlayerOrServer, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["communities"], route_class=UnitOfWorkRoute)
Ref = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$", description="the community's id or slug")]
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="your own id for the player")]
# Moderation names the member as {member}: a community admin's player token acts on other players there.
MemberId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="the member's player id")]
Paging = Annotated[PageParams, Depends(page_params)]
# The server key and app admins act on any community; a player only on those they administer.
Moderator = Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.ADMIN)]
_MODERATION: dict[int | str, dict[str, Any]] = {403: {"description": "community_admin_required"},
                                                404: {"description": "community_not_found, member_not_found"}}


def _actor(caller: Caller) -> str | None:
    """The acting player when a player token calls; None for the trusted server key and admins."""
    return None if caller.is_trusted else caller.player_id


@router.post("/communities", response_model=CommunityOut, status_code=201,
             responses={403: {"description": "starter_reward_forbidden"}, 409: {"description": "slug_taken"},
                        422: {"description": "starter_reward_over_limit, unknown_currency, item_not_found"}})
async def create(body: CommunityIn, caller: Moderator, session: SessionDep, runtime: RuntimeDep) -> CommunityOut:
    """Create a community; a player who creates one administers it and offers ``admins`` the role.
    Only the server key or an app admin sets a ``starter_reward``."""
    return await service.create(session, runtime, caller.app, body, creator=caller.identity,
                                creator_player=_actor(caller))


@router.get("/communities", response_model=Page[CommunityOut])
async def list_communities(caller: AnyAppCaller, session: SessionDep, paging: Paging) -> Page[CommunityOut]:
    return await service.list_communities(session, caller.app, paging)


@router.get("/communities/slug-available", response_model=SlugAvailability)
async def slug_available(caller: AnyAppCaller, session: SessionDep,
                         slug: Annotated[str, Query(pattern=SLUG_PATTERN)]) -> SlugAvailability:
    return await service.slug_available(session, caller.app, slug)


@router.get("/communities/{community}", response_model=CommunityOut)
async def get_community(community: Ref, caller: AnyAppCaller, session: SessionDep) -> CommunityOut:
    return await service.get(session, caller.app, community)


@router.patch("/communities/{community}", response_model=CommunityOut, responses=_MODERATION)
async def update(community: Ref, body: CommunityUpdate, caller: Moderator, session: SessionDep,
                 runtime: RuntimeDep) -> CommunityOut:
    return await service.update(session, runtime, caller.app, community, body, actor_player=_actor(caller))


@router.post("/communities/{community}/members", response_model=MemberOut, status_code=201,
             responses={200: {"model": MemberOut, "description": "already a member (or waiting for approval)"},
                        403: {"description": "banned, invite_required, server_key_required"},
                        409: {"description": "community_full"},
                        422: {"description": "invalid_metadata, invalid_referrer"}})
async def join(community: Ref, body: JoinIn, caller: Annotated[Caller, allow(SERVER, PLAYER)], session: SessionDep,
               runtime: RuntimeDep, request: Request, response: Response) -> MemberOut:
    """Join: a player for themself, or the server key naming ``player_id``. Active at once, or pending
    approval; the starter reward is given when the member becomes active. A ``click_id`` from the
    community's link attributes the join to the member whose link it was."""
    player_id = body.player_id or caller.player_id
    if player_id is None:
        raise Unprocessable("the server key names the joining player_id", code="player_id_required")
    caller.ensure_acts_for(player_id)
    if (body.ip or body.device_fingerprint or body.email) and not caller.is_trusted:
        raise Forbidden("only the server key gives a joining player's IP, device and e-mail",
                        code="server_key_required")
    # A player joining from their own device: the address they call from is theirs.
    client_ip = request.client.host if request.client and not caller.is_trusted else None
    out, changed = await service.join(session, runtime, caller.app, community, player_id, body, client_ip=client_ip)
    response.status_code = 201 if changed else 200
    return out


@router.get("/communities/{community}/members", response_model=Page[MemberOut], responses=_MODERATION)
async def members(community: Ref, caller: Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.VIEWER)],
                  session: SessionDep, paging: Paging, status: MemberStatus | None = None) -> Page[MemberOut]:
    """Members with their metadata, for the community's admins (and the server key, app admins)."""
    return await service.members(session, caller.app, community, status, paging, actor_player=_actor(caller))


@router.post("/communities/{community}/members/{player_id}/leave", response_model=MemberOut)
async def leave(community: Ref, player_id: PlayerId, caller: Annotated[Caller, allow(SERVER, PLAYER)],
                session: SessionDep, clock: ClockDep) -> MemberOut:
    caller.ensure_acts_for(player_id)
    return await service.leave(session, clock, caller.app, community, player_id)


@router.post("/communities/{community}/members/{member}/approve", response_model=MemberOut, responses=_MODERATION)
async def approve(community: Ref, member: MemberId, caller: Moderator, session: SessionDep, runtime: RuntimeDep,
                  body: ModerationIn | None = None) -> MemberOut:
    return await service.moderate(session, runtime, caller.app, community, member, "approve",
                                  (body or ModerationIn()).note, actor_player=_actor(caller))


@router.post("/communities/{community}/members/{member}/reject", response_model=MemberOut, responses=_MODERATION)
async def reject(community: Ref, member: MemberId, caller: Moderator, session: SessionDep, runtime: RuntimeDep,
                 body: ModerationIn | None = None) -> MemberOut:
    return await service.moderate(session, runtime, caller.app, community, member, "reject",
                                  (body or ModerationIn()).note, actor_player=_actor(caller))


@router.post("/communities/{community}/members/{member}/ban", response_model=MemberOut, responses=_MODERATION)
async def ban(community: Ref, member: MemberId, caller: Moderator, session: SessionDep, runtime: RuntimeDep,
              body: ModerationIn | None = None) -> MemberOut:
    return await service.moderate(session, runtime, caller.app, community, member, "ban",
                                  (body or ModerationIn()).note, actor_player=_actor(caller))


@router.post("/communities/{community}/invites", response_model=MemberOut, status_code=201, responses=_MODERATION)
async def invite(community: Ref, body: InviteIn, caller: Moderator, session: SessionDep,
                 clock: ClockDep) -> MemberOut:
    """Invite a player into an invite-only community; they join with ``POST .../members``."""
    return await service.invite(session, clock, caller.app, community, body.player_id, actor_player=_actor(caller))


@router.put("/communities/{community}/admins/{member}", response_model=MemberOut, responses=_MODERATION)
async def add_admin(community: Ref, member: MemberId, caller: Moderator, session: SessionDep,
                    clock: ClockDep) -> MemberOut:
    """The server key and app admins make an active member an admin; a community admin offers the
    role, and the member becomes an admin when they accept it."""
    return await service.set_admin(session, clock, caller.app, community, member, True,
                                   actor_player=_actor(caller))


@router.delete("/communities/{community}/admins/{member}", response_model=MemberOut, responses=_MODERATION)
async def remove_admin(community: Ref, member: MemberId, caller: Moderator, session: SessionDep,
                       clock: ClockDep) -> MemberOut:
    return await service.set_admin(session, clock, caller.app, community, member, False,
                                   actor_player=_actor(caller))


_ANSWER: dict[int | str, dict[str, Any]] = {404: {"description": "community_not_found, member_not_found"},
                                             409: {"description": "no_admin_invitation, not_an_active_member"}}


@router.post("/communities/{community}/admins/{player_id}/accept", response_model=MemberOut, responses=_ANSWER)
async def accept_admin(community: Ref, player_id: PlayerId, caller: Annotated[Caller, allow(SERVER, PLAYER)],
                       session: SessionDep, clock: ClockDep) -> MemberOut:
    """The member accepts the admin role a community admin offered them."""
    caller.ensure_acts_for(player_id)
    return await service.answer_admin_invitation(session, clock, caller.app, community, player_id, True)


@router.post("/communities/{community}/admins/{player_id}/decline", response_model=MemberOut, responses=_ANSWER)
async def decline_admin(community: Ref, player_id: PlayerId, caller: Annotated[Caller, allow(SERVER, PLAYER)],
                        session: SessionDep, clock: ClockDep) -> MemberOut:
    """The member declines the admin role a community admin offered them."""
    caller.ensure_acts_for(player_id)
    return await service.answer_admin_invitation(session, clock, caller.app, community, player_id, False)


@router.get("/players/{player_id}/communities", response_model=list[MemberOut])
async def memberships(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep) -> list[MemberOut]:
    """The player's memberships in every community of the app."""
    caller.ensure_acts_for(player_id)
    return await service.memberships(session, caller.app, player_id)
