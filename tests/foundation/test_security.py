"""The audit's authentication and tenancy findings (issue 10, points 8, 10, 11, 12 and 14), each as
the attack it describes, over HTTP, on every backend."""

from __future__ import annotations

import asyncio
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from questline.app import create_app
from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.kit.settings import DEFAULT_SECRET_KEY, InsecureSettingsError, Settings
from questline.tenancy.schemas import Role
from tests.competitions.helpers import competition, create, join
from tests.conftest import START, Factory, lifespan, problem
from tests.foundation.helpers import from_address
from tests.leaderboards.helpers import board, define, play, ranks, scored


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(hours: int) -> str:
    return (START + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


# --- 10.8: what a player writes about themself opens no gate -----------------------------------


async def test_a_player_cannot_write_the_traits_that_gates_read(client: httpx.AsyncClient, factory: Factory,
                                                                 runtime: Runtime) -> None:
    keys = await factory.app()
    mallory = await factory.player_token(keys, "mallory")
    me = "/v1/players/mallory/account"

    # The audit's attack: the player writes the attribute the entry requirement reads.
    problem(await client.patch(me, headers=mallory, json={"attributes": {"tier": "vip"}}), 422, "validation_failed")
    problem(await client.patch(me, headers=mallory, json={"traits": {"tier": "vip"}}), 403, "traits_not_writable")
    # Far ahead: lifecycle ticks of other tests sharing the PostgreSQL database never start it.
    cup = (await create(client, keys, competition(iso(9000), iso(9005), entry={"gating": {"traits": {"tier": "vip"}}})))
    # What is hers to write (profile, avatar, preferences) she writes; none of it opens anything.
    mine = await client.patch(me, headers=mallory, json={
        "display_name": "Mal", "avatar_url": "https://cdn.example.test/mal.png",
        "preferences": {"tier": "vip", "language": "fr"}})
    assert mine.status_code == 200, mine.text
    assert mine.json()["preferences"] == {"tier": "vip", "language": "fr"} and mine.json()["traits"] == {}
    problem(await client.patch(me, headers=mallory, json={"avatar_url": "javascript:alert(1)"}), 422)
    denied = problem(await join(client, keys, cup["id"], "mallory", headers=mallory), 403, "gated")
    assert denied["unmet"] == ["trait tier = 'vip'"]
    check = await client.post("/v1/gating/check", headers=keys.server,
                              json={"player_id": "mallory", "requirement": {"traits": {"tier": "vip"}}})
    assert check.json() == {"player_id": "mallory", "allowed": False, "unmet": ["trait tier = 'vip'"]}

    # Traits come from the server key or an app admin (PATCH or PUT); then the gate opens.
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    set_by_admin = await client.patch(me, headers=admin.headers(keys.app_id), json={"traits": {"tier": "vip"}})
    assert set_by_admin.json()["traits"] == {"tier": "vip"}
    assert set_by_admin.json()["preferences"] == {"tier": "vip", "language": "fr"}  # untouched
    assert (await join(client, keys, cup["id"], "mallory", headers=mallory)).status_code == 201
    # A player's later profile change leaves the traits alone.
    await client.patch(me, headers=mallory, json={"preferences": {}})
    assert (await client.get(me, headers=mallory)).json()["traits"] == {"tier": "vip"}
    # A trait compares by type: the trait true is not the string "true".
    await client.put("/v1/players/ivan/account", headers=keys.server, json={"traits": {"tier": "true"}})
    check = await client.post("/v1/gating/check", headers=keys.server,
                              json={"player_id": "ivan", "requirement": {"traits": {"tier": True}}})
    assert check.json()["allowed"] is False


async def test_boards_gate_and_partition_by_traits_never_by_preferences(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {
        "vip": {"event_type": "match.end", "field": "data.points", "gating": {"traits": {"tier": "vip"}}},
        "gyms": {"event_type": "match.end", "field": "data.points", "scope": {"type": "partition", "attribute": "gym"}},
    }})
    await client.put("/v1/players/vera/account", headers=keys.server, json={"traits": {"tier": "vip", "gym": "north"}})
    await client.put("/v1/players/mal/account", headers=keys.server, json={})
    mal = await factory.player_token(keys, "mal")
    assert (await client.patch("/v1/players/mal/account", headers=mal,
                               json={"preferences": {"tier": "vip", "gym": "north"}})).status_code == 200
    # Both in one batch: the worker reads traits once for the batch.
    await play(client, keys, runtime, [scored("vera", 10, iso(0)), scored("mal", 99, iso(0))])
    assert ranks(await board(client, keys.server, "vip")) == [(1, "vera", 10)]
    assert ranks(await board(client, keys.server, "gyms", partition="north")) == [(1, "vera", 10)]
    problem(await client.get("/v1/leaderboards/gyms", headers=mal), 422, "partition_required")
    # Once the server gives mal the trait, mal's next events count.
    await client.put("/v1/players/mal/account", headers=keys.server, json={"traits": {"tier": "vip"}})
    await play(client, keys, runtime, [scored("mal", 5, iso(1))])
    assert ranks(await board(client, keys.server, "vip")) == [(1, "vera", 10), (2, "mal", 5)]


# --- 10.10: tokens end with the authority that minted them -------------------------------------


async def test_revoking_or_rotating_a_key_ends_its_player_tokens_at_once(
        client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    owner = await factory.admin(keys.org_id, Role.OWNER)
    made = await client.post(f"/v1/apps/{keys.app_id}/keys", headers=owner.headers(),
                             json={"kind": "server", "name": "game backend"})
    backend = made.json()
    minted = await client.post("/v1/players/alice/tokens", headers=bearer(backend["secret"]), json={})
    alice = bearer(minted.json()["token"])
    other = await factory.player_token(keys, "alice")  # minted by the app's default server key
    # Warm every cache a request reads.
    for _ in range(2):
        assert (await client.get("/v1/players/alice/account", headers=alice)).status_code == 200

    revoked = await client.post(f"/v1/apps/{keys.app_id}/keys/{backend['id']}/revoke", headers=owner.headers())
    assert revoked.status_code == 200
    problem(await client.get("/v1/players/alice/account", headers=alice), 401, "token_revoked")
    assert (await client.get("/v1/players/alice/account", headers=other)).status_code == 200

    # Rotating the default key out ends the tokens it minted too; its successor mints new ones.
    default_key = next(k for k in (await client.get(f"/v1/apps/{keys.app_id}/keys", headers=owner.headers())
                                   ).json()["items"] if k["revoked_at"] is None and k["kind"] == "server")
    rotated = (await client.post(f"/v1/apps/{keys.app_id}/keys/{default_key['id']}/rotate",
                                 headers=owner.headers())).json()
    problem(await client.get("/v1/players/alice/account", headers=other), 401, "token_revoked")
    fresh = await client.post("/v1/players/alice/tokens", headers=bearer(rotated["secret"]), json={})
    assert (await client.get("/v1/players/alice/account", headers=bearer(fresh.json()["token"]))).status_code == 200


async def test_a_players_tokens_can_be_revoked_on_their_own(client: httpx.AsyncClient, factory: Factory,
                                                            runtime: Runtime) -> None:
    keys = await factory.app()
    alice, alice_again, bob = (await factory.player_token(keys, "alice"), await factory.player_token(keys, "alice"),
                               await factory.player_token(keys, "bob"))
    for token in (alice, alice_again, bob):
        assert (await client.get("/v1/players/alice/account" if token is not bob else "/v1/players/bob/account",
                                 headers=token)).status_code == 200

    # Only the server key or an app admin revokes; the player's own token may not, nor may a viewer.
    problem(await client.delete("/v1/players/alice/tokens", headers=alice), 403, "caller_not_allowed")
    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    problem(await client.delete("/v1/players/alice/tokens", headers=viewer.headers(keys.app_id)), 403,
            "insufficient_role")
    problem(await client.delete("/v1/players/nobody/tokens", headers=keys.server), 404, "player_not_found")
    assert (await client.delete("/v1/players/alice/tokens", headers=keys.server)).status_code == 204
    for token in (alice, alice_again):
        problem(await client.get("/v1/players/alice/account", headers=token), 401, "token_revoked")
    assert (await client.get("/v1/players/bob/account", headers=bob)).status_code == 200
    # A token minted afterwards works at once; a second revocation ends it too (idempotent route).
    fresh = await factory.player_token(keys, "alice")
    assert (await client.get("/v1/players/alice/account", headers=fresh)).status_code == 200
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    assert (await client.delete("/v1/players/alice/tokens", headers=admin.headers(keys.app_id))).status_code == 204
    problem(await client.get("/v1/players/alice/account", headers=fresh), 401, "token_revoked")

    # A well-signed token that does not name the key and epoch it was minted under is refused.
    legacy = jwt.encode({"sub": "alice", "aud": "questline:player", "iss": "questline", "app": keys.app_id,
                         "exp": int((runtime.clock.now() + timedelta(hours=1)).timestamp())},
                        runtime.settings.signing_key(), algorithm="HS256")
    problem(await client.get("/v1/players/alice/account", headers=bearer(legacy)), 401, "invalid_token")
    # And a token naming a key of another app is refused too.
    other = await factory.app()
    forged = jwt.encode({"sub": "alice", "aud": "questline:player", "iss": "questline", "app": keys.app_id,
                         "kid": f"key_{other.server_key[6:32]}", "ep": 5,
                         "exp": int((runtime.clock.now() + timedelta(hours=1)).timestamp())},
                        runtime.settings.signing_key(), algorithm="HS256")
    problem(await client.get("/v1/players/alice/account", headers=bearer(forged)), 401, "token_revoked")


async def test_reusing_a_rotated_refresh_token_revokes_its_whole_session(
        client: httpx.AsyncClient, factory: Factory) -> None:
    admin = await factory.admin()
    login = {"email": admin.email, "password": admin.password}
    stolen = (await client.post("/v1/auth/login", json=login)).json()
    elsewhere = (await client.post("/v1/auth/login", json=login)).json()  # another session of the same admin

    rotated = (await client.post("/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})).json()
    assert (await client.get("/v1/auth/me", headers=bearer(rotated["access_token"]))).status_code == 200
    # The thief replays the rotated-away token: the whole family is revoked, access tokens included.
    reuse = await client.post("/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    problem(reuse, 401, "refresh_token_reused")
    problem(await client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}), 401,
            "invalid_refresh_token")
    for access in (stolen["access_token"], rotated["access_token"]):
        problem(await client.get("/v1/auth/me", headers=bearer(access)), 401, "invalid_token")
    # The admin's other session is untouched.
    assert (await client.get("/v1/auth/me", headers=bearer(elsewhere["access_token"]))).status_code == 200
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]})
            ).status_code == 200


# --- 10.11: no two installs share a secret; the public one is never accepted --------------------


async def test_an_install_without_a_secret_makes_its_own_and_keeps_it_private(
        settings: Settings, factory: Factory, tmp_path: Path) -> None:
    keys = await factory.app()
    unset = settings.model_copy(update={"secret_key": None, "env": "development",
                                        "secret_key_file": tmp_path / "install-a" / "questline.secret"})

    async def token_and_forgery(config: Settings) -> tuple[str, int]:
        app = create_app(config, background=False)
        async with lifespan(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://install.test") as client:
                minted = (await client.post("/v1/players/alice/tokens", headers=keys.server, json={})).json()
                forged = jwt.encode({"sub": "adm_x", "sid": "rt_x", "aud": "questline:admin", "iss": "questline",
                                     "exp": 2**40}, DEFAULT_SECRET_KEY, algorithm="HS256")
                status = (await client.get("/v1/auth/me", headers=bearer(forged))).status_code
                return str(minted["token"]), status

    token, forged_status = await token_and_forgery(unset)
    assert forged_status == 401  # the public development key signs nothing here
    kept = tmp_path / "install-a" / "questline.secret"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    secret = kept.read_text().strip()
    assert len(secret) >= 32 and secret != DEFAULT_SECRET_KEY
    assert jwt.decode(token, secret, algorithms=["HS256"], audience="questline:player")["sub"] == "alice"
    # The same install keeps its secret across restarts; another install makes another one.
    await token_and_forgery(unset)
    assert kept.read_text().strip() == secret
    other = unset.model_copy(update={"secret_key_file": tmp_path / "install-b" / "questline.secret"})
    await token_and_forgery(other)
    assert (tmp_path / "install-b" / "questline.secret").read_text().strip() != secret


def test_where_the_secret_is_kept_and_when_it_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "data" / "game.db"
    beside = Settings(database_url=f"sqlite+aiosqlite:///{db}", secret_key=None)
    assert beside.secret_file() == tmp_path / "data" / "game.db.secret"
    made = beside.with_secret_key()
    assert made.signing_key() == (tmp_path / "data" / "game.db.secret").read_text().strip()
    assert beside.with_secret_key().signing_key() == made.signing_key()  # read, not made again
    pg = Settings(database_url="postgresql+asyncpg://u@db/q", secret_key=None)
    assert pg.secret_file() == Path("questline.secret")  # documented: the working directory
    # First starts racing each other agree on one secret.
    racing = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'race.db'}", secret_key=None)
    with ThreadPoolExecutor(max_workers=8) as pool:
        made_at_once = list(pool.map(lambda _: racing.with_secret_key().signing_key(), range(16)))
    assert len(set(made_at_once)) == 1
    # A secret file others can read is refused, as is the public development key, anywhere.
    os.chmod(beside.secret_file(), 0o644)
    with pytest.raises(InsecureSettingsError, match="chmod 600"):
        beside.with_secret_key()
    public = SecretStr(DEFAULT_SECRET_KEY)
    with pytest.raises(InsecureSettingsError, match="public development value"):
        Settings(database_url=f"sqlite+aiosqlite:///{db}", secret_key=public).with_secret_key()
    # Production never generates one: a missing or short secret is refused.
    for secret in (None, SecretStr("short")):
        with pytest.raises(InsecureSettingsError, match="32"):
            Settings(env="production", database_url=f"sqlite+aiosqlite:///{db}", secret_key=secret).with_secret_key()
    with pytest.raises(InsecureSettingsError):
        create_app(Settings(env="production", database_url=f"sqlite+aiosqlite:///{db}", secret_key=None))


# --- 10.12: guessing from elsewhere does not lock the owner out ---------------------------------


async def test_wrong_passwords_slow_their_source_not_the_owner(engine: FastAPI, factory: Factory,
                                                               clock: ManualClock) -> None:
    owner = await factory.admin()
    wrong = {"email": owner.email, "password": "guess guess guess"}
    right = {"email": owner.email, "password": owner.password}
    async with from_address(engine, "203.0.113.66") as attacker, from_address(engine, "198.51.100.7") as home:
        # Five free guesses, then each waits a delay that doubles.
        for _ in range(5):
            problem(await attacker.post("/v1/auth/login", json=wrong), 401, "invalid_credentials")
        waits = []
        for _ in range(4):
            problem(await attacker.post("/v1/auth/login", json=wrong), 401, "invalid_credentials")
            held = problem(await attacker.post("/v1/auth/login", json=wrong), 429, "rate_limited")
            waits.append(int((await attacker.post("/v1/auth/login", json=right)).headers["retry-after"]))
            assert "this address" in held["detail"]
            clock.advance(seconds=waits[-1])
        assert waits == [1, 2, 4, 8]
        # Twenty more guesses changed nothing for the owner at home.
        for _ in range(20):
            await attacker.post("/v1/auth/login", json=wrong)
        assert (await home.post("/v1/auth/login", json=right)).status_code == 200
        # Even the right password waits out the attacker's delay from the attacker's address.
        problem(await attacker.post("/v1/auth/login", json=right), 429, "rate_limited")
        # Unknown accounts are slowed the same way (no telling who has one).
        ghost = {"email": "ghost@example.test", "password": "x"}
        for _ in range(5):
            problem(await attacker.post("/v1/auth/login", json=ghost), 401, "invalid_credentials")
        problem(await attacker.post("/v1/auth/login", json=ghost), 401, "invalid_credentials")
        problem(await attacker.post("/v1/auth/login", json=ghost), 429, "rate_limited")
        # A success clears the pair: the owner's own slips at home are forgiven once they sign in.
        for _ in range(6):
            await home.post("/v1/auth/login", json=wrong)
        clock.advance(seconds=2)
        assert (await home.post("/v1/auth/login", json=right)).status_code == 200
        for _ in range(5):
            problem(await home.post("/v1/auth/login", json=wrong), 401, "invalid_credentials")


async def test_parallel_guesses_cannot_slip_past_the_delay(engine: FastAPI, factory: Factory) -> None:
    owner = await factory.admin()
    wrong = {"email": owner.email, "password": "guess guess guess"}
    async with from_address(engine, "203.0.113.67") as attacker:
        replies = await asyncio.gather(*(attacker.post("/v1/auth/login", json=wrong) for _ in range(12)))
    codes = sorted(r.status_code for r in replies)
    # Five free attempts and the sixth (which sets the first delay); the rest wait.
    assert codes == [401] * 6 + [429] * 6, codes


# --- 10.14: an organization always keeps an owner; viewers and brands start nothing --------------


async def test_the_last_owner_can_neither_demote_nor_remove_themself(client: httpx.AsyncClient,
                                                                     factory: Factory) -> None:
    owner = await factory.admin()
    org = (await client.post("/v1/orgs", headers=owner.headers(), json={"name": "Studio"})).json()
    members = f"/v1/orgs/{org['id']}/members"
    for role in ("brand", "viewer", "admin"):
        problem(await client.post(members, headers=owner.headers(), json={"email": owner.email, "role": role}), 409,
                "last_owner")
    problem(await client.delete(f"{members}/{owner.admin_id}", headers=owner.headers()), 409, "last_owner")
    me = (await client.get("/v1/auth/me", headers=owner.headers())).json()
    assert [(o["id"], o["role"]) for o in me["organizations"]] == [(org["id"], "owner")]

    # With a second owner, either may step down or leave; then the other is the last one.
    second = await factory.admin()
    assert (await client.post(members, headers=owner.headers(),
                              json={"email": second.email, "role": "owner"})).status_code == 200
    assert (await client.post(members, headers=owner.headers(),
                              json={"email": owner.email, "role": "admin"})).status_code == 200
    problem(await client.post(members, headers=owner.headers(), json={"email": owner.email, "role": "owner"}), 403,
            "insufficient_role")  # no longer an owner: cannot promote themself back
    problem(await client.delete(f"{members}/{second.admin_id}", headers=second.headers()), 409, "last_owner")
    assert (await client.delete(f"{members}/{owner.admin_id}", headers=second.headers())).status_code == 204
    problem(await client.delete(f"{members}/{owner.admin_id}", headers=second.headers()), 404, "member_not_found")
    assert (await client.get("/v1/auth/me", headers=owner.headers())).json()["organizations"] == []


async def test_owners_demoting_each_other_at_once_leave_an_owner(client: httpx.AsyncClient,
                                                                  factory: Factory) -> None:
    keys = await factory.app()
    owners = [await factory.admin(keys.org_id, Role.OWNER) for _ in range(4)]
    members = f"/v1/orgs/{keys.org_id}/members"
    # Each owner demotes the next, all at once: without one-at-a-time changes every demotion
    # sees others still owning and all succeed, leaving the organization with no owner.
    replies = await asyncio.gather(*(
        client.post(members, headers=owner.headers(), json={"email": owners[(i + 1) % 4].email, "role": "viewer"})
        for i, owner in enumerate(owners)))
    assert {r.status_code for r in replies} <= {200, 403, 409}, [r.text for r in replies]
    roles = [(await client.get("/v1/auth/me", headers=o.headers())).json()["organizations"][0]["role"] for o in owners]
    assert "owner" in roles, (roles, [r.status_code for r in replies])


async def test_viewers_and_brands_start_no_organizations_or_apps(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    brand = await factory.admin(keys.org_id, Role.BRAND)
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    newcomer = await factory.admin()  # an account an operator made, in no organization yet
    for who in (viewer, brand):
        problem(await client.post("/v1/orgs", headers=who.headers(), json={"name": "Mine"}), 403,
                "insufficient_role")
        problem(await client.post(f"/v1/orgs/{keys.org_id}/apps", headers=who.headers(), json={"name": "x"}), 403,
                "insufficient_role")
    for who in (admin, newcomer):
        made = await client.post("/v1/orgs", headers=who.headers(), json={"name": "Ours"})
        assert made.status_code == 201 and made.json()["role"] == "owner"
        assert (await client.post(f"/v1/orgs/{made.json()['id']}/apps", headers=who.headers(),
                                  json={"name": "Game"})).status_code == 201


# --- password hashing cost: a test-suite knob that production refuses -----------------------------


def test_passwords_hash_at_argon2s_standard_cost_unless_a_test_suite_asks_for_less(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from questline.kit import security

    db = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    assert Settings(database_url=db).password_hash_cost == "standard"
    with pytest.raises(ValidationError, match="password_hash_cost"):
        Settings(env="production", database_url=db, password_hash_cost="low")
    try:
        security.use_password_cost("standard")
        standard = security.hash_password("pw-1")
        security.use_password_cost("low")
        low = security.hash_password("pw-1")
    finally:
        security.use_password_cost("low")  # the suite's own setting (tests/conftest.py)
    assert standard.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert low.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    # A hash keeps its parameters: both verify whatever the current cost, and only with the password.
    assert security.verify_password("pw-1", standard) and security.verify_password("pw-1", low)
    assert not security.verify_password("pw-2", standard) and not security.verify_password("pw-2", low)
    # A runtime applies its settings' cost.
    Runtime.build(Settings(database_url=db, password_hash_cost="standard"))
    try:
        assert security.hash_password("pw").startswith("$argon2id$v=19$m=65536,")
    finally:
        security.use_password_cost("low")
