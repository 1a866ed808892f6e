"""Secrets: API key material, password hashing and signed tokens."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_STANDARD_HASHER = PasswordHasher()
# argon2id at its minimum work (Settings.password_hash_cost="low"): for test suites only.
_LOW_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_hasher = _STANDARD_HASHER
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
    global _hasher
    _hasher = _LOW_HASHER if cost == "low" else _STANDARD_HASHER


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def dummy_password_hash() -> str:
    """A hash no password matches, to verify against when the account does not exist (at the
    current cost, so an unknown account takes as long as a known one)."""
    return _dummy_hash(_hasher)


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(32))


def verify_password(password: str, stored_hash: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_token(secret_key: str, *, audience: str, subject: str, expires_at: datetime, issued_at: datetime,
               claims: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {
        "iss": ISSUER, "aud": audience, "sub": subject,
        "iat": int(issued_at.timestamp()), "exp": int(expires_at.timestamp()),
        "jti": secrets.token_hex(8),
    }
    payload.update(claims or {})
    return jwt.encode(payload, secret_key, algorithm=JWT_ALGORITHM)


def read_token(secret_key: str, token: str, *, audience: str, now: datetime) -> dict[str, Any] | None:
    """The token's claims, or None when it is malformed, forged, for another audience or expired."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret_key, algorithms=[JWT_ALGORITHM], audience=audience, issuer=ISSUER,
            options={"verify_exp": False, "require": ["exp", "sub", "aud", "iss"]},
        )
    except jwt.PyJWTError:
        return None
    # Expiry is checked against our clock, not the wall clock, so tests can drive it.
    if int(claims["exp"]) <= int(now.timestamp()):
        return None
    return claims


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
