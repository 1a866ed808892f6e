"""Secrets: API key material, password hashing and signed tokens.

Tokens are JSON Web Tokens signed with HMAC-SHA256 (RFC 7519, ``alg`` HS256 only), made and read
here with the standard library: a JWT library would load a cryptography backend (about 8 MB in every
process) for the one algorithm the engine uses.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import stat
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson

if TYPE_CHECKING:
    from argon2 import PasswordHasher

# The password cost in force (``use_password_cost``); argon2 itself is loaded on the first password
# hashed or checked: an engine serving API keys and tokens only never loads it (about 0.5 MB).
_cost = "standard"
JWT_ALGORITHM = "HS256"
ISSUER = "questline"


def hash_secret(secret: str) -> str:
    """API keys are 192 random bits, so a fast hash is enough (argon2 is for passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_match(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def use_password_cost(cost: str) -> None:
    """Hash new passwords at this cost from now on ("standard" or "low"; see ``Settings.password_hash_cost``).

    Process-wide, set when a runtime is built: the callers that hash (sign-ups, admin creation)
    hold no settings, and one process runs with one configuration.
    """
    global _cost
    _cost = "low" if cost == "low" else "standard"


@functools.cache
def _hasher_at(cost: str) -> PasswordHasher:
    from argon2 import PasswordHasher

    if cost == "low":  # argon2id at its minimum work (Settings.password_hash_cost="low"): for test suites only
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher_at(_cost).hash(password)


def dummy_password_hash() -> str:
    """A hash no password matches, to verify against when the account does not exist (at the
    current cost, so an unknown account takes as long as a known one)."""
    return _dummy_hash(_hasher_at(_cost))


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(32))


def verify_password(password: str, stored_hash: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher_at(_cost).verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(part: str) -> bytes:
    if not part or len(part) % 4 == 1 or "=" in part:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _mac(secret_key: str, signing_input: bytes) -> bytes:
    return hmac.new(secret_key.encode(), signing_input, hashlib.sha256).digest()


def sign_token(secret_key: str, *, audience: str, subject: str, expires_at: datetime, issued_at: datetime,
               claims: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {
        "iss": ISSUER, "aud": audience, "sub": subject,
        "iat": int(issued_at.timestamp()), "exp": int(expires_at.timestamp()),
        "jti": secrets.token_hex(8),
    }
    payload.update(claims or {})
    signing_input = _HEADER + b"." + _b64(orjson.dumps(payload))
    return (signing_input + b"." + _b64(_mac(secret_key, signing_input))).decode()


# Tokens whose signature and shape were checked, by (secret, token): a client sends the same token
# on every call, and checking it again cost a third of a warm board read's authentication. Only
# verified tokens get in; audience and times are still checked on every read. Bounded (emptied when full).
_VERIFIED: dict[tuple[str, str], dict[str, Any]] = {}
_VERIFIED_MAX = 10_000


def _signed_claims(secret_key: str, token: str) -> dict[str, Any] | None:
    """The claims of a well-formed HS256 token signed with ``secret_key``, else None."""
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        return None
    try:
        signature = _unb64(parts[2])
        if not hmac.compare_digest(signature, _mac(secret_key, f"{parts[0]}.{parts[1]}".encode())):
            return None
        header = orjson.loads(_unb64(parts[0]))
        claims = orjson.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
        return None
    if not isinstance(header, dict) or header.get("alg") != JWT_ALGORITHM or not isinstance(claims, dict):
        return None
    return claims


def read_token(secret_key: str, token: str, *, audience: str, now: datetime) -> dict[str, Any] | None:
    """The token's claims, or None when it is malformed, forged, for another audience or expired.

    The signature is checked before anything in the token is believed, and only HS256 is accepted
    (never ``none``, never an algorithm the token names for itself)."""
    known = _VERIFIED.get((secret_key, token))
    if known is None:
        known = _signed_claims(secret_key, token)
        if known is None:
            return None
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[(secret_key, token)] = known
    claims = dict(known)  # the caller's own copy
    aud = claims.get("aud")
    if claims.get("iss") != ISSUER or not (aud == audience or (isinstance(aud, list) and audience in aud)):
        return None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("jti", ""), str):
        return None
    exp, iat, nbf = claims.get("exp"), claims.get("iat", 0), claims.get("nbf", 0)
    if not (_numeric(exp) and _numeric(iat) and _numeric(nbf)):
        return None
    # Times are checked against our clock, not the wall clock, so tests can drive it.
    moment = now.timestamp()
    if float(exp) <= moment or float(nbf) > moment:
        return None
    return claims


def _numeric(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 2**53


class SecretFileError(RuntimeError):
    """The install's secret file cannot be used safely (readable by others, empty, unreadable)."""


def load_or_create_secret(path: Path, *, min_length: int) -> str:
    """The secret kept in ``path``, made (random, mode 0600) the first time.

    Two processes starting at once agree: the secret is written to a private temporary file and
    linked into place, which fails if another process linked its own first; that one is read.
    """
    try:
        return _read_secret(path, min_length)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret(path, min_length)


def _read_secret(path: Path, min_length: int) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(f"{path} is readable by other users; run: chmod 600 {path}")
    secret = path.read_text().strip()
    if len(secret) < min_length:
        raise SecretFileError(f"{path} holds no usable secret ({min_length}+ characters); delete it to make a new one")
    return secret
