"""The demo game loads, and simulated players play it through the real pipeline."""

from __future__ import annotations

import httpx

from questline.demo import content_bundle, content_files, install_content
from questline.demo.simulate import plan, simulate
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.challenges.helpers import challenges, history
from tests.conftest import Factory


def test_content_is_base_first_with_twenty_challenges() -> None:
    files = content_files()
    assert files[0] == "base.yaml" and "challenges.yaml" in files
    bundle, currencies = content_bundle()
    assert "points" in currencies
    found = bundle.definitions["challenge"]
    assert len(found) == 20
    recurrences = [body.get("recurrence", "one_time") for body in found.values()]
    assert recurrences.count("daily") == 6 and recurrences.count("weekly") == 6
    assert recurrences.count("monthly") == 3
    rank = bundle.definitions["combined_level"]["rank"]["levels"]
    assert len(rank) == 10 and rank[0]["name"] == "Novice Explorer" and rank[-1]["name"] == "Legendary Creator"


async def test_simulated_players_make_progress(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    async with unit_of_work(runtime.sessions) as session:
        loaded = await install_content(session, runtime.clock, keys.app_id)
    assert loaded.created > 50
    async with unit_of_work(runtime.sessions) as session:
        again = await install_content(session, runtime.clock, keys.app_id)
    assert again.created == 0 and again.updated == 0 and again.config_version == loaded.config_version

    result = await simulate(runtime, keys.app_id, players=12, days=3, seed=3)
    assert result.players == 12 and result.events_accepted == result.events_sent > 100
    assert result.events_processed > result.events_accepted  # plus the engine's own XP awards
    cast, planned = plan(12, 3, runtime.clock.now(), 3)
    assert {e["player_id"] for e in planned} <= {p.player_id for p in cast}

    completed = [h for p in cast for h in await history(client, keys, p.player_id)]
    assert any(h["challenge"] == "daily-checkin" for h in completed)
    view = await challenges(client, keys, cast[0].player_id)
    assert "daily-checkin" in view and view["daily-checkin"]["group"] == "daily"
    profile = (await client.get(f"/v1/players/{cast[0].player_id}", headers=keys.server)).json()
    assert profile["player"]["timezone"] == cast[0].timezone and profile["levels"]["xp"]["total_xp"] > 0
    pending = (await client.get("/v1/challenge-claims", headers=keys.server, params={"status": "pending"})).json()
    assert len(pending["items"]) == result.claims_filed - result.claims_approved

    # The same seed sends the same events: a second run adds nothing.
    rerun = await simulate(runtime, keys.app_id, players=12, days=3, seed=3)
    assert rerun.events_accepted == 0 and rerun.claims_filed == 0
