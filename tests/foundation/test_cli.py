"""The ``questline`` CLI against a temporary SQLite file, and ``questline serve`` as a real process.

These tests are synchronous: each CLI command runs its own event loop, as it does in a shell.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from fastapi import FastAPI
from rich.console import Console
from typer.testing import CliRunner

from questline.app import create_app
from questline.cli import achievements as achievements_cli
from questline.cli import demo as demo_cli
from questline.cli import main as cli_main
from questline.cli import terminal
from questline.cli.main import app as cli_app
from questline.kit.settings import DEFAULT_SECRET_KEY, InsecureSettingsError, Settings
from tests.conftest import lifespan
from tests.serving import serving

SECRET = "cli-test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"


def run(args: list[str], db_url: str, **env: str) -> Any:
    base = {"QUESTLINE_DATABASE_URL": db_url, "QUESTLINE_LOG_JSON": "false", "QUESTLINE_SECRET_KEY": SECRET,
            "QUESTLINE_ENV": "development"}
    return CliRunner().invoke(cli_app, args, env=base | env)


def ok(args: list[str], db_url: str) -> Any:
    result = run(args, db_url)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def ask_api(db_url: str, method: str, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
    """A request to the engine serving this database (the CLI's writes are what it sees)."""

    async def call() -> httpx.Response:
        settings = Settings(env="test", database_url=db_url, secret_key=SECRET)
        app = create_app(settings, background=False)
        async with lifespan(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cli.test") as client:
                return await client.request(method, path, headers=headers, json=body)

    return asyncio.run(call())


def test_migrate_then_orgs_apps_keys_and_admins(db_url: str, tmp_path: Path) -> None:
    assert "database at" in ok(["migrate"], db_url).output
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
    assert {"organizations", "apps", "api_keys", "admin_users", "idempotency_keys", "alembic_version"} <= tables

    org = json.loads(ok(["orgs", "create", "Studio", "--json"], db_url).stdout)
    assert org["org_id"].startswith("org_") and org["name"] == "Studio"

    created = json.loads(ok(["apps", "create", "Game", "--org", org["org_id"], "--json"], db_url).stdout)
    assert set(created) == {"app_id", "server_key", "client_key"}
    server = {"Authorization": f"Bearer {created['server_key']}"}

    # The printed server key works against the API.
    resp = ask_api(db_url, "PUT", "/v1/players/alice/account", server, {"display_name": "Alice"})
    assert resp.status_code == 200 and resp.json()["display_name"] == "Alice"

    # Keys: list (no secrets), create, revoke.
    listed = json.loads(ok(["keys", "list", created["app_id"], "--json"], db_url).stdout)
    assert sorted(k["kind"] for k in listed) == ["client", "server"]
    assert created["server_key"] not in json.dumps(listed)
    made = json.loads(ok(["keys", "create", created["app_id"], "--kind", "server", "--name", "ci", "--json"],
                         db_url).stdout)
    assert made["secret"].startswith("ql_sk_") and made["key_id"].startswith("key_")
    extra = {"Authorization": f"Bearer {made['secret']}"}
    assert ask_api(db_url, "GET", "/v1/players", extra).status_code == 200
    assert f"revoked {made['key_id']}" in ok(["keys", "revoke", created["app_id"], made["key_id"]], db_url).output
    resp = ask_api(db_url, "GET", "/v1/players", extra)
    assert resp.status_code == 401 and resp.json()["code"] == "key_revoked"
    table = ok(["keys", "list", created["app_id"]], db_url).output
    assert "ci" in table and "server" in table

    # Admins: created with a role, and able to log in and act in their organization.
    admin = json.loads(ok(["admins", "create", "Ops@Example.test", "--password", "a long password", "--org",
                           org["org_id"], "--role", "owner", "--json"], db_url).stdout)
    assert admin["email"] == "ops@example.test"
    login = ask_api(db_url, "POST", "/v1/auth/login", {}, {"email": "ops@example.test",
                                                            "password": "a long password"})
    assert login.status_code == 200
    token = {"Authorization": f"Bearer {login.json()['access_token']}"}
    apps = ask_api(db_url, "GET", f"/v1/orgs/{org['org_id']}/apps", token)
    assert [a["id"] for a in apps.json()["items"]] == [created["app_id"]]


def test_cli_errors_are_clean(db_url: str) -> None:
    ok(["migrate"], db_url)
    missing = run(["keys", "list", "app_01AAAAAAAAAAAAAAAAAAAAAAAA"], db_url)
    assert missing.exit_code == 1 and "not_found" in missing.output and missing.exception is not None
    assert isinstance(missing.exception, SystemExit)
    ok(["admins", "create", "a@example.test", "--password", "a long password"], db_url)
    again = run(["admins", "create", "A@example.test", "--password", "a long password"], db_url)
    assert again.exit_code == 1 and "admin_exists" in again.output
    short = run(["admins", "create", "b@example.test", "--password", "short"], db_url)
    assert short.exit_code == 2
    bad_kind = run(["keys", "create", "app_01AAAAAAAAAAAAAAAAAAAAAAAA", "--kind", "root"], db_url)
    assert bad_kind.exit_code == 2
    bad_url = run(["migrate"], "mysql://nope")
    assert bad_url.exit_code == 2 and "database_url" in bad_url.output


def _commands(group: Any, path: list[str]) -> Iterator[list[str]]:
    """Every command path under a (typer-vendored) click group."""
    yield path
    for name, command in (getattr(group, "commands", None) or {}).items():
        yield from _commands(command, [*path, name])


def test_help_works_on_every_command(db_url: str) -> None:
    root = typer.main.get_command(cli_app)
    paths = list(_commands(root, []))
    names = {" ".join(p) for p in paths}
    assert {"serve", "migrate", "orgs create", "apps create", "keys list", "keys create", "keys revoke",
            "admins create"} <= names
    for path in paths:
        result = run([*path, "--help"], db_url)
        assert result.exit_code == 0 and "Usage" in result.output, path
        assert "Traceback" not in result.output


def test_production_refuses_the_default_secret(db_url: str) -> None:
    for secret in (DEFAULT_SECRET_KEY, "too-short"):
        with pytest.raises(InsecureSettingsError):
            create_app(Settings(env="production", database_url=db_url, secret_key=secret))
        refused = run(["serve", "--port", "1"], db_url, QUESTLINE_ENV="production", QUESTLINE_SECRET_KEY=secret)
        assert refused.exit_code == 2 and "QUESTLINE_SECRET_KEY" in refused.output
        assert "Traceback" not in refused.output
    # With a real secret production serves. The public development secret is refused everywhere.
    ok(["migrate"], db_url)
    app = create_app(Settings(env="production", database_url=db_url, secret_key="x" * 48), background=False)
    assert asyncio.run(_status_of(app, "/readyz")) == 200
    with pytest.raises(InsecureSettingsError):
        create_app(Settings(env="development", database_url=db_url, secret_key=DEFAULT_SECRET_KEY))
    refused = run(["serve", "--port", "1"], db_url, QUESTLINE_SECRET_KEY=DEFAULT_SECRET_KEY)
    assert refused.exit_code == 2 and "public development value" in refused.output
    # Production with no secret at all is refused too (no generated secret in production).
    refused = run(["serve", "--port", "1"], db_url, QUESTLINE_ENV="production", QUESTLINE_SECRET_KEY="")
    assert refused.exit_code == 2 and "QUESTLINE_SECRET_KEY" in refused.output


async def _status_of(app: FastAPI, path: str) -> int:
    transport = httpx.ASGITransport(app=app)
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://cli.test") as client:
        return (await client.get(path)).status_code


@pytest.mark.slow
def test_serve_runs_the_engine_with_demo_keys_and_json_logs(tmp_path: Path) -> None:
    with serving(tmp_path, QUESTLINE_LOG_JSON="true") as served:
        base = served.base
        demo = json.loads((tmp_path / "questline-demo.json").read_text())
        server = {"Authorization": f"Bearer {demo['server_key']}", "X-Request-ID": "serve-test-1"}
        players = httpx.get(f"{base}/v1/players", headers=server, timeout=10)
        assert players.status_code == 200 and players.headers["x-request-id"] == "serve-test-1"
        login = httpx.post(f"{base}/v1/auth/login", timeout=10,
                           json={"email": demo["admin_email"], "password": demo["admin_password"]})
        assert login.status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=10).json()["status"] == "ready"
    out, errs = served.stdout(), served.stderr()
    assert demo["server_key"] in out and demo["admin_password"] in out  # printed once, on first start
    events = [json.loads(line) for line in errs.splitlines() if line.startswith("{")]
    mine = [e for e in events if e.get("event") == "request" and e.get("request_id") == "serve-test-1"]
    assert mine and mine[0]["route"] == "/v1/players" and mine[0]["status"] == 200
    assert all("timestamp" in e and "level" in e for e in events)


def test_init_prepares_what_serve_would_then_serving_uses_it(db_url: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`questline init` migrates and makes the demo once (keys in ./questline-demo.json); the
    server started on that database answers with those keys and makes no second demo."""
    monkeypatch.chdir(tmp_path)
    assert "Questline demo created" in ok(["init"], db_url).output
    keys = json.loads((tmp_path / "questline-demo.json").read_text())
    (tmp_path / "questline-demo.json").unlink()
    assert "demo created" not in ok(["init"], db_url).output  # not empty any more: nothing to do
    assert not (tmp_path / "questline-demo.json").exists()

    resp = ask_api(db_url, "GET", "/v1/players", {"Authorization": f"Bearer {keys['server_key']}"})
    assert resp.status_code == 200, resp.text
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        assert conn.execute("select count(*) from organizations").fetchone() == (1,)


def test_the_cli_sizes_its_output_when_it_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich fixes a console's size when it is made and COLUMNS and LINES are set: a console made at
    import kept a pytest-xdist worker's 80x24 (exported by readline) and cut ``ledger verify``'s table
    whatever COLUMNS the command was given. The CLI makes its consoles when it prints."""
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("LINES", "24")
    assert terminal.out().width == 40 and terminal.err().width == 40
    monkeypatch.setenv("COLUMNS", "200")
    assert terminal.out(soft_wrap=True).width == 200 and terminal.err().width == 200
    made_at_import = [f"{module.__name__}.{name}" for module in (cli_main, demo_cli, achievements_cli)
                      for name, value in vars(module).items() if isinstance(value, Console)]
    assert made_at_import == []
