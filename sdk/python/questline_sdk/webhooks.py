"""Verify a webhook from Questline (the Standard Webhooks scheme) before trusting its body.

The engine signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under the endpoint's
secret (``whsec_`` + base64); ``webhook-signature`` holds one or more ``v1,<base64>`` values
(several while a rotated secret overlaps the new one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any


class InvalidWebhook(Exception):
    """The message is not from the engine, was altered, or is too old or too new."""


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,…`` signature of a message (what the engine sends; handy in tests)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_seconds: int = 300,
                   now: float | None = None) -> Any:
    """The parsed body if the headers prove the engine sent it within the tolerance, else InvalidWebhook."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        message_id, stamp = lowered["webhook-id"], lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"].split()
        timestamp = int(stamp)
    except (KeyError, ValueError) as missing:
        raise InvalidWebhook("missing or malformed webhook headers") from missing
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidWebhook("timestamp outside the tolerance")
    expected = sign(secret, message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidWebhook("no signature matches")
    return json.loads(body)
