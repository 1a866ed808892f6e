"""Sessions, CSRF and rendering shared by every console page, and the sign-in routes.

Sessions are the admin's own tokens in HttpOnly, SameSite=Strict cookies (Secure over HTTPS); every
form carries a CSRF token that must match its cookie. Pages render what the engine's API answers
for the signed-in admin (see ``engine_api``); a refusal is shown as the API's problem.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from questline.console.engine_api import Answer, EngineApi

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

SESSION, REFRESH, CSRF = "ql_console", "ql_console_refresh", "ql_console_csrf"
HERE = __file__.rsplit("/", 1)[0]

Endpoint = Callable[[Request], Awaitable[Response]]
Route = tuple[str, str, Endpoint]  # method, path, endpoint


def api(request: Request, app_id: str | None = None) -> EngineApi:
    return EngineApi(request.app, request.cookies.get(SESSION), app_id,
                     request.client.host if request.client else None)


def esc(value: str) -> str:
    """A path segment for the engine's API."""
    return quote(value, safe="")


def _csrf(request: Request) -> str:
    return request.cookies.get(CSRF) or secrets.token_urlsafe(24)


@cache
def templates() -> Jinja2Templates:
    """The pages' templates (.html autoescaped), made on first use: Jinja2 is imported only by a
    process that renders a page (idle memory)."""
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(directory=f"{HERE}/templates")


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    token = _csrf(request)
    response: HTMLResponse = templates().TemplateResponse(request, name, {"csrf": token, **context},
                                                        status_code=status)
    response.set_cookie(CSRF, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/console")
    # Only the live view connects anywhere: to this engine's own WebSocket and API.
    host = request.url.netloc
    connect = f"'self' ws://{host} wss://{host}" if context.get("connect") else "'none'"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'")
    response.headers["Cache-Control"] = "no-store"
    return response


async def form(request: Request) -> dict[str, str] | None:
    """The posted form when its CSRF token matches the cookie, else None."""
    posted = {k: str(v) for k, v in (await request.form()).items()}
    cookie = request.cookies.get(CSRF)
    if not cookie or not secrets.compare_digest(cookie, posted.get("csrf", "")):
        return None
    return posted


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/console/login?next={quote(request.url.path)}", status_code=303)


def forbidden(request: Request) -> HTMLResponse:
    return page(request, "error.html", 403, message="The form expired or did not come from this console: "
                "reload the page and try again.")


async def app_page(request: Request, app_id: str, template: str, calls: dict[str, tuple[str, str, Any]],
                   status: int = 200, **context: Any) -> Response:
    """Render ``template`` with the answers of ``calls`` (name -> method, path, params); 401 leads to sign-in.
    With ``pager`` (a ``paging.Pager``) and ``paged`` (the name of a call) in ``context``, the pager
    learns that list's next cursor."""
    answers: dict[str, Answer] = {}
    async with api(request, app_id) as engine:
        for name, (method, path, params) in calls.items():
            answers[name] = await engine.call(method, path, params=params)
            if answers[name].status == 401:
                return to_login(request)
    pager = context.get("pager")
    if pager is not None and context.get("paged") in answers:
        pager.after(answers[context["paged"]].body)  # the list the page's Next and Previous links follow
    values: dict[str, Any] = {"app_id": app_id, **answers, **context}
    return page(request, template, status, **values)


async def login_page(request: Request) -> Response:
    target = request.query_params.get("next", "/console")
    return page(request, "login.html", next=target if target.startswith("/console") else "/console")


async def login(request: Request) -> Response:
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    async with api(request) as engine:
        answer = await engine.call("POST", "/v1/auth/login",
                                   json={"email": posted.get("email", ""), "password": posted.get("password", "")})
    if not answer.ok:
        return page(request, "login.html", 401 if answer.status == 401 else answer.status,
                    error=answer.problem, email=posted.get("email", ""), next=posted.get("next", "/console"))
    target = posted.get("next", "/console")
    response = RedirectResponse(target if target.startswith("/console") else "/console", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION, answer.body["access_token"], httponly=True, samesite="strict", secure=secure,
                        path="/console")
    response.set_cookie(REFRESH, answer.body["refresh_token"], httponly=True, samesite="strict", secure=secure,
                        path="/console")
    return response


async def logout(request: Request) -> Response:
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    if request.cookies.get(REFRESH):
        async with api(request) as engine:
            await engine.call("POST", "/v1/auth/logout", json={"refresh_token": request.cookies[REFRESH]})
    response = RedirectResponse("/console/login", status_code=303)
    for name in (SESSION, REFRESH):
        response.delete_cookie(name, path="/console")
    return response


ROUTES: list[Route] = [
    ("GET", "/console/login", login_page),
    ("POST", "/console/login", login),
    ("POST", "/console/logout", logout),
]
