"""``questline``: run the engine and manage it from a shell. Every command has ``--help``.

Each command is an edge: it opens its own session and commits once at the end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy.ext.asyncio import AsyncSession

from questline import migrations
from questline.cli import achievements as achievements_cli
from questline.cli import demo as demo_cli
from questline.cli import no_collection, terminal
from questline.cli.terminal import err
from questline.demo import DemoKeys, bootstrap_demo
from questline.kit.db import unit_of_work
from questline.kit.errors import ProblemError
from questline.kit.logging import configure_logging
from questline.kit.pagination import PageParams
from questline.kit.runtime import Runtime
from questline.kit.settings import InsecureSettingsError, Settings
from questline.ledger import service as ledger
from questline.tenancy import service as tenancy
from questline.tenancy.schemas import KeyOut, Role

T = TypeVar("T")
app = typer.Typer(help="Questline: a self-hosted gamification and live-ops engine.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
apps_app = typer.Typer(help="Apps (each with its own players, rules and keys).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of an app.", no_args_is_help=True)
admins_app = typer.Typer(help="Admin users of the console and API.", no_args_is_help=True)
ledger_app = typer.Typer(help="The points ledger.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
app.add_typer(apps_app, name="apps")
app.add_typer(keys_app, name="keys")
app.add_typer(admins_app, name="admins")
app.add_typer(ledger_app, name="ledger")
app.add_typer(achievements_cli.app, name="achievements")
app.add_typer(demo_cli.app, name="demo")


def console() -> Console:
    """Standard output; keys and commands stay on one line, ready to copy."""
    return terminal.out(soft_wrap=True)


def load_settings(*, signing: bool = False, **overrides: Any) -> Settings:
    """The settings from the environment; a bad or unsafe value is a clean error (exit 2).

    ``signing``: the command signs or checks tokens, so it needs the secret key (made once
    beside the database when none is set outside production).
    """
    try:
        settings = Settings(**overrides)
        settings = settings.with_secret_key() if signing else settings
        settings.check_safe_for_production()
    except (ValidationError, InsecureSettingsError) as exc:
        err().print(f"[red]error[/red] (invalid_settings): {exc}")
        raise typer.Exit(2) from exc
    return settings


def run_in_session(work: Callable[[AsyncSession, Runtime], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run ``work`` in one committed transaction; problems become a clean error and exit 1."""
    settings = settings or load_settings()

    async def main() -> T:
        runtime = Runtime.build(settings)
        try:
            async with unit_of_work(runtime.sessions) as session:
                return await work(session, runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except ProblemError as exc:
        err().print(f"[red]error[/red] ({exc.code}): {exc.detail}")
        raise typer.Exit(1) from exc


def print_demo_keys(keys: DemoKeys, settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    out = console()
    out.rule("[bold]Questline demo created")
    out.print(f"organization  {keys.org_id}\napp           {keys.app_id}")
    out.print(f"server key    [bold]{keys.server_key}[/bold]\nclient key    {keys.client_key}")
    out.print(f"admin         {keys.admin_email} / {keys.admin_password}")
    out.print("These secrets are shown once (also saved to ./questline-demo.json). Try:")
    out.print(f"  curl -H 'Authorization: Bearer {keys.server_key}' {base}/v1/players")
    out.print("Fill the demo game with simulated players: questline demo simulate")
    out.rule()


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="target revision (default: every head)")] = "heads") -> None:
    """Apply database migrations (QUESTLINE_DATABASE_URL)."""
    settings = load_settings()
    migrations.upgrade(settings.database_url, revision)
    console().print(f"database at [bold]{revision}[/bold]")


ROLE_OPTION = typer.Option(help="what this process runs: all (API, worker and scheduler; the default), api, worker, "
                          "scheduler (env QUESTLINE_ROLE)")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="bind port")] = None,
    role: Annotated[str | None, ROLE_OPTION] = None,
    demo: Annotated[bool, typer.Option(help="create demo data on an empty database")] = True,
    migrate_first: Annotated[bool | None, typer.Option(
        "--migrate/--no-migrate",
        help="apply migrations first (default: yes outside production; roles all and api only)")] = None,
) -> None:
    """Run the engine: HTTP API, event worker and scheduler in one process, or one role of it.

    Every role answers /healthz, /readyz (what that role needs) and /metrics on its port; the
    worker and scheduler roles serve nothing else. Each role scales out: run as many as you need.
    """
    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port, "role": role}.items()
                                 if v is not None}
    settings = load_settings(signing=True, **overrides)
    configure_logging(settings.log_level, json=settings.log_json)
    if settings.role in ("all", "api"):
        _prepare(settings, settings.should_migrate if migrate_first is None else migrate_first, demo)
    _serve_http(settings)


@app.command()
def init(demo: Annotated[bool, typer.Option(help="create demo data on an empty database")] = True) -> None:
    """Prepare the database as `serve` does before it serves, then exit: migrations applied and,
    outside production, the demo created on an empty database (keys in ./questline-demo.json)."""
    settings = load_settings(signing=True)
    configure_logging(settings.log_level, json=settings.log_json)
    _prepare(settings, True, demo)


def _prepare(settings: Settings, migrate_first: bool, demo: bool) -> None:
    if migrate_first:
        migrations.upgrade(settings.database_url)
    if demo and settings.env != "production":
        keys = run_in_session(lambda s, r: bootstrap_demo(s, r.clock), settings)
        if keys is not None:
            Path("questline-demo.json").write_text(json.dumps(keys.__dict__, indent=2))
            print_demo_keys(keys, settings)


def _serve_http(settings: Settings) -> None:
    with no_collection():  # the routes and schemas live as long as the process
        import uvicorn

        from questline.app import create_app
        from questline.kit.server import http_protocol

        engine = create_app(settings, settle_gc=True)
    # uvicorn stops accepting on SIGTERM, lets requests in flight finish, then the app's shutdown
    # gives the background loops ``shutdown_grace_seconds`` to finish the batch in hand.
    # A long-running server settles the garbage collector once started (kit/loopwatch.settle_gc).
    uvicorn.run(engine, host=settings.host, port=settings.port, log_config=None,
                access_log=False, loop="auto", http=http_protocol(),
                timeout_graceful_shutdown=int(settings.shutdown_grace_seconds))


def _run_role(role: str, port: int | None, host: str | None) -> None:
    """A worker or scheduler process: with ``--port`` it serves its health endpoints there;
    without, it runs headless (several on one host need no ports)."""
    import signal

    with no_collection():
        from questline.kit.loopwatch import settle_gc, watch_loop
        from questline.mechanics import install
        from questline.roles import install_role, role_loops, stop_loops

    overrides: dict[str, Any] = {"role": role} | ({"port": port} if port is not None else {}) \
        | ({"host": host} if host is not None else {})
    settings = load_settings(signing=port is not None, **overrides)
    configure_logging(settings.log_level, json=settings.log_json)
    if port is not None:
        _serve_http(settings)
        return

    async def main() -> None:
        runtime = Runtime.build(settings)
        install(runtime)
        await runtime.caches.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = {name: asyncio.create_task(body(runtime, stop), name=f"questline.{name}")
                 for name, body in role_loops(runtime, role).items()}
        install_role(runtime, role, tasks)
        watch = asyncio.create_task(watch_loop(runtime.metrics, stop), name="questline.loopwatch")
        settle_gc()
        try:
            await stop.wait()
        finally:
            await stop_loops(tasks, stop, settings.shutdown_grace_seconds)
            await watch
            await runtime.close()

    asyncio.run(main())


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Argument(help="organization name")],
    owner: Annotated[str | None, typer.Option(help="e-mail of an existing admin who will own it")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create an organization."""

    async def work(session: AsyncSession, runtime: Runtime) -> dict[str, str]:
        org = await tenancy.create_org(session, runtime.clock, name)
        if owner:
            await tenancy.add_member(session, runtime.clock, org.id, owner, Role.OWNER)
        return {"org_id": org.id, "name": org.name}

    result = run_in_session(work)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        console().print(f"created organization {result['org_id']}")


@apps_app.command("create")
def apps_create(
    name: Annotated[str, typer.Argument(help="app name")],
    org: Annotated[str | None, typer.Option(help="organization id (default: the first one, created if none)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='print {"app_id", "server_key", "client_key"}')] = False,
) -> None:
    """Create an app with a server key and a client key (secrets printed once)."""

    async def work(session: AsyncSession, runtime: Runtime) -> dict[str, str]:
        org_id = org
        if org_id is None:
            first = await tenancy.first_org(session)
            org_id = first.id if first else (await tenancy.create_org(session, runtime.clock, "Default")).id
        created, server_key, client_key = await tenancy.create_app(session, runtime.clock, org_id, name)
        return {"app_id": created.id, "server_key": server_key, "client_key": client_key}

    result = run_in_session(work)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        console().print(f"app        {result['app_id']}\nserver key {result['server_key']}\n"
                      f"client key {result['client_key']}\n(shown once)")


@keys_app.command("list")
def keys_list(
    app_id: Annotated[str, typer.Argument(help="app id")],
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """List an app's keys (secrets are never shown again)."""

    async def work(session: AsyncSession, runtime: Runtime) -> list[dict[str, Any]]:
        await tenancy.get_app(session, app_id)
        keys: list[dict[str, Any]] = []
        page = PageParams(limit=200)
        while True:
            found = await tenancy.list_keys(session, app_id, page)
            keys.extend(KeyOut.model_validate(k).model_dump(mode="json") for k in found.items)
            if found.next_cursor is None:
                return keys
            page = PageParams(limit=200, cursor=found.next_cursor)

    keys = run_in_session(work)
    if as_json:
        typer.echo(json.dumps(keys))
        return
    table = Table(Column("id", no_wrap=True), "kind", "name", "last4", "state", box=box.SIMPLE)
    for key in keys:
        state = f"revoked {key['revoked_at'][:10]}" if key["revoked_at"] else "active"
        table.add_row(key["id"], key["kind"], key["name"], key["last4"], state)
    console().print(table)


@keys_app.command("create")
def keys_create(
    app_id: Annotated[str, typer.Argument(help="app id")],
    kind: Annotated[str, typer.Option(help="server or client")] = "server",
    name: Annotated[str, typer.Option(help="a label")] = "",
    as_json: Annotated[bool, typer.Option("--json", help='print {"key_id", "kind", "secret"}')] = False,
) -> None:
    """Create a key; its secret is printed once."""
    if kind not in ("server", "client"):
        raise typer.BadParameter("kind must be server or client")

    async def work(session: AsyncSession, runtime: Runtime) -> tuple[str, str]:
        await tenancy.get_app(session, app_id)
        key, secret = await tenancy.create_key(session, runtime.clock, app_id, kind, name)  # type: ignore[arg-type]
        return key.id, secret

    key_id, secret = run_in_session(work)
    if as_json:
        typer.echo(json.dumps({"key_id": key_id, "kind": kind, "secret": secret}))
    else:
        console().print(f"key    {key_id}\nsecret {secret}\n(shown once)")


@keys_app.command("revoke")
def keys_revoke(app_id: Annotated[str, typer.Argument(help="app id")],
                key_id: Annotated[str, typer.Argument(help="key id")]) -> None:
    """Revoke a key at once."""

    async def work(session: AsyncSession, runtime: Runtime) -> None:
        await tenancy.revoke_key(session, runtime.clock, app_id, key_id)

    run_in_session(work)
    console().print(f"revoked {key_id}")


@admins_app.command("create")
def admins_create(
    email: Annotated[str, typer.Argument(help="login e-mail")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="at least 10 characters")],
    name: Annotated[str, typer.Option(help="display name")] = "",
    org: Annotated[str | None, typer.Option(help="organization to join")] = None,
    role: Annotated[Role, typer.Option(help="role in that organization")] = Role.ADMIN,
    as_json: Annotated[bool, typer.Option("--json", help='print {"admin_id", "email"}')] = False,
) -> None:
    """Create an admin user (optionally with a role in an organization)."""
    if len(password) < 10:
        raise typer.BadParameter("the password needs at least 10 characters")

    async def work(session: AsyncSession, runtime: Runtime) -> str:
        admin = await tenancy.create_admin(session, runtime.clock, email, password, name)
        if org:
            await tenancy.get_org(session, org)
            await tenancy.add_member(session, runtime.clock, org, email, role)
        return admin.id

    admin_id = run_in_session(work)
    if as_json:
        typer.echo(json.dumps({"admin_id": admin_id, "email": email.strip().lower()}))
    else:
        console().print(f"created admin {admin_id}")


@app.command()
def worker(
    port: Annotated[int | None, typer.Option(help="serve /healthz, /readyz and /metrics on this port")] = None,
    host: Annotated[str | None, typer.Option(help="bind address of those endpoints")] = None,
) -> None:
    """Run only the event worker (`serve --role worker`; headless unless --port is given)."""
    _run_role("worker", port, host)


@app.command()
def scheduler(
    port: Annotated[int | None, typer.Option(help="serve /healthz, /readyz and /metrics on this port")] = None,
    host: Annotated[str | None, typer.Option(help="bind address of those endpoints")] = None,
) -> None:
    """Run only the scheduled jobs (`serve --role scheduler`; headless unless --port is given)."""
    _run_role("scheduler", port, host)


@app.command()
def replay(
    app_id: Annotated[str | None, typer.Option("--app", help="only this app (default: every app)")] = None,
) -> None:
    """Rebuild all derived state (stats, XP, levels, progress) by reprocessing the event log.

    The ledger is the truth and is not rebuilt: rewards carry deterministic idempotency keys,
    so reprocessing finds them already posted. Safe beside a running engine: its worker shares
    the work, its scheduled jobs wait until the replay is done, its rank index is rebuilt.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from questline.mechanics import install
    from questline.pipeline.replay import start_replay
    from questline.pipeline.worker import drain

    async def main() -> int:
        runtime = Runtime.build(Settings())
        install(runtime)
        try:
            total = await start_replay(runtime, app_id)
            with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=err()) as progress:
                task = progress.add_task("events", total=total)
                # Counts this process's share; an engine's worker may process the rest.
                await drain(runtime, lambda n: progress.advance(task, n))
                progress.update(task, completed=total)
            return total
        finally:
            await runtime.close()

    console().print(f"replayed {asyncio.run(main())} events")


config_app = typer.Typer(help="An app's definitions (stats, XP tracks and rules, …) as files.",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("load")
def config_load(
    path: Annotated[Path, typer.Argument(help="YAML or JSON file: {definitions: {kind: {key: body}}}", exists=True)],
    app_id: Annotated[str, typer.Option("--app", help="the app to configure")],
    prune: Annotated[bool, typer.Option(help="delete definitions of the file's kinds that it omits")] = False,
) -> None:
    """Validate and apply a whole configuration file in one transaction (all or nothing)."""
    import yaml

    from questline.mechanics import install
    from questline.rules import service as rules
    from questline.rules.schemas import Bundle

    try:
        raw = yaml.safe_load(path.read_text())
        bundle = Bundle.model_validate({**(raw or {}), "prune": prune})
    except (yaml.YAMLError, ValueError) as exc:
        err().print(f"[red]error[/red]: {path} is not a valid configuration: {exc}")
        raise typer.Exit(1) from exc

    async def work(session: AsyncSession, runtime: Runtime) -> Any:
        install(runtime)
        await tenancy.get_app(session, app_id)
        return await rules.apply_bundle(session, runtime.clock, rules.registry_of(runtime), app_id, bundle)

    result = run_in_session(work)
    console().print(f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
                  f"deleted {result.deleted}; config version {result.config_version}")


@config_app.command("dump")
def config_dump(app_id: Annotated[str, typer.Option("--app", help="the app")]) -> None:
    """Print an app's definitions as YAML (the format `config load` reads)."""
    import yaml

    from questline.mechanics import install
    from questline.rules import service as rules

    async def work(session: AsyncSession, runtime: Runtime) -> dict[str, Any]:
        install(runtime)
        ruleset = await rules.ruleset_cache(runtime).get(session, app_id)
        return {kind: {key: body.model_dump(mode="json", by_alias=True, exclude_none=True)
                       for key, body in items.items()} for kind, items in ruleset.definitions.items()}

    typer.echo(yaml.safe_dump({"definitions": run_in_session(work)}, sort_keys=True))


@ledger_app.command("verify")
def ledger_verify(
    app_id: Annotated[str | None, typer.Option("--app", help="only this app (default: every app)")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many violations")] = 50,
) -> None:
    """Check every ledger invariant; exits 1 when any is broken.

    Postings sum to zero per transaction and currency; each account's postings form a gapless
    chain (seq 1, 2, ...; each starts from the previous balance); each account's balance and
    lifetime totals equal its postings; no player balance is or was negative; the holds account
    covers the active holds.
    """

    async def work(session: AsyncSession, runtime: Runtime) -> tuple[list[Any], list[Any]]:
        return await ledger.ledger_totals(session, app_id), await ledger.verify(session, app_id)

    totals, violations = run_in_session(work)
    for shown_app in dict.fromkeys(t.app_id for t in totals):
        summary = Table(title=f"Ledger of {shown_app}", title_justify="left")
        summary.add_column("currency", no_wrap=True)
        for heading in ("accounts", "postings", "players", "issued", "held", "spent"):
            summary.add_column(heading, justify="right")
        for t in totals:
            if t.app_id == shown_app:
                summary.add_row(t.currency, str(t.accounts), str(t.postings), f"{t.player_balances:,}",
                                f"{t.issued:,}", f"{t.held:,}", f"{t.sunk:,}")
        console().print(summary)
    console().print("[dim]players: sum of player balances; issued: ever granted; held: in active holds; "
                  "spent: taken out by spends and purchases[/dim]")
    if not violations:
        console().print("[green]ledger verified[/green]: every invariant holds")
        return
    broken = Table("check", "app", "subject", "detail", title=f"{len(violations)} violation(s)",
                   title_justify="left", style="red")
    for v in violations[:limit]:
        broken.add_row(v.check, v.app_id, v.subject, v.detail)
    console().print(broken)
    if len(violations) > limit:
        console().print(f"... and {len(violations) - limit} more")
    err().print(f"[red]ledger verification failed[/red]: {len(violations)} violation(s)")
    raise typer.Exit(1)


def run() -> None:
    app()
