"""Definitions: a kind's list; one definition edited as a form generated from its kind's JSON Schema
or as raw JSON/YAML; its version history with a line diff between any two versions."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from questline.console import schema_form
from questline.console.engine_api import Answer, EngineApi
from questline.console.paging import Pager
from questline.console.session import Route, api, app_page, esc, forbidden, form, page, to_login


def _where(request: Request) -> tuple[str, str, str]:
    params = request.path_params
    return str(params["app_id"]), str(params["kind"]), str(params.get("key", ""))


def _path(kind: str, key: str) -> str:
    return f"/v1/definitions/{esc(kind)}/{esc(key)}"


async def definitions_page(request: Request) -> Response:
    app_id, kind, _ = _where(request)
    wanted = request.query_params.get("key", "").strip()
    if wanted:  # "open or make the definition with this key"
        return RedirectResponse(f"/console/apps/{app_id}/definitions/{quote(kind)}/{quote(wanted, safe='')}",
                                status_code=303)
    pager = Pager.of(request)
    return await app_page(request, app_id, "definitions.html", {
        "items": ("GET", f"/v1/definitions/{esc(kind)}", pager.params(100)),
    }, kind=kind, pager=pager, paged="items")


async def _schema(engine: EngineApi, kind: str) -> dict[str, Any] | None:
    kinds = await engine.call("GET", "/v1/definition-kinds")
    for item in kinds.body if kinds.ok and isinstance(kinds.body, list) else []:
        if item.get("kind") == kind:
            schema: dict[str, Any] = item.get("json_schema", {})
            return schema
    return None


def _text(body: Any, as_yaml: bool) -> str:
    if as_yaml:
        import yaml  # on first use (about 1 MB)

        return str(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    return json.dumps(body, indent=2)


async def definition_page(request: Request) -> Response:
    app_id, kind, key = _where(request)
    as_yaml = request.query_params.get("format") == "yaml"
    async with api(request, app_id) as engine:
        found = await engine.call("GET", _path(kind, key))
        if found.status == 401:
            return to_login(request)
        schema = await _schema(engine, kind)
    body = found.body.get("body", {}) if found.ok else None
    fields = schema_form.fields_of(schema, body) if schema is not None else []
    error = found.problem if found.status not in (200, 404) else ""
    return page(request, "definition.html", found.status if error else 200, app_id=app_id, kind=kind, key=key,
                text=_text(body if body is not None else {}, as_yaml), as_yaml=as_yaml, fields=fields,
                version=found.body.get("version") if found.ok else None, new=found.status == 404, error=error)


async def save_definition(request: Request) -> Response:
    """Save from the generated form (``editor=form``) or from the raw text (JSON or YAML)."""
    app_id, kind, key = _where(request)
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    async with api(request, app_id) as engine:
        schema = await _schema(engine, kind)
        current = await engine.call("GET", _path(kind, key))
        fields = schema_form.fields_of(schema, None) if schema is not None else []
        version = current.body.get("version") if current.ok else None
        text, as_yaml = posted.get("body", ""), posted.get("format") == "yaml"
        if posted.get("editor") == "form":
            parsed: Any = schema_form.body_of(fields, posted)
            text = _text(parsed, as_yaml)
            if any(item.errors for item in fields):
                return page(request, "definition.html", 422, app_id=app_id, kind=kind, key=key, text=text,
                            as_yaml=as_yaml, fields=fields, version=version, new=not current.ok,
                            error="Some fields need fixing.")
        else:
            import yaml  # on first use (about 1 MB)

            try:
                parsed = yaml.safe_load(text)  # YAML is a superset of JSON: either is accepted
            except yaml.YAMLError as bad:
                return page(request, "definition.html", 422, app_id=app_id, kind=kind, key=key, text=text,
                            as_yaml=as_yaml, fields=fields, version=version, new=not current.ok,
                            error=f"not JSON or YAML: {bad}")
            if isinstance(parsed, dict):
                fields = schema_form.fields_of(schema, parsed) if schema is not None else []
        saved = await engine.call("PUT", _path(kind, key), json=parsed)
    if not saved.ok:
        general = schema_form.place_errors(fields, saved.body)
        return page(request, "definition.html", saved.status, app_id=app_id, kind=kind, key=key, text=text,
                    as_yaml=as_yaml, fields=fields, version=version, new=not current.ok, error=saved.problem,
                    general=general)
    return RedirectResponse(f"/console/apps/{app_id}/definitions/{quote(kind)}/{quote(key, safe='')}?saved=1",
                            status_code=303)


@dataclass
class DiffLine:
    tag: str  # same | removed | added
    old: int | None
    new: int | None
    text: str


def line_diff(old: Any, new: Any) -> list[DiffLine]:
    """Both bodies as sorted, indented JSON, compared line by line."""
    a = json.dumps(old, indent=2, sort_keys=True).splitlines()
    b = json.dumps(new, indent=2, sort_keys=True).splitlines()
    lines: list[DiffLine] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            lines += [DiffLine("same", i + 1, j + 1, a[i]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
            continue
        lines += [DiffLine("removed", i + 1, None, a[i]) for i in range(i1, i2)]
        lines += [DiffLine("added", None, j + 1, b[j]) for j in range(j1, j2)]
    return lines


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


async def history_page(request: Request) -> Response:
    app_id, kind, key = _where(request)
    async with api(request, app_id) as engine:
        versions = await engine.call("GET", f"{_path(kind, key)}/versions", params={"limit": 200})
        if versions.status == 401:
            return to_login(request)
        if not versions.ok:
            return page(request, "history.html", versions.status, app_id=app_id, kind=kind, key=key,
                        versions=[], error=versions.problem)
        items = versions.body["items"]
        newest = items[0]["version"] if items else 1
        new_no = _number(request.query_params.get("to")) or newest
        old_no = _number(request.query_params.get("from")) or max(new_no - 1, 1)
        sides: dict[int, Answer] = {}
        for number in {old_no, new_no}:
            sides[number] = await engine.call("GET", f"{_path(kind, key)}/versions/{number}")
    problems = [answer.problem for answer in sides.values() if not answer.ok]
    diff = line_diff(sides[old_no].body["body"], sides[new_no].body["body"]) if not problems else []
    return page(request, "history.html", 404 if problems else 200, app_id=app_id, kind=kind, key=key,
                versions=items, old=old_no, new=new_no, diff=diff, error="; ".join(problems),
                restore=json.dumps(sides[old_no].body["body"], indent=2) if not problems else "")


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/definitions/{kind}", definitions_page),
    ("GET", "/console/apps/{app_id}/definitions/{kind}/{key}", definition_page),
    ("POST", "/console/apps/{app_id}/definitions/{kind}/{key}", save_definition),
    ("GET", "/console/apps/{app_id}/definitions/{kind}/{key}/history", history_page),
]
