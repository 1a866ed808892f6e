"""``/widgets/questline.js`` and ``/widgets/questline.css``: static, public, cacheable, CORS-open.

They hold no data: a widget reads the API with the token its host page passes in (a player token,
or the client key for public boards), so serving them to anyone is safe.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

_TYPES = {"questline.js": "text/javascript; charset=utf-8", "questline.css": "text/css; charset=utf-8"}
_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


@cache
def _asset(name: str) -> bytes:
    return files("questline.widgets").joinpath("static", name).read_bytes()


async def _serve(request: Request) -> Response:
    name = request.url.path.rsplit("/", 1)[1]
    return Response(_asset(name), media_type=_TYPES[name], headers=_HEADERS)


def mount(app: FastAPI) -> None:
    """Plain routes, like /docs: not part of the API the OpenAPI document describes."""
    for name in _TYPES:
        app.add_route(f"/widgets/{name}", _serve, methods=["GET", "HEAD"], include_in_schema=False)
