"""Signed tokens (kit.security): HS256 JWTs made and read with the standard library.

PyJWT (a test dependency only) stands in for any other JWT implementation: what it signs with the
install's secret is read by the engine, what the engine signs PyJWT verifies, and everything else
is refused before a claim is believed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from questline.kit.security import read_token, sign_token

SECRET = "s" * 48
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
AUD = "questline:player"


def _b64(data: dict[str, object] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**extra: object) -> dict[str, object]:
    return {"iss": "questline", "aud": AUD, "sub": "alice", "exp": int((NOW + timedelta(hours=1)).timestamp()),
            "iat": int(NOW.timestamp()), "app": "app_1"} | extra


def test_a_token_round_trips_and_pyjwt_verifies_it() -> None:
    token = sign_token(SECRET, audience=AUD, subject="alice", issued_at=NOW, expires_at=NOW + timedelta(hours=1),
                       claims={"app": "app_1"})
    claims = read_token(SECRET, token, audience=AUD, now=NOW)
    assert claims is not None and claims["sub"] == "alice" and claims["app"] == "app_1"
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUD, options={"verify_exp": False,
                                                                                      "verify_iat": False})
    assert decoded["sub"] == "alice" and decoded["iss"] == "questline" and isinstance(decoded["jti"], str)


def test_a_token_pyjwt_signed_with_the_secret_is_read() -> None:
    token = jwt.encode(_claims(aud=[AUD, "other"]), SECRET, algorithm="HS256")
    claims = read_token(SECRET, token, audience=AUD, now=NOW)
    assert claims is not None and claims["sub"] == "alice"


def test_expiry_and_not_before_follow_the_engines_clock() -> None:
    token = jwt.encode(_claims(nbf=int((NOW + timedelta(minutes=5)).timestamp())), SECRET, algorithm="HS256")
    assert read_token(SECRET, token, audience=AUD, now=NOW) is None
    assert read_token(SECRET, token, audience=AUD, now=NOW + timedelta(minutes=5)) is not None
    assert read_token(SECRET, token, audience=AUD, now=NOW + timedelta(hours=1)) is None  # exp is exclusive


HEADER = {"alg": "HS256", "typ": "JWT"}


def _forge(header: dict[str, object], claims: dict[str, object], secret: str = SECRET) -> str:
    import hashlib
    import hmac
    signing = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(mac)}"


@pytest.mark.parametrize("token", [
    "", "a.b", "a.b.c.d", "not.a.jwt", "é.é.é",
    f"{_b64(HEADER)}.{_b64(_claims())}.",                                    # no signature
    f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",            # alg none
    _forge(HEADER, _claims(), secret="t" * 48),                             # another install's secret
    _forge({"alg": "HS512", "typ": "JWT"}, _claims()),                      # an algorithm we don't use
    _forge(HEADER, _claims(aud="questline:admin")),                         # another audience
    _forge(HEADER, _claims(iss="someone")),                                 # another issuer
    _forge(HEADER, {k: v for k, v in _claims().items() if k != "exp"}),     # no expiry
    _forge(HEADER, {k: v for k, v in _claims().items() if k != "sub"}),     # no subject
    _forge(HEADER, _claims(sub=7)),                                         # a subject that is not a string
    _forge(HEADER, _claims(exp="2099")),                                    # an expiry that is not a number
    _forge(HEADER, _claims(exp=True)),
    _forge(HEADER, _claims(iat="yesterday")),
    _forge(HEADER, _claims(exp=int(NOW.timestamp()))),                      # expired at this very second
    _forge(HEADER, [1, 2]),  # type: ignore[arg-type]                       # claims that are not an object
    _forge(["HS256"], _claims()),  # type: ignore[arg-type]                 # a header that is not an object
    _forge(HEADER, _claims())[:-2],                                         # a signature cut short
    _forge(HEADER, _claims()) + "A",                                        # padding games
    _forge(HEADER, _claims()) + "==",
])
def test_everything_else_is_refused(token: str) -> None:
    assert read_token(SECRET, token, audience=AUD, now=NOW) is None


def test_a_tampered_payload_is_refused_even_with_a_valid_looking_signature() -> None:
    good = sign_token(SECRET, audience=AUD, subject="alice", issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    head, _, sig = good.split(".")
    assert read_token(SECRET, f"{head}.{_b64(_claims(sub='mallory'))}.{sig}", audience=AUD, now=NOW) is None
