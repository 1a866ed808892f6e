"""The challenge claims waiting for a person: approve (pays once) or reject."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from questline.console.paging import Pager
from questline.console.session import Route, api, app_page, esc, forbidden, form, page

PAGE = 50


async def claims_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    pager = Pager.of(request)
    return await app_page(request, app_id, "claims.html",
                          {"claims": ("GET", "/v1/challenge-claims", pager.params(PAGE, status="pending"))},
                          pager=pager, paged="claims")


async def decide_claim(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    claim_id = str(request.path_params["claim_id"])
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    decision = "approve" if posted.get("decision") == "approve" else "reject"
    body = {"reason": posted.get("reason") or "decided in the console"} if decision == "reject" else None
    async with api(request, app_id) as engine:
        done = await engine.call("POST", f"/v1/challenge-claims/{esc(claim_id)}/{decision}", json=body)
        pager = Pager()  # after a decision: the first page again
        claims = await engine.call("GET", "/v1/challenge-claims", params=pager.params(PAGE, status="pending"))
    return page(request, "claims.html", 200 if done.ok else done.status, app_id=app_id, claims=claims,
                pager=pager.after(claims.body),
                error=done.problem, decided=claim_id if done.ok else None, decision=decision)


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/claims", claims_page),
    ("POST", "/console/apps/{app_id}/claims/{claim_id}", decide_claim),
]
