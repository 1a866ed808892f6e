"""Demo content, so a newcomer has something to look at on first start.

The demo game lives in this package's YAML files (``base.yaml`` first, then the others in
name order: achievements, challenges, streaks, …), each in the format ``questline config load``
reads. ``bootstrap_demo`` creates the demo organization, app and admin on an empty database and
loads the content into the app; ``questline demo simulate`` then plays simulated players through
it (``questline.demo.simulate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.security import new_secret
from questline.ledger import service as ledger
from questline.mechanics import definition_kinds
from questline.rules import service as rules
from questline.rules.registry import KindRegistry
from questline.rules.schemas import Bundle, BundleResult
from questline.tenancy import service as tenancy

__all__ = ["CURRENCIES", "DemoKeys", "bootstrap_demo", "content_bundle", "content_files", "install_content"]

BASE_FILE = "base.yaml"
# Created with the demo app; a content file may add its own under a top-level ``currencies`` map.
CURRENCIES = {"points": "Points"}


@dataclass(frozen=True)
class DemoKeys:
    org_id: str
    app_id: str
    server_key: str
    client_key: str
    admin_email: str
    admin_password: str


def content_files() -> list[str]:
    """The content files, base first, then the others by name."""
    names = [f.name for f in resources.files(__name__).iterdir() if f.name.endswith((".yaml", ".yml"))]
    return sorted(names, key=lambda name: (name != BASE_FILE, name))


def _read(name: str) -> dict[str, Any]:
    import yaml  # on first use: only the demo and the console's YAML forms read YAML (about 1 MB)

    raw = yaml.safe_load(resources.files(__name__).joinpath(name).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"demo content {name} is not a mapping")
    return raw


def content_bundle() -> tuple[Bundle, dict[str, str]]:
    """Every content file merged into one bundle (a later file's key replaces an earlier one's),
    and the currencies they need."""
    definitions: dict[str, dict[str, dict[str, Any]]] = {}
    client_types: set[str] = set()
    currencies = dict(CURRENCIES)
    for name in content_files():
        raw = _read(name)
        for kind, items in (raw.get("definitions") or {}).items():
            definitions.setdefault(kind, {}).update(items or {})
        client_types.update(raw.get("client_event_types") or [])
        currencies.update(raw.get("currencies") or {})
    return Bundle(definitions=definitions, client_event_types=sorted(client_types)), currencies


async def install_content(session: AsyncSession, clock: Clock, app_id: str) -> BundleResult:
    """Load the demo game into an app (idempotent: unchanged definitions stay at their version)."""
    bundle, currencies = content_bundle()
    for code, name in currencies.items():
        await ledger.ensure_currency(session, clock, app_id, code, name)
    return await rules.apply_bundle(session, clock, KindRegistry(definition_kinds()), app_id, bundle)


async def bootstrap_demo(session: AsyncSession, clock: Clock) -> DemoKeys | None:
    """Create a demo organization, app and admin, with the demo game loaded, but only on an empty database."""
    if await tenancy.count_orgs(session) > 0:
        return None
    password = new_secret()
    admin = await tenancy.create_admin(session, clock, "demo@questline.local", password, "Demo Admin")
    org = await tenancy.create_org(session, clock, "Demo Studio", owner_id=admin.id)
    app, server_key, client_key = await tenancy.create_app(session, clock, org.id, "Demo Game")
    await install_content(session, clock, app.id)
    return DemoKeys(org.id, app.id, server_key, client_key, admin.email, password)
