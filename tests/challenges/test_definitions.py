"""Bad challenge definitions are refused with a problem naming the field; nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.challenges.helpers import configure, workouts
from tests.conftest import Factory, problem


def _objective(**over: Any) -> dict[str, Any]:
    return {"type": "count", "event_type": "workout.completed", "target": 3, **over}


def _body(**over: Any) -> dict[str, Any]:
    return {**workouts(3), **over}


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("no objectives", _body(objectives=[]), "objectives: List should have at least 1 item"),
    ("unknown objective type", _body(objectives=[_objective(type="sometimes")]), "objectives.0.type"),
    ("window missing", _body(objectives=[_objective(type="time_window")]), "window_seconds: a time_window"),
    ("window too long", _body(objectives=[_objective(type="time_window", window_seconds=10**9)]), "window_seconds"),
    ("window on a count", _body(objectives=[_objective(window_seconds=60)]), "window_seconds: only time_window"),
    ("zero target", _body(objectives=[_objective(target=0)]), "target: a count objective"),
    ("text target on a count", _body(objectives=[_objective(target="three")]), "target: a count objective"),
    ("value without field", _body(objectives=[_objective(type="value", target=30)]), "field: a value objective"),
    ("value sum of text", _body(objectives=[_objective(type="value", field="data.kind", target="run")]),
     "target: aggregate 'sum' needs a number"),
    ("field on a count", _body(objectives=[_objective(field="data.minutes")]), "field: not used by a count"),
    ("bad field path", _body(objectives=[_objective(type="value", field="minutes", target=3)]),
     "objectives.0.field"),
    ("bad filter", _body(objectives=[_objective(filter={"field": "data.x", "op": "gte"})]), "objectives.0.filter"),
    ("unknown recurrence", _body(recurrence="hourly"), "recurrence: Input should be"),
    ("event without dates", _body(recurrence="event"), "recurrence: an event challenge needs starts_at"),
    ("dates reversed", _body(starts_at="2026-04-01T00:00:00Z", ends_at="2026-03-01T00:00:00Z"), "ends_at: must be"),
    ("naive date", _body(starts_at="2026-04-01T00:00:00"), "starts_at"),
    ("cooldown without repeat", _body(cooldown_seconds=60), "cooldown_seconds: only a repeatable"),
    ("repeatable claim", _body(repeatable=True, completion_mode="claim"), "repeatable: claim-mode"),
    ("bad completion mode", _body(completion_mode="manual"), "completion_mode"),
    ("bad category", _body(category="Work Out"), "category"),
    ("negative reward", _body(rewards={"points": {"currency": "points", "amount": -5}}), "rewards.points.amount"),
    ("unknown currency", _body(rewards={"points": {"currency": "gems", "amount": 5}}),
     "rewards.points.currency: unknown currency 'gems'"),
    ("unknown track", _body(rewards={"xp": {"track": "karma", "amount": 5}}), "unknown xp_track 'karma'"),
    ("unknown level track", _body(min_level={"track": "karma", "level": 3}), "unknown level 'karma'"),
    ("unknown required challenge", _body(required_challenges=["ghost"]), "unknown challenge 'ghost'"),
    ("bad achievement key", _body(required_achievements=["Not A Key"]), "required_achievements"),
    ("unknown field", _body(xp_reward=15), "xp_reward: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("case", "body", "names"), BAD, ids=[b[0] for b in BAD])
async def test_bad_definitions_are_refused_naming_the_field(client: httpx.AsyncClient, factory: Factory, case: str,
                                                            body: dict[str, Any], names: str) -> None:
    keys = await factory.app()
    await configure(client, keys, {})
    resp = await client.put("/v1/definitions/challenge/bad-one", headers=keys.server, json=body)
    found = problem(resp, 422, "invalid_definition")
    messages = [found["detail"]] + [f"{'.'.join(e['loc'])}: {e['msg']}" for e in found["errors"]]
    assert any(names in m for m in messages), (case, found)
    assert (await client.get("/v1/definitions/challenge/bad-one", headers=keys.server)).status_code == 404


async def test_a_good_definition_is_stored_and_described(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys, {"first": workouts(1)})
    body = _body(required_challenges=["first"], required_achievements=["early-bird"],
                 min_level={"track": "xp", "level": 2}, repeatable=True, cooldown_seconds=3600,
                 objectives=[_objective(), _objective(type="time_window", target=2, window_seconds=600),
                             _objective(type="value", field="data.minutes", op="gte", target=30, aggregate="max"),
                             _objective(type="exists", field="data.photo", target=None)])
    resp = await client.put("/v1/definitions/challenge/big-one", headers=keys.server, json=body)
    assert resp.status_code == 201, resp.text
    kinds = (await client.get("/v1/definition-kinds", headers=keys.server)).json()
    schema = next(k for k in kinds if k["kind"] == "challenge")["json_schema"]
    assert "objectives" in schema["properties"] and "completion_mode" in schema["properties"]
    # A challenge another one requires cannot be deleted from under it.
    problem(await client.delete("/v1/definitions/challenge/first", headers=keys.server), 409, "definition_in_use")
