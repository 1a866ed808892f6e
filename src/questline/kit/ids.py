"""Identifiers: a short type prefix and a time-sortable 26-character ULID body."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
# What ``new_id`` makes: validate ids from paths and headers with it before they reach a query.
ID_PATTERN = r"^[a-z]{1,12}_[0-9A-HJKMNP-TV-Z]{26}$"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return _encode(ms, 10) + _encode(secrets.randbits(80), 16)


def new_id(prefix: str) -> str:
    """``new_id("app")`` -> ``app_01J...``; ids sort by creation time."""
    return f"{prefix}_{ulid()}"
