"""Route lookup that does not walk the whole route table for every request.

FastAPI tries the app's routes in order, and an included router tries each of its routes in
turn: a request for the last area's route ran a few hundred path regexes before its own. Every
API path starts with literal segments (``/v1/players/...``), so each included router is given a
guard, built once: the set of first two path segments its routes can start with. A request
whose first two segments are not in that set is told at once that the router does not match,
which is what the router would have said after trying every route; routers and routes are still
tried in their order, so which route wins does not change. A router with a route whose first two
segments hold a parameter, and routes outside included routers (the console's pages, docs,
mounts), are left as they are (a guard per plain route costs about what its own regex does); so
are websocket scopes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import fastapi.routing
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

PREFIX_SEGMENTS = 2


def prefix_of(path: str) -> tuple[str, ...]:
    """The first two segments of a path (a request's path, or a route's template)."""
    return tuple(path.split("/", PREFIX_SEGMENTS + 1)[1:PREFIX_SEGMENTS + 1])


def template_prefixes(templates: Iterable[str | None]) -> frozenset[tuple[str, ...]] | None:
    """The prefixes routes with these templates can match; None when one of them has a parameter there."""
    prefixes = set()
    for template in templates:
        if not template:
            return None
        prefix = prefix_of(template)
        if any("{" in segment for segment in prefix):
            return None
        prefixes.add(prefix)
    return frozenset(prefixes)


def guard_routes(routes: list[BaseRoute]) -> int:
    """Give every included router of ``routes`` its prefix guard; returns how many were guarded."""
    included = getattr(fastapi.routing, "_IncludedRouter", None)
    if included is None:  # a FastAPI that lists the routes themselves: nothing to guard
        return 0
    guarded = 0
    for route in routes:
        if not isinstance(route, included) or "matches" in vars(route):
            continue
        contexts = list(fastapi.routing.iter_route_contexts([route]))
        prefixes = template_prefixes(getattr(context, "path", None) for context in contexts)
        if not prefixes:
            continue
        route.matches = _guarded(route.matches, prefixes)
        guarded += 1
    return guarded


def _guarded(matches: Callable[[Scope], tuple[Match, Scope]],
             prefixes: frozenset[tuple[str, ...]]) -> Callable[[Scope], tuple[Match, Scope]]:
    def guarded(scope: Scope) -> tuple[Match, Any]:
        if scope["type"] == "http" and prefix_of(get_route_path(scope)) not in prefixes:
            return Match.NONE, {}
        return matches(scope)

    return guarded

