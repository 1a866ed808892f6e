"""Badge images: recognised by content (never by name or declared type), checked, thumbnailed.

- PNG: the signature bytes, then Pillow must read the whole image; at most 4096×4096.
  A 256×256 PNG thumbnail is made (the image fitted and centred on a transparent square).
- SVG: well-formed XML whose root is ``<svg>``, without DOCTYPE or entity declarations, rebuilt
  through the strict allow-list of ``achievements.svg`` (lxml): the rebuilt document is stored and
  served, never the upload; active content is refused (``422 unsafe_svg``). No thumbnail (an SVG
  scales itself). Numeric ``width``/``height`` over 4096 are refused too.

Everything here is CPU work on bytes; callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from io import BytesIO

from questline.kit.errors import ProblemError, Unprocessable
from questline.kit.middleware import PayloadTooLarge

MAX_BADGE_BYTES = 5 * 1024 * 1024
MAX_SIDE = 4096
THUMBNAIL_SIDE = 256
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(px)?\s*$")


class UnsupportedMediaType(ProblemError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


@dataclass(frozen=True)
class PreparedBadge:
    content_type: str
    extension: str
    data: bytes
    thumbnail: bytes | None
    width: int | None
    height: int | None
    sha256: str


def prepare_badge(data: bytes) -> PreparedBadge:
    """Validate an uploaded badge and make its thumbnail; raises a precise 4xx problem otherwise."""
    if not data:
        raise Unprocessable("the uploaded file is empty", code="empty_file")
    if len(data) > MAX_BADGE_BYTES:
        raise PayloadTooLarge(f"badge images are limited to {MAX_BADGE_BYTES:,} bytes (5 MiB); "
                              f"this one has {len(data):,}", extra={"limit": MAX_BADGE_BYTES, "size": len(data)})
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(PNG_SIGNATURE):
        width, height, thumbnail = _png(data)
        return PreparedBadge("image/png", "png", data, thumbnail, width, height, digest)
    if _looks_like_xml(data):
        clean, width_or_none, height_or_none = _svg(data)
        return PreparedBadge("image/svg+xml", "svg", clean, None, width_or_none, height_or_none,
                             hashlib.sha256(clean).hexdigest())
    raise UnsupportedMediaType("badges must be PNG or SVG images (recognised by their content)")


def _too_large(width: float, height: float) -> Unprocessable:
    return Unprocessable(f"badge images are at most {MAX_SIDE}×{MAX_SIDE} pixels; this one is "
                         f"{width:g}×{height:g}", code="image_too_large",
                         extra={"max_side": MAX_SIDE, "width": width, "height": height})


def _png(data: bytes) -> tuple[int, int, bytes]:
    # imported on first use: a server that gets no image never loads Pillow
    from PIL import Image, ImageOps, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(BytesIO(data)) as probe:
                if probe.format != "PNG":
                    raise UnsupportedMediaType("badges must be PNG or SVG images (recognised by their content)")
                width, height = probe.size
                if width > MAX_SIDE or height > MAX_SIDE:
                    raise _too_large(width, height)
                probe.verify()
            with Image.open(BytesIO(data)) as image:
                image.load()
                rgba = image.convert("RGBA")
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise Unprocessable("the PNG declares more pixels than a badge may have", code="image_too_large",
                                extra={"max_side": MAX_SIDE}) from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            raise Unprocessable(f"the PNG cannot be read: {exc}", code="invalid_image") from exc
    fitted = ImageOps.contain(rgba, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (THUMBNAIL_SIDE, THUMBNAIL_SIDE), (0, 0, 0, 0))
    canvas.paste(fitted, ((THUMBNAIL_SIDE - fitted.width) // 2, (THUMBNAIL_SIDE - fitted.height) // 2))
    out = BytesIO()
    canvas.save(out, "PNG", optimize=True)
    return width, height, out.getvalue()


def _looks_like_xml(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def _svg(data: bytes) -> tuple[bytes, int | None, int | None]:
    """The badge rebuilt through the allow-list of ``svg`` (what is stored and served), and its size."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable("SVG badges must be UTF-8 text", code="invalid_svg") from exc
    from questline.achievements import svg  # on first use, as Pillow: lxml is only for SVG badges

    root = svg.parse(text)
    namespace, tag = svg.name_of(root)
    if tag != "svg" or namespace not in (svg.SVG_NS, None):
        raise UnsupportedMediaType(f"badges must be PNG or SVG images; this XML's root is <{tag}>")
    width, height = _length(root.get("width")), _length(root.get("height"))
    if (width or 0) > MAX_SIDE or (height or 0) > MAX_SIDE:
        raise _too_large(width or 0, height or 0)
    clean = svg.sanitize(root)
    return clean, (round(width) if width is not None else None), (round(height) if height is not None else None)


def _length(value: str | None) -> float | None:
    if value is None:
        return None
    found = _LENGTH.match(value)
    return float(found.group(1)) if found else None
