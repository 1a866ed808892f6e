"""``kit.security.read_token`` keeps tokens it verified (a client sends the same one on every
call); what the memo holds must never make a token pass that would fail a fresh check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from questline.kit.security import read_token, sign_token

SECRET = "a-secret-that-is-long-enough-for-the-test-0123456789"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_a_kept_token_is_still_checked_for_its_secret_audience_and_times() -> None:
    token = sign_token(SECRET, audience="questline:player", subject="ann", issued_at=NOW,
                       expires_at=NOW + timedelta(minutes=5), claims={"app": "app_1"})
    first = read_token(SECRET, token, audience="questline:player", now=NOW)
    assert first is not None and first["sub"] == "ann"
    first["sub"] = "mallory"  # the caller's copy: the kept claims do not change
    again = read_token(SECRET, token, audience="questline:player", now=NOW + timedelta(minutes=4))
    assert again is not None and again["sub"] == "ann"
    assert read_token(SECRET + "x", token, audience="questline:player", now=NOW) is None
    assert read_token(SECRET, token, audience="questline:admin", now=NOW) is None
    assert read_token(SECRET, token, audience="questline:player", now=NOW + timedelta(minutes=5)) is None
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert read_token(SECRET, forged, audience="questline:player", now=NOW) is None
