"""Hostile input is normal input: explicit nulls, numbers and text no store can keep, answered 4xx.

Regression tests for issue 10 points 17 and 18: each request here answered 500 (or stored a
silently changed value) before, and changes nothing now.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from questline.challenges.schemas import ClaimIn
from questline.competitions.schemas import PrizeTier
from questline.kit.jsonvalue import MAX_DEPTH, json_value_problem
from questline.kit.runtime import Runtime
from questline.ledger.schemas import GrantIn, HoldIn
from questline.pipeline.schemas import EventIn
from tests.conftest import Factory, problem
from tests.ledger.helpers import count_rows, currency

# Raw JSON texts, spliced into bodies as written (httpx's encoder refuses NaN).
HOSTILE = {
    "2^64": ("18446744073709551616", "outside the 64-bit range"),
    "-2^63-1": ("-9223372036854775809", "outside the 64-bit range"),
    "NaN": ("NaN", "NaN and Infinity are refused"),
    "Infinity": ("Infinity", "NaN and Infinity are refused"),
    "-Infinity": ("-Infinity", "NaN and Infinity are refused"),
    "1e400": ("1e400", "NaN and Infinity are refused"),
    "lone surrogate": ('"a\\ud800b"', "lone UTF-16 surrogate"),
    "lone low surrogate": ('"\\udfff"', "lone UTF-16 surrogate"),
    "NUL": ('"a\\u0000"', "NUL character"),
}


def raw(template: str, value: str) -> bytes:
    return template.replace("@", value).encode()


# Point 17: explicit null for a field that may be left out but not cleared ----------------------------

ACCOUNT_REQUIRED = ["timezone", "leaderboard_visibility", "display_name_type", "show_on_global_leaderboard",
                    "traits", "preferences"]
COMMUNITY_REQUIRED = ["name", "description", "open", "auto_approve", "member_schema"]


async def test_null_for_a_required_account_field_is_422(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    created = await client.put("/v1/players/alice/account", headers=keys.server,
                               json={"display_name": "Alice", "timezone": "Europe/Paris"})
    assert created.status_code == 200, created.text
    for field in ACCOUNT_REQUIRED:
        for method in ("PUT", "PATCH"):
            resp = await client.request(method, "/v1/players/alice/account", headers=keys.server,
                                        json={field: None})
            body = problem(resp, 422, "validation_failed")
            assert body["errors"][0]["loc"] == ["body", field]
            assert "not set to null" in body["detail"]
        # A player may not either (PATCH of their own account).
        alice = await factory.player_token(keys, "alice")
        problem(await client.patch("/v1/players/alice/account", headers=alice, json={field: None}), 422,
                "validation_failed")
    # A new player: nothing was created by a refused PUT.
    problem(await client.put("/v1/players/bob/account", headers=keys.server, json={"timezone": None}), 422)
    problem(await client.get("/v1/players/bob/account", headers=keys.server), 404, "player_not_found")
    # Fields the account may lack are cleared by null, and the rest stayed as they were.
    cleared = await client.patch("/v1/players/alice/account", headers=keys.server, json={"display_name": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["display_name"] is None and cleared.json()["timezone"] == "Europe/Paris"


async def test_null_for_a_required_community_field_is_422(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    made = await client.post("/v1/communities", headers=keys.server,
                             json={"name": "Runners", "slug": "runners", "max_members": 10,
                                   "redirect_url": "https://example.test/run"})
    assert made.status_code == 201, made.text
    for field in COMMUNITY_REQUIRED:
        resp = await client.patch("/v1/communities/runners", headers=keys.server, json={field: None})
        body = problem(resp, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", field]
    kept = (await client.get("/v1/communities/runners", headers=keys.server)).json()
    assert kept["name"] == "Runners" and kept["open"] is True and kept["max_members"] == 10
    # Limits and links the community may lack are cleared by null.
    cleared = await client.patch("/v1/communities/runners", headers=keys.server,
                                 json={"max_members": None, "redirect_url": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["max_members"] is None and cleared.json()["link"] is None


async def test_the_document_says_which_fields_may_be_null(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    account = schemas["AccountUpdate"]["properties"]
    assert account["timezone"]["type"] == "string" and "anyOf" not in account["timezone"]
    assert {"type": "null"} in account["display_name"]["anyOf"]
    community = schemas["CommunityUpdate"]["properties"]
    assert "anyOf" not in community["name"] and {"type": "null"} in community["max_members"]["anyOf"]


# Point 18: values free-form JSON cannot hold ---------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_free_form_json_refuses_what_cannot_be_stored(case: str, client: httpx.AsyncClient,
                                                            factory: Factory, runtime: Runtime) -> None:
    literal, reason = HOSTILE[case]
    keys = await factory.app()
    await currency(client, keys)
    before = await count_rows(runtime, keys.app_id)
    headers = {**keys.server, "content-type": "application/json"}
    bodies = {
        "/v1/ledger/grants": ('{"player_id": "ann", "currency": "points", "amount": 5, "reference": {"n": @}}',
                              "body.reference.n"),
        "/v1/ledger/holds": ('{"player_id": "ann", "currency": "points", "amount": 5, '
                             '"reference": {"order": [1, {"deep": @}]}}', "body.reference.order[1].deep"),
        "/v1/players/ann/challenges/trainer/claim": ('{"verification": {"proof": @}}', "body.verification.proof"),
        "/v1/competitions": ('{"name": "Cup", "starts_at": "2026-04-01T00:00:00Z", "ends_at": "2026-04-02T00:00:00Z",'
                             ' "scoring": {"event_type": "trade", "field": "data.v", "operator": "sum"},'
                             ' "prizes": {"tiers": [{"from_rank": 1, "external": {"sku": @}}]}}',
                             "body.prizes.tiers[0].external.sku"),
    }
    for path, (template, where) in bodies.items():
        resp = await client.post(path, content=raw(template, literal),
                                 headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        body = problem(resp, 422, "validation_failed")
        assert body["detail"].startswith(f"{where}: ") and reason in body["detail"], (path, body)
    assert await count_rows(runtime, keys.app_id) == before
    assert (await client.get("/v1/competitions", headers=keys.server)).json()["items"] == []


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_an_event_batch_rejects_bad_items_one_by_one(case: str, client: httpx.AsyncClient,
                                                           factory: Factory) -> None:
    literal, reason = HOSTILE[case]
    keys = await factory.app()
    batch = raw('[{"id": "ok-1", "player_id": "ann", "type": "match.won", "data": {"score": 3}},'
                ' {"id": "bad-1", "player_id": "ann", "type": "match.won", "data": {"score": @}},'
                ' {"player_id": "ann", "type": "match.won", "data": {"list": [@]}}]', literal)
    resp = await client.post("/v1/events", content=batch, headers={**keys.server, "content-type": "application/json"})
    assert resp.status_code == 202, resp.text
    result = resp.json()
    assert result["accepted"] == ["ok-1"]
    rejected = {r["index"]: r for r in result["rejected"]}
    assert set(rejected) == {1, 2}
    assert rejected[1]["id"] == "bad-1" and rejected[1]["code"] == "invalid_event"
    assert reason in rejected[1]["reason"] and "score" in rejected[1]["reason"]
    assert rejected[2].get("id") is None and rejected[2]["code"] == "invalid_event"  # it had no id
    stored = (await client.get("/v1/players/ann/events", headers=keys.server)).json()["items"]
    assert [e["event_id"] for e in stored] == ["ok-1"]
    # One bad event alone is a 422 naming it.
    single = raw('{"id": "bad-2", "player_id": "ann", "type": "match.won", "data": {"x": @}}', literal)
    body = problem(await client.post("/v1/events", content=single,
                                     headers={**keys.server, "content-type": "application/json"}), 422, "invalid_event")
    assert reason in body["detail"]


async def test_deep_nesting_and_unparsable_depth(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    headers = {**keys.server, "content-type": "application/json", "Idempotency-Key": "deep"}
    deep = '{"player_id": "ann", "currency": "points", "amount": 5, "reference": {"a": ' + "[" * 40 + "]" * 40 + "}}"
    body = problem(await client.post("/v1/ledger/grants", content=deep.encode(), headers=headers), 422)
    assert f"nested deeper than {MAX_DEPTH} levels" in body["detail"]
    # Deeper than Python's parser goes: a 400, not a RecursionError turned 500.
    abyss = b"[" * 100_000 + b"]" * 100_000
    problem(await client.post("/v1/ledger/grants", content=abyss, headers={**headers, "Idempotency-Key": "abyss"}),
            400, "malformed_json")


@pytest.mark.parametrize(("model", "field", "value"), [
    (EventIn, "data", {"id": "e", "player_id": "p", "type": "t", "data": {"n": 2**64}}),
    (GrantIn, "reference", {"player_id": "p", "currency": "points", "amount": 1, "reference": {"n": 2**64}}),
    (HoldIn, "reference", {"player_id": "p", "currency": "points", "amount": 1, "reference": {"n": -(2**63) - 1}}),
    (ClaimIn, "verification", {"verification": {"n": float("inf")}}),
    (PrizeTier, "external", {"from_rank": 1, "external": {"n": -(2**63) - 1}}),
])
def test_every_free_form_field_uses_the_shared_check(model: type[BaseModel], field: str, value: dict[str, Any]) -> None:
    """The same check guards the models for callers that are not HTTP (the CLI, YAML config, services)."""
    with pytest.raises(ValidationError) as raised:
        model.model_validate(value)
    assert raised.value.errors()[0]["loc"][0] == field
    assert raised.value.errors()[0]["type"] == "json_value"


def test_the_check_names_the_path_and_accepts_every_storable_value() -> None:
    assert json_value_problem({"a": [1, {"b": 2**64}]}, "body") == \
        "body.a[1].b: the integer 18446744073709551616 is outside the 64-bit range [-2^63, 2^64-1]"
    assert json_value_problem({"k\ud800": 1}) is not None and "surrogate" in str(json_value_problem({"k\ud800": 1}))
    fine = {"max": 2**64 - 1, "min": -(2**63), "float": 1.5e308, "text": "naïve 😀", "none": None, "list": [True, []]}
    assert json_value_problem(fine) is None
