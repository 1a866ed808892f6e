"""The console's definition pages in process, on SQLite and PostgreSQL: the form generated from the
kind's JSON Schema (the API's messages next to the fields), the raw JSON/YAML editor, the version
history with a line diff, and restoring an old version."""

from __future__ import annotations

import html
import re

import httpx
from fastapi import FastAPI

from questline.console.pages.definitions import line_diff
from questline.tenancy.schemas import Role
from tests.conftest import Factory
from tests.console.helpers import Console, text_of

BOARD = "/definitions/leaderboard/steps"


async def stored(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, object]:
    found = await client.get("/v1/definitions/leaderboard/steps", headers=headers)
    assert found.status_code == 200, found.text
    body: dict[str, object] = found.json()
    return body


async def test_a_definition_is_edited_as_a_generated_form_and_as_yaml(client: httpx.AsyncClient, engine: FastAPI,
                                                                      factory: Factory) -> None:
    keys = await factory.app()
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    new = await console.get(BOARD)
    assert new.status_code == 200 and "<small>new</small>" in new.text
    # Simple fields are inputs, choices are selects, nested parts are JSON boxes, every one labelled.
    assert 'id="input-name"' in new.text and 'for="input-name"' in new.text
    assert '<select id="input-operator" name="field.operator"' in new.text
    assert '<textarea id="input-filter" name="field.filter"' in new.text

    # The API's messages land next to the fields they name; nothing is saved.
    refused = await console.post(BOARD, {"editor": "form", "field.name": "Steps", "field.event_type": "steps.logged",
                                         "field.operator": "sum", "field.field": "data.steps",
                                         "field.scale": "lots", "field.filter": "{not: [valid"})
    assert refused.status_code == 422
    assert "not JSON or YAML" in text_of(refused.text, "error-filter")
    assert 'value="lots"' in refused.text  # what was typed is kept
    refused = await console.post(BOARD, {"editor": "form", "field.name": "Steps", "field.event_type": "steps.logged",
                                         "field.operator": "sum", "field.field": "data.steps", "field.scale": "lots"})
    assert refused.status_code == 422 and "invalid_definition" in refused.text
    assert "integer" in text_of(refused.text, "error-scale")
    assert (await client.get("/v1/definitions/leaderboard/steps", headers=keys.server)).status_code == 404

    saved = await console.post(BOARD, {"editor": "form", "field.name": "Steps", "field.event_type": "steps.logged",
                                       "field.operator": "sum", "field.field": "data.steps", "field.scale": "2",
                                       "field.scope": '{"type": "global"}'})
    assert saved.status_code == 303, saved.text
    body = await stored(client, keys.server)
    assert body["version"] == 1
    assert {"name": "Steps", "operator": "sum", "scale": 2, "field": "data.steps"}.items() <= body["body"].items()

    # The raw editor takes YAML, and shows the definition as YAML on request.
    yaml_text = "name: Steps walked\nevent_type: steps.logged\nfield: data.steps\noperator: best\n"
    assert (await console.post(BOARD, {"editor": "raw", "body": yaml_text})).status_code == 303
    body = await stored(client, keys.server)
    assert body["version"] == 2 and body["body"]["operator"] == "best" and body["body"]["scale"] == 1
    shown = await console.get(BOARD, format="yaml")
    assert "name: Steps walked" in html.unescape(text_of(shown.text, "body"))
    bad = await console.post(BOARD, {"editor": "raw", "body": "name: [unclosed"})
    assert bad.status_code == 422 and "not JSON or YAML" in bad.text
    refused = await console.post(BOARD, {"editor": "raw", "body": '{"name": "x", "operator": "nonsense"}'})
    assert refused.status_code == 422 and "should be 'best'" in html.unescape(text_of(refused.text, "error-operator"))
    assert (await stored(client, keys.server))["version"] == 2

    # A viewer reads the page, but saving is refused by the API and changes nothing.
    viewer_login = await factory.admin(keys.org_id, Role.VIEWER)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=engine), base_url="http://questline.test") as other:
        viewer = await Console(other, keys.app_id).sign_in(viewer_login)
        assert (await viewer.get(BOARD)).status_code == 200
        denied = await viewer.post(BOARD, {"editor": "raw", "body": '{"name": "mine"}'})
        assert denied.status_code == 403
    assert (await stored(client, keys.server))["version"] == 2


async def test_history_lists_versions_diffs_two_and_restores_one(client: httpx.AsyncClient,
                                                                 factory: Factory) -> None:
    keys = await factory.app()
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    for operator in ("sum", "best", "set"):
        body = {"name": "Steps", "event_type": "steps.logged", "field": "data.steps", "operator": operator}
        assert (await client.put("/v1/definitions/leaderboard/steps", headers=keys.server, json=body)).is_success
    history = await console.get(BOARD + "/history")
    assert history.status_code == 200
    assert [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", history.text)] == [3, 2, 1]
    assert "changes in version 3" in history.text and "changes in version 2" in history.text
    diff = text_of(history.text, "diff")  # default: the newest version against the one before
    assert '"operator": "best"' in html.unescape(diff) and '"operator": "set"' in html.unescape(diff)
    assert 'class="removed"' in history.text and 'class="added"' in history.text

    picked = await console.get(BOARD + "/history", **{"from": "1", "to": "3"})
    assert '"operator": "sum"' in html.unescape(text_of(picked.text, "diff"))
    missing = await console.get(BOARD + "/history", **{"from": "9", "to": "3"})
    assert missing.status_code == 404 and "definition_version_not_found" in missing.text
    unknown = await console.get("/definitions/leaderboard/nothing/history")
    assert unknown.status_code == 404 and "definition_not_found" in unknown.text

    # Restoring version 1 saves its body again, as version 4.
    restored = await console.post(BOARD, {"editor": "raw", "body": '{"name": "Steps", "event_type": "steps.logged", '
                                                                    '"field": "data.steps", "operator": "sum"}'})
    assert restored.status_code == 303
    assert (await stored(client, keys.server))["version"] == 4
    again = await console.get(BOARD + "/history", **{"from": "1", "to": "4"})
    assert "No differences." in again.text


def test_the_line_diff_marks_removed_and_added_lines_in_order() -> None:
    lines = line_diff({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3], "c": True})
    changed = [(line.tag, line.text.strip()) for line in lines if line.tag != "same"]
    assert changed == [("removed", "2"), ("removed", "]"), ("added", "3"), ("added", "],"), ("added", '"c": true')]
    assert [line.new for line in lines if line.tag != "removed"] == list(range(1, 9))
