"""Routes for admin sessions, organizations, apps and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from questline.kit.errors import problem_response
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.tenancy import service
from questline.tenancy.auth import AdminAccount, login_throttle
from questline.tenancy.schemas import (
    AdminOut,
    AppCreate,
    AppCreated,
    AppLimits,
    AppOut,
    ClientEventTypes,
    KeyCreate,
    KeyCreated,
    KeyOut,
    Login,
    MemberAdd,
    OrgCreate,
    OrgOut,
    RefreshRequest,
    Role,
    TokenPair,
)

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute)
Paging = Annotated[PageParams, Depends(page_params)]
OrgId = Annotated[str, Path(pattern=ID_PATTERN, description="an organization id (org_…)")]
AppId = Annotated[str, Path(pattern=ID_PATTERN, description="an app id (app_…)")]
KeyId = Annotated[str, Path(pattern=ID_PATTERN, description="a key id (key_…)")]
AdminId = Annotated[str, Path(pattern=ID_PATTERN, description="an admin account id (adm_…)")]


@router.post("/auth/login", response_model=TokenPair, tags=["auth"], openapi_extra={"x-access": "anonymous"})
async def login(body: Login, request: Request, session: SessionDep, runtime: RuntimeDep) -> TokenPair:
    """Exchange an admin's e-mail and password for an access token and a refresh token.

    Wrong passwords slow down further attempts for that e-mail from that address only.
    """
    source = request.client.host if request.client else "unknown"
    return await service.login(session, runtime.settings, runtime.clock, runtime.limiter, login_throttle(runtime),
                               body.email, body.password, source)


@router.post("/auth/refresh", response_model=TokenPair, tags=["auth"], openapi_extra={"x-access": "anonymous"})
async def refresh(body: RefreshRequest, request: Request, session: SessionDep,
                  runtime: RuntimeDep) -> TokenPair | Response:
    """Rotate a refresh token: the old one stops working, a new pair is returned. Presenting a
    rotated one again revokes the whole session (401 refresh_token_reused)."""
    try:
        return await service.refresh(session, runtime.settings, runtime.clock, body.refresh_token)
    except service.RefreshTokenReused as reused:
        return problem_response(request, reused)  # answered, and the session's revocation committed


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"],
             openapi_extra={"x-access": "anonymous"})
async def logout(body: RefreshRequest, session: SessionDep, clock: ClockDep) -> None:
    """End the session of this refresh token: its refresh and access tokens stop working at once."""
    await service.logout(session, clock, body.refresh_token)


@router.get("/auth/me", response_model=AdminOut, tags=["auth"])
async def me(caller: AdminAccount, session: SessionDep) -> AdminOut:
    assert caller.admin_id is not None
    admin = await service.get_admin(session, caller.admin_id)
    orgs = await service.orgs_of_admin(session, admin.id)
    return AdminOut(id=admin.id, email=admin.email, name=admin.name, created_at=admin.created_at,
                    organizations=[OrgOut(id=o.id, name=o.name, role=Role(r), created_at=o.created_at)
                                   for o, r in orgs])


@router.post("/orgs", response_model=OrgOut, status_code=201, tags=["organizations"])
async def create_org(body: OrgCreate, caller: AdminAccount, session: SessionDep, clock: ClockDep) -> OrgOut:
    """Create an organization; the caller becomes its owner. Owners and admins of an organization
    may, and so may an account that belongs to none yet; viewers, brands and streamers may not."""
    assert caller.admin_id is not None
    await service.ensure_may_create_org(session, caller.admin_id)
    org = await service.create_org(session, clock, body.name, owner_id=caller.admin_id)
    return OrgOut(id=org.id, name=org.name, role=Role.OWNER, created_at=org.created_at)


@router.get("/orgs", response_model=list[OrgOut], tags=["organizations"])
async def list_orgs(caller: AdminAccount, session: SessionDep) -> list[OrgOut]:
    assert caller.admin_id is not None
    orgs = await service.orgs_of_admin(session, caller.admin_id)
    return [OrgOut(id=o.id, name=o.name, role=Role(r), created_at=o.created_at) for o, r in orgs]


@router.post("/orgs/{org_id}/members", response_model=AdminOut, tags=["organizations"])
async def add_member(org_id: OrgId, body: MemberAdd, caller: AdminAccount, session: SessionDep,
                     clock: ClockDep) -> AdminOut:
    """Give an existing admin account a role in the organization, or change it (owners only).
    The last owner cannot give up the owner role (409 last_owner)."""
    assert caller.admin_id is not None
    await service.require_org_role(session, caller.admin_id, org_id, Role.OWNER)
    admin = await service.add_member(session, clock, org_id, body.email, body.role)
    return AdminOut(id=admin.id, email=admin.email, name=admin.name, created_at=admin.created_at)


@router.delete("/orgs/{org_id}/members/{admin_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["organizations"])
async def remove_member(org_id: OrgId, admin_id: AdminId, caller: AdminAccount, session: SessionDep) -> None:
    """Take an account out of the organization (owners only; the last owner stays: 409 last_owner)."""
    assert caller.admin_id is not None
    await service.require_org_role(session, caller.admin_id, org_id, Role.OWNER)
    await service.remove_member(session, org_id, admin_id)


@router.post("/orgs/{org_id}/apps", response_model=AppCreated, status_code=201, tags=["apps"])
async def create_app(org_id: OrgId, body: AppCreate, caller: AdminAccount, session: SessionDep,
                     clock: ClockDep) -> AppCreated:
    """Create an app with a server key and a client key; both secrets are shown only here."""
    assert caller.admin_id is not None
    await service.require_org_role(session, caller.admin_id, org_id, Role.ADMIN)
    app, server_key, client_key = await service.create_app(session, clock, org_id, body.name)
    return AppCreated(**AppOut.model_validate(app).model_dump(), server_key=server_key, client_key=client_key)


@router.get("/orgs/{org_id}/apps", response_model=Page[AppOut], tags=["apps"])
async def list_apps(org_id: OrgId, caller: AdminAccount, session: SessionDep, paging: Paging) -> Page[AppOut]:
    assert caller.admin_id is not None
    await service.require_org_role(session, caller.admin_id, org_id, Role.VIEWER)
    page = await service.list_apps(session, org_id, paging)
    return Page[AppOut](items=[AppOut.model_validate(a) for a in page.items], next_cursor=page.next_cursor)


async def _app_with_role(session: SessionDep, caller: AdminAccount, app_id: str, minimum: Role) -> None:
    assert caller.admin_id is not None
    app = await service.get_app(session, app_id)
    await service.require_org_role(session, caller.admin_id, app.org_id, minimum)


@router.put("/apps/{app_id}/client-event-types", response_model=AppOut, tags=["apps"])
async def set_client_event_types(app_id: AppId, body: ClientEventTypes, caller: AdminAccount,
                                 session: SessionDep) -> AppOut:
    """Choose which event types a publishable client key may send."""
    await _app_with_role(session, caller, app_id, Role.ADMIN)
    return AppOut.model_validate(await service.set_client_event_types(session, app_id, body.event_types))


@router.put("/apps/{app_id}/limits", response_model=AppOut, tags=["apps"])
async def set_limits(app_id: AppId, body: AppLimits, caller: AdminAccount, session: SessionDep) -> AppOut:
    """Bound what the app's definitions may pay: the largest community starter reward."""
    await _app_with_role(session, caller, app_id, Role.ADMIN)
    return AppOut.model_validate(await service.set_limits(session, app_id, body.community_starter_reward_max))


@router.get("/apps/{app_id}/keys", response_model=Page[KeyOut], tags=["keys"])
async def list_keys(app_id: AppId, caller: AdminAccount, session: SessionDep, paging: Paging) -> Page[KeyOut]:
    await _app_with_role(session, caller, app_id, Role.VIEWER)
    page = await service.list_keys(session, app_id, paging)
    return Page[KeyOut](items=[KeyOut.model_validate(k) for k in page.items], next_cursor=page.next_cursor)


@router.post("/apps/{app_id}/keys", response_model=KeyCreated, status_code=201, tags=["keys"])
async def create_key(app_id: AppId, body: KeyCreate, caller: AdminAccount, session: SessionDep,
                     clock: ClockDep) -> KeyCreated:
    await _app_with_role(session, caller, app_id, Role.ADMIN)
    key, secret = await service.create_key(session, clock, app_id, body.kind, body.name)
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), secret=secret)


@router.post("/apps/{app_id}/keys/{key_id}/revoke", response_model=KeyOut, tags=["keys"])
async def revoke_key(app_id: AppId, key_id: KeyId, caller: AdminAccount, session: SessionDep,
                     runtime: RuntimeDep) -> KeyOut:
    await _app_with_role(session, caller, app_id, Role.ADMIN)
    key = await service.revoke_key(session, runtime.clock, app_id, key_id)
    return KeyOut.model_validate(key)


@router.post("/apps/{app_id}/keys/{key_id}/rotate", response_model=KeyCreated, status_code=201, tags=["keys"])
async def rotate_key(app_id: AppId, key_id: KeyId, caller: AdminAccount, session: SessionDep,
                     runtime: RuntimeDep) -> KeyCreated:
    """Revoke a key (and the player tokens it minted) and return its replacement (same kind and name)."""
    await _app_with_role(session, caller, app_id, Role.ADMIN)
    key, secret = await service.rotate_key(session, runtime.clock, app_id, key_id)
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), secret=secret)
