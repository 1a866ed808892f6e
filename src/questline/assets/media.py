"""Campaign creatives, recognised by content (never by name or declared type), checked, resized.

- Images: PNG, JPEG, WebP, GIF (animated too), read whole by Pillow; at most 8192 pixels a side.
  An overlay rendition is made when the image is larger than 1280×720 (fitted inside, same
  format; an animated GIF keeps its frames and timing).
- Video: MP4 (an ISO base media file: an ``ftyp`` box with an MP4 brand, top-level boxes that tile
  the file, a ``moov`` box) and WebM (an EBML header whose DocType is ``webm``, then a Segment).
  Stored as uploaded; browsers scale video themselves.

Everything here is CPU work on bytes; callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING

from questline.kit.errors import ProblemError, Unprocessable
from questline.kit.middleware import PayloadTooLarge

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 8192
OVERLAY_BOX = (1280, 720)
_IMAGE_FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp"),
                  "GIF": ("image/gif", "gif")}
_MP4_BRANDS = frozenset({b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ",
                         b"dash", b"mmp4", b"msnv"})
# ISO media files that are not MP4 video: QuickTime movies, HEIF/AVIF still images.
_NOT_MP4 = frozenset({b"qt  ", b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"})
SUPPORTED = "PNG, JPEG, WebP, GIF, MP4 or WebM"


class UnsupportedMediaType(ProblemError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


@dataclass(frozen=True)
class Prepared:
    kind: str  # image | video
    content_type: str
    extension: str
    data: bytes
    width: int | None
    height: int | None
    sha256: str
    overlay: bytes | None  # a smaller rendition for overlays, when the image is larger than the box
    overlay_width: int | None
    overlay_height: int | None


def prepare(data: bytes, max_bytes: int) -> Prepared:
    """Validate an uploaded creative and make its overlay rendition; a precise 4xx problem otherwise."""
    if not data:
        raise Unprocessable("the uploaded file is empty", code="empty_file")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"creatives are limited to {max_bytes:,} bytes; this one has {len(data):,}",
                              extra={"limit": max_bytes, "size": len(data)})
    digest = hashlib.sha256(data).hexdigest()
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff") or head[:6] in (b"GIF87a", b"GIF89a") \
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return _image(data, digest)
    if data[4:8] == b"ftyp":
        _mp4(data)
        return Prepared("video", "video/mp4", "mp4", data, None, None, digest, None, None, None)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        _webm(data)
        return Prepared("video", "video/webm", "webm", data, None, None, digest, None, None, None)
    raise UnsupportedMediaType(f"creatives must be {SUPPORTED} (recognised by their content)")


def _image(data: bytes, digest: str) -> Prepared:
    from PIL import Image, UnidentifiedImageError  # on first use: a server that gets no image never loads Pillow

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(BytesIO(data)) as probe:
                found = _IMAGE_FORMATS.get(probe.format or "")
                if found is None:
                    raise UnsupportedMediaType(f"creatives must be {SUPPORTED} (recognised by their content)")
                width, height = probe.size
                if width > MAX_SIDE or height > MAX_SIDE:
                    raise Unprocessable(f"images are at most {MAX_SIDE}×{MAX_SIDE} pixels; this one is "
                                        f"{width}×{height}", code="image_too_large",
                                        extra={"max_side": MAX_SIDE, "width": width, "height": height})
                probe.verify()
            with Image.open(BytesIO(data)) as image:
                overlay = _overlay(image, found[1]) if width > OVERLAY_BOX[0] or height > OVERLAY_BOX[1] else None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise Unprocessable("the image declares more pixels than a creative may have", code="image_too_large",
                                extra={"max_side": MAX_SIDE}) from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            raise Unprocessable(f"the image cannot be read: {exc}", code="invalid_image") from exc
    content_type, extension = found
    if overlay is None:
        return Prepared("image", content_type, extension, data, width, height, digest, None, None, None)
    rendition, (w, h) = overlay
    return Prepared("image", content_type, extension, data, width, height, digest, rendition, w, h)


def _overlay(image: Image.Image, extension: str) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image, ImageOps, ImageSequence

    out = BytesIO()
    if extension == "gif" and getattr(image, "n_frames", 1) > 1:
        frames = [ImageOps.contain(frame.convert("RGBA"), OVERLAY_BOX, Image.Resampling.LANCZOS)
                  for frame in ImageSequence.Iterator(image)]
        durations = image.info.get("duration", 100)
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], loop=image.info.get("loop", 0),
                       duration=durations, disposal=2)
        return out.getvalue(), frames[0].size
    image.load()
    fitted = ImageOps.contain(image, OVERLAY_BOX, Image.Resampling.LANCZOS)
    if extension == "jpg":
        fitted.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
    elif extension == "webp":
        fitted.save(out, "WEBP", quality=88)
    elif extension == "gif":
        fitted.save(out, "GIF")
    else:
        fitted.save(out, "PNG", optimize=True)
    return out.getvalue(), fitted.size


def _mp4(data: bytes) -> None:
    """An ISO base media file: ``ftyp`` first with an MP4 brand, boxes that tile the file, a ``moov``."""
    major = data[8:12]
    compatible = {data[i:i + 4] for i in range(16, min(len(data), struct.unpack(">I", data[:4])[0]), 4)}
    if major in _NOT_MP4 or (major not in _MP4_BRANDS and not compatible & _MP4_BRANDS):
        raise UnsupportedMediaType(f"this ISO media file is not MP4 video (brand {major!r}); creatives must be "
                                   f"{SUPPORTED}")
    offset, seen = 0, set()
    while offset < len(data):
        if offset + 8 > len(data):
            raise Unprocessable("the MP4 ends inside a box header", code="invalid_video")
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            if offset + 16 > len(data):
                raise Unprocessable("the MP4 ends inside a box header", code="invalid_video")
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8 or offset + size > len(data):
            raise Unprocessable(f"the MP4's {kind!r} box runs past the end of the file", code="invalid_video")
        seen.add(kind)
        offset += size
    if b"moov" not in seen:
        raise Unprocessable("the MP4 has no moov box (no playable movie)", code="invalid_video")


def _vint(data: bytes, offset: int, *, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``offset``: (value, length)."""
    if offset >= len(data):
        raise Unprocessable("the WebM ends inside its header", code="invalid_video")
    first = data[offset]
    length = next((n for n in range(1, 9) if first & (0x80 >> (n - 1))), 0)
    if length == 0 or offset + length > len(data):
        raise Unprocessable("the WebM header is malformed", code="invalid_video")
    value = first if keep_marker else first & ((0x80 >> (length - 1)) - 1)
    for byte in data[offset + 1:offset + length]:
        value = (value << 8) | byte
    return value, length


def _webm(data: bytes) -> None:
    """An EBML header whose DocType is ``webm``, followed by a Segment."""
    _, id_len = _vint(data, 0, keep_marker=True)
    size, size_len = _vint(data, id_len, keep_marker=False)
    start = id_len + size_len
    end = start + size
    if end > len(data):
        raise Unprocessable("the WebM header runs past the end of the file", code="invalid_video")
    doctype = None
    offset = start
    while offset < end:
        element, n = _vint(data, offset, keep_marker=True)
        length, m = _vint(data, offset + n, keep_marker=False)
        body = offset + n + m
        if body + length > end:
            raise Unprocessable("the WebM header is malformed", code="invalid_video")
        if element == 0x4282:
            doctype = data[body:body + length].rstrip(b"\x00")
        offset = body + length
    if doctype != b"webm":
        raise UnsupportedMediaType(f"this EBML file is not WebM (DocType {doctype!r}); creatives must be {SUPPORTED}")
    segment, _ = _vint(data, end, keep_marker=True)
    if segment != 0x18538067:
        raise Unprocessable("the WebM has no Segment after its header", code="invalid_video")
