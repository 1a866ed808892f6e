"""Console pages: sign-in, apps and keys, definitions, players, the claims queue, the audit log.

Sessions are the admin's own tokens in HttpOnly, SameSite=Strict cookies (Secure over HTTPS); every
form carries a CSRF token that must match its cookie. Pages render what the engine's API answers
for the signed-in admin (see ``engine_api``); a refusal is shown as the API's problem.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from questline.console.engine_api import Answer, EngineApi

SESSION, REFRESH, CSRF = "ql_console", "ql_console_refresh", "ql_console_csrf"
_here = __file__.rsplit("/", 1)[0]
templates = Jinja2Templates(directory=f"{_here}/templates")  # .html autoescaped


def _api(request: Request, app_id: str | None = None) -> EngineApi:
    return EngineApi(request.app, request.cookies.get(SESSION), app_id,
                     request.client.host if request.client else None)


def _csrf(request: Request) -> str:
    return request.cookies.get(CSRF) or secrets.token_urlsafe(24)


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    token = _csrf(request)
    response: HTMLResponse = templates.TemplateResponse(request, name, {"csrf": token, **context},
                                                        status_code=status)
    response.set_cookie(CSRF, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/console")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")
    response.headers["Cache-Control"] = "no-store"
    return response


async def _form(request: Request) -> dict[str, str] | None:
    """The posted form when its CSRF token matches the cookie, else None."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    cookie = request.cookies.get(CSRF)
    if not cookie or not secrets.compare_digest(cookie, form.get("csrf", "")):
        return None
    return form


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/console/login?next={quote(request.url.path)}", status_code=303)


def _forbidden(request: Request) -> HTMLResponse:
    return _page(request, "error.html", 403, message="The form expired or did not come from this console: "
                 "reload the page and try again.")


async def login_page(request: Request) -> Response:
    target = request.query_params.get("next", "/console")
    return _page(request, "login.html", next=target if target.startswith("/console") else "/console")


async def login(request: Request) -> Response:
    form = await _form(request)
    if form is None:
        return _forbidden(request)
    async with _api(request) as api:
        answer = await api.call("POST", "/v1/auth/login",
                                json={"email": form.get("email", ""), "password": form.get("password", "")})
    if not answer.ok:
        return _page(request, "login.html", 401 if answer.status == 401 else answer.status,
                     error=answer.problem, email=form.get("email", ""), next=form.get("next", "/console"))
    target = form.get("next", "/console")
    response = RedirectResponse(target if target.startswith("/console") else "/console", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION, answer.body["access_token"], httponly=True, samesite="strict", secure=secure,
                        path="/console")
    response.set_cookie(REFRESH, answer.body["refresh_token"], httponly=True, samesite="strict", secure=secure,
                        path="/console")
    return response


async def logout(request: Request) -> Response:
    form = await _form(request)
    if form is None:
        return _forbidden(request)
    if request.cookies.get(REFRESH):
        async with _api(request) as api:
            await api.call("POST", "/v1/auth/logout", json={"refresh_token": request.cookies[REFRESH]})
    response = RedirectResponse("/console/login", status_code=303)
    for name in (SESSION, REFRESH):
        response.delete_cookie(name, path="/console")
    return response


async def home(request: Request) -> Response:
    async with _api(request) as api:
        me = await api.call("GET", "/v1/auth/me")
        if me.status == 401:
            return _to_login(request)
        orgs = []
        for org in me.body.get("organizations", []):
            apps = await api.call("GET", f"/v1/orgs/{org['id']}/apps", params={"limit": 200})
            orgs.append({**org, "apps": apps.body.get("items", []) if apps.ok else []})
    return _page(request, "home.html", me=me.body, orgs=orgs)


async def _app_page(request: Request, app_id: str, template: str, calls: dict[str, tuple[str, str, Any]],
                    status: int = 200, **context: Any) -> Response:
    answers: dict[str, Answer] = {}
    async with _api(request, app_id) as api:
        for name, (method, path, params) in calls.items():
            answers[name] = await api.call(method, path, params=params)
            if answers[name].status == 401:
                return _to_login(request)
    values: dict[str, Any] = {"app_id": app_id, **answers, **context}
    return _page(request, template, status, **values)


async def app_home(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    return await _app_page(request, app_id, "app.html", {
        "kinds": ("GET", "/v1/definition-kinds", None),
        "claims": ("GET", "/v1/challenge-claims", {"status": "pending", "limit": 5}),
    })


async def keys_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    return await _app_page(request, app_id, "keys.html", {"keys": ("GET", f"/v1/apps/{app_id}/keys", None)})


async def keys_action(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    form = await _form(request)
    if form is None:
        return _forbidden(request)
    action, key_id = form.get("action", "create"), form.get("key_id", "")
    async with _api(request, app_id) as api:
        if action == "create":
            done = await api.call("POST", f"/v1/apps/{app_id}/keys",
                                  json={"kind": form.get("kind", "server"), "name": form.get("name") or None})
        elif action in ("rotate", "revoke"):
            done = await api.call("POST", f"/v1/apps/{app_id}/keys/{quote(key_id, safe='')}/{action}")
        else:
            done = Answer(422, {"code": "unknown_action", "detail": action})
        keys = await api.call("GET", f"/v1/apps/{app_id}/keys")
    secret = done.body.get("secret") if done.ok and isinstance(done.body, dict) else None
    return _page(request, "keys.html", 200 if done.ok else done.status, app_id=app_id, keys=keys,
                 error=done.problem, secret=secret)


async def definitions_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    kind = str(request.path_params["kind"])
    return await _app_page(request, app_id, "definitions.html", {
        "items": ("GET", f"/v1/definitions/{quote(kind, safe='')}", {"limit": 200}),
    }, kind=kind)


async def definition_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    kind = str(request.path_params["kind"])
    key = str(request.path_params["key"])
    async with _api(request, app_id) as api:
        found = await api.call("GET", f"/v1/definitions/{quote(kind, safe='')}/{quote(key, safe='')}")
    if found.status == 401:
        return _to_login(request)
    body = json.dumps(found.body.get("body", {}), indent=2) if found.ok else "{\n}"
    return _page(request, "definition.html", app_id=app_id, kind=kind, key=key, text=body,
                 version=found.body.get("version") if found.ok else None, new=found.status == 404)


async def save_definition(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    kind = str(request.path_params["kind"])
    key = str(request.path_params["key"])
    form = await _form(request)
    if form is None:
        return _forbidden(request)
    text = form.get("body", "")
    try:
        parsed = json.loads(text)
    except ValueError as bad:
        return _page(request, "definition.html", 422, app_id=app_id, kind=kind, key=key, text=text,
                     error=f"not JSON: {bad}")
    async with _api(request, app_id) as api:
        saved = await api.call("PUT", f"/v1/definitions/{quote(kind, safe='')}/{quote(key, safe='')}", json=parsed)
    if not saved.ok:
        return _page(request, "definition.html", saved.status, app_id=app_id, kind=kind, key=key, text=text,
                     error=saved.problem)
    return RedirectResponse(f"/console/apps/{app_id}/definitions/{quote(kind)}/{quote(key)}?saved=1",
                            status_code=303)


async def players_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    cursor = request.query_params.get("cursor", None)
    return await _app_page(request, app_id, "players.html", {
        "players": ("GET", "/v1/players", {"limit": 50, **({"cursor": cursor} if cursor else {})}),
    })


async def player_page(request: Request, status: int = 200, error: str = "") -> Response:
    app_id = str(request.path_params["app_id"])
    player_id = str(request.path_params["player_id"])
    pid = quote(player_id, safe="")
    return await _app_page(request, app_id, "player.html", {
        "profile": ("GET", f"/v1/players/{pid}", None),
        "transactions": ("GET", f"/v1/players/{pid}/transactions", {"limit": 20}),
        "achievements": ("GET", f"/v1/players/{pid}/achievements", None),
        "inventory": ("GET", f"/v1/players/{pid}/inventory", None),
    }, status, player_id=player_id, error=error)


async def player_action(request: Request) -> Response:
    """A balance adjustment with its reason, or the player's erasure (the id typed again to confirm)."""
    app_id = str(request.path_params["app_id"])
    player_id = str(request.path_params["player_id"])
    form = await _form(request)
    if form is None:
        return _forbidden(request)
    pid = quote(player_id, safe="")
    async with _api(request, app_id) as api:
        if form.get("action") == "erase":
            if form.get("confirm") != player_id:
                done = Answer(422, {"code": "not_confirmed", "detail": "type the player's id to confirm erasure"})
            else:
                done = await api.call("DELETE", f"/v1/players/{pid}")
        else:
            try:
                amount = int(form.get("amount", ""))
            except ValueError:
                amount = 0
            done = await api.call("POST", "/v1/ledger/adjustments", json={
                "player_id": player_id, "currency": form.get("currency", ""), "amount": amount,
                "reason": form.get("reason", "")})
    if not done.ok:
        return await player_page(request, done.status, done.problem)
    note = "erased" if form.get("action") == "erase" else "adjusted"
    return RedirectResponse(f"/console/apps/{app_id}/players/{pid}?done={note}", status_code=303)


async def player_export(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    player_id = str(request.path_params["player_id"])
    async with _api(request, app_id) as api:
        found = await api.call("GET", f"/v1/players/{quote(player_id, safe='')}/export")
    if found.status == 401:
        return _to_login(request)
    if not found.ok:
        return _page(request, "error.html", found.status, message=found.problem)
    return Response(json.dumps(found.body, indent=2), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="player-{quote(player_id, safe="")}.json"',
        "Cache-Control": "no-store"})


async def claims_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    return await _app_page(request, app_id, "claims.html", {
        "claims": ("GET", "/v1/challenge-claims", {"status": "pending", "limit": 100}),
    })


async def decide_claim(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    claim_id = str(request.path_params["claim_id"])
    form = await _form(request)
    if form is None:
        return _forbidden(request)
    decision = "approve" if form.get("decision") == "approve" else "reject"
    body = {"reason": form.get("reason") or "decided in the console"} if decision == "reject" else None
    async with _api(request, app_id) as api:
        done = await api.call("POST", f"/v1/challenge-claims/{quote(claim_id, safe='')}/{decision}", json=body)
        claims = await api.call("GET", "/v1/challenge-claims", params={"status": "pending", "limit": 100})
    return _page(request, "claims.html", 200 if done.ok else done.status, app_id=app_id, claims=claims,
                 error=done.problem, decided=claim_id if done.ok else None, decision=decision)


async def audit_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    return await _app_page(request, app_id, "audit.html", {"entries": ("GET", "/v1/audit", {"limit": 100})})


ROUTES = [
    ("GET", "/console/login", login_page),
    ("POST", "/console/login", login),
    ("POST", "/console/logout", logout),
    ("GET", "/console", home),
    ("GET", "/console/apps/{app_id}", app_home),
    ("GET", "/console/apps/{app_id}/keys", keys_page),
    ("POST", "/console/apps/{app_id}/keys", keys_action),
    ("GET", "/console/apps/{app_id}/definitions/{kind}", definitions_page),
    ("GET", "/console/apps/{app_id}/definitions/{kind}/{key}", definition_page),
    ("POST", "/console/apps/{app_id}/definitions/{kind}/{key}", save_definition),
    ("GET", "/console/apps/{app_id}/players", players_page),
    ("GET", "/console/apps/{app_id}/players/{player_id}", player_page),
    ("POST", "/console/apps/{app_id}/players/{player_id}", player_action),
    ("GET", "/console/apps/{app_id}/players/{player_id}/export", player_export),
    ("GET", "/console/apps/{app_id}/claims", claims_page),
    ("POST", "/console/apps/{app_id}/claims/{claim_id}", decide_claim),
    ("GET", "/console/apps/{app_id}/audit", audit_page),
]


def mount(app: FastAPI) -> None:
    """Plain routes, like /docs: pages for people, not operations of the API."""
    app.mount("/console-assets", StaticFiles(directory=f"{_here}/static"), name="console-assets")
    for method, path, endpoint in ROUTES:
        app.add_route(path, endpoint, methods=[method], include_in_schema=False)
