"""Share cards: a page and a PNG per thing achieved, served only while the player allows it."""

from __future__ import annotations

import io
import uuid

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.factories import define, set_player
from tests.sharecards.helpers import Meta, arena, card, grant, make_public

BASE = "http://questline.test"


def png_of(resp: httpx.Response) -> Image.Image:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(resp.content))
    image.load()
    assert (image.format, image.size) == ("PNG", (1200, 630))
    return image


async def test_every_kind_draws_a_png_and_a_page_that_previews(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app("Star Arena")
    maya, noor = f"p-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    cup = await arena(client, keys, runtime, clock, maya, noor)
    own = await factory.player_token(keys, maya)

    # Private by default: no link is made until the player says so.
    problem(await card(client, own, maya, kind="achievement", subject="first-win"), 409, "share_cards_private")
    assert (await client.get(f"/v1/players/{maya}/share-settings", headers=own)).json()["public"] is False
    await make_public(client, own, maya)

    wanted = [
        ({"kind": "achievement", "subject": "first-win"}, "first-win", "Maya unlocked First Blood", "Win a match"),
        ({"kind": "level", "subject": "xp"}, "xp:3", "Maya reached level 3: Adept",
         "Level 3 on the Experience track in Star Arena"),
        ({"kind": "level", "subject": "xp", "level": 2}, "xp:2", "Maya reached level 2",
         "Level 2 on the Experience track in Star Arena"),
        ({"kind": "streak", "subject": "daily"}, "daily:2", "Maya kept a 2-day streak",
         "Daily play: 2 days in a row in Star Arena"),
        ({"kind": "streak", "subject": "daily", "milestone": 1}, "daily:1", "Maya kept a 1-day streak",
         "Daily play: 1 days in a row in Star Arena"),
        ({"kind": "competition", "subject": cup}, cup, "Maya finished 1st in Spring trading cup",
         "Final score 300: 1st of 2 in Star Arena"),
    ]
    images: list[bytes] = []
    for body, subject, title, description in wanted:
        resp = await card(client, own, maya, **body)
        assert resp.status_code == 201, resp.text
        out = resp.json()
        assert (out["kind"], out["subject"], out["title"], out["description"]) == (
            body["kind"], subject, title, description)
        assert out["url"] == f"{BASE}/v1/share/{out['id']}" and out["image_url"] == out["url"] + "/image.png"
        assert maya not in out["url"] and len(out["id"]) >= 20  # random, not the player's id

        # The image: a real 1200×630 PNG, different for each subject.
        image = await client.get(out["image_url"])  # no key
        png_of(image)
        images.append(image.content)

        # The page: Open Graph and Twitter tags with the text and the absolute image URL.
        page = await client.get(out["url"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        meta = Meta(page.text)
        assert meta.title == title
        assert (meta.one("og:title"), meta.one("og:description")) == (title, description)
        assert meta.one("og:image") == out["image_url"] and meta.one("og:url") == out["url"]
        assert meta.one("og:site_name") == "Star Arena"
        assert meta.one("twitter:card") == "summary_large_image"
        assert (meta.one("twitter:title"), meta.one("twitter:image")) == (title, out["image_url"])
        assert meta.images == [out["image_url"]]
        assert maya not in page.text

        # Asked again: the same card, not a new one.
        again = await card(client, keys.server, maya, **body)
        assert again.status_code == 200 and again.json()["id"] == out["id"], again.text
    assert len(set(images)) == len(images)

    # Noor's card of the same kind differs from Maya's; her second place shows as such.
    await make_public(client, keys.server, noor)
    resp = await card(client, keys.server, noor, kind="competition", subject=cup)
    assert resp.status_code == 201 and resp.json()["title"] == "Noor finished 2nd in Spring trading cup"
    noor_png = (await client.get(resp.json()["image_url"])).content
    assert noor_png not in images

    # The list: every card of Maya's.
    listed = (await client.get(f"/v1/players/{maya}/share-cards", headers=own)).json()
    assert listed["public"] is True and sorted(c["subject"] for c in listed["items"]) == sorted(w[1] for w in wanted)

    # A rename redraws the card under the same link; the image changes with it.
    first = next(c for c in listed["items"] if c["subject"] == "first-win")
    before = (await client.get(first["image_url"])).content
    await set_player(client, keys, maya, username="Maya the Bold")
    redrawn = await card(client, own, maya, kind="achievement", subject="first-win")
    assert redrawn.status_code == 200 and redrawn.json()["id"] == first["id"]
    assert redrawn.json()["title"] == "Maya the Bold unlocked First Blood"
    after = await client.get(first["image_url"])
    png_of(after)
    assert after.content != before

    # A player who chose to be anonymous is shown as "A player", never by id.
    await set_player(client, keys, maya, display_name_type="anonymous")
    anon = await card(client, own, maya, kind="level", subject="xp")
    assert anon.json()["title"] == "A player reached level 3: Adept"

    # A public_url setting makes the links absolute on that address instead of the request's.
    runtime.settings.public_url = "https://play.example.com"
    try:
        resp = await card(client, own, maya, kind="level", subject="xp")
        assert resp.json()["url"].startswith("https://play.example.com/v1/share/")
        page = await client.get(f"/v1/share/{resp.json()['id']}")
        assert Meta(page.text).one("og:image") == resp.json()["url"] + "/image.png"
    finally:
        runtime.settings.public_url = None


async def test_a_private_players_cards_answer_404_and_caches_must_ask_again(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app("Star Arena")
    maya, noor = f"p-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    await arena(client, keys, runtime, clock, maya, noor)
    own = await factory.player_token(keys, maya)
    await make_public(client, own, maya)
    out = (await card(client, own, maya, kind="achievement", subject="first-win")).json()
    urls = (out["url"], out["image_url"])

    # Public: 200, cacheable but revalidated on every use (no-cache + a strong ETag); 304 when unchanged.
    tags = {}
    for url in urls:
        resp = await client.get(url)
        assert resp.status_code == 200
        assert resp.headers["cache-control"] == "public, no-cache"
        tag = resp.headers["etag"]
        assert tag.startswith('"') and tag.endswith('"')
        tags[url] = tag
        same = await client.get(url, headers={"If-None-Match": tag})
        assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == tag
        other = await client.get(url, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200 and other.content == resp.content

    # Private (the player's own choice): 404 at once, even to a cache revalidating its copy,
    # and the 404 is not to be stored.
    await make_public(client, own, maya, public=False)
    for url in urls:
        for headers in ({}, {"If-None-Match": tags[url]}):
            gone = problem(await client.get(url, headers=headers), 404, "share_card_not_found")
            assert "First Blood" not in str(gone)
        resp = await client.get(url)
        assert resp.headers["cache-control"] == "no-store"
    listed = (await client.get(f"/v1/players/{maya}/share-cards", headers=keys.server)).json()
    assert listed["public"] is False and len(listed["items"]) == 1  # kept, just not served
    problem(await card(client, own, maya, kind="level", subject="xp"), 409, "share_cards_private")

    # Public again (the server key may set it too): the same links work again.
    await make_public(client, keys.server, maya)
    assert [(await client.get(url)).status_code for url in urls] == [200, 200]

    # Withdrawn: its links are gone; withdrawing again, or someone else's card, is a 404.
    bob = await factory.player_token(keys, noor)
    problem(await client.delete(f"/v1/players/{maya}/share-cards/{out['id']}", headers=bob), 404)
    problem(await client.delete(f"/v1/players/{noor}/share-cards/{out['id']}", headers=bob), 404,
            "share_card_not_found")
    resp = await client.delete(f"/v1/players/{maya}/share-cards/{out['id']}", headers=own)
    assert resp.status_code == 204
    problem(await client.get(urls[0]), 404, "share_card_not_found")
    problem(await client.delete(f"/v1/players/{maya}/share-cards/{out['id']}", headers=own), 404,
            "share_card_not_found")

    # Erasure takes the player's cards and setting with them.
    kept = (await card(client, own, maya, kind="streak", subject="daily")).json()
    assert (await client.get(kept["url"])).status_code == 200
    assert (await client.delete(f"/v1/players/{maya}", headers=keys.server)).status_code == 200
    problem(await client.get(kept["image_url"]), 404, "share_card_not_found")
    async with unit_of_work(runtime.sessions) as session:
        for table in ("share_cards", "share_card_settings"):
            count = await session.scalar(sa.text(f"SELECT count(*) FROM {table} WHERE app_id = :app"),
                                         {"app": keys.app_id})
            assert count == 0, table


async def test_only_what_the_player_achieved_gets_a_card(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app("Star Arena")
    maya, noor = f"p-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    cup = await arena(client, keys, runtime, clock, maya, noor)
    zed = f"p-{uuid.uuid4().hex[:8]}"
    await set_player(client, keys, zed, username="Zed")
    for who in (maya, zed):
        await make_public(client, keys.server, who)

    refused = [
        (maya, {"kind": "achievement", "subject": "locked"}, "not_achieved"),  # defined, not unlocked
        (maya, {"kind": "achievement", "subject": "vip"}, "not_achieved"),  # Noor's, not Maya's
        (maya, {"kind": "achievement", "subject": "no-such"}, "achievement_not_found"),
        (maya, {"kind": "level", "subject": "xp", "level": 4}, "not_achieved"),  # level 3 reached
        (zed, {"kind": "level", "subject": "xp"}, "not_achieved"),  # never played
        (maya, {"kind": "level", "subject": "no-such"}, "track_not_found"),
        (maya, {"kind": "streak", "subject": "daily", "milestone": 7}, "not_achieved"),
        (zed, {"kind": "streak", "subject": "daily"}, "not_achieved"),
        (maya, {"kind": "streak", "subject": "daily", "milestone": 5}, "milestone_not_found"),
        (maya, {"kind": "streak", "subject": "no-such"}, "streak_not_found"),
        (zed, {"kind": "competition", "subject": cup}, "not_achieved"),  # not in the cup
        (maya, {"kind": "competition", "subject": "cmp_01JAAAAAAAAAAAAAAAAAAAAAAA"}, "not_achieved"),
    ]
    for who, body, code in refused:
        problem(await card(client, keys.server, who, **body), 404, code)

    # Bad requests are 422 problems; an unknown player is a 404; nothing was made by any of it.
    for body in ({"kind": "medal", "subject": "x"}, {"kind": "achievement"}, {"kind": "achievement", "subject": ""},
                 {"kind": "achievement", "subject": "first-win", "level": 2},
                 {"kind": "streak", "subject": "daily", "milestone": 0},
                 {"kind": "level", "subject": "xp", "level": 10**6}, {"kind": "level", "subject": "a/b"}):
        problem(await card(client, keys.server, maya, **body), 422)
    problem(await card(client, keys.server, "nobody-here", kind="achievement", subject="first-win"), 404,
            "player_not_found")
    problem(await client.get("/v1/players/nobody-here/share-settings", headers=keys.server), 404, "player_not_found")
    problem(await client.put("/v1/players/nobody-here/share-settings", headers=keys.server, json={"public": True}),
            404, "player_not_found")
    problem(await client.get("/v1/players/nobody-here/share-cards", headers=keys.server), 404, "player_not_found")
    problem(await client.put(f"/v1/players/{maya}/share-settings", headers=keys.server, json={"public": "maybe"}),
            422)
    for who in (maya, zed):
        assert (await client.get(f"/v1/players/{who}/share-cards", headers=keys.server)).json()["items"] == []

    # Unknown card ids: 404 problems on the public routes too.
    for path in ("/v1/share/nope", "/v1/share/nope/image.png", "/v1/share/" + "x" * 22):
        problem(await client.get(path), 404, "share_card_not_found")

    # Another app's server key cannot make cards of this app's players (its own maya is unknown).
    other = await factory.app("Other")
    problem(await card(client, other.server, maya, kind="achievement", subject="first-win"), 404, "player_not_found")


HOSTILE = st.sampled_from([
    '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' onmouseover='alert(1)",
    '</title><meta property="og:image" content="https://evil.example/x.png">', "&amp; &lt;b&gt;", "{{ 7*7 }}",
    "Zoë 🎮 日本語", "\u202eevil",
])
NAMES = st.builds(lambda a, b, c: (a + b + c)[:200], st.text(max_size=20, alphabet=st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\x00")), HOSTILE, st.text(max_size=10)).filter(
    lambda name: name.strip() != "")


@hypothesis_settings(max_examples=12, deadline=None, database=None, phases=[Phase.generate],
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=NAMES)
async def test_player_chosen_names_are_escaped(client: httpx.AsyncClient, factory: Factory, name: str) -> None:
    keys = await factory.app("Star <b>Arena</b>")
    await define(client, keys, {"achievement": {"first-win": {"name": "First <i>Blood</i>"}}})
    player = f"p-{uuid.uuid4().hex[:8]}"
    await set_player(client, keys, player, username=name)
    shown = (await client.get(f"/v1/players/{player}/account", headers=keys.server)).json()["username"]
    await grant(client, keys, player, "first-win")
    await make_public(client, keys.server, player)
    out = (await card(client, keys.server, player, kind="achievement", subject="first-win")).json()
    title = f"{shown} unlocked First <i>Blood</i>"  # as stored (the account trims surrounding spaces)
    assert out["title"] == title

    page = await client.get(out["url"])
    assert page.status_code == 200
    meta = Meta(page.text)
    # Exactly the tags the template writes, carrying the name as text: nothing the name held became markup.
    assert (meta.one("og:title"), meta.one("twitter:title"), meta.title) == (title, title, title)
    assert meta.one("og:image") == out["image_url"] and meta.images == [out["image_url"]]
    assert meta.one("og:site_name") == "Star <b>Arena</b>"
    assert "<script" not in page.text and "<i>" not in page.text and "<b>" not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    png_of(await client.get(out["image_url"]))
