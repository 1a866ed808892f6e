"""Badge uploads: recognised by content, validated, thumbnailed, versioned, served; bad ones refused precisely."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import httpx
from PIL import Image

from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem
from tests.streaks.helpers import configure

SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" '
       b'viewBox="0 0 64 64"><circle cx="32" cy="32" r="30" fill="gold"/></svg>')


def png(width: int = 600, height: int = 400, fmt: str = "PNG") -> bytes:
    out = BytesIO()
    Image.new("RGBA" if fmt == "PNG" else "RGB", (width, height), (200, 30, 30)).save(out, fmt)
    return out.getvalue()


async def setup(client: httpx.AsyncClient, keys: Any) -> None:
    await configure(client, keys, stat={"wins": {"event_type": "match.won"}},
                    achievement={"first-win": {"name": "First Blood",
                                               "criteria": {"stat": "wins", "op": "gte", "value": 1}}})


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes, name: str = "badge.png",
                 key: str = "first-win", content_type: str = "image/png") -> httpx.Response:
    return await client.post(f"/v1/achievements/{key}/badge", headers=headers,
                             files={"file": (name, data, content_type)})


async def test_png_badge_thumbnail_versions_and_serving(client: httpx.AsyncClient, factory: Factory,
                                                        runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    first = await upload(client, keys.server, png())
    assert first.status_code == 201, first.text
    badge = first.json()
    assert (badge["version"], badge["content_type"], badge["width"], badge["height"]) == (1, "image/png", 600, 400)
    assert badge["url"] == f"/v1/media/badges/{keys.app_id}/first-win/v1.png"
    served = await client.get(badge["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == png() and "immutable" in served.headers["cache-control"]
    thumb = await client.get(badge["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/png"
    with Image.open(BytesIO(thumb.content)) as image:
        assert image.size == (256, 256)
    assert (runtime.settings.media_dir / "badges" / keys.app_id / "first-win" / "v1-256.png").is_file()

    admin = await factory.admin(keys.org_id, Role.ADMIN)
    second = await upload(client, admin.headers(keys.app_id), SVG, "badge.svg", content_type="image/svg+xml")
    assert second.status_code == 201, second.text
    assert (second.json()["version"], second.json()["thumbnail_url"]) == (2, None)
    svg = await client.get(second.json()["url"])
    assert svg.headers["content-type"].startswith("image/svg+xml")
    # What is served is the badge rebuilt through the allow-list: the same drawing.
    assert b'<circle cx="32" cy="32" r="30" fill="gold"/>' in svg.content and b'viewBox="0 0 64 64"' in svg.content
    assert "sandbox" in svg.headers["content-security-policy"]
    assert (await client.get(badge["url"])).status_code == 200  # the old version's URL keeps working

    catalog = (await client.get("/v1/achievements", headers=keys.client)).json()
    assert catalog["achievements"][0]["badge"]["url"].endswith("/v2.svg")
    player = (await client.get("/v1/players/someone/achievements", headers=keys.server))
    assert player.status_code == 404  # an unknown player has no view


async def test_bad_uploads_get_precise_problems(client: httpx.AsyncClient, factory: Factory,
                                                runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    h = keys.server
    problem(await upload(client, h, png(fmt="JPEG"), "badge.png"), 415, "unsupported_media_type")
    problem(await upload(client, h, b"GIF89a" + bytes(100), "badge.gif"), 415, "unsupported_media_type")
    problem(await upload(client, h, b'<html xmlns="http://www.w3.org/1999/xhtml"/>', "x.svg"), 415,
            "unsupported_media_type")
    problem(await upload(client, h, b""), 422, "empty_file")
    problem(await upload(client, h, png(5000, 10)), 422, "image_too_large")
    problem(await upload(client, h, png()[:200]), 422, "invalid_image")
    problem(await upload(client, h, b"\x89PNG\r\n\x1a\n" + bytes(5 * 1024 * 1024)), 413, "payload_too_large")
    problem(await upload(client, h, bytes(7 * 1024 * 1024)), 413, "payload_too_large")  # refused at the edge
    unsafe = [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
        b'<a x:href="javascript:alert(1)"><rect width="5" height="5"/></a></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div/></foreignObject></svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
    ]
    for data in unsafe:
        problem(await upload(client, h, data, "x.svg", content_type="image/svg+xml"), 422, "unsafe_svg")
    problem(await upload(client, h, b"<svg xmlns='http://www.w3.org/2000/svg'><g></svg>", "x.svg"), 422, "invalid_svg")
    problem(await upload(client, h, b'<svg xmlns="http://www.w3.org/2000/svg" width="9000" height="10"/>', "x.svg"),
            422, "image_too_large")
    problem(await upload(client, h, png(), key="missing"), 404, "achievement_not_found")
    problem(await upload(client, keys.client, png()), 403, "caller_not_allowed")
    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    problem(await upload(client, viewer.headers(keys.app_id), png()), 403, "insufficient_role")
    problem(await client.post("/v1/achievements/first-win/badge", headers=h, data={"x": "1"}), 422,
            "validation_failed")
    # Nothing was stored by any of them.
    assert (await client.get("/v1/achievements", headers=h)).json()["achievements"][0]["badge"] is None
    assert not (runtime.settings.media_dir / "badges").exists()
    for path in ("/v1/media/badges/app_x/first-win/v1.png", f"/v1/media/badges/{keys.app_id}/first-win/v1.png",
                 f"/v1/media/badges/{keys.app_id}/first-win/..%2F..%2Fsecret.png",
                 f"/v1/media/badges/{keys.app_id}/first-win/v1.txt"):
        assert (await client.get(path)).status_code == 404, path
