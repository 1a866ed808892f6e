"""Brand and streamer views: their own sign-in (the sponsors' accounts, with the app's public client
key in the link the integrator hands out) and their own pages, through the API as that account.

A brand sees its wallet and its campaigns, each with its spend and impressions charted; a streamer
sees their wallet, G-Key energy, and their campaigns and monthly earnings (charted). The account's
token is kept like the admin's: an HttpOnly, SameSite=Strict cookie on /console/partners.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from questline.console import charts
from questline.console.engine_api import Answer, EngineApi
from questline.console.pages.campaigns import timeline_points
from questline.console.paging import Pager
from questline.console.session import Route, esc, forbidden, form, page

TOKEN, ACCOUNT = "ql_partner", "ql_partner_account"
PATH = "/console/partners"
ROLES = ("brand", "streamer")


def _engine(request: Request, token: str | None) -> EngineApi:
    return EngineApi(request.app, token, None, request.client.host if request.client else None)


def _account(request: Request) -> tuple[str, str] | None:
    role, _, account_id = request.cookies.get(ACCOUNT, "").partition(":")
    return (role, account_id) if role in ROLES and account_id and request.cookies.get(TOKEN) else None


def _to_login(request: Request) -> Response:
    return RedirectResponse(f"{PATH}/login", status_code=303)


async def login_page(request: Request) -> Response:
    return page(request, "partner_login.html", key=request.query_params.get("key", ""),
                role=request.query_params.get("as", "brand"), roles=ROLES)


async def login(request: Request) -> Response:
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    role = posted.get("role", "brand")
    key = posted.get("key", "")
    if role not in ROLES:
        answer = Answer(422, {"code": "unknown_role", "detail": "sign in as a brand or a streamer"})
    else:
        async with _engine(request, key) as engine:
            answer = await engine.call("POST", f"/v1/{role}s/login",
                                       json={"email": posted.get("email", ""), "password": posted.get("password", "")})
    if not answer.ok:
        return page(request, "partner_login.html", answer.status, error=answer.problem, key=key, role=role,
                    roles=ROLES, email=posted.get("email", ""))
    response = RedirectResponse(PATH, status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(TOKEN, answer.body["token"], httponly=True, samesite="strict", secure=secure, path=PATH)
    response.set_cookie(ACCOUNT, f"{answer.body['role']}:{answer.body['account_id']}", httponly=True,
                        samesite="strict", secure=secure, path=PATH)
    return response


async def logout(request: Request) -> Response:
    if await form(request) is None:
        return forbidden(request)
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    for name in (TOKEN, ACCOUNT):
        response.delete_cookie(name, path=PATH)
    return response


async def _calls(request: Request, calls: dict[str, tuple[str, dict[str, Any] | None]]) -> dict[str, Answer] | None:
    answers: dict[str, Answer] = {}
    async with _engine(request, request.cookies.get(TOKEN)) as engine:
        for name, (path, params) in calls.items():
            answers[name] = await engine.call("GET", path, params=params)
            if answers[name].status == 401:
                return None
    return answers


async def home(request: Request) -> Response:
    account = _account(request)
    if account is None:
        return _to_login(request)
    role, account_id = account
    base = f"/v1/{role}s/{esc(account_id)}"
    calls: dict[str, tuple[str, dict[str, Any] | None]] = {"me": (base, None), "wallet": (f"{base}/wallet", None)}
    pager = Pager.of(request)
    if role == "brand":
        calls["campaigns"] = ("/v1/campaigns", pager.params(50))
    else:
        calls["performance"] = (f"{base}/performance", None)
        calls["energy"] = (f"{base}/energy", None)
    answers = await _calls(request, calls)
    if answers is None:
        return _to_login(request)
    months: list[tuple[str, int]] = []
    if role == "streamer" and answers["performance"].ok:
        months = [(m["month"], int(m["earned"])) for m in answers["performance"].body.get("months", [])]
    if role == "brand":
        pager.after(answers["campaigns"].body)
    context: dict[str, Any] = {**answers, "role": role, "account_id": account_id, "charts": charts,
                               "months": months, "partner": True, "pager": pager}
    return page(request, f"partner_{role}.html", 200, **context)


async def campaign(request: Request) -> Response:
    account = _account(request)
    if account is None or account[0] != "brand":
        return _to_login(request)
    campaign_id = esc(str(request.path_params["campaign_id"]))
    granularity = "hour" if request.query_params.get("by") == "hour" else "day"
    answers = await _calls(request, {
        "campaign": (f"/v1/campaigns/{campaign_id}", None),
        "metrics": (f"/v1/campaigns/{campaign_id}/metrics", {"granularity": granularity}),
    })
    if answers is None:
        return _to_login(request)
    status = 200 if answers["campaign"].ok else answers["campaign"].status
    context: dict[str, Any] = {**answers, "granularity": granularity, "charts": charts, "timeline": timeline_points,
                               "partner": True}
    return page(request, "partner_campaign.html", status, **context)


ROUTES: list[Route] = [
    ("GET", f"{PATH}/login", login_page),
    ("POST", f"{PATH}/login", login),
    ("POST", f"{PATH}/logout", logout),
    ("GET", PATH, home),
    ("GET", f"{PATH}/campaigns/{{campaign_id}}", campaign),
]
