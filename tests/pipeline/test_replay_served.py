"""Replay beside a running engine leaves every per-player read as live processing left it.

The demo simulation fills an app while ``questline serve`` runs (its worker, its scheduled
jobs, its rank index); every per-player read is captured over HTTP; ``questline replay`` runs
as its own process beside the engine; every read is captured again and must be the same, but
for the fields that are times of the read itself. A live event after the replay must then move
the engine's boards (the replay made the engine rebuild its rank index).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.streaks.tasks import request_checks
from tests.conftest import AppKeys, Factory
from tests.serving import Served, serving

pytestmark = pytest.mark.slow

PLAYERS, DAYS = 14, 9
# Per-player reads, each paged to its end.
PLAYER_READS = ["", "/account", "/balances", "/transactions", "/events", "/stats", "/activity", "/challenges",
                "/challenges/history", "/streaks", "/achievements", "/battle-pass", "/inventory", "/prizes",
                "/prizes/history", "/referrals", "/communities", "/shop/orders", "/friends"]
BOARDS = {"minutes": {"event_type": "workout.completed", "field": "data.minutes", "name": "Minutes"},
          "steps-weekly": {"event_type": "steps.synced", "field": "data.steps", "period": "week"},
          "sessions": {"stat": "sessions"}}
# Fields that are times of the read itself (or of the request), not of the player's state.
READ_TIME = {"as_of", "request_id"}


@pytest.fixture
async def keys(factory: Factory) -> AppKeys:
    return await factory.app()


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[Served]:
    """The engine as a process on the test's database: worker, scheduler and rank index running."""
    env = {"QUESTLINE_DATABASE_URL": settings.database_url, "QUESTLINE_ENV": "test",
           "QUESTLINE_SECRET_KEY": settings.secret_key.get_secret_value(), "QUESTLINE_LOG_LEVEL": "INFO",
           "QUESTLINE_LOG_JSON": "true",
           "QUESTLINE_RATE_LIMIT_PER_KEY": "100000/minute", "QUESTLINE_RATE_LIMIT_PER_PLAYER": "100000/minute"}
    if settings.redis_url:
        env |= {"QUESTLINE_REDIS_URL": settings.redis_url, "QUESTLINE_REDIS_NAMESPACE": settings.redis_namespace}
    with serving(tmp_path, **env) as process:
        yield process


def questline(served: Served, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A ``questline`` command as its own process, beside the engine, on its database."""
    done = subprocess.run([sys.executable, "-m", "questline", *args], cwd=served.cwd, env=served.env, check=False,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"questline {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _all(client: httpx.Client, path: str, **params: Any) -> Any:
    """A read, every page of it (the raw reply when it is not a page, or when it is refused)."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        resp = client.get(path, params={**params, "limit": 100, **({"cursor": cursor} if cursor else {})})
        body = resp.json()
        if resp.status_code != 200 or not (isinstance(body, dict) and "items" in body):
            return {"status": resp.status_code, "body": body}
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def capture(client: httpx.Client, players: list[str]) -> dict[str, Any]:
    """Every per-player read of every player, and every board from the top and at each player."""
    seen: dict[str, Any] = {}
    for player in players:
        for read in PLAYER_READS:
            seen[f"{player}{read}"] = _all(client, f"/v1/players/{player}{read}")
        for board in BOARDS:
            seen[f"{board}@{player}"] = client.get(f"/v1/leaderboards/{board}/players/{player}").json()
    for board in BOARDS:
        seen[board] = _all(client, f"/v1/leaderboards/{board}")
    return _without_read_times(seen)


def _without_read_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_read_times(v) for k, v in value.items() if k not in READ_TIME}
    if isinstance(value, list):
        return [_without_read_times(v) for v in value]
    return value


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    if type(before) is not type(after):
        return [f"{path}: {before!r} -> {after!r}"]
    if isinstance(before, dict):
        return [d for k in sorted(set(before) | set(after), key=str)
                for d in differences(before.get(k), after.get(k), f"{path}/{k}")]
    if isinstance(before, list):
        found = [f"{path}: {len(before)} items -> {len(after)}"] if len(before) != len(after) else []
        return found + [d for i, (b, a) in enumerate(zip(before, after, strict=False))
                        for d in differences(b, a, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def settle(client: httpx.Client, players: list[str], seconds: float = 60) -> None:
    """Wait until the engine has processed every event of these players."""
    deadline = time.monotonic() + seconds
    while True:
        pending = [e for p in players for e in _all(client, f"/v1/players/{p}/events") if e["pending"]]
        if not pending:
            return
        assert time.monotonic() < deadline, f"{len(pending)} events still pending"
        time.sleep(0.2)


async def streak_job(settings: Settings) -> None:
    """One run of the engine's streak job (``streaks.check_breaks``) on its database, now."""
    runtime = Runtime.build(settings.model_copy(update={"event_log": None}))  # the served engine's log
    try:
        async with unit_of_work(runtime.sessions) as session:
            await request_checks(session, runtime, datetime.now(UTC))
    finally:
        await runtime.close()


def checked(client: httpx.Client, players: list[str], settings: Settings, seconds: float = 120) -> None:
    """Every streak whose period is over checked, and the checks processed by the engine's worker:
    the simulation's backdated days leave some due at once. The engine's own job runs once a
    minute (``every(60)``), so a wait for it was up to a minute; its run here appends the same
    check events (the same ids: never twice, whichever appends first) for the engine to process."""
    deadline = time.monotonic() + seconds
    while True:
        now = datetime.now(UTC)
        due = [(p, s["key"]) for p in players for s in client.get(f"/v1/players/{p}/streaks").json()["streaks"]
               if s["breaks_at"] is not None and datetime.fromisoformat(s["breaks_at"]) <= now]
        if not due:
            return settle(client, players)
        assert time.monotonic() < deadline, f"streaks never checked: {due}"
        asyncio.run(streak_job(settings))
        settle(client, players)


def test_replay_beside_a_running_engine_leaves_every_player_read_as_live(served: Served, keys: AppKeys,
                                                                         settings: Settings) -> None:
    with httpx.Client(base_url=served.base, headers=keys.server, timeout=60) as client:
        questline(served, "demo", "load", "--app", keys.app_id)
        for key, body in BOARDS.items():
            resp = client.put(f"/v1/definitions/leaderboard/{key}", json=body)
            assert resp.status_code in (200, 201), resp.text
        simulated = questline(served, "demo", "simulate", "--app", keys.app_id, "--players", str(PLAYERS),
                              "--days", str(DAYS), "--seed", "11")
        assert "approved" in simulated.stdout
        players = [p["player_id"] for p in _all(client, "/v1/players")]
        assert len(players) >= PLAYERS
        checked(client, players, settings)
        live = capture(client, players)
        # The simulation reached every kind of read: claims approved, challenges, boards, streaks.
        assert any(c["source"] == "claim" for p in players for c in live[f"{p}/challenges/history"])
        assert all(live[board] for board in BOARDS)

        started = datetime.now(UTC)
        replayed = questline(served, "replay", "--app", keys.app_id)
        assert "replayed" in replayed.stdout
        settle(client, players)
        again = capture(client, players)
        diff = differences(live, again)
        assert not diff, f"{len(diff)} reads changed by the replay:\n" + "\n".join(diff[:60])

        # No scheduled job wrote to the log while the replay ran.
        appended = [e for p in players for e in again[f"{p}/events"]
                    if datetime.fromisoformat(e["received_at"]) >= started]
        assert not appended, appended[:5]

        # The engine's boards follow live events after the replay (its rank index was rebuilt).
        player = live["minutes"][0]["player_id"]
        place = client.get(f"/v1/leaderboards/minutes/players/{player}").json()
        sent = client.post("/v1/events", json=[{"id": "after-replay-1", "player_id": player,
                                                "type": "workout.completed",
                                                "data": {"kind": "run", "minutes": 45, "calories": 300},
                                                "timestamp": datetime.now(UTC).isoformat()}])
        assert sent.status_code == 202, sent.text
        settle(client, [player])
        moved = client.get(f"/v1/leaderboards/minutes/players/{player}").json()
        assert moved["me"]["score"] == place["me"]["score"] + 45, json.dumps([place, moved])[:2000]
