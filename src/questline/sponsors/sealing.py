"""Sealing small secrets at rest (bank details): AES-256-GCM with a key from the settings.

The key is ``QUESTLINE_DATA_KEY`` (32 bytes, urlsafe base64) or, when that is unset, derived from
``QUESTLINE_SECRET_KEY`` with HKDF. Each sealed value is bound to what it belongs to (the
``context``, e.g. the app and streamer ids), so a ciphertext copied onto another row does not open.
"""

from __future__ import annotations

import base64
import binascii
import os

from questline.kit.settings import Settings

VERSION = "v1"


class SealError(ValueError):
    """A sealed value that does not open with this key and context."""


def data_key(settings: Settings) -> bytes:
    if settings.data_key is not None:
        try:
            raw = base64.urlsafe_b64decode(settings.data_key.get_secret_value() + "==")
        except (binascii.Error, ValueError) as exc:
            raise ValueError("QUESTLINE_DATA_KEY must be 32 bytes in urlsafe base64") from exc
        if len(raw) != 32:
            raise ValueError("QUESTLINE_DATA_KEY must be 32 bytes in urlsafe base64")
        return raw
    # cryptography is imported on first use (about 6 MB): most processes never seal anything.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"questline", info=b"questline:sealed-data:v1")
    return hkdf.derive(settings.signing_key().encode())


def seal(key: bytes, plaintext: bytes, context: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext, context.encode())
    return f"{VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(key: bytes, token: str, context: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    version, _, body = token.partition(":")
    if version != VERSION:
        raise SealError(f"unknown sealed format {version!r}")
    try:
        raw = base64.urlsafe_b64decode(body)
        return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode())
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise SealError("the sealed value does not open with this key") from exc
