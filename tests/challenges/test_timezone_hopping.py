"""Issue 10, point 9: time zone hopping. A player changes their own time zone at most once per
interval, and a completion or streak day counted for an instant never counts again for a local
period that overlaps it. The issue's scenario: Pacific/Kiritimati (UTC+14) to Pacific/Pago_Pago
(UTC-11), 25 hours apart, so the same instant is 2026-12-02 in one and 2026-12-01 in the other."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.challenges.helpers import balance, challenges, configure, event, history, idem, player, workouts
from tests.conftest import Factory, problem
from tests.pipeline.helpers import configure as xp_rules
from tests.streaks import helpers as streaks

KIRITIMATI, PAGO_PAGO = "Pacific/Kiritimati", "Pacific/Pago_Pago"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


async def move(client: httpx.AsyncClient, headers: dict[str, str], player_id: str, tz: str) -> httpx.Response:
    return await client.patch(f"/v1/players/{player_id}/account", headers=headers, json={"timezone": tz})


async def test_a_player_changes_their_time_zone_once_a_week(client: httpx.AsyncClient, factory: Factory,
                                                            clock: ManualClock) -> None:
    keys = await factory.app()
    await player(client, keys, "kai", KIRITIMATI)
    kai = await factory.player_token(keys, "kai")
    assert (await move(client, kai, "kai", PAGO_PAGO)).json()["timezone"] == PAGO_PAGO
    again = problem(await move(client, kai, "kai", KIRITIMATI), 429, "timezone_change_too_soon")
    assert again["allowed_at"]
    resp = await move(client, kai, "kai", KIRITIMATI)
    assert int(resp.headers["retry-after"]) == 7 * 86_400
    # Sending the time zone it already has, or other fields, is not a change.
    assert (await move(client, kai, "kai", PAGO_PAGO)).status_code == 200
    named = await client.patch("/v1/players/kai/account", headers=kai, json={"display_name": "Kai"})
    assert named.status_code == 200
    # The server key (and app admins) are not limited, and do not use up the player's change.
    assert (await move(client, keys.server, "kai", "Europe/Paris")).json()["timezone"] == "Europe/Paris"
    assert (await move(client, keys.server, "kai", PAGO_PAGO)).status_code == 200
    problem(await move(client, kai, "kai", KIRITIMATI), 429, "timezone_change_too_soon")
    clock.advance(days=7)
    kai = await factory.player_token(keys, "kai")  # the first token has expired by now
    assert (await move(client, kai, "kai", KIRITIMATI)).json()["timezone"] == KIRITIMATI


async def test_a_daily_challenge_does_not_complete_twice_for_one_instant(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, {"workout": workouts(target=1)})
    clock.set(at("2026-12-01T20:30:00Z"))
    await player(client, keys, "kai", KIRITIMATI)
    kai = await factory.player_token(keys, "kai")
    # 2026-12-01T20:00Z is 2026-12-02 10:00 in Kiritimati: the daily challenge of 12-02 completes.
    await streaks.play(client, keys, runtime, event("kai", "2026-12-01T20:00:00Z"))
    assert [(h["challenge"], h["period"]) for h in await history(client, keys, "kai")] == [("workout", "2026-12-02")]
    assert await balance(client, keys, "kai") == 20

    # Kai moves to Pago_Pago: 2026-12-01T21:00Z is 2026-12-01 10:00 there. That day's span
    # (12-01 11:00Z to 12-02 11:00Z) overlaps the day already completed: nothing completes.
    assert (await move(client, kai, "kai", PAGO_PAGO)).status_code == 200
    clock.set(at("2026-12-01T21:30:00Z"))
    await streaks.play(client, keys, runtime, event("kai", "2026-12-01T21:00:00Z"))
    assert [(h["challenge"], h["period"]) for h in await history(client, keys, "kai")] == [("workout", "2026-12-02")]
    assert await balance(client, keys, "kai") == 20
    # Nor does a completion by support for Kai's current day (Pago_Pago's 12-01) go through.
    resp = await client.post("/v1/players/kai/challenges/workout/complete", headers=idem(keys.server),
                             json={"reason": "support ticket 12"})
    problem(resp, 409, "already_completed")
    assert await balance(client, keys, "kai") == 20

    # Pago_Pago's 12-02 is the period already completed (by its name); its 12-03 (12-03 11:00Z to
    # 12-04 11:00Z) overlaps nothing completed: it completes.
    clock.set(at("2026-12-03T12:30:00Z"))
    await streaks.play(client, keys, runtime, event("kai", "2026-12-03T12:00:00Z"))
    periods = sorted(h["period"] for h in await history(client, keys, "kai"))
    assert periods == ["2026-12-02", "2026-12-03"]
    assert await balance(client, keys, "kai") == 40
    assert (await challenges(client, keys, "kai"))["workout"]["status"] == "completed"


async def test_a_streak_day_does_not_count_twice_for_one_instant(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await streaks.configure(client, keys, streak={"daily": streaks.daily()})
    clock.set(at("2026-12-01T20:30:00Z"))
    # Kiritimati to Pago_Pago (the direction): the same instant's earlier local day never counts.
    await player(client, keys, "kai", KIRITIMATI)
    kai = await factory.player_token(keys, "kai")
    await streaks.play(client, keys, runtime, event_of("kai", "2026-12-01T20:00:00Z"))
    assert (await streaks.streak(client, keys, "kai"))["current"] == 1
    assert (await move(client, kai, "kai", PAGO_PAGO)).status_code == 200
    await streaks.play(client, keys, runtime, event_of("kai", "2026-12-01T21:00:00Z"))
    assert (await streaks.streak(client, keys, "kai"))["current"] == 1

    # Pago_Pago to Kiritimati: 12-01 in Pago_Pago (to 12-02 11:00Z) counted; Kiritimati's 12-02
    # (12-01 10:00Z to 12-02 10:00Z) lies inside it and must not count as a second day.
    await player(client, keys, "pia", PAGO_PAGO)
    pia = await factory.player_token(keys, "pia")
    await streaks.play(client, keys, runtime, event_of("pia", "2026-12-01T20:00:00Z"))
    assert (await move(client, pia, "pia", KIRITIMATI)).status_code == 200
    await streaks.play(client, keys, runtime, event_of("pia", "2026-12-01T21:00:00Z"))
    assert (await streaks.streak(client, keys, "pia"))["current"] == 1
    # Kiritimati's 12-03 starts 12-02 10:00Z, but an instant before 12-02 11:00Z is still Pago_Pago's
    # counted 12-01; after it, 12-03 counts as the next day (12-02 was lived through, not missed).
    await streaks.play(client, keys, runtime, event_of("pia", "2026-12-02T10:30:00Z"))
    assert (await streaks.streak(client, keys, "pia"))["current"] == 1
    clock.set(at("2026-12-02T12:30:00Z"))
    await streaks.play(client, keys, runtime, event_of("pia", "2026-12-02T12:00:00Z"))
    state = await streaks.streak(client, keys, "pia")
    assert (state["current"], state["longest"]) == (2, 2)
    # The break check at the end of the next day finds nothing missed.
    clock.set(at("2026-12-03T10:30:00Z"))
    await streaks.tick(runtime)
    assert (await streaks.streak(client, keys, "pia"))["current"] == 2
    clock.set(at("2026-12-03T12:00:00Z"))
    await streaks.play(client, keys, runtime, event_of("pia", "2026-12-03T11:00:00Z"))  # Kiritimati 12-04
    assert (await streaks.streak(client, keys, "pia"))["current"] == 3


def event_of(player_id: str, ts: str) -> dict[str, object]:
    return streaks.event(player_id, ts)


async def test_a_daily_xp_cap_is_not_opened_again_by_moving(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await xp_rules(client, keys)  # win-xp: 60 XP a win, at most 150 a local day
    clock.set(at("2026-12-01T20:30:00Z"))
    await player(client, keys, "kai", KIRITIMATI)
    kai = await factory.player_token(keys, "kai")

    def wins(ts: str) -> list[dict[str, object]]:
        return [event("kai", ts, "match.won", score=1) for _ in range(3)]

    async def total() -> int:
        profile = (await client.get("/v1/players/kai", headers=keys.server)).json()
        return int(profile["levels"]["xp"]["total_xp"])

    await streaks.play(client, keys, runtime, *wins("2026-12-01T20:00:00Z"))  # Kiritimati's 12-02
    assert await total() == 150
    assert (await move(client, kai, "kai", PAGO_PAGO)).status_code == 200
    await streaks.play(client, keys, runtime, *wins("2026-12-01T21:00:00Z"))  # Pago_Pago's 12-01: overlaps
    assert await total() == 150
    clock.set(at("2026-12-03T12:30:00Z"))
    await streaks.play(client, keys, runtime, *wins("2026-12-03T12:00:00Z"))  # Pago_Pago's 12-03: a new day
    assert await total() == 300
