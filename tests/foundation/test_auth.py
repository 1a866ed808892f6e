"""Tenancy and auth: keys shown once and stored hashed; admin sessions; roles; player tokens."""

from __future__ import annotations

import hashlib

import httpx
import jwt
import pytest
import sqlalchemy as sa

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.errors import Conflict
from questline.kit.runtime import Runtime
from questline.tenancy import service as tenancy
from questline.tenancy.models import AdminUser, ApiKey
from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_app_keys_are_shown_once_stored_hashed_listed_revoked_and_rotated(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    owner = await factory.admin()
    org = (await client.post("/v1/orgs", headers=owner.headers(), json={"name": "Studio"})).json()
    assert org["role"] == "owner"
    created = await client.post(f"/v1/orgs/{org['id']}/apps", headers=owner.headers(), json={"name": "Game"})
    assert created.status_code == 201
    app = created.json()
    server_key, client_key = app["server_key"], app["client_key"]
    assert server_key.startswith("ql_sk_") and client_key.startswith("ql_pk_")
    assert (await client.get("/v1/players", headers=bearer(server_key))).status_code == 200
    problem(await client.get("/v1/players", headers=bearer(client_key)), 403, "caller_not_allowed")

    # Listed without secrets, ever again.
    listing = await client.get(f"/v1/apps/{app['id']}/keys", headers=owner.headers())
    items = listing.json()["items"]
    assert {(k["kind"], k["last4"]) for k in items} == {("server", server_key[-4:]), ("client", client_key[-4:])}
    assert server_key not in listing.text and client_key not in listing.text
    assert all("secret" not in k for k in items)

    # Stored as a hash: the secret itself is in no column.
    async with runtime.sessions() as session:
        rows = (await session.execute(sa.select(ApiKey).where(ApiKey.app_id == app["id"]))).scalars().all()
    parsed = tenancy.parse_key(server_key)
    assert parsed is not None
    secret_part = parsed[2]
    server_row = next(r for r in rows if r.kind == "server")
    assert server_row.secret_hash == hashlib.sha256(secret_part.encode()).hexdigest()
    assert not any(secret_part in str(value) for r in rows for value in vars(r).values())

    # A new key: its secret is in the reply, once.
    made = await client.post(f"/v1/apps/{app['id']}/keys", headers=owner.headers(), json={"kind": "server",
                                                                                           "name": "deploy"})
    assert made.status_code == 201 and made.json()["name"] == "deploy"
    deploy = made.json()
    assert (await client.get("/v1/players", headers=bearer(deploy["secret"]))).status_code == 200

    # Revoked: refused at once, and a second revoke is a conflict.
    revoke_url = f"/v1/apps/{app['id']}/keys/{deploy['id']}/revoke"
    revoked = await client.post(revoke_url, headers=owner.headers())
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    problem(await client.get("/v1/players", headers=bearer(deploy["secret"])), 401, "key_revoked")
    problem(await client.post(revoke_url, headers=owner.headers()), 409, "key_revoked")

    # Rotated: the old secret stops working, the new one (same kind and name) works.
    rotated = await client.post(f"/v1/apps/{app['id']}/keys/{server_row.id}/rotate", headers=owner.headers())
    assert rotated.status_code == 201
    fresh = rotated.json()
    assert (fresh["kind"], fresh["name"]) == ("server", "default server key") and fresh["id"] != server_row.id
    problem(await client.get("/v1/players", headers=bearer(server_key)), 401, "key_revoked")
    assert (await client.get("/v1/players", headers=bearer(fresh["secret"]))).status_code == 200

    # Keys of one app are not reachable through another app's path.
    other = await factory.app(org_id=org["id"])
    problem(await client.post(f"/v1/apps/{other.app_id}/keys/{fresh['id']}/revoke", headers=owner.headers()), 404)


async def test_forged_and_malformed_credentials_are_401(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    key_id_part = keys.server_key[len("ql_sk_"):][:26]
    for credential in (
        f"ql_sk_{key_id_part}_{'A' * 32}",  # a real key id with a wrong secret
        keys.server_key.replace("ql_sk_", "ql_pk_"),  # the right secret as the wrong kind
        "ql_sk_short_secret",
        "not.a.jwt",
        jwt.encode({"sub": "alice", "aud": "questline:player", "iss": "questline", "exp": 2**40, "app": keys.app_id},
                   "someone-elses-secret-key-long-enough-to-sign", algorithm="HS256"),
    ):
        problem(await client.get("/v1/players", headers=bearer(credential)), 401)
    for header in ({"Authorization": keys.server_key}, {"Authorization": f"Basic {keys.server_key}"},
                   {"Authorization": "Bearer "}):
        problem(await client.get("/v1/players", headers=header), 401, "unauthorized")


async def test_admin_sessions_login_refresh_logout(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                                   clock: ManualClock) -> None:
    admin = await factory.admin()
    async with runtime.sessions() as session:
        stored = (await session.execute(sa.select(AdminUser.password_hash).where(AdminUser.id == admin.admin_id))
                  ).scalar_one()
    assert stored.startswith("$argon2id$") and admin.password not in stored

    login = await client.post("/v1/auth/login", json={"email": admin.email, "password": admin.password})
    pair = login.json()
    assert login.status_code == 200 and pair["token_type"] == "Bearer" and pair["expires_in"] == 900
    me = await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == admin.email

    # Wrong password and unknown e-mail look the same.
    wrong = problem(await client.post("/v1/auth/login", json={"email": admin.email, "password": "nope-nope"}), 401,
                    "invalid_credentials")
    unknown = problem(await client.post("/v1/auth/login", json={"email": "ghost@example.test", "password": "x"}), 401,
                      "invalid_credentials")
    assert wrong["detail"] == unknown["detail"]

    # Refresh rotates: the used refresh token is spent, the new pair works.
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != pair["refresh_token"]
    assert (await client.get("/v1/auth/me", headers=bearer(second["access_token"]))).status_code == 200

    # Access tokens are short-lived: 15 minutes later they are refused.
    clock.advance(seconds=901)
    problem(await client.get("/v1/auth/me", headers=bearer(second["access_token"])), 401, "invalid_token")
    third = (await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})).json()

    # Logout ends the session: its refresh token and its access token stop working at once.
    assert (await client.get("/v1/auth/me", headers=bearer(third["access_token"]))).status_code == 200
    assert (await client.post("/v1/auth/logout", json={"refresh_token": third["refresh_token"]})).status_code == 204
    problem(await client.post("/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}), 401,
            "invalid_refresh_token")
    problem(await client.get("/v1/auth/me", headers=bearer(third["access_token"])), 401, "invalid_token")
    # An admin token is not a player token, and the reverse.
    keys = await factory.app()
    player = await factory.player_token(keys, "alice")
    problem(await client.get("/v1/auth/me", headers=player), 403, "caller_not_allowed")


async def test_roles_per_organization(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    owner = await factory.admin(keys.org_id, Role.OWNER)
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    brand = await factory.admin(keys.org_id, Role.BRAND)
    outsider = await factory.admin()
    org, app = keys.org_id, keys.app_id

    # Members: owners only.
    member = {"email": outsider.email, "role": "viewer"}
    problem(await client.post(f"/v1/orgs/{org}/members", headers=admin.headers(), json=member), 403,
            "insufficient_role")
    problem(await client.post(f"/v1/orgs/{org}/members", headers=outsider.headers(), json=member), 404)
    assert (await client.post(f"/v1/orgs/{org}/members", headers=owner.headers(), json=member)).status_code == 200
    me = (await client.get("/v1/auth/me", headers=outsider.headers())).json()
    assert [(o["id"], o["role"]) for o in me["organizations"]] == [(org, "viewer")]

    # Apps and keys: admins create, viewers read.
    problem(await client.post(f"/v1/orgs/{org}/apps", headers=viewer.headers(), json={"name": "x"}), 403,
            "insufficient_role")
    assert (await client.post(f"/v1/orgs/{org}/apps", headers=admin.headers(), json={"name": "x"})).status_code == 201
    assert (await client.get(f"/v1/orgs/{org}/apps", headers=viewer.headers())).status_code == 200
    assert (await client.get(f"/v1/apps/{app}/keys", headers=viewer.headers())).status_code == 200
    problem(await client.post(f"/v1/apps/{app}/keys", headers=viewer.headers(), json={"kind": "client"}), 403,
            "insufficient_role")

    # On app routes an admin names the app; the role decides reads and writes.
    assert (await client.get("/v1/players", headers=viewer.headers(app))).status_code == 200
    problem(await client.put("/v1/players/p/account", headers=viewer.headers(app), json={}), 403, "insufficient_role")
    assert (await client.put("/v1/players/p/account", headers=admin.headers(app), json={})).status_code == 200
    problem(await client.get("/v1/players", headers=admin.headers()), 400, "app_required")
    problem(await client.get("/v1/players", headers=admin.headers("app_nonsense")), 404, "app_not_found")
    # Campaign roles (brand, streamer) grant nothing on app routes.
    problem(await client.get("/v1/players", headers=brand.headers(app)), 403, "insufficient_role")

    # A disabled account is locked out at once, tokens included.
    async with unit_of_work(runtime.sessions) as session:
        await session.execute(sa.update(AdminUser).where(AdminUser.id == viewer.admin_id)
                              .values(disabled_at=runtime.clock.now()))
    problem(await client.get("/v1/players", headers=viewer.headers(app)), 401, "invalid_token")
    problem(await client.post("/v1/auth/login", json={"email": viewer.email, "password": viewer.password}), 401)


async def test_player_tokens_are_minted_by_the_server_key_for_one_player(
        client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    minted = await client.post("/v1/players/alice/tokens", headers=keys.server, json={"ttl_seconds": 600})
    assert minted.status_code == 201
    token = minted.json()
    assert token["player_id"] == "alice" and token["token_type"] == "Bearer"
    alice = bearer(token["token"])
    assert (await client.get("/v1/players/alice/account", headers=alice)).json()["player_id"] == "alice"
    problem(await client.get("/v1/players/bob/account", headers=alice), 404)

    # Only the server key mints.
    problem(await client.post("/v1/players/alice/tokens", headers=keys.client, json={}), 403, "caller_not_allowed")
    problem(await client.post("/v1/players/alice/tokens", headers=alice, json={}), 403, "caller_not_allowed")
    for ttl in (10, 86_401):
        problem(await client.post("/v1/players/alice/tokens", headers=keys.server, json={"ttl_seconds": ttl}), 422,
                "validation_failed")

    # Short-lived: refused once its time is up.
    clock.advance(seconds=599)
    assert (await client.get("/v1/players/alice/account", headers=alice)).status_code == 200
    clock.advance(seconds=2)
    problem(await client.get("/v1/players/alice/account", headers=alice), 401, "invalid_token")

    # A player may change their own settings, not another's, and not create players.
    fresh = await factory.player_token(keys, "alice")
    assert (await client.patch("/v1/players/alice/account", headers=fresh, json={"timezone": "Asia/Tokyo"})
            ).json()["timezone"] == "Asia/Tokyo"
    problem(await client.patch("/v1/players/bob/account", headers=fresh, json={}), 404)
    problem(await client.put("/v1/players/alice/account", headers=fresh, json={}), 403, "caller_not_allowed")


async def test_services_refuse_what_routes_refuse(runtime: Runtime) -> None:
    """The CLI and other edges call services directly: the rules hold there too."""
    async with unit_of_work(runtime.sessions) as session:
        org = await tenancy.create_org(session, runtime.clock, "Org")
        await tenancy.create_admin(session, runtime.clock, "Same@Example.test", "long enough password")
    async with runtime.sessions() as session:
        with pytest.raises(Conflict) as refused:
            await tenancy.create_admin(session, runtime.clock, "same@example.TEST ", "another password!")
        assert refused.value.code == "admin_exists"
        app, _, _ = await tenancy.create_app(session, runtime.clock, org.id, "Game")
        await session.rollback()
    async with runtime.sessions() as session:
        assert await tenancy.find_app(session, app.id) is None  # rolled back: services never commit
