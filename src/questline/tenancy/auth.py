"""Who is calling, and whether they may.

Four kinds of caller, all as ``Authorization: Bearer <credential>``:

- ``server``: an app's secret server key (``ql_sk_…``): full power inside that app.
- ``client``: an app's publishable client key (``ql_pk_…``): public reads, untrusted events.
- ``player``: a player token minted by the server key: one player acting for themself. On
  any route with a ``{player_id}`` path parameter, ``allow`` refuses (404) a token of
  another player before the route runs.
- ``admin``: an admin user's access token (from ``/v1/auth/login``). On app routes an admin
  names the app with the ``X-Questline-App`` header and needs a role in its organization.
- ``brand`` / ``streamer``: a marketplace account's token (from its own sign-in), scoped to
  its app and role. A ``{brand_id}`` / ``{streamer_id}`` path parameter is bound to the
  token's own account by ``allow`` (another's answers 404), as ``{player_id}`` is for players.

Every route declares who may call it with ``allow(...)`` (or, for the few public routes,
``openapi_extra={"x-access": "anonymous"}``); the declaration is kept on the dependency
(``.access``) so ``route_access`` can read it and a test walks every route the app exposes
and checks the policy is enforced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute

from questline.kit.errors import Forbidden, NotFound, ProblemError, Unauthorized
from questline.kit.idempotency import Claim, ReplayStored, fingerprint_request
from questline.kit.ids import ID_PATTERN
from questline.kit.routing import ExposedRoute, exposed_api_routes
from questline.kit.runtime import Runtime
from questline.kit.security import read_token, sign_token
from questline.tenancy import service
from questline.tenancy.lockout import LoginThrottle
from questline.tenancy.schemas import ROLE_GRANTS, ROLE_RANK, Role

PLAYER_AUDIENCE = "questline:player"
BRAND_AUDIENCE = "questline:brand"
STREAMER_AUDIENCE = "questline:streamer"
APP_HEADER = "X-Questline-App"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# A path parameter of this name is bound to a player token's own player by ``allow``.
PLAYER_PATH_PARAM = "player_id"
ACCOUNT_PATH_PARAMS = {"brand": "brand_id", "streamer": "streamer_id"}


class CallerKind(StrEnum):
    SERVER = "server"
    CLIENT = "client"
    PLAYER = "player"
    ADMIN = "admin"
    BRAND = "brand"
    STREAMER = "streamer"


SERVER, CLIENT, PLAYER, ADMIN = CallerKind.SERVER, CallerKind.CLIENT, CallerKind.PLAYER, CallerKind.ADMIN
BRAND, STREAMER = CallerKind.BRAND, CallerKind.STREAMER


@dataclass(frozen=True)
class Caller:
    kind: CallerKind
    app_id: str | None = None
    org_id: str | None = None
    key_id: str | None = None
    player_id: str | None = None
    admin_id: str | None = None
    role: Role | None = None
    # Marketplace accounts: the brand (or streamer) acted for, and the brand member who signed in.
    account_id: str | None = None
    member_id: str | None = None

    @property
    def identity(self) -> str:
        """Stable per caller; scopes idempotency keys and rate limits."""
        if self.kind is PLAYER:
            return f"player:{self.player_id}"
        if self.kind is ADMIN:
            return f"admin:{self.admin_id}"
        if self.kind in (BRAND, STREAMER):
            return f"{self.kind.value}:{self.member_id or self.account_id}"
        return f"key:{self.key_id}"

    @property
    def app(self) -> str:
        if self.app_id is None:  # pragma: no cover - allow() guarantees it on app routes
            raise Forbidden("this route needs an app", code="app_required")
        return self.app_id

    @property
    def is_trusted(self) -> bool:
        """Server keys and app admins may act for any player and set amounts."""
        return self.kind in (SERVER, ADMIN)

    def can_act_for(self, player_id: str) -> bool:
        return self.is_trusted or (self.kind is PLAYER and self.player_id == player_id)

    def ensure_acts_for(self, player_id: str) -> None:
        """A player token reaches only its own player; others get a 404 (no probing)."""
        if not self.can_act_for(player_id):
            raise NotFound(f"player {player_id} not found")

    def ensure_role(self, minimum: Role) -> None:
        granted = ROLE_GRANTS.get(minimum)
        if self.kind is ADMIN and granted is not None:
            if self.role not in granted:
                raise Forbidden(f"this needs the {minimum} role (or owner)", code="insufficient_role")
            return
        if self.kind is ADMIN and (self.role is None or ROLE_RANK[self.role] < ROLE_RANK[minimum]):
            raise Forbidden(f"this needs the {minimum} role", code="insufficient_role")


@dataclass(frozen=True)
class AccessPolicy:
    kinds: frozenset[CallerKind]
    admin_role: Role | None  # minimum role for app-scoped admins; None: admins not allowed
    account: bool  # admin account routes (no app): any signed-in admin
    idempotency: Literal["optional", "required"]


async def mint_player_token(session: AsyncSession, runtime: Runtime, caller: Caller, player_id: str,
                            ttl_seconds: int | None = None) -> tuple[str, datetime]:
    """A player token for ``player_id``, minted by the server key ``caller``.

    It names that key (``kid``) and the player's token epoch (``ep``): revoking or rotating out
    the key, or revoking the player's tokens, ends it at once.
    """
    if caller.kind is not SERVER or caller.key_id is None or caller.app_id is None:
        raise Forbidden("only a server key mints player tokens", code="caller_not_allowed")
    now = runtime.clock.now()
    ttl = ttl_seconds or runtime.settings.player_token_ttl_seconds
    expires = now + timedelta(seconds=ttl)
    epoch = await service.player_token_epoch(session, caller.app_id, player_id)
    token = sign_token(runtime.settings.signing_key(), audience=PLAYER_AUDIENCE, subject=player_id,
                       issued_at=now, expires_at=expires,
                       claims={"app": caller.app_id, "kid": caller.key_id, "ep": epoch})
    return token, expires


def login_throttle(runtime: Runtime) -> LoginThrottle:
    throttle = runtime.extensions.get("tenancy.login_throttle")
    if throttle is None:
        settings = runtime.settings
        throttle = runtime.extensions["tenancy.login_throttle"] = LoginThrottle(
            runtime.redis, namespace=settings.redis_namespace, free_attempts=settings.login_free_attempts,
            max_delay_seconds=settings.login_max_delay_seconds)
    assert isinstance(throttle, LoginThrottle)
    return throttle


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized()
    return credential.strip()


async def _player_caller(session: AsyncSession, claims: dict[str, Any]) -> Caller:
    app_id, player_id, key_id, epoch = claims.get("app"), claims.get("sub"), claims.get("kid"), claims.get("ep")
    if not (isinstance(app_id, str) and isinstance(player_id, str) and isinstance(key_id, str)
            and isinstance(epoch, int) and not isinstance(epoch, bool)):
        raise Unauthorized("the bearer token is not valid or has expired", code="invalid_token")
    if await service.player_token_revoked(session, app_id, key_id, epoch, player_id):
        raise Unauthorized("this player token has been revoked", code="token_revoked")
    return Caller(kind=PLAYER, app_id=app_id, player_id=player_id)


def _cached_key_caller(request: Request, runtime: Runtime) -> Caller | None:
    """The caller of an API key whose record the key cache holds (None: ask ``identify``)."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    token = credential.strip()
    if scheme.lower() != "bearer" or not token.startswith("ql_"):
        return None
    ident = service.identify_cached_key(runtime.caches, token)
    if ident is None:
        return None
    return Caller(kind=CallerKind(ident.kind), app_id=ident.app_id, org_id=ident.org_id, key_id=ident.key_id)


async def identify(request: Request, session: AsyncSession, runtime: Runtime, *, want_app: bool) -> Caller:
    token = _bearer(request)
    if token.startswith("ql_"):
        ident = await service.identify_key(session, token)
        return Caller(kind=CallerKind(ident.kind), app_id=ident.app_id, org_id=ident.org_id, key_id=ident.key_id)
    secret = runtime.settings.signing_key()
    claims = read_token(secret, token, audience=PLAYER_AUDIENCE, now=runtime.clock.now())
    if claims is not None:
        return await _player_caller(session, claims)
    for kind, audience in ((BRAND, BRAND_AUDIENCE), (STREAMER, STREAMER_AUDIENCE)):
        claims = read_token(secret, token, audience=audience, now=runtime.clock.now())
        if claims is not None:
            return Caller(kind=kind, app_id=str(claims["app"]), account_id=str(claims["acct"]),
                          member_id=str(claims["sub"]), player_id=claims.get("pid"))
    admin_token = service.read_admin_token(runtime.settings, runtime.clock, token)
    if admin_token is None:
        raise Unauthorized("the bearer token is not valid or has expired", code="invalid_token")
    admin = await service.live_admin(session, admin_token)
    if admin is None:
        raise Unauthorized("this admin account is disabled or gone, or its session has ended", code="invalid_token")
    admin_id = admin.id
    app_id = request.headers.get(APP_HEADER)
    if not want_app or not app_id:
        return Caller(kind=ADMIN, admin_id=admin_id)
    app = await _find_app(session, app_id)
    role = await service.role_in_org(session, admin_id, app.org_id) if app else None
    if app is None or role is None:
        raise NotFound(f"app {app_id} not found", code="app_not_found")
    return Caller(kind=ADMIN, app_id=app.id, org_id=app.org_id, admin_id=admin_id, role=role)


async def _find_app(session: AsyncSession, app_id: str) -> service.AppSettings | None:
    if not re.match(ID_PATTERN, app_id):
        return None
    try:
        return await service.app_settings(session, app_id)
    except NotFound:
        return None


async def _claim_idempotency(request: Request, runtime: Runtime, caller: Caller, policy: AccessPolicy) -> None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        if policy.idempotency == "required":
            raise ProblemError(f"this request needs an {IDEMPOTENCY_HEADER} header", code="idempotency_key_required")
        return
    fingerprint = await fingerprint_request(request)
    outcome = await runtime.idempotency.claim(caller.app_id or "", caller.identity, key, fingerprint)
    if isinstance(outcome, Claim):
        request.state.idempotency_claim = outcome
    else:
        raise ReplayStored(outcome)


async def identify_caller(request: Request, runtime: Runtime, policy: AccessPolicy,
                          session: AsyncSession | None = None) -> Caller:
    """Who is calling, and whether ``policy`` lets them call this route (nothing counted yet).

    Without ``session``, a key the cache does not hold (and any token) is looked up through a
    short read-only session: the request's own session must not begin (and, on SQLite, take the
    write lock) before the idempotency claim commits."""
    caller = _cached_key_caller(request, runtime)  # most calls: a key the cache holds, no session
    if caller is None:
        if session is not None:
            caller = await identify(request, session, runtime, want_app=not policy.account)
        else:
            async with runtime.read_sessions() as lookup:
                caller = await identify(request, lookup, runtime, want_app=not policy.account)
    if caller.kind not in policy.kinds:
        raise Forbidden(f"a {caller.kind} credential may not call this route", code="caller_not_allowed")
    if caller.kind is ADMIN and not policy.account:
        if caller.app_id is None:
            raise ProblemError(f"admins name the app with the {APP_HEADER} header", code="app_required")
        assert policy.admin_role is not None
        caller.ensure_role(policy.admin_role)
    if caller.kind is PLAYER and PLAYER_PATH_PARAM in request.path_params:
        # A player token reaches only its own player, on every route, without each
        # route having to remember; others get a 404 (no probing who exists).
        caller.ensure_acts_for(str(request.path_params[PLAYER_PATH_PARAM]))
    bound = ACCOUNT_PATH_PARAMS.get(caller.kind.value)
    if bound is not None and bound in request.path_params and request.path_params[bound] != caller.account_id:
        # A brand's or streamer's token reaches only its own account (404: no probing).
        raise NotFound(f"{caller.kind.value} {request.path_params[bound]} not found",
                       code=f"{caller.kind.value}_not_found")
    return caller


async def enforce_limits(runtime: Runtime, caller: Caller) -> None:
    """The rate limits every call of ``caller`` counts against (``429`` past them)."""
    settings = runtime.settings
    await runtime.limiter.enforce(settings.rate_limit_per_key, "caller", caller.app_id or "-",
                                  caller.key_id or caller.admin_id or caller.identity, what="this key")
    if caller.kind is PLAYER:
        await runtime.limiter.enforce(settings.rate_limit_per_player, "player", caller.app, caller.identity,
                                      what="this player")


def allow(
    *kinds: CallerKind,
    admin_role: Role | None = None,
    account: bool = False,
    idempotency: Literal["optional", "required"] = "optional",
) -> Any:
    """Declare who may call a route: ``caller: Annotated[Caller, allow(SERVER, PLAYER)]``."""
    allowed = frozenset(kinds) | ({ADMIN} if admin_role is not None or account else frozenset())
    policy = AccessPolicy(allowed, admin_role, account, idempotency)

    async def dependency(request: Request) -> Caller:
        runtime: Runtime = request.app.state.runtime
        caller = await identify_caller(request, runtime, policy)
        await enforce_limits(runtime, caller)
        request.state.caller = caller
        if request.method == "POST":
            await _claim_idempotency(request, runtime, caller, policy)
        return caller

    dependency.access = policy  # type: ignore[attr-defined]
    return Depends(dependency)


def policy_of(call: Any) -> AccessPolicy | None:
    return getattr(call, "access", None)


ANONYMOUS: Literal["anonymous"] = "anonymous"


def route_access(route: ExposedRoute) -> AccessPolicy | Literal["anonymous"] | None:
    """What a route declared: its ``allow(...)`` policy, ``"anonymous"``, or None (nothing)."""
    policies = [p for p in (policy_of(d.call) for d in _dependants(route.dependant)) if p is not None]
    anonymous = (route.openapi_extra or {}).get("x-access") == ANONYMOUS
    if len(set(policies)) > 1 or (policies and anonymous):
        raise ValueError(f"{sorted(route.methods)} {route.path} declares its callers more than once")
    if policies:
        return policies[0]
    return ANONYMOUS if anonymous else None


def undeclared_routes(routes: Sequence[BaseRoute]) -> list[str]:
    """API routes that say neither who may call them nor that anyone may (each is a bug)."""
    return [f"{','.join(sorted(r.methods))} {r.path}" for r in exposed_api_routes(routes) if route_access(r) is None]


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


# Aliases that make route signatures read as sentences.
ServerOrAdmin = Annotated[Caller, allow(SERVER, admin_role=Role.ADMIN)]
ServerOrViewer = Annotated[Caller, allow(SERVER, admin_role=Role.VIEWER)]
PlayerOrServer = Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.VIEWER)]
PlayerOrServerWrite = Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.ADMIN)]
AnyAppCaller = Annotated[Caller, allow(SERVER, CLIENT, PLAYER, admin_role=Role.VIEWER)]
AdminAccount = Annotated[Caller, allow(account=True)]


def lane_policy(route: ExposedRoute) -> AccessPolicy:
    """The ``allow(...)`` policy of a route the fast lane stands in for (it must have one)."""
    access = route_access(route)
    if not isinstance(access, AccessPolicy):
        raise ValueError(f"{route.path} declares no allow(...) policy for the fast lane to apply")
    return access
