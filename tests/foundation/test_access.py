"""Every route the app exposes, walked with every kind of wrong caller.

The walk is generic: it reads each route's declared policy (``allow(...)`` or
``x-access: anonymous``) and checks that anonymous callers, a client key, another app's
server key and admin, another player's token and a viewer are refused wherever they must
be, and that nothing of app A ever shows in a reply to a caller of app B. Routes added by
later areas are covered without touching this file.

Path parameters are filled with ids of resources made in app A. ``org_id``, ``app_id``,
``key_id`` and ``player_id`` are known here; an area whose routes take another parameter
(``hold_id``, ``code``…) can teach the walk to make a real one by adding a maker to
``RESOURCE_MAKERS`` (until then a placeholder value is used and the checks still run).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from questline.kit.db import unit_of_work
from questline.kit.routing import ExposedRoute, SessionDep, UnitOfWorkRoute, exposed_api_routes
from questline.kit.runtime import Runtime
from questline.tenancy import service as tenancy
from questline.tenancy.auth import (
    ADMIN,
    ANONYMOUS,
    CLIENT,
    PLAYER,
    SERVER,
    AccessPolicy,
    ServerOrAdmin,
    route_access,
    undeclared_routes,
)
from questline.tenancy.schemas import ROLE_RANK, Role
from tests.billing import helpers as billing_makers
from tests.competitions import helpers as competition_makers
from tests.conftest import AdminLogin, AppKeys, Factory
from tests.finance import helpers as finance_makers
from tests.fulfilment import helpers as fulfilment_makers
from tests.ledger import helpers as ledger_makers
from tests.links import helpers as link_makers
from tests.market import helpers as market_makers
from tests.notifications import helpers as notification_makers
from tests.sharecards import helpers as sharecard_makers
from tests.social import helpers as social_makers

OPS_ROUTES = {"/healthz", "/readyz", "/metrics"}
# Community referral links: public redirects (no key), outside /v1 so the links stay short.
PUBLIC_LINK_ROUTES = {"/c/{app_id}/{slug}", "/c/{app_id}/{slug}/{member_code}"}
REFUSED = {401, 403, 404}
# Ids that name one resource anywhere (a caller of another app must never get a 2xx on them);
# ``player_id`` is the integrator's own name for a player, scoped by app.
GLOBAL_ID_PARAMS = {"org_id", "app_id", "key_id"}


@dataclass
class World:
    """App A (the victim) with its org, admins, players and an extra key; app B (the other tenant)."""

    a: AppKeys
    b: AppKeys
    admin_a: AdminLogin
    viewer_a: AdminLogin
    admin_b: AdminLogin
    alice: dict[str, str]
    bob: dict[str, str]
    alice_of_b: dict[str, str]
    key_a: str
    sentinels: list[str]
    owner_a: AdminLogin | None = None
    finance_a: AdminLogin | None = None
    values: dict[str, str] = field(default_factory=dict)


Maker = Callable[[World, httpx.AsyncClient], Awaitable[str]]


async def make_track(world: World, client: httpx.AsyncClient) -> str:
    """An XP track of app A (the progression distribution route reads it)."""
    resp = await client.put("/v1/definitions/xp_track/walk-xp", headers=world.a.server, json={"name": "Walk"})
    assert resp.status_code in (200, 201), resp.text
    return "walk-xp"


async def make_member(world: World, client: httpx.AsyncClient) -> str:
    """An admin account that is a member (viewer) of app A's organization."""
    return world.viewer_a.admin_id

# Areas add ``"param_name": maker`` here; a maker creates a resource in app A and returns its id.
RESOURCE_MAKERS: dict[str, tuple[Maker, bool]] = {  # name -> (maker, is a global id)
    "code": (ledger_makers.make_currency, False),
    "hold_id": (ledger_makers.make_hold, True),
    "competition_id": (competition_makers.make_competition, True),
    "admin_id": (make_member, True),
    "brand_id": (market_makers.make_brand, True),
    "member_id": (market_makers.make_member, True),
    "streamer_id": (market_makers.make_streamer, True),
    "campaign_id": (market_makers.make_campaign, True),
    "asset_id": (market_makers.make_asset, True),
    "rule_id": (market_makers.make_rule, True),
    "category": (market_makers.make_category, False),
    "platform": (market_makers.make_platform, False),
    "fulfilment_id": (fulfilment_makers.make_fulfilment, True),
    "kind": (fulfilment_makers.make_target_kind, False),
    "notification_id": (notification_makers.make_notification, True),
    "type": (notification_makers.make_type, False),
    "locale": (notification_makers.make_locale, False),
    "payment_method_id": (finance_makers.make_payment_method, True),
    "deposit_id": (finance_makers.make_deposit, True),
    "invoice_id": (billing_makers.make_invoice, True),
    "plan_id": (billing_makers.make_plan, True),
    "dispute_id": (finance_makers.make_dispute, True),
    "review_id": (finance_makers.make_review, True),
    "card_id": (sharecard_makers.make_card, True),
    "channel": (social_makers.make_channel, True),  # a chat room (before its message and report)
    "message_id": (social_makers.make_message, True),
    "report_id": (social_makers.make_report, True),
    "announcement_id": (social_makers.make_announcement, True),
    "community": (link_makers.make_community, False),
    "slug": (link_makers.make_community, False),
    "member_code": (link_makers.make_member_code, False),
    "track": (make_track, False),
}


async def build_world(runtime: Runtime, client: httpx.AsyncClient, factory: Factory) -> World:
    tag = uuid.uuid4().hex[:8]
    sentinels = [f"sentinel-org-{tag}", f"sentinel-app-{tag}", f"sentinel-player-{tag}", f"sentinel-key-{tag}"]
    async with unit_of_work(runtime.sessions) as session:
        org = await tenancy.create_org(session, runtime.clock, sentinels[0])
        app, server_key, client_key = await tenancy.create_app(session, runtime.clock, org.id, sentinels[1])
        extra_key, _ = await tenancy.create_key(session, runtime.clock, app.id, "server", sentinels[3])
    a = AppKeys(org.id, app.id, server_key, client_key)
    b = await factory.app("other tenant")
    admin_a = await factory.admin(a.org_id, Role.ADMIN)
    viewer_a = await factory.admin(a.org_id, Role.VIEWER)
    admin_b = await factory.admin(b.org_id, Role.OWNER)
    alice = await factory.player_token(a, "alice")
    bob = await factory.player_token(a, "bob")
    alice_of_b = await factory.player_token(b, "alice")
    resp = await client.put("/v1/players/alice/account", headers=a.server,
                            json={"display_name": sentinels[2], "traits": {"secret": sentinels[2]}})
    assert resp.status_code == 200, resp.text
    world = World(a, b, admin_a, viewer_a, admin_b, alice, bob, alice_of_b, extra_key.id, sentinels,
                  owner_a=await factory.admin(a.org_id, Role.OWNER),
                  finance_a=await factory.admin(a.org_id, Role.FINANCE))
    world.values = {"org_id": a.org_id, "app_id": a.app_id, "key_id": extra_key.id, "player_id": "alice"}
    for name, (maker, _) in RESOURCE_MAKERS.items():
        world.values[name] = await maker(world, client)
    return world


def global_params() -> set[str]:
    return GLOBAL_ID_PARAMS | {name for name, (_, is_global) in RESOURCE_MAKERS.items() if is_global}


def params_of(path: str) -> list[str]:
    return re.findall(r"{([^}:]+)(?::[^}]*)?}", path)


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"{([^}:]+)(?::[^}]*)?}", lambda m: values.get(m.group(1), f"unknown-{m.group(1)}"), path)


@dataclass(frozen=True)
class Attempt:
    route: ExposedRoute
    method: str
    caller: str
    response: httpx.Response

    def __str__(self) -> str:
        return (f"{self.method} {self.route.path} as {self.caller}: "
                f"{self.response.status_code} {self.response.text[:300]}")


class Walker:
    def __init__(self, client: httpx.AsyncClient, world: World) -> None:
        self.client = client
        self.world = world
        self.failures: list[str] = []
        self.count = 0

    async def call(self, route: ExposedRoute, method: str, caller: str, headers: dict[str, str]) -> Attempt:
        url = fill(route.path, self.world.values)
        kwargs: dict[str, Any] = {"headers": dict(headers)}
        if method in {"POST", "PUT", "PATCH"}:
            kwargs["json"] = {}
            kwargs["headers"]["Idempotency-Key"] = f"walk-{uuid.uuid4().hex}"
        resp = await self.client.request(method, url, **kwargs)
        self.count += 1
        attempt = Attempt(route, method, caller, resp)
        if resp.status_code >= 500:
            self.fail(attempt, "a server error")
        elif resp.status_code >= 400 and not resp.headers.get("content-type", "").startswith(
                "application/problem+json"):
            self.fail(attempt, "an error that is not problem+json")
        return attempt

    def fail(self, attempt: Attempt, why: str) -> None:
        self.failures.append(f"{why}: {attempt}")

    def expect_refused(self, attempt: Attempt, allowed: set[int] = REFUSED) -> None:
        if attempt.response.status_code not in allowed:
            self.fail(attempt, f"expected a refusal {sorted(allowed)}")

    def expect_no_2xx(self, attempt: Attempt) -> None:
        if attempt.response.is_success:
            self.fail(attempt, "another tenant reached app A's resource")

    def expect_no_leak(self, attempt: Attempt) -> None:
        for sentinel in self.world.sentinels:
            if sentinel in attempt.response.text:
                self.fail(attempt, f"app A's data ({sentinel}) crossed to another tenant")


def admin_headers(login: AdminLogin, app_id: str | None, policy: AccessPolicy | None) -> dict[str, str]:
    return login.headers(None if policy is not None and policy.account else app_id)


async def walk_route(walker: Walker, route: ExposedRoute, method: str) -> None:
    world = walker.world
    access = route_access(route)
    if access == ANONYMOUS:
        await walker.call(route, method, "anonymous (public route)", {})
        return
    assert isinstance(access, AccessPolicy)
    params = params_of(route.path)
    # Ids that name one resource anywhere: a caller of another app must never get a 2xx on
    # them. App-scoped ids (B may have its own "alice") are covered by the leak check.
    names_global = any(p in global_params() for p in params)

    # Nobody: always a 401.
    walker.expect_refused(await walker.call(route, method, "anonymous", {}), {401})

    # The app's own publishable client key: only where the policy lets clients in.
    if CLIENT not in access.kinds:
        walker.expect_refused(await walker.call(route, method, "client key of A", world.a.client))

    # Another player of the same app, on a route about alice.
    if "player_id" in params:
        walker.expect_refused(await walker.call(route, method, "bob's token on alice", world.bob))
    elif PLAYER not in access.kinds:
        walker.expect_refused(await walker.call(route, method, "player token", world.alice))

    # A viewer of app A where the policy needs a higher role.
    if access.admin_role is not None and ROLE_RANK[access.admin_role] > ROLE_RANK[Role.VIEWER]:
        attempt = await walker.call(route, method, "viewer of A", world.viewer_a.headers(world.a.app_id))
        walker.expect_refused(attempt, {403})
    # The finance desk: a plain admin and a viewer are refused; only the finance role and the owner pass.
    if access.admin_role is Role.FINANCE:
        for who, login in (("admin of A", world.admin_a), ("viewer of A", world.viewer_a)):
            walker.expect_refused(await walker.call(route, method, who, login.headers(world.a.app_id)), {403})

    # An admin of another organization naming app A: never let in.
    if not access.account and ADMIN in access.kinds:
        attempt = await walker.call(route, method, "admin of B naming app A", world.admin_b.headers(world.a.app_id))
        walker.expect_refused(attempt)
        walker.expect_no_leak(attempt)

    # The other tenant with its own credentials: never a 2xx on A's ids, never A's data.
    foreign = [
        ("server key of B", world.b.server),
        ("admin of B", admin_headers(world.admin_b, world.b.app_id, access)),
        ("token of B's alice", world.alice_of_b),
    ]
    for caller, headers in foreign:
        attempt = await walker.call(route, method, caller, headers)
        if names_global:
            walker.expect_no_2xx(attempt)
        walker.expect_no_leak(attempt)

    # Positive control: the rightful caller is let through (on reads whose ids are all known).
    if method == "GET" and all(p in world.values for p in params):
        admin = world.owner_a if access.admin_role is Role.OWNER and world.owner_a else world.admin_a
        if access.admin_role is Role.FINANCE and world.finance_a:
            admin = world.finance_a
        rightful = world.a.server if SERVER in access.kinds else admin_headers(admin, world.a.app_id, access)
        attempt = await walker.call(route, method, "rightful caller", rightful)
        if attempt.response.status_code in (401, 403):
            walker.fail(attempt, "the rightful caller was refused (is the walk's setup wrong?)")


async def test_every_route_refuses_wrong_callers(client: httpx.AsyncClient, engine: FastAPI, runtime: Runtime,
                                                 factory: Factory) -> None:
    world = await build_world(runtime, client, factory)
    walker = Walker(client, world)
    routes = exposed_api_routes(engine.routes)
    for route in routes:
        for method in sorted(route.methods):
            await walk_route(walker, route, method)
    assert not walker.failures, "\n".join(walker.failures)
    # The walk really covered the foundation's routes and every caller kind on them.
    covered = {r.path for r in routes}
    assert {"/v1/players/{player_id}/account", "/v1/apps/{app_id}/keys", "/v1/orgs/{org_id}/apps"} <= covered
    assert walker.count > 6 * len([r for r in routes if r.path.startswith("/v1")])
    # And it changed nothing of app A: alice is as she was and A's extra key still works.
    resp = await client.get("/v1/players/alice/account", headers=world.a.server)
    assert resp.json()["display_name"] == world.sentinels[2]
    keys = await client.get(f"/v1/apps/{world.a.app_id}/keys", headers=world.admin_a.headers())
    assert [k["revoked_at"] for k in keys.json()["items"]] == [None, None, None]


async def test_every_api_route_declares_its_callers(engine: FastAPI) -> None:
    assert undeclared_routes(engine.routes) == []
    for route in exposed_api_routes(engine.routes):
        access = route_access(route)
        if route.path in OPS_ROUTES | PUBLIC_LINK_ROUTES:
            assert access == ANONYMOUS
            continue
        assert route.path.startswith("/v1/"), f"{route.path} is not under /v1"
        assert isinstance(route.route, UnitOfWorkRoute), f"{route.path} does not open its session at the edge"


def test_the_check_catches_an_undeclared_route() -> None:
    router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute)

    @router.get("/forgot-to-say")
    async def forgot(session: SessionDep) -> dict[str, str]:
        return {}

    @router.get("/said-so")
    async def said(caller: ServerOrAdmin) -> dict[str, str]:
        return {}

    @router.get("/public", openapi_extra={"x-access": "anonymous"})
    async def public() -> dict[str, str]:
        return {}

    app = FastAPI()
    app.include_router(router)
    assert undeclared_routes(app.routes) == ["GET /v1/forgot-to-say"]


def test_a_route_may_not_declare_twice() -> None:
    router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute)

    @router.get("/both", openapi_extra={"x-access": "anonymous"})
    async def both(caller: ServerOrAdmin) -> dict[str, str]:
        return {}

    app = FastAPI()
    app.include_router(router)
    with pytest.raises(ValueError, match="more than once"):
        undeclared_routes(app.routes)
