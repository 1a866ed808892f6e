"""The application factory: builds one engine (HTTP API plus, optionally, worker and scheduler)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import swagger_ui_bundle
from fastapi import APIRouter, FastAPI, Request
from fastapi.datastructures import Default
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

from questline import __version__, mechanics, openapi
from questline.achievements import api as achievements_api
from questline.announcements import api as announcements_api
from questline.assets import api as assets_api
from questline.audit import api as audit_api
from questline.audit import service as audit
from questline.battlepass import api as battlepass_api
from questline.billing import api as billing_api
from questline.campaigns import api as campaigns_api
from questline.challenges import api as challenges_api
from questline.chat import api as chat_api
from questline.communities import api as communities_api
from questline.competitions import api as competitions_api
from questline.conflicts import api as conflicts_api
from questline.console import api as console_api
from questline.finance import api as finance_api
from questline.fulfilment import api as fulfilment_api
from questline.gating import api as gating_api
from questline.gkeys import api as gkeys_api
from questline.kit import loopwatch
from questline.kit.clock import Clock
from questline.kit.dispatch import guard_routes
from questline.kit.errors import install_problem_handlers
from questline.kit.fastlane import FastLane, FastLaneMiddleware
from questline.kit.middleware import EdgeLimits, EdgeMiddleware, cors_policy
from questline.kit.responses import JsonResponse
from questline.kit.routing import operation_id
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.leaderboards import api as leaderboards_api
from questline.ledger import api as ledger_api
from questline.links import api as links_api
from questline.notifications import api as notifications_api
from questline.ops import api as ops_api
from questline.pipeline import api as events_api
from questline.players import api as players_api
from questline.profiles import api as profiles_api
from questline.progression import api as progression_api
from questline.realtime import api as realtime_api
from questline.referrals import api as referrals_api
from questline.roles import ROLES, install_role, role_loops, stop_loops
from questline.rules import api as rules_api
from questline.sharecards import api as sharecards_api
from questline.shop import api as shop_api
from questline.sponsors import api as sponsors_api
from questline.streaks import api as streaks_api
from questline.tenancy import api as tenancy_api
from questline.treasury import api as treasury_api
from questline.webhooks import api as webhooks_api
from questline.widgets import api as widgets_api


def _routers() -> list[APIRouter]:
    """Every area's router; add one line per area."""
    return [
        ops_api.router,
        tenancy_api.router,
        players_api.router,
        ledger_api.router,
        events_api.router,
        rules_api.router,
        progression_api.router,
        progression_api.tracks_router,
        profiles_api.router,
        leaderboards_api.router,
        competitions_api.router,
        challenges_api.router,
        battlepass_api.router,
        shop_api.router,
        referrals_api.router,
        communities_api.router,
        links_api.router,
        gating_api.router,
        fulfilment_api.router,
        notifications_api.router,
        streaks_api.router,
        achievements_api.router,
        sponsors_api.router,
        gkeys_api.router,
        conflicts_api.router,
        assets_api.router,
        campaigns_api.router,
        treasury_api.router,
        billing_api.router,
        finance_api.router,
        audit_api.router,
        webhooks_api.router,
        realtime_api.router,
        sharecards_api.router,
        chat_api.router,
        announcements_api.router,
    ]


@functools.cache
def _included_routes(api: bool) -> tuple[BaseRoute, ...]:
    """Every area's router (``api``) or the operations router alone, included once per process.

    FastAPI builds an included route (its dependencies, its validators) once per inclusion, when
    it is first matched or listed; building every route took about half a second of CPU. A server
    builds one app, but a test process builds one per test: the inclusions, with what they have
    built, are shared by every app this process makes. They are included as ``FastAPI`` includes
    them (same response class and operation ids) but with no app behind them: an app's
    ``dependency_overrides`` do not reach these routes (the engine and its tests use none).
    """
    holder = APIRouter(default_response_class=Default(JsonResponse), generate_unique_id_function=operation_id,
                       strict_content_type=True)
    for router in _routers() if api else [ops_api.router]:
        holder.include_router(router)
    guard_routes(holder.routes)  # a request tries only the routers its path prefix can match
    return tuple(holder.routes)


def _fast_routes() -> list[Callable[[FastLane], None]]:
    """Each area's ``fast_routes(lane)``: GET routes it also answers in the fast lane."""
    return [
        players_api.fast_routes,
        leaderboards_api.fast_routes,
        events_api.fast_routes,
    ]


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               runtime: Runtime | None = None, background: bool | None = None, role: str | None = None,
               settle_gc: bool = False) -> FastAPI:
    """``background`` runs the worker and scheduler in-process (default: as the settings say).
    ``settle_gc``: once started, tune the garbage collector for a long-running server
    (``kit.loopwatch.settle_gc``; ``questline serve`` does, tests do not).

    ``role`` (default: the settings' ``role``): ``all`` is the whole engine in one process; ``api``
    serves the HTTP API only; ``worker`` and ``scheduler`` run their background loop and serve
    only ``/healthz``, ``/readyz`` and ``/metrics``."""
    settings = settings or (runtime.settings if runtime else Settings())
    role = role or settings.role
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    settings = settings.with_secret_key()  # refuses public or weak secrets; makes the install's own once
    runtime = runtime or Runtime.build(settings, clock)
    if runtime.settings.secret_key is None:
        runtime.settings = settings
    mechanics.install(runtime)
    audit.install(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        await runtime.caches.start()  # other processes' cache invalidations (Redis pub/sub)
        on = background is not False
        loops = role_loops(runtime, role, worker=on, scheduler=on)
        tasks = {name: asyncio.create_task(loop(runtime, stop), name=f"questline.{name}")
                 for name, loop in loops.items()}
        install_role(runtime, role, tasks)
        watch = asyncio.create_task(loopwatch.watch_loop(runtime.metrics, stop), name="questline.loopwatch")
        if settle_gc:
            loopwatch.settle_gc()
        try:
            yield
        finally:
            await stop_loops(tasks, stop, settings.shutdown_grace_seconds)
            await watch
            await runtime.close()

    app = FastAPI(
        title="Questline",
        version=__version__,
        summary="Events in; XP, levels, points, quests, streaks and ranks out.",
        lifespan=lifespan,
        docs_url=None,  # served below from local assets: the engine works offline
        redoc_url=None,  # ReDoc would load its scripts and fonts from public CDNs
        openapi_url="/openapi.json",
        generate_unique_id_function=operation_id,
        # Replies without a response model render with orjson; a Default keeps FastAPI's fast path
        # (pydantic serializing straight to bytes) for every reply that has one.
        default_response_class=Default(JsonResponse),
        # The engine reports through Prometheus metrics and structured logs; FastAPI's native
        # OpenTelemetry hook would otherwise ask OpenTelemetry's global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    openapi.install(app)
    _mount_docs(app)
    widgets_api.mount(app)
    console_api.mount(app)
    install_problem_handlers(app)
    lane = FastLane(runtime, enabled=settings.fast_lane and role in ("all", "api"))
    app.state.fast_lane = lane
    # Inside the edge (its headers, bounds, CORS, metrics and log apply to both paths), before routing.
    app.add_middleware(FastLaneMiddleware, lane=lane)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    app.add_middleware(EdgeMiddleware, metrics=runtime.metrics, cors=cors_policy(origins), limits=EdgeLimits(
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=max(settings.max_upload_bytes, settings.max_body_bytes),
        max_url_bytes=settings.max_url_bytes, max_header_bytes=settings.max_header_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
    ))
    app.router.routes.extend(_included_routes(role in ("all", "api")))
    if lane.enabled:
        for register in _fast_routes():
            register(lane)
        lane.bind(app.router.routes)
    return app


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its scripts served by the engine itself, not fetched from a CDN."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="Questline API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    # A plain route, like FastAPI's own docs route: not part of the API it documents.
    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
