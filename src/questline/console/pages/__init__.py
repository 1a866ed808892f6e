"""The console's pages, one module per concern; each module lists its routes in ``ROUTES``.

A new concern is a new module here and one entry in ``MODULES``.
"""

from __future__ import annotations

from types import ModuleType

from questline.console import session
from questline.console.pages import (
    announcements,
    audit,
    campaigns,
    claims,
    definitions,
    home,
    keys,
    links,
    live,
    moderation,
    partners,
    players,
    progression,
    queues,
    retention,
    standings,
    trends,
    webhooks,
)

MODULES: tuple[ModuleType, ...] = (session, home, keys, definitions, players, claims, queues, campaigns, webhooks,
                                   live, trends, audit, partners, moderation, announcements,
                                   progression, retention, standings, links)


def routes() -> list[session.Route]:
    return [route for module in MODULES for route in module.ROUTES]
