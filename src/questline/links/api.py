"""Routes: the public link redirect (no key) and a community's link analytics."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from questline.communities.api import Ref
from questline.communities.schemas import MEMBER_CODE_PATTERN, SLUG_PATTERN
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.links import service
from questline.links.schemas import LinkAnalytics
from questline.tenancy.auth import PLAYER, SERVER, Caller, allow
from questline.tenancy.schemas import Role

router = APIRouter(tags=["community links"], route_class=UnitOfWorkRoute)
AppId = Annotated[str, Path(pattern=r"^app_[0-9A-HJKMNP-TV-Z]{26}$", description="the app's id")]
Slug = Annotated[str, Path(pattern=SLUG_PATTERN, description="the community's slug")]
MemberCode = Annotated[str, Path(pattern=MEMBER_CODE_PATTERN, description="the member's code")]
Analyst = Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.VIEWER)]
_PUBLIC = {"x-access": "anonymous"}
# Nothing may keep the redirect (each click is counted and carries a fresh click id), and the
# target never learns which link or member code brought the visitor.
_REDIRECT_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def _redirect(runtime: RuntimeDep, request: Request, app_id: str, slug: str, code: str | None) -> Response:
    address = request.client.host if request.client else "unknown"
    location = await service.follow(runtime, app_id, slug, code, method=request.method, headers=request.headers,
                                    address=address)
    return Response(status_code=302, headers={"Location": location, **_REDIRECT_HEADERS})


# Slugs are unique in an app, not across apps: the app's id is part of a public link. A short
# domain in front of one app (ng.games/c/{slug}) maps to it with one rewrite in its proxy.
@router.api_route("/c/{app_id}/{slug}", methods=["GET", "HEAD"], include_in_schema=False, openapi_extra=_PUBLIC)
async def community_link(app_id: AppId, slug: Slug, runtime: RuntimeDep, request: Request) -> Response:
    """A community's link: 302 to its redirect_url with a signed click id (``ql_click``)."""
    return await _redirect(runtime, request, app_id, slug, None)


@router.api_route("/c/{app_id}/{slug}/{member_code}", methods=["GET", "HEAD"], include_in_schema=False,
                  openapi_extra=_PUBLIC)
async def member_link(app_id: AppId, slug: Slug, member_code: MemberCode, runtime: RuntimeDep,
                      request: Request) -> Response:
    """A member's own link: the community's redirect, with the member in the click id."""
    return await _redirect(runtime, request, app_id, slug, member_code)


@router.get("/v1/communities/{community}/links/analytics", response_model=LinkAnalytics, tags=["communities"],
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "JSON, or CSV with format=csv"},
                       403: {"description": "community_admin_required"},
                       404: {"description": "community_not_found"},
                       422: {"description": "invalid_range"}})
async def link_analytics(community: Ref, caller: Analyst, session: SessionDep, runtime: RuntimeDep,
                         first_day: Annotated[date | None, Query(description="default: 29 days before last_day")]
                         = None,
                         last_day: Annotated[date | None, Query(description="default: today (UTC)")] = None,
                         format: Annotated[Literal["json", "csv"], Query()] = "json") -> LinkAnalytics | Response:
    """Clicks, unique visitors, joins and conversion of the community's links, by UTC day and by member;
    for the community's admins, the server key and app admins."""
    found = await service.analytics(session, runtime, caller.app, community,
                                    actor_player=None if caller.is_trusted else caller.player_id,
                                    first_day=first_day, last_day=last_day)
    if format == "csv":
        return Response(service.analytics_csv(found), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{found.slug}-links-{found.first_day}-{found.last_day}.csv"'})
    return found
