"""Definitions: validated with precise problems, cross-checked, versioned, loaded as a bundle."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from questline.kit.settings import Settings
from tests.conftest import Factory, problem, run_cli
from tests.pipeline.helpers import BASIC_CONFIG, configure


async def test_crud_and_versions(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    created = await client.put("/v1/definitions/stat/kills", headers=keys.server,
                               json={"event_type": "enemy.killed"})
    assert created.status_code == 201 and created.json()["version"] == 1
    same = await client.put("/v1/definitions/stat/kills", headers=keys.server, json={"event_type": "enemy.killed"})
    assert same.status_code == 200 and same.json()["version"] == 1
    changed = await client.put("/v1/definitions/stat/kills", headers={**keys.server, "If-Match": "1"},
                               json={"event_type": "enemy.killed", "periods": ["all"]})
    assert changed.json()["version"] == 2
    problem(await client.put("/v1/definitions/stat/kills", headers={**keys.server, "If-Match": "1"},
                             json={"event_type": "x"}), 412, "version_mismatch")
    listed = (await client.get("/v1/definitions/stat", headers=keys.server)).json()
    assert [d["key"] for d in listed["items"]] == ["kills"]
    assert (await client.delete("/v1/definitions/stat/kills", headers=keys.server)).status_code == 204
    problem(await client.get("/v1/definitions/stat/kills", headers=keys.server), 404, "definition_not_found")


async def test_bad_definitions_get_precise_problems_and_change_nothing(client: httpx.AsyncClient,
                                                                       factory: Factory) -> None:
    keys = await factory.app()
    cases = [
        ("stat", "s1", {"event_type": "x", "aggregation": "sum"}, "invalid_definition", "needs a field"),
        ("stat", "s2", {"event_type": "x", "filter": {"field": "data.a", "op": "in", "value": 3}},
         "invalid_definition", "non-empty list"),
        ("stat", "s3", {"event_type": "x", "filter": {"bogus": 1}}, "invalid_definition", "exactly one of"),
        ("stat", "s4", {"event_type": "x", "extra": True}, "invalid_definition", "extra"),
        ("xp_rule", "r1", {"track": "nope", "event_type": "x", "amount": 5}, "invalid_definition",
         "unknown xp_track 'nope'"),
        ("xp_rule", "r2", {"track": "xp", "event_type": "x", "amount": -5}, "invalid_definition", "greater than"),
        ("xp_track", "t1", {"curve": {"type": "table", "thresholds": [100, 50]}}, "invalid_definition",
         "strictly increasing"),
        ("xp_track", "t2", {"level_up_reward": {"currency": "gold", "amount": 5}}, "invalid_definition",
         "unknown currency 'gold'"),
        ("stat", "Bad Key", {"event_type": "x"}, "invalid_definition_key", None),
    ]
    for kind, key, body, code, phrase in cases:
        resp = await client.put(f"/v1/definitions/{kind}/{key}", headers=keys.server, json=body)
        found = problem(resp, 422, code)
        if phrase:
            assert phrase in found["detail"] or any(phrase in e["msg"] for e in found.get("errors", [])), found
    problem(await client.put("/v1/definitions/spell/x", headers=keys.server, json={}), 404, "unknown_kind")
    nothing = (await client.get("/v1/definitions/stat", headers=keys.server)).json()
    assert nothing["items"] == []


async def test_in_use_definitions_cannot_be_deleted(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    body = problem(await client.delete("/v1/definitions/xp_track/xp", headers=keys.server), 409, "definition_in_use")
    assert "xp_rule 'win-xp'" in body["used_by"]


async def test_a_bad_bundle_changes_nothing(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    bundle = {"definitions": {"stat": {"ok": {"event_type": "a"}},
                              "xp_rule": {"bad": {"track": "missing", "event_type": "a", "amount": 1}}}}
    problem(await client.post("/v1/definitions:bulk", headers=keys.server, json=bundle), 422, "invalid_definition")
    assert (await client.get("/v1/definitions/stat", headers=keys.server)).json()["items"] == []


async def test_cli_loads_a_yaml_file_all_or_nothing(client: httpx.AsyncClient, factory: Factory,
                                                    settings: Settings, tmp_path: Path) -> None:
    keys = await factory.app()
    await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    path = tmp_path / "game.yaml"
    path.write_text(yaml.safe_dump({"definitions": BASIC_CONFIG, "client_event_types": ["match.won"]}))
    result = await run_cli(["config", "load", str(path), "--app", keys.app_id], settings)
    assert result.exit_code == 0, result.output
    assert "created 8" in result.output
    again = await run_cli(["config", "load", str(path), "--app", keys.app_id], settings)
    assert "unchanged 8" in again.output
    dumped = await run_cli(["config", "dump", "--app", keys.app_id], settings)
    assert yaml.safe_load(dumped.output)["definitions"]["xp_rule"]["win-xp"]["daily_cap"] == 150
    path.write_text("definitions: [1, 2")
    broken = await run_cli(["config", "load", str(path), "--app", keys.app_id], settings)
    assert broken.exit_code == 1 and "not a valid configuration" in broken.output
