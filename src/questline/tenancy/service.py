"""The rules of tenancy: who owns what, how keys and sessions are made and checked."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.errors import Conflict, Forbidden, NotFound, Unauthorized
from questline.kit.ids import new_id, ulid
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.ratelimit import RateLimiter
from questline.kit.security import (
    dummy_password_hash,
    hash_password,
    hash_secret,
    new_secret,
    read_token,
    secrets_match,
    sign_token,
    verify_password,
)
from questline.kit.settings import Settings
from questline.tenancy import repository as repo
from questline.tenancy.models import AdminUser, ApiKey, App, Organization, RefreshToken
from questline.tenancy.schemas import ROLE_RANK, KeyKind, Role, TokenPair

KEY_PREFIX = {"server": "ql_sk_", "client": "ql_pk_"}
ADMIN_AUDIENCE = "questline:admin"


@dataclass(frozen=True)
class KeyIdentity:
    key_id: str
    app_id: str
    org_id: str
    kind: KeyKind


def format_key(kind: KeyKind, key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX[kind]}{key_id.removeprefix('key_')}_{secret}"


_KEY_SHAPE = re.compile(r"^ql_(sk|pk)_([0-9A-HJKMNP-TV-Z]{26})_([A-Za-z0-9_-]{16,64})$")
_KIND_OF_TAG: dict[str, KeyKind] = {"sk": "server", "pk": "client"}


def parse_key(token: str) -> tuple[KeyKind, str, str] | None:
    """``(kind, key id, secret)`` of a well-formed key, else None (it then never reaches a query)."""
    match = _KEY_SHAPE.match(token)
    if match is None:
        return None
    tag, body, secret = match.groups()
    return _KIND_OF_TAG[tag], f"key_{body}", secret


class KeyCache:
    """Recently verified keys, so a hot ingest path does not query the key table each call.

    Entries live ``ttl`` seconds; a revocation in this process evicts at once, in another
    process within ``ttl``.
    """

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, KeyIdentity]] = {}

    def get(self, token_hash: str) -> KeyIdentity | None:
        entry = self._entries.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token_hash: str, identity: KeyIdentity) -> None:
        if self._ttl > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[token_hash] = (time.monotonic() + self._ttl, identity)

    def evict_key(self, key_id: str) -> None:
        for token_hash in [h for h, (_, ident) in self._entries.items() if ident.key_id == key_id]:
            del self._entries[token_hash]


# --- organizations and apps -------------------------------------------------------------

async def create_org(session: AsyncSession, clock: Clock, name: str, owner_id: str | None = None) -> Organization:
    org = Organization(id=new_id("org"), name=name, created_at=clock.now())
    await repo.add(session, org)
    if owner_id is not None:
        await repo.upsert_membership(session, org.id, owner_id, Role.OWNER, clock.now())
    return org


async def get_org(session: AsyncSession, org_id: str) -> Organization:
    org = await repo.get_org(session, org_id)
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    return org


async def create_app(session: AsyncSession, clock: Clock, org_id: str, name: str) -> tuple[App, str, str]:
    """A new app with one server key and one client key (their secrets returned once)."""
    await get_org(session, org_id)
    app = App(id=new_id("app"), org_id=org_id, name=name, config_version=0, client_event_types=[],
              created_at=clock.now())
    await repo.add(session, app)
    _, server_key = await create_key(session, clock, app.id, "server", "default server key")
    _, client_key = await create_key(session, clock, app.id, "client", "default client key")
    return app, server_key, client_key


async def find_app(session: AsyncSession, app_id: str) -> App | None:
    return await repo.get_app(session, app_id)


async def get_app(session: AsyncSession, app_id: str) -> App:
    app = await repo.get_app(session, app_id)
    if app is None:
        raise NotFound(f"app {app_id} not found")
    return app


async def list_apps(session: AsyncSession, org_id: str, page: PageParams) -> Page[App]:
    rows = await repo.apps_of_org(session, org_id, page.after_str(), page.limit)
    return build_page(list(rows), page.limit, lambda a: [a.id])


async def set_client_event_types(session: AsyncSession, app_id: str, types: list[str]) -> App:
    await repo.set_client_event_types(session, app_id, types)
    app = await get_app(session, app_id)
    await session.refresh(app)
    return app


async def bump_config_version(session: AsyncSession, app_id: str) -> int:
    return await repo.bump_config_version(session, app_id)


# --- API keys --------------------------------------------------------------------------

async def create_key(session: AsyncSession, clock: Clock, app_id: str, kind: KeyKind, name: str) -> tuple[ApiKey, str]:
    key_id = f"key_{ulid()}"
    secret = new_secret()
    token = format_key(kind, key_id, secret)
    key = ApiKey(id=key_id, app_id=app_id, kind=kind, name=name, secret_hash=hash_secret(secret),
                 last4=secret[-4:], created_at=clock.now(), revoked_at=None)
    await repo.add(session, key)
    return key, token


async def list_keys(session: AsyncSession, app_id: str, page: PageParams) -> Page[ApiKey]:
    rows = await repo.keys_of_app(session, app_id, page.after_str(), page.limit)
    return build_page(list(rows), page.limit, lambda k: [k.id])


async def revoke_key(session: AsyncSession, clock: Clock, cache: KeyCache, app_id: str, key_id: str) -> ApiKey:
    key = await repo.get_key(session, key_id)
    if key is None or key.app_id != app_id:
        raise NotFound(f"key {key_id} not found")
    if key.revoked_at is not None:
        raise Conflict(f"key {key_id} is already revoked", code="key_revoked")
    await repo.revoke_key(session, app_id, key_id, clock.now())
    await session.refresh(key)
    cache.evict_key(key_id)
    return key


async def rotate_key(session: AsyncSession, clock: Clock, cache: KeyCache, app_id: str,
                     key_id: str) -> tuple[ApiKey, str]:
    """Revoke a key and issue its replacement, of the same kind and name, in one step."""
    old = await revoke_key(session, clock, cache, app_id, key_id)
    return await create_key(session, clock, app_id, old.kind, old.name)  # type: ignore[arg-type]


async def identify_key(session: AsyncSession, cache: KeyCache, token: str) -> KeyIdentity:
    parsed = parse_key(token)
    if parsed is None:
        raise Unauthorized("the API key is malformed")
    token_hash = hash_secret(token)
    cached = cache.get(token_hash)
    if cached is not None:
        return cached
    kind, key_id, secret = parsed
    key = await repo.get_key(session, key_id)
    if key is None or key.kind != kind or not secrets_match(secret, key.secret_hash):
        raise Unauthorized("the API key is not valid")
    if key.revoked_at is not None:
        raise Unauthorized("the API key has been revoked", code="key_revoked")
    app = await get_app(session, key.app_id)
    identity = KeyIdentity(key_id=key.id, app_id=key.app_id, org_id=app.org_id, kind=kind)
    cache.put(token_hash, identity)
    return identity


# --- admin users, roles and sessions ------------------------------------------------------

async def create_admin(session: AsyncSession, clock: Clock, email: str, password: str, name: str = "") -> AdminUser:
    email = email.strip().lower()
    if await repo.admin_by_email(session, email) is not None:
        raise Conflict(f"an admin with e-mail {email} already exists", code="admin_exists")
    password_hash = await asyncio.to_thread(hash_password, password)  # argon2 is slow on purpose
    admin = AdminUser(id=new_id("adm"), email=email, name=name, password_hash=password_hash,
                      created_at=clock.now(), disabled_at=None)
    await repo.add(session, admin)
    return admin


async def find_admin(session: AsyncSession, admin_id: str) -> AdminUser | None:
    return await repo.get_admin(session, admin_id)


async def get_admin(session: AsyncSession, admin_id: str) -> AdminUser:
    admin = await repo.get_admin(session, admin_id)
    if admin is None:
        raise NotFound(f"admin {admin_id} not found")
    return admin


async def orgs_of_admin(session: AsyncSession, admin_id: str) -> list[tuple[Organization, str]]:
    return list(await repo.orgs_of_admin(session, admin_id))


async def role_in_org(session: AsyncSession, admin_id: str, org_id: str) -> Role | None:
    role = await repo.role_in_org(session, admin_id, org_id)
    return Role(role) if role else None


async def require_org_role(session: AsyncSession, admin_id: str, org_id: str, minimum: Role) -> Role:
    """The admin's role in the org, if it reaches ``minimum``; 404 for outsiders (no probing)."""
    await get_org(session, org_id)
    role = await role_in_org(session, admin_id, org_id)
    if role is None:
        raise NotFound(f"organization {org_id} not found")
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise Forbidden(f"this needs the {minimum} role in the organization; you are {role}",
                        code="insufficient_role")
    return role


async def add_member(session: AsyncSession, clock: Clock, org_id: str, email: str, role: Role) -> AdminUser:
    admin = await repo.admin_by_email(session, email.strip().lower())
    if admin is None:
        raise NotFound(f"no admin with e-mail {email}; create the account first", code="admin_not_found")
    await repo.upsert_membership(session, org_id, admin.id, role, clock.now())
    return admin


def _access_token(settings: Settings, clock: Clock, admin_id: str) -> str:
    now = clock.now()
    return sign_token(settings.secret_key.get_secret_value(), audience=ADMIN_AUDIENCE, subject=admin_id,
                      issued_at=now, expires_at=now + timedelta(seconds=settings.access_token_ttl_seconds))


async def _issue_pair(session: AsyncSession, settings: Settings, clock: Clock, admin_id: str) -> TokenPair:
    refresh = f"qlr_{new_secret()}"
    now = clock.now()
    await repo.add(session, RefreshToken(
        id=new_id("rt"), admin_id=admin_id, token_hash=hash_secret(refresh), created_at=now,
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds), revoked_at=None,
    ))
    return TokenPair(access_token=_access_token(settings, clock, admin_id), refresh_token=refresh,
                     expires_in=settings.access_token_ttl_seconds)


async def login(session: AsyncSession, settings: Settings, clock: Clock, limiter: RateLimiter, email: str,
                password: str) -> TokenPair:
    """A token pair for the right e-mail and password; attempts per e-mail are rate limited."""
    email = email.strip().lower()
    await limiter.enforce(settings.rate_limit_login, "login", email, what="logins to this account")
    admin = await repo.admin_by_email(session, email)
    # Verify against a dummy hash for unknown e-mails too, so timing does not reveal who has an
    # account. argon2 runs in a thread: it is slow on purpose and must not stall the event loop.
    stored = admin.password_hash if admin else dummy_password_hash()
    valid = await asyncio.to_thread(verify_password, password, stored)
    if not valid or admin is None or admin.disabled_at is not None:
        raise Unauthorized("e-mail or password is wrong", code="invalid_credentials")
    return await _issue_pair(session, settings, clock, admin.id)


async def _live_refresh_token(session: AsyncSession, clock: Clock, token: str) -> RefreshToken:
    row = await repo.refresh_token_by_hash(session, hash_secret(token))
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now():
        raise Unauthorized("the refresh token is not valid", code="invalid_refresh_token")
    return row


async def refresh(session: AsyncSession, settings: Settings, clock: Clock, token: str) -> TokenPair:
    """Rotate: the used refresh token is revoked and a new pair issued."""
    row = await _live_refresh_token(session, clock, token)
    if not await repo.revoke_refresh_token(session, row.id, clock.now()):
        raise Unauthorized("the refresh token is not valid", code="invalid_refresh_token")
    return await _issue_pair(session, settings, clock, row.admin_id)


async def logout(session: AsyncSession, clock: Clock, token: str) -> None:
    row = await _live_refresh_token(session, clock, token)
    await repo.revoke_refresh_token(session, row.id, clock.now())


def read_admin_token(settings: Settings, clock: Clock, token: str) -> str | None:
    claims = read_token(settings.secret_key.get_secret_value(), token, audience=ADMIN_AUDIENCE, now=clock.now())
    return str(claims["sub"]) if claims else None


async def count_orgs(session: AsyncSession) -> int:
    return await repo.count_orgs(session)


async def first_org(session: AsyncSession) -> Organization | None:
    return await repo.first_org(session)
