"""The audit log: who changed what, when, from where."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console.paging import Pager
from questline.console.session import Route, app_page

PAGE = 100


async def audit_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    pager = Pager.of(request)
    return await app_page(request, app_id, "audit.html", {"entries": ("GET", "/v1/audit", pager.params(PAGE))},
                          pager=pager, paged="entries")


ROUTES: list[Route] = [("GET", "/console/apps/{app_id}/audit", audit_page)]
