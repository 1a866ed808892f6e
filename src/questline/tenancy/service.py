"""The rules of tenancy: who owns what, how keys and sessions are made and checked."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.cache import CacheHub, CacheSpec
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized
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
from questline.tenancy.lockout import LoginThrottle
from questline.tenancy.models import AdminUser, ApiKey, App, Organization, RefreshToken
from questline.tenancy.schemas import ROLE_RANK, KeyKind, Role, TokenPair

KEY_PREFIX = {"server": "ql_sk_", "client": "ql_pk_"}
ADMIN_AUDIENCE = "questline:admin"
# Roles that may start organizations (besides accounts that belong to none yet).
ORG_CREATOR_ROLES = frozenset({Role.OWNER, Role.ADMIN})


@dataclass(frozen=True)
class KeyIdentity:
    key_id: str
    app_id: str
    org_id: str
    kind: KeyKind


@dataclass(frozen=True)
class KeyRecord:
    """What a request needs to know about an API key (cached; never the secret itself)."""

    key_id: str
    app_id: str
    org_id: str
    kind: KeyKind
    secret_hash: str
    revoked: bool


@dataclass(frozen=True)
class AppSettings:
    """An app as requests and batches read it (cached, invalidated whenever it changes)."""

    id: str
    org_id: str
    name: str
    config_version: int
    client_event_types: frozenset[str]


# Every row here changes only through this module, which invalidates the entry when it does.
KEYS = CacheSpec[str, KeyRecord | None]("tenancy.keys", keep_missing=False)
APPS = CacheSpec[str, AppSettings | None]("tenancy.apps", keep_missing=False)
PLAYER_TOKEN_EPOCHS = CacheSpec[tuple[str, str], int]("tenancy.player_token_epochs", max_entries=50_000)


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


# --- organizations and apps -------------------------------------------------------------

async def ensure_may_create_org(session: AsyncSession, admin_id: str) -> None:
    """Owners and admins (of any organization) start organizations, as does an account that
    belongs to none yet (made by an operator with ``questline admins create``); an account that
    is only a viewer, brand or streamer may not."""
    roles = await repo.roles_of_admin(session, admin_id)
    if roles and not roles & ORG_CREATOR_ROLES:
        raise Forbidden("creating organizations needs the owner or admin role in an organization",
                        code="insufficient_role")


async def create_org(session: AsyncSession, clock: Clock, name: str, owner_id: str | None = None) -> Organization:
    """A new organization; ``owner_id`` (an admin account) owns it. Callers check who may create."""
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


async def app_settings(session: AsyncSession, app_id: str) -> AppSettings:
    """The app as requests read it, from the cache (404 if there is no such app)."""

    async def load() -> AppSettings | None:
        row = await repo.app_settings_row(session, app_id)
        if row is None:
            return None
        return AppSettings(id=row.id, org_id=row.org_id, name=row.name, config_version=row.config_version,
                           client_event_types=frozenset(row.client_event_types or ()))

    found = await APPS.get(session, app_id, load)
    if found is None:
        raise NotFound(f"app {app_id} not found", code="app_not_found")
    return found


async def set_client_event_types(session: AsyncSession, app_id: str, types: list[str]) -> App:
    await repo.set_client_event_types(session, app_id, types)
    APPS.invalidate(session, app_id)
    app = await get_app(session, app_id)
    await session.refresh(app)
    return app


async def set_limits(session: AsyncSession, app_id: str, community_starter_reward_max: int) -> App:
    """An app admin bounds what the app's definitions may pay (today: community starter rewards)."""
    await repo.set_community_starter_reward_max(session, app_id, community_starter_reward_max)
    APPS.invalidate(session, app_id)
    app = await get_app(session, app_id)
    await session.refresh(app)
    return app


async def community_starter_reward_max(session: AsyncSession, app_id: str) -> int:
    return (await get_app(session, app_id)).community_starter_reward_max


async def bump_config_version(session: AsyncSession, app_id: str) -> int:
    version = await repo.bump_config_version(session, app_id)
    APPS.invalidate(session, app_id)
    return version


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


async def revoke_key(session: AsyncSession, clock: Clock, app_id: str, key_id: str) -> ApiKey:
    """Revoke a key: it, and every player token it minted, stop working once this commits."""
    key = await repo.get_key(session, key_id)
    if key is None or key.app_id != app_id:
        raise NotFound(f"key {key_id} not found")
    if key.revoked_at is not None:
        raise Conflict(f"key {key_id} is already revoked", code="key_revoked")
    await repo.revoke_key(session, app_id, key_id, clock.now())
    KEYS.invalidate(session, key_id)
    await session.refresh(key)
    return key


async def rotate_key(session: AsyncSession, clock: Clock, app_id: str, key_id: str) -> tuple[ApiKey, str]:
    """Revoke a key and issue its replacement, of the same kind and name, in one step."""
    old = await revoke_key(session, clock, app_id, key_id)
    return await create_key(session, clock, app_id, old.kind, old.name)  # type: ignore[arg-type]


async def key_record(session: AsyncSession, key_id: str) -> KeyRecord | None:
    """A key as requests check it, from the cache (None: no such key)."""

    async def load() -> KeyRecord | None:
        row = await repo.key_row(session, key_id)
        if row is None:
            return None
        kid, app_id, org_id, kind, secret_hash, revoked = row
        return KeyRecord(key_id=kid, app_id=app_id, org_id=org_id, kind="server" if kind == "server" else "client",
                         secret_hash=secret_hash, revoked=bool(revoked))

    return await KEYS.get(session, key_id, load)


async def identify_key(session: AsyncSession, token: str) -> KeyIdentity:
    parsed = parse_key(token)
    if parsed is None:
        raise Unauthorized("the API key is malformed")
    kind, key_id, secret = parsed
    return _checked_key(kind, secret, await key_record(session, key_id))


def identify_cached_key(hub: CacheHub, token: str) -> KeyIdentity | None:
    """``identify_key`` answered from the key cache alone; None when the cache cannot say
    (not a well-formed key, or no live entry): then ask ``identify_key`` with a session."""
    parsed = parse_key(token)
    if parsed is None:
        return None
    kind, key_id, secret = parsed
    cache = KEYS.of(hub)
    found, key = cache.peek(key_id)
    if not found or key is None:
        return None
    cache.hits += 1
    return _checked_key(kind, secret, key)


def _checked_key(kind: KeyKind, secret: str, key: KeyRecord | None) -> KeyIdentity:
    if key is None or key.kind != kind or not secrets_match(secret, key.secret_hash):
        raise Unauthorized("the API key is not valid")
    if key.revoked:
        raise Unauthorized("the API key has been revoked", code="key_revoked")
    return KeyIdentity(key_id=key.key_id, app_id=key.app_id, org_id=key.org_id, kind=kind)


# --- player tokens -------------------------------------------------------------------------

async def player_token_epoch(session: AsyncSession, app_id: str, player_id: str) -> int:
    """The player's current token epoch (cached): tokens of an earlier epoch are revoked."""
    return await PLAYER_TOKEN_EPOCHS.get(session, (app_id, player_id),
                                         lambda: repo.player_token_epoch(session, app_id, player_id))


async def revoke_player_tokens(session: AsyncSession, clock: Clock, app_id: str, player_id: str) -> int:
    """Every token minted for the player so far stops working once this commits; returns the new epoch."""
    epoch = await repo.next_player_token_epoch(session, app_id, player_id, clock.now())
    PLAYER_TOKEN_EPOCHS.invalidate(session, (app_id, player_id))
    return epoch


async def player_token_revoked(session: AsyncSession, app_id: str, key_id: str, epoch: int, player_id: str) -> bool:
    """Whether a player token minted by ``key_id`` in ``epoch`` has lost its authority: its key
    was revoked (or rotated out) or is not the app's server key, or the player's tokens were revoked."""
    key = await key_record(session, key_id)
    if key is None or key.revoked or key.kind != "server" or key.app_id != app_id:
        return True
    return epoch < await player_token_epoch(session, app_id, player_id)


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
    """Give an admin account a role in the organization (or change it). The last owner keeps theirs."""
    admin = await repo.admin_by_email(session, email.strip().lower())
    if admin is None:
        raise NotFound(f"no admin with e-mail {email}; create the account first", code="admin_not_found")
    await _lock_org(session, org_id)
    current = await repo.role_in_org(session, admin.id, org_id)
    if current == Role.OWNER and role != Role.OWNER:
        await _ensure_another_owner(session, org_id)
    await repo.upsert_membership(session, org_id, admin.id, role, clock.now())
    return admin


async def remove_member(session: AsyncSession, org_id: str, admin_id: str) -> None:
    """Take an account out of the organization; the last owner cannot be taken out."""
    await _lock_org(session, org_id)
    role = await repo.role_in_org(session, admin_id, org_id)
    if role is None:
        raise NotFound(f"admin {admin_id} is not a member of organization {org_id}", code="member_not_found")
    if role == Role.OWNER:
        await _ensure_another_owner(session, org_id)
    await repo.delete_membership(session, org_id, admin_id)


async def _lock_org(session: AsyncSession, org_id: str) -> None:
    """Membership changes of one organization run one at a time, so two owners demoting each
    other at once cannot both see the other still there."""
    if not await repo.lock_org(session, org_id):
        raise NotFound(f"organization {org_id} not found")


async def _ensure_another_owner(session: AsyncSession, org_id: str) -> None:
    if await repo.count_owners(session, org_id) <= 1:
        raise Conflict("an organization keeps at least one owner: make another member owner first",
                       code="last_owner")


def _access_token(settings: Settings, clock: Clock, admin_id: str, family_id: str) -> str:
    now = clock.now()
    return sign_token(settings.signing_key(), audience=ADMIN_AUDIENCE, subject=admin_id, issued_at=now,
                      expires_at=now + timedelta(seconds=settings.access_token_ttl_seconds),
                      claims={"sid": family_id})


async def _issue_pair(session: AsyncSession, settings: Settings, clock: Clock, admin_id: str,
                      family_id: str | None = None) -> TokenPair:
    """A new access and refresh token; a login starts a new family (session), a refresh continues one."""
    refresh = f"qlr_{new_secret()}"
    now = clock.now()
    token_id = new_id("rt")
    family_id = family_id or token_id
    await repo.add(session, RefreshToken(
        id=token_id, admin_id=admin_id, family_id=family_id, token_hash=hash_secret(refresh), created_at=now,
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds), revoked_at=None,
    ))
    return TokenPair(access_token=_access_token(settings, clock, admin_id, family_id), refresh_token=refresh,
                     expires_in=settings.access_token_ttl_seconds)


async def login(session: AsyncSession, settings: Settings, clock: Clock, limiter: RateLimiter,
                throttle: LoginThrottle, email: str, password: str, source: str) -> TokenPair:
    """A token pair for the right e-mail and password.

    Wrong guesses slow down the pair (e-mail, source address) that makes them, with a delay that
    grows, so an attacker elsewhere cannot lock the owner out; each address also has an overall
    rate of attempts (``rate_limit_login``).
    """
    email = email.strip().lower()
    await limiter.enforce(settings.rate_limit_login, "login", source, what="sign-in attempts from this address")
    wait = await throttle.begin(email, source, clock.now())
    if wait:
        raise RateLimited(f"too many wrong passwords for this account from this address; retry in {wait}s",
                          retry_after=wait)
    admin = await repo.admin_by_email(session, email)
    # Verify against a dummy hash for unknown e-mails too, so timing does not reveal who has an
    # account. argon2 runs in a thread: it is slow on purpose and must not stall the event loop.
    stored = admin.password_hash if admin else dummy_password_hash()
    valid = await asyncio.to_thread(verify_password, password, stored)
    if not valid or admin is None or admin.disabled_at is not None:
        raise Unauthorized("e-mail or password is wrong", code="invalid_credentials")
    await throttle.succeeded(email, source)
    return await _issue_pair(session, settings, clock, admin.id)


class RefreshTokenReused(Unauthorized):
    """A rotated (or revoked) refresh token came back: the whole session it belongs to has been
    revoked. Raised *after* that revocation, which must be committed (the route answers with it)."""

    def __init__(self) -> None:
        super().__init__("this refresh token was already used; the session it belongs to has been revoked "
                         "(sign in again)", code="refresh_token_reused")


async def refresh(session: AsyncSession, settings: Settings, clock: Clock, token: str) -> TokenPair:
    """Rotate: the used refresh token is revoked and the next one of its family issued.

    A token presented after it was rotated, while its session is still live, is a sign it was
    stolen: the family is revoked, access tokens included, and ``RefreshTokenReused`` raised
    (commit, then answer it).
    """
    row = await repo.refresh_token_by_hash(session, hash_secret(token))
    if row is None or row.expires_at <= clock.now():
        raise Unauthorized("the refresh token is not valid", code="invalid_refresh_token")
    if row.revoked_at is not None or not await repo.revoke_refresh_token(session, row.id, clock.now()):
        if await repo.revoke_refresh_family(session, row.family_id, clock.now()):
            raise RefreshTokenReused()
        raise Unauthorized("the refresh token is not valid", code="invalid_refresh_token")  # session already over
    return await _issue_pair(session, settings, clock, row.admin_id, row.family_id)


async def logout(session: AsyncSession, clock: Clock, token: str) -> None:
    """End the session: its refresh tokens and its access tokens stop working."""
    row = await repo.refresh_token_by_hash(session, hash_secret(token))
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now():
        raise Unauthorized("the refresh token is not valid", code="invalid_refresh_token")
    await repo.revoke_refresh_family(session, row.family_id, clock.now())


@dataclass(frozen=True)
class AdminToken:
    admin_id: str
    session_id: str


def read_admin_token(settings: Settings, clock: Clock, token: str) -> AdminToken | None:
    claims = read_token(settings.signing_key(), token, audience=ADMIN_AUDIENCE, now=clock.now())
    if claims is None or not isinstance(claims.get("sid"), str):
        return None
    return AdminToken(admin_id=str(claims["sub"]), session_id=claims["sid"])


async def live_admin(session: AsyncSession, token: AdminToken) -> AdminUser | None:
    """The token's admin, if the account is enabled and the token's session was not ended."""
    admin, session_alive = await repo.admin_and_session(session, token.admin_id, token.session_id)
    if admin is None or admin.disabled_at is not None or not session_alive:
        return None
    return admin


async def count_orgs(session: AsyncSession) -> int:
    return await repo.count_orgs(session)


async def first_org(session: AsyncSession) -> Organization | None:
    return await repo.first_org(session)
