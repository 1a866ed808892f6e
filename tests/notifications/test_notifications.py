"""Notifications (issue 15 point 5): inboxes, e-mail over SMTP, Discord and Telegram, templates per locale,
preferences, quiet hours, digests, and one notification per channel when the relay delivers twice."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import httpx

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.notifications import service as notifications
from questline.relay import service as relay_service
from tests.competitions.helpers import competition, create, join
from tests.conftest import Factory, problem
from tests.fulfilment.helpers import won
from tests.market import helpers as market_makers
from tests.notifications.helpers import channels_to, contacts, message, relay, relay_outbox, smtp_server
from tests.receivers import receiving


async def deliveries(runtime: Runtime, app_id: str, player: str) -> list[dict[str, object]]:
    async with unit_of_work(runtime.sessions) as session:
        return await notifications.deliveries_of(session, app_id, player)


async def test_a_level_up_reaches_the_inbox_email_discord_and_telegram_once_each(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    with smtp_server() as box:
        async with receiving() as chat:
            channels_to(runtime, smtp_port=box.port, chat_base=chat.base)
            await contacts(client, keys, "ada", email="ada@example.com", discord_channel_id="9001",
                           telegram_chat_id="4242")
            ada = await factory.player_token(keys, "ada")
            prefs = await client.put("/v1/players/ada/notification-preferences", headers=ada, json={
                "defaults": {"email": True}, "types": {"level_up": {"discord": True, "telegram": True}}})
            assert prefs.status_code == 200, prefs.text
            level_up = message(keys.app_id, 1, "level.up", "ada", clock.now(), track="xp", to=5, name="Veteran")
            await relay(runtime, [level_up])
            await relay(runtime, [level_up])  # the relay hands the same message over again
            assert await notifications.process_due(runtime) == 3
            assert await notifications.process_due(runtime) == 0

            inbox = (await client.get("/v1/players/ada/notifications", headers=ada)).json()["items"]
            assert [(n["type"], n["title"], n["status"]) for n in inbox] == [("level_up", "Level 5!", "unread")]
            assert inbox[0]["body"] == "You reached level 5 (Veteran) on xp."
            [mail] = box.received
            assert (mail["To"], mail["Subject"]) == ("ada@example.com", "Level 5!")
            assert "You reached level 5 (Veteran) on xp." in mail.get_payload()
            [discord] = chat.to("/discord/channels/9001/messages")
            assert discord.headers["authorization"] == "Bot discord-token"
            assert discord.json()["content"].startswith("**Level 5!**")
            [telegram] = chat.to("/telegram/bottg-token/sendMessage")
            assert telegram.json()["chat_id"] == "4242"
            assert {(d["channel"], d["status"]) for d in await deliveries(runtime, keys.app_id, "ada")} == {
                ("email", "sent"), ("discord", "sent"), ("telegram", "sent")}


async def test_inbox_read_archive_and_unread_count(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await contacts(client, keys, "bo")
    now = clock.now()
    await relay(runtime, [message(keys.app_id, 1, "achievement.unlocked", "bo", now, key="first-blood",
                                  name="First blood"),
                          message(keys.app_id, 2, "prize.awarded", "bo", now, rank=1, amount=500, currency="gems",
                                  kind="points"),
                          message(keys.app_id, 3, "xp.earned", "bo", now, amount=5)])  # no notification type
    bo = await factory.player_token(keys, "bo")
    inbox = (await client.get("/v1/players/bo/notifications", headers=bo)).json()["items"]
    assert [(n["type"], n["title"]) for n in inbox] == [("prize_awarded", "You won a prize"),
                                                        ("achievement_unlocked", "Achievement unlocked: First blood")]
    assert inbox[0]["body"] == "You placed 1 and won 500 gems."
    count = await client.get("/v1/players/bo/notifications/unread-count", headers=bo)
    assert count.json() == {"unread": 2}
    read = await client.post(f"/v1/players/bo/notifications/{inbox[0]['id']}/read", headers=bo)
    assert read.status_code == 200 and read.json()["status"] == "read" and read.json()["read_at"]
    again = await client.post(f"/v1/players/bo/notifications/{inbox[0]['id']}/read", headers=bo)
    assert again.json()["read_at"] == read.json()["read_at"]
    assert (await client.get("/v1/players/bo/notifications/unread-count", headers=bo)).json() == {"unread": 1}
    archived = await client.post(f"/v1/players/bo/notifications/{inbox[1]['id']}/archive", headers=bo)
    assert archived.json()["status"] == "archived"
    assert [n["id"] for n in (await client.get("/v1/players/bo/notifications", headers=bo)).json()["items"]] == [
        inbox[0]["id"]]
    assert [n["id"] for n in (await client.get("/v1/players/bo/notifications", headers=bo,
                                               params={"status": "archived"})).json()["items"]] == [inbox[1]["id"]]
    assert (await client.get("/v1/players/bo/notifications/unread-count", headers=bo)).json() == {"unread": 0}
    # Another player cannot reach bo's inbox; an unknown entry is a 404.
    cy = await factory.player_token(keys, "cy")
    problem(await client.get("/v1/players/bo/notifications", headers=cy), 404)
    problem(await client.post("/v1/players/bo/notifications/ntf_01JAAAAAAAAAAAAAAAAAAAAAAA/read", headers=bo), 404,
            "notification_not_found")
    marked = await client.post("/v1/players/bo/notifications/read-all", headers=keys.server)
    assert marked.json() == {"changed": 0}


async def test_quiet_hours_hold_outside_channels_until_they_end_in_the_players_time_zone(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    with smtp_server() as box:
        channels_to(runtime, smtp_port=box.port)
        await contacts(client, keys, "kai", timezone="America/New_York", email="kai@example.com")
        resp = await client.put("/v1/players/kai/notification-preferences", headers=keys.server, json={
            "defaults": {"email": True}, "quiet_hours": {"start": "22:00", "end": "07:00"}})
        assert resp.status_code == 200 and resp.json()["quiet_hours"] == {"start": "22:00", "end": "07:00"}
        clock.set(datetime(2026, 3, 11, 4, 30, tzinfo=UTC))  # 00:30 in New York (EDT): quiet
        await relay(runtime, [message(keys.app_id, 1, "level.up", "kai", clock.now(), track="xp", to=2)])
        [held] = await deliveries(runtime, keys.app_id, "kai")
        assert held["send_after"] == datetime(2026, 3, 11, 11, 0, tzinfo=UTC)  # 07:00 New York
        assert await notifications.process_due(runtime) == 0 and box.received == []
        # The in-app entry is there at once: the inbox is silent.
        assert (await client.get("/v1/players/kai/notifications/unread-count", headers=keys.server)).json() == {
            "unread": 1}
        clock.set(datetime(2026, 3, 11, 10, 59, tzinfo=UTC))
        assert await notifications.process_due(runtime) == 0
        clock.set(datetime(2026, 3, 11, 11, 0, tzinfo=UTC))
        assert await notifications.process_due(runtime) == 1 and len(box.received) == 1
        # Outside the quiet hours a message goes at once.
        clock.set(datetime(2026, 3, 11, 16, 0, tzinfo=UTC))  # noon in New York
        await relay(runtime, [message(keys.app_id, 2, "level.up", "kai", clock.now(), track="xp", to=3)])
        assert await notifications.process_due(runtime) == 1 and len(box.received) == 2


async def test_a_daily_digest_bundles_outside_messages_and_templates_follow_the_locale(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    with smtp_server() as box:
        channels_to(runtime, smtp_port=box.port)
        await contacts(client, keys, "lea", timezone="Europe/Berlin", email="lea@example.com")
        resp = await client.put("/v1/notification-templates/level_up/de", headers=keys.server, json={
            "subject": "Stufe {{ to }}!", "text": "Du hast Stufe {{ to }} erreicht.",
            "html": "<p>Du hast <b>Stufe {{ to }}</b> erreicht, {{ player_id }}.</p>"})
        assert resp.status_code == 200, resp.text
        problem(await client.put("/v1/notification-templates/level_up/de", headers=keys.server,
                                 json={"subject": "{{ to ", "text": "x"}), 422, "invalid_template")
        problem(await client.put("/v1/notification-templates/nope/de", headers=keys.server,
                                 json={"subject": "x", "text": "x"}), 404, "notification_type_not_found")
        await client.put("/v1/players/lea/notification-preferences", headers=keys.server, json={
            "defaults": {"email": True}, "digest": "daily", "digest_hour": 18, "locale": "de"})
        clock.set(datetime(2026, 3, 11, 9, 0, tzinfo=UTC))  # 10:00 in Berlin
        await relay(runtime, [message(keys.app_id, 1, "level.up", "lea", clock.now(), track="xp", to=4),
                              message(keys.app_id, 2, "streak.broken", "lea", clock.now(), streak="daily-login")])
        inbox = (await client.get("/v1/players/lea/notifications", headers=keys.server)).json()["items"]
        assert {n["title"] for n in inbox} == {"Stufe 4!", "Your streak ended"}  # no German streak text: built-in
        assert await notifications.process_due(runtime) == 0
        clock.set(datetime(2026, 3, 11, 17, 0, tzinfo=UTC))  # 18:00 in Berlin
        assert await notifications.process_due(runtime) == 2
        [digest] = box.received
        assert digest["Subject"] == "Your daily digest: 2 updates"
        body = digest.get_payload().replace("\r\n", "\n")
        assert "Stufe 4!\nDu hast Stufe 4 erreicht." in body and "Your streak ended" in body
        # Without a digest, the German e-mail carries its HTML part beside the text.
        await client.put("/v1/players/lea/notification-preferences", headers=keys.server,
                         json={"defaults": {"email": True}, "locale": "de"})
        await relay(runtime, [message(keys.app_id, 3, "level.up", "lea", clock.now(), track="xp", to=5)])
        await notifications.process_due(runtime)
        parts = {p.get_content_type(): p.get_payload().replace("\r\n", "\n") for p in box.received[1].walk()
                 if not p.is_multipart()}
        assert "Du hast Stufe 5 erreicht." in parts["text/plain"]
        assert "<b>Stufe 5</b>" in parts["text/html"]


async def test_competition_news_reaches_participants_and_brands_get_their_inbox(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await won(client, keys, runtime, clock, [{"from_rank": 1, "external": {"sku": "cap"}}], players=("ann", "ben"))
    await relay_outbox(runtime, keys)
    await relay_outbox(runtime, keys)  # twice: nothing new
    types = {p: [n["type"] for n in (await client.get(f"/v1/players/{p}/notifications", headers=keys.server))
                 .json()["items"]] for p in ("ann", "ben")}
    assert sorted(types["ann"]) == sorted(["competition_started", "rank_entered_top", "competition_ended",
                                           "prize_awarded", "competitions_prizes_distributed"])
    assert "prize_awarded" not in types["ben"] and "competition_started" in types["ben"]
    assert types["ben"].count("competition_ended") == 1

    now = clock.now()
    world = SimpleNamespace(a=keys)
    brand_id = await market_makers.make_brand(world, client)
    await relay(runtime, [message(keys.app_id, 10**6, "campaign.joined", None, now, campaign_id="cmp_x",
                                  campaign_title="Summer of Fizz", brand_id=brand_id,
                                  streamer_id="str_1", streamer_name="Ann")])
    brand = await client.get(f"/v1/brands/{brand_id}/notifications", headers=keys.server)
    assert [(n["type"], n["title"]) for n in brand.json()["items"]] == [
        ("campaign_joined", "Ann joined Summer of Fizz")]
    assert (await client.get(f"/v1/brands/{brand_id}/notifications/unread-count", headers=keys.server)).json() == {
        "unread": 1}
    other = await factory.app()
    problem(await client.get(f"/v1/brands/{brand_id}/notifications", headers=other.server), 404)


async def test_preferences_are_validated(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await contacts(client, keys, "zed")
    url = "/v1/players/zed/notification-preferences"
    assert (await client.get(url, headers=keys.server)).json()["digest"] == "off"
    problem(await client.put(url, headers=keys.server, json={"types": {"nonsense": {"email": True}}}), 422)
    problem(await client.put(url, headers=keys.server, json={"quiet_hours": {"start": "22:00", "end": "22:00"}}), 422)
    problem(await client.put(url, headers=keys.server, json={"quiet_hours": {"start": "25:00", "end": "07:00"}}), 422)
    problem(await client.put(url, headers=keys.server, json={"defaults": {"pigeon": True}}), 422)
    problem(await client.get("/v1/players/nobody/notification-preferences", headers=keys.server), 404)


async def test_participants_are_reminded_once_before_a_competition_starts_and_ends(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    cid = (await create(client, keys, competition("2026-03-10T13:00:00Z", "2026-03-10T15:00:00Z")))["id"]
    for player in ("ann", "ben"):
        assert (await join(client, keys, cid, player)).status_code == 201

    async def remind(at: datetime) -> list[str]:
        """Run the reminder job's body at ``at``; what ann's inbox holds after it."""
        clock.set(at)
        async with unit_of_work(runtime.sessions) as session:
            await notifications.remind(session, runtime, at)
        items = (await client.get("/v1/players/ann/notifications", headers=keys.server)).json()["items"]
        return [n["type"] for n in items]

    assert await remind(datetime(2026, 3, 10, 11, 30, tzinfo=UTC)) == []  # 90 minutes before: not yet
    assert await remind(datetime(2026, 3, 10, 12, 15, tzinfo=UTC)) == ["competition_starting_soon"]
    assert await remind(datetime(2026, 3, 10, 12, 16, tzinfo=UTC)) == ["competition_starting_soon"]  # once
    assert await remind(datetime(2026, 3, 10, 14, 30, tzinfo=UTC)) == [  # the end, within the hour
        "competition_ending_soon", "competition_starting_soon"]
    for player in ("ann", "ben"):
        inbox = (await client.get(f"/v1/players/{player}/notifications", headers=keys.server)).json()["items"]
        assert [(n["type"], n["title"]) for n in inbox] == [
            ("competition_ending_soon", "Spring trading cup ends soon"),
            ("competition_starting_soon", "Spring trading cup starts soon")]
        assert inbox[1]["body"] == "Spring trading cup starts at 2026-03-10 13:00 (UTC). Get ready."
    # Leave nothing scheduled behind (PostgreSQL's database is shared by the tests that follow).
    assert (await client.post(f"/v1/competitions/{cid}/cancel", headers=keys.server,
                              json={"reason": "the reminders were checked"})).status_code == 200


async def test_the_relay_hands_the_outbox_to_notifications_once_per_channel(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await won(client, keys, runtime, clock, [{"from_rank": 1, "external": {"sku": "cap"}}], players=("ann",))
    await relay_service.drain(runtime)
    first = (await client.get("/v1/players/ann/notifications", headers=keys.server)).json()["items"]
    assert "prize_awarded" in [n["type"] for n in first]
    # The relay delivers at least once: the same messages handed over again make nothing new.
    await relay_outbox(runtime, keys)
    await relay_service.drain(runtime)
    again = (await client.get("/v1/players/ann/notifications", headers=keys.server)).json()["items"]
    assert [n["id"] for n in again] == [n["id"] for n in first]
