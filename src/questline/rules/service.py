"""Definitions: validated, versioned, cross-checked, and compiled into an app's rule set."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, ProblemError, Unprocessable
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.periods import period_keys, zone
from questline.kit.runtime import Runtime
from questline.players import service as players
from questline.rules import repository as repo
from questline.rules.conditions import MAX_DEPTH, depth_of
from questline.rules.models import Definition, DefinitionVersion
from questline.rules.registry import KindRegistry
from questline.rules.schemas import DEFINITION_KEY, Bundle, BundleResult, DefinitionBody, StatSeries, StatTotal
from questline.tenancy import service as tenancy

T = TypeVar("T")


def _errors_of(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


def _invalid(kind: str, key: str, errors: list[dict[str, Any]]) -> Unprocessable:
    first = errors[0]
    where = ".".join(first["loc"]) or "body"
    return Unprocessable(f"{kind} {key!r} is invalid: {where}: {first['msg']}", code="invalid_definition",
                         extra={"kind": kind, "key": key, "errors": errors})


def parse_body(registry: KindRegistry, kind: str, key: str, body: Mapping[str, Any]) -> DefinitionBody:
    import re

    spec = registry.get(kind)
    if not re.match(DEFINITION_KEY, key):
        raise Unprocessable(f"key {key!r} must match {DEFINITION_KEY}", code="invalid_definition_key")
    try:
        model = spec.schema.model_validate(body)
    except ValidationError as exc:
        raise _invalid(kind, key, _errors_of(exc)) from exc
    for value in model.__dict__.values():
        if isinstance(value, BaseModel) and depth_of(value) > MAX_DEPTH:
            raise _invalid(kind, key, [{"loc": [], "msg": f"conditions nest at most {MAX_DEPTH} deep",
                                        "type": "too_deep"}])
    return model


async def missing_references(session: AsyncSession, registry: KindRegistry, app_id: str,
                             references: Iterable[tuple[str, str]],
                             pending: set[tuple[str, str]] | None = None) -> list[str]:
    """Which (kind, key) references name no definition of the app (nor one in ``pending``), in words."""
    missing = []
    for ref_kind, ref_key in references:
        candidates = registry.kinds_answering(ref_kind)
        if any((k, ref_key) in (pending or ()) for k in candidates):
            continue
        found = False
        for candidate in candidates:
            if await repo.get(session, app_id, candidate, ref_key) is not None:
                found = True
                break
        if not found:
            missing.append(f"{ref_kind} {ref_key!r}")
    return missing


async def _check_references(session: AsyncSession, registry: KindRegistry, app_id: str, kind: str, key: str,
                            model: DefinitionBody, pending: set[tuple[str, str]]) -> None:
    missing = await missing_references(session, registry, app_id, model.references(), pending)
    errors = [{"loc": [], "msg": f"refers to unknown {m}", "type": "unknown_reference"} for m in missing]
    spec = registry.get(kind)
    if spec.check is not None:
        errors += [{"loc": [], "msg": msg, "type": "failed_check"} for msg in await spec.check(session, app_id, model)]
    if spec.keyed_check is not None:
        errors += [{"loc": [], "msg": msg, "type": "failed_check"}
                   for msg in await spec.keyed_check(session, app_id, key, model, pending)]
    if errors:
        raise _invalid(kind, key, errors)


async def put_definition(session: AsyncSession, clock: Clock, registry: KindRegistry, app_id: str, kind: str,
                         key: str, body: Mapping[str, Any], expected_version: int | None = None,
                         pending: set[tuple[str, str]] | None = None) -> tuple[Definition, bool]:
    """Create or replace a definition; returns it and whether it was created."""
    model = parse_body(registry, kind, key, body)
    await _check_references(session, registry, app_id, kind, key, model, pending or set())
    stored = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    now = clock.now()
    row = await repo.get(session, app_id, kind, key)
    if expected_version is not None and (row.version if row else 0) != expected_version:
        raise ProblemError(
            f"{kind} {key!r} is at version {row.version if row else 0}, not {expected_version}",
            status=412, code="version_mismatch", title="Precondition failed",
        )
    if row is None:
        row = Definition(app_id=app_id, kind=kind, key=key, version=1, body=stored, created_at=now, updated_at=now)
        await repo.add(session, row)
        created = True
    elif row.body == stored:
        return row, False
    else:
        row.body, row.version, row.updated_at = stored, row.version + 1, now
        await session.flush()
        created = False
    await repo.add_version(session, row)
    await tenancy.bump_config_version(session, app_id)
    return row, created


async def get_definition(session: AsyncSession, registry: KindRegistry, app_id: str, kind: str,
                         key: str) -> Definition:
    registry.get(kind)
    row = await repo.get(session, app_id, kind, key)
    if row is None:
        raise NotFound(f"{kind} {key!r} not found", code="definition_not_found")
    return row


async def list_versions(session: AsyncSession, registry: KindRegistry, app_id: str, kind: str, key: str,
                        page: PageParams) -> Page[DefinitionVersion]:
    """A definition's versions, newest first (the current one included)."""
    await get_definition(session, registry, app_id, kind, key)
    rows = await repo.versions_page(session, app_id, kind, key, page.after_int(), page.limit)
    return build_page(list(rows), page.limit, lambda v: [v.version])


async def get_version(session: AsyncSession, registry: KindRegistry, app_id: str, kind: str, key: str,
                      version: int) -> DefinitionVersion:
    registry.get(kind)
    row = await repo.version_of(session, app_id, kind, key, version)
    if row is None:
        raise NotFound(f"{kind} {key!r} has no version {version}", code="definition_version_not_found")
    return row


# Period keys by their shape (see kit.periods): a local day, an ISO week, a month.
PERIOD_SHAPES = {"day": "____-__-__", "week": "____-W__", "month": "____-__"}


async def stat_series(session: AsyncSession, registry: KindRegistry, app_id: str, stat: str, period: str,
                      limit: int) -> StatSeries:
    """A stat added up over all players, per period, for the latest ``limit`` periods."""
    await get_definition(session, registry, app_id, "stat", stat)
    rows = await repo.stat_totals(session, app_id, stat, PERIOD_SHAPES[period], limit)
    return StatSeries(stat=stat, period=period,
                      items=[StatTotal(period_key=k, total=t, players=n) for k, t, n in rows])


async def list_definitions(session: AsyncSession, registry: KindRegistry, app_id: str, kind: str,
                           page: PageParams) -> Page[Definition]:
    registry.get(kind)
    rows = await repo.page_of_kind(session, app_id, kind, page.after_str(), page.limit)
    return build_page(list(rows), page.limit, lambda d: [d.key])


async def delete_definition(session: AsyncSession, registry: KindRegistry, app_id: str, kind: str,
                            key: str) -> None:
    row = await get_definition(session, registry, app_id, kind, key)
    users = await _referrers(session, registry, app_id, kind, key)
    if users:
        raise Conflict(f"{kind} {key!r} is used by {', '.join(users)}; change those first",
                       code="definition_in_use", extra={"used_by": users})
    # Its history goes with it: a definition made again under the key starts again at version 1.
    await repo.delete_versions(session, app_id, kind, key)
    await repo.delete(session, row)
    await tenancy.bump_config_version(session, app_id)


async def _referrers(session: AsyncSession, registry: KindRegistry, app_id: str, kind: str, key: str) -> list[str]:
    spec = registry.get(kind)
    satisfies = {spec.name, *spec.answers_for}
    users = []
    for row in await repo.all_of_app(session, app_id):
        if (row.kind, row.key) == (kind, key):
            continue
        model = registry.get(row.kind).schema.model_validate(row.body)
        if any(ref_kind in satisfies and ref_key == key for ref_kind, ref_key in model.references()):
            users.append(f"{row.kind} {row.key!r}")
    return users


async def apply_bundle(session: AsyncSession, clock: Clock, registry: KindRegistry, app_id: str,
                       bundle: Bundle) -> BundleResult:
    """Apply a whole configuration at once: everything is validated before anything changes."""
    for kind in bundle.definitions:
        registry.get(kind)
    pending = {(kind, key) for kind, items in bundle.definitions.items() for key in items}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    for kind, items in bundle.definitions.items():
        for key, body in items.items():
            before = await repo.get(session, app_id, kind, key)
            before_version = before.version if before else 0
            row, created = await put_definition(session, clock, registry, app_id, kind, key, body, pending=pending)
            bucket = "created" if created else ("updated" if row.version != before_version else "unchanged")
            counts[bucket] += 1
    if bundle.prune:
        for row in list(await repo.all_of_app(session, app_id)):
            if row.kind in bundle.definitions and (row.kind, row.key) not in pending:
                await delete_definition(session, registry, app_id, row.kind, row.key)
                counts["deleted"] += 1
    if bundle.client_event_types is not None:
        await tenancy.set_client_event_types(session, app_id, sorted(set(bundle.client_event_types)))
    app = await tenancy.get_app(session, app_id)
    await session.refresh(app)
    return BundleResult(config_version=app.config_version, **counts)


@dataclass
class RuleSet:
    """An app's definitions at one config version, parsed; processors memoize compiled forms."""

    app_id: str
    version: int
    client_event_types: frozenset[str]
    definitions: dict[str, dict[str, DefinitionBody]]
    _memo: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> dict[str, DefinitionBody]:
        return self.definitions.get(kind, {})

    def memo(self, name: str, build: Callable[[RuleSet], T]) -> T:
        if name not in self._memo:
            self._memo[name] = build(self)
        value: T = self._memo[name]
        return value


def metrics_read(ruleset: RuleSet) -> frozenset[str]:
    """Every player metric a definition of the rule set may read (a condition anywhere in it, a
    progress spec). A processor that only publishes metrics loads nothing when none of its metrics
    is read. It errs towards reading: any ``metric`` string of a definition counts."""
    return ruleset.memo("rules.metrics_read", _collect_metrics)


def _collect_metrics(ruleset: RuleSet) -> frozenset[str]:
    found: set[str] = set()
    for by_key in ruleset.definitions.values():
        for body in by_key.values():
            _metrics_in(body, found)
    return frozenset(found)


def _metrics_in(value: Any, found: set[str]) -> None:
    if isinstance(value, BaseModel | Mapping):
        fields = value.__dict__ if isinstance(value, BaseModel) else value
        metric = fields.get("metric")
        if isinstance(metric, str):
            found.add(metric)
        for item in fields.values():
            _metrics_in(item, found)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _metrics_in(item, found)


class RuleSetCache:
    """Compiled rule sets per app, recompiled when the app's config version moves."""

    def __init__(self, registry: KindRegistry) -> None:
        self.registry = registry
        self._sets: dict[str, RuleSet] = {}

    async def get(self, session: AsyncSession, app_id: str) -> RuleSet:
        # The app's settings come from the process's cache (dropped whenever its config version
        # moves): a warm request or batch reads no row to learn its rule set is current.
        app = await tenancy.app_settings(session, app_id)
        cached = self._sets.get(app_id)
        if cached is not None and cached.version == app.config_version:
            return cached
        definitions: dict[str, dict[str, DefinitionBody]] = {}
        for row in await repo.all_of_app(session, app_id):
            schema = self.registry.get(row.kind).schema
            definitions.setdefault(row.kind, {})[row.key] = schema.model_validate(row.body)
        ruleset = RuleSet(app_id, app.config_version, frozenset(app.client_event_types), definitions)
        self._sets[app_id] = ruleset
        return ruleset


def registry_of(runtime: Runtime) -> KindRegistry:
    """The engine's definition kinds, installed at start-up by ``processing.install``."""
    registry = runtime.extensions.get("rules.registry")
    if not isinstance(registry, KindRegistry):  # pragma: no cover - a wiring bug
        raise RuntimeError("definition kinds are not installed; call processing.install(runtime)")
    return registry


def ruleset_cache(runtime: Runtime) -> RuleSetCache:
    cache = runtime.extensions.get("rules.cache")
    if cache is None:
        cache = runtime.extensions["rules.cache"] = RuleSetCache(registry_of(runtime))
    assert isinstance(cache, RuleSetCache)
    return cache


async def player_stats(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str,
                       at: str | None) -> dict[str, dict[str, int]]:
    player = await players.get_player(session, app_id, player_id)
    try:
        moment = datetime.fromisoformat(at) if at else runtime.clock.now()
    except ValueError as exc:
        raise Unprocessable(f"at: {at!r} is not an ISO 8601 instant", code="invalid_instant") from exc
    periods = period_keys(moment if moment.tzinfo else moment.replace(tzinfo=UTC), zone(player.timezone))
    by_key = {v: k for k, v in periods.items()}
    out: dict[str, dict[str, int]] = {}
    for row in await repo.stats_of_player(session, app_id, player_id, list(periods.values())):
        out.setdefault(row.stat, {})[by_key[row.period_key]] = row.value
    return out
