"""Mounts the console: its static files and every page module's routes (see ``console.pages``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from questline.console.pages import routes
from questline.console.session import HERE


def mount(app: FastAPI) -> None:
    """Plain routes, like /docs: pages for people, not operations of the API."""
    app.mount("/console-assets", StaticFiles(directory=f"{HERE}/static"), name="console-assets")
    for method, path, endpoint in routes():
        app.add_route(path, endpoint, methods=[method], include_in_schema=False)
