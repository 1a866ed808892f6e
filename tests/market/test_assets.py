"""Creatives: recognised by content, images resized for overlays, served with cache headers, each brand
seeing only its own, and the overlay serving its campaign's creative."""

from __future__ import annotations

import struct
from io import BytesIO

import httpx
from PIL import Image

from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.market.helpers import Market


def image(fmt: str, size: tuple[int, int], frames: int = 1) -> bytes:
    out = BytesIO()
    pictures = [Image.new("RGB", size, (40 * i % 255, 90, 160)) for i in range(frames)]
    if frames > 1:
        pictures[0].save(out, fmt, save_all=True, append_images=pictures[1:], duration=80, loop=0)
    else:
        pictures[0].save(out, fmt)
    return out.getvalue()


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(with_moov: bool = True, brand: bytes = b"isom") -> bytes:
    ftyp = box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand + b"mp41")
    moov = box(b"moov", box(b"mvhd", b"\x00" * 100)) if with_moov else b""
    return ftyp + moov + box(b"mdat", b"\x00" * 64)


def ebml(element: int, payload: bytes) -> bytes:
    ident = element.to_bytes((element.bit_length() + 7) // 8, "big")
    return ident + bytes([0x80 | len(payload)]) + payload


def webm(doctype: bytes = b"webm") -> bytes:
    header = ebml(0x1A45DFA3, ebml(0x4286, b"\x01") + ebml(0x4282, doctype) + ebml(0x4287, b"\x04"))
    return header + ebml(0x18538067, ebml(0x1549A966, b""))


async def upload(client: httpx.AsyncClient, campaign_id: str, headers: dict[str, str], data: bytes,
                 name: str = "creative.bin", content_type: str = "application/octet-stream") -> httpx.Response:
    return await client.post(f"/v1/campaigns/{campaign_id}/assets", headers=headers,
                             files={"file": (name, data, content_type)})


async def test_creatives_by_content_with_overlay_renditions(client: httpx.AsyncClient, factory: Factory,
                                                            runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand, rival = await market.brand(), await market.brand()
    campaign = await market.campaign(brand)
    headers = brand.headers

    big = await upload(client, campaign["id"], headers, image("JPEG", (2560, 1440)), "banner.txt", "text/plain")
    assert big.status_code == 201, big.text
    body = big.json()
    assert body["kind"] == "image" and body["content_type"] == "image/jpeg" and (body["width"], body["height"]) == \
        (2560, 1440) and (body["overlay_width"], body["overlay_height"]) == (1280, 720)
    for fmt, content_type in (("PNG", "image/png"), ("WEBP", "image/webp")):
        made = await upload(client, campaign["id"], headers, image(fmt, (300, 200)))
        assert made.status_code == 201 and made.json()["content_type"] == content_type
        assert made.json()["overlay_width"] is None  # small enough as it is
    gif = await upload(client, campaign["id"], headers, image("GIF", (1600, 900), frames=3))
    assert gif.status_code == 201 and gif.json()["overlay_width"] == 1280
    for data, content_type in ((mp4(), "video/mp4"), (webm(), "video/webm")):
        made = await upload(client, campaign["id"], headers, data, "clip.png", "image/png")
        assert made.status_code == 201, made.text
        assert made.json()["kind"] == "video" and made.json()["content_type"] == content_type

    # Refused by content, whatever the name or declared type says.
    problem(await upload(client, campaign["id"], headers, b"<html><script>x</script></html>", "a.png", "image/png"),
            415, "unsupported_media_type")
    problem(await upload(client, campaign["id"], headers, mp4(brand=b"qt  "), "a.mp4", "video/mp4"), 415,
            "unsupported_media_type")
    problem(await upload(client, campaign["id"], headers, mp4(with_moov=False)), 422, "invalid_video")
    problem(await upload(client, campaign["id"], headers, webm(b"matroska")), 415, "unsupported_media_type")
    problem(await upload(client, campaign["id"], headers, image("PNG", (10, 10))[:40]), 422, "invalid_image")
    problem(await upload(client, campaign["id"], headers, b""), 422, "empty_file")
    problem(await upload(client, campaign["id"], headers, b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024)), 413,
            "payload_too_large")

    # Served with cache headers, the overlay rendition on request; a brand sees only its own.
    listed = await market.ok("GET", f"/v1/campaigns/{campaign['id']}/assets", headers=headers)
    assert len(listed) == 6
    file = await client.get(body["file_url"], headers=headers, params={"rendition": "overlay"})
    assert file.status_code == 200 and file.headers["content-type"] == "image/jpeg"
    assert "immutable" in file.headers["cache-control"]
    assert Image.open(BytesIO(file.content)).size == (1280, 720)
    problem(await client.get(body["file_url"], headers=rival.headers), 404, "brand_not_found")
    problem(await client.get(f"/v1/campaigns/{campaign['id']}/assets", headers=rival.headers), 404,
            "campaign_not_found")
    problem(await upload(client, campaign["id"], rival.headers, image("PNG", (10, 10))), 404, "campaign_not_found")

    # The overlay shows the first creative (its overlay rendition).
    streamer = await market.streamer()
    url = (await market.join(campaign["id"], streamer)).json()["overlay_url"].removeprefix("http://questline.test")
    page = await client.get(url)
    assert f'src="{url}/creative"' in page.text
    creative = await client.get(f"{url}/creative")
    assert creative.status_code == 200 and Image.open(BytesIO(creative.content)).size == (1280, 720)

    await market.ok("DELETE", f"/v1/campaigns/{campaign['id']}/assets/{body['id']}", 204, headers=headers)
    problem(await client.get(body["file_url"], headers=headers), 404, "asset_not_found")
    assert len(await market.ok("GET", f"/v1/campaigns/{campaign['id']}/assets", headers=headers)) == 5
