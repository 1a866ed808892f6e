"""The OpenAPI document lists what each operation answers, derived from the route's declarations.

Issue 10 point 21 (the fast half; the generated client and schemathesis are the slow half).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from questline import openapi
from questline.app import create_app
from questline.kit.routing import exposed_api_routes
from questline.kit.runtime import Runtime
from questline.tenancy.auth import ADMIN, AccessPolicy, route_access

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def problem_answer(operation: dict[str, Any], status: int) -> bool:
    answer = operation["responses"].get(str(status), {})
    return answer.get("content", {}).get("application/problem+json", {}).get("schema") == PROBLEM


async def test_every_operation_lists_its_problem_answers(client: httpx.AsyncClient, engine: FastAPI) -> None:
    spec = (await client.get("/openapi.json")).json()
    routes = {(r.path, m.lower()): r for r in exposed_api_routes(engine.routes) for m in r.methods}
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            route = routes[(path, method)]
            access = route_access(route)
            where = f"{method.upper()} {path}"
            for status in operation["responses"]:
                if int(status) >= 400:
                    assert problem_answer(operation, int(status)), f"{where} {status} is not a problem"
            params = operation.get("parameters", [])
            headers = {p["name"]: p for p in params if p["in"] == "header"}
            if any(p["in"] == "path" for p in params):
                assert problem_answer(operation, 404), where
            if [p for p in params if p["name"] != "X-Questline-App"] or "requestBody" in operation:
                assert problem_answer(operation, 422), where
            if "requestBody" in operation:
                assert all(problem_answer(operation, s) for s in (400, 408, 413)), where
            if not isinstance(access, AccessPolicy):
                continue
            checked += 1
            assert operation["security"] == [{"bearer": []}], where
            assert all(problem_answer(operation, s) for s in (400, 401, 403, 429, 503)), where
            assert "Retry-After" in operation["responses"]["429"]["headers"], where
            if ADMIN in access.kinds and not access.account:
                assert "X-Questline-App" in headers and problem_answer(operation, 404), where
            if method == "post":
                assert headers["Idempotency-Key"]["required"] is (access.idempotency == "required"), where
                assert problem_answer(operation, 409), where
            success = next(a for s, a in operation["responses"].items() if s.startswith("2"))
            assert {"RateLimit-Policy", "RateLimit"} <= set(success.get("headers", {})), where
    assert checked > 100
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_operation_ids_and_schema_names_are_unique_and_readable(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert "ledger_grant" in ids and "challenges_claim" in ids and "competitions_create" in ids
    names = set(spec["components"]["schemas"])
    assert not [n for n in names if n.startswith("questline__")], "module-qualified (colliding) schema names"
    for pair in (("LedgerGrantIn", "AchievementsGrantIn"), ("ChallengesClaimIn", "BattlepassClaimIn"),
                 ("ShopPrice", "StreaksPrice")):
        assert set(pair) <= names, pair
    for name, schema in spec["components"]["schemas"].items():
        assert schema.get("title", name) == name or not name.startswith(("Ledger", "Achievements")), name
    # Every schema a document refers to exists (the renames left no dangling reference).
    text = str(spec)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in names, ref


async def test_routes_that_require_a_key_declare_it(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    grants = spec["paths"]["/v1/ledger/grants"]["post"]
    keys = [p for p in grants["parameters"] if p["name"].lower() == "idempotency-key"]
    assert len(keys) == 1 and keys[0]["required"] is True
    tokens = spec["paths"]["/v1/players/{player_id}/tokens"]["post"]
    assert [p["required"] for p in tokens["parameters"] if p["name"] == "Idempotency-Key"] == [False]
    assert tokens["x-audit"] is False
    assert spec["paths"]["/v1/events"]["post"]["x-json-values"] == "per-item"
    assert "/redoc" not in spec["paths"]


async def test_apps_with_the_same_routes_share_one_derivation_but_not_one_document(
        engine: FastAPI, runtime: Runtime) -> None:
    """The document is derived once per process for a set of routes (docs/benchmarks.md, "Test
    suite time"); each app still holds a document of its own, and one with another route differs."""
    other = create_app(runtime=runtime, background=False)
    first, second = engine.openapi(), other.openapi()
    assert first == second == openapi.describe(other) and first is not second
    second["info"]["title"] = "changed by one app"
    assert engine.openapi()["info"]["title"] == "Questline"

    @other.get("/v1/only-in-this-app", openapi_extra={"x-access": "anonymous"})
    async def only_here() -> dict[str, str]:
        return {}

    other.openapi_schema = None
    assert "/v1/only-in-this-app" in other.openapi()["paths"]
    assert "/v1/only-in-this-app" not in create_app(runtime=runtime, background=False).openapi()["paths"]
