"""Idempotency keys with Stripe's semantics.

The first response to a key is stored and replayed byte for byte; the same key with a
different request (compared by meaning: parsed JSON, form fields and file digests, see
``fingerprint_request``) is ``422 idempotency_key_reused``; a key whose first request is still
running is ``409 idempotency_key_in_flight``. Keys are scoped per app and caller and expire
after a TTL (a scheduled sweep deletes them).

The claim is committed on its own, before the work, so a concurrent duplicate sees it.
The stored response is written in the same transaction as the work it describes, so a
crash can never leave work done without its reply (or a reply without its work). A claim
left in flight by a crash is taken over once its lock is older than ``lock_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from questline.kit.clock import Clock
from questline.kit.db import Base, BigInt, UTCDateTime, insert_ignore
from questline.kit.errors import Conflict, Unprocessable

MAX_KEY_LENGTH = 255
_KEY_SHAPE = re.compile(rf"^[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}$")
REPLAY_HEADER = "Idempotent-Replayed"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("scope", "caller", "key"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(sa.String(64))  # the app id, or "" for org-level routes
    caller: Mapped[str] = mapped_column(sa.String(160))
    key: Mapped[str] = mapped_column(sa.String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))  # in_flight | done
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_content_type: Mapped[str | None] = mapped_column(sa.String(100))
    response_body: Mapped[bytes | None] = mapped_column(sa.LargeBinary)


@dataclass(frozen=True)
class Claim:
    record_id: int


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes

    def to_response(self) -> Response:
        return Response(self.body, status_code=self.status, media_type=self.content_type,
                        headers={REPLAY_HEADER: "true"})


def mark_replayed(response: Response, replayed: bool) -> None:
    """The one signal that a reply repeats an earlier one: ``Idempotent-Replayed: true``.

    The stored-response replay above sets it; a service that finds its own key already used
    (a ledger posting whose key posted before, after the HTTP key expired) sets it through this,
    so callers read one header whichever layer recognised the retry. Bodies never say it.
    """
    if replayed:
        response.headers[REPLAY_HEADER] = "true"


def request_fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """A digest of the request's canonical parts (see ``fingerprint_request``)."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def fingerprint_request(request: Request) -> str:
    """What makes two requests "the same" for an Idempotency-Key: their meaning, not their bytes.

    JSON bodies compare as parsed values (key order and spacing do not matter); multipart forms
    as their fields plus a SHA-256 of each file (the boundary and part order do not matter);
    URL-encoded forms and query strings as their sorted pairs. Any other body compares as bytes.
    """
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        # A form route has parsed (and consumed) the stream already; the parsed form is cached.
        try:
            canonical = await _canonical_form(request)
        except MultiPartException:  # not a form any route accepts: every such request is refused alike
            canonical = b"malformed multipart"
        return request_fingerprint(request.method, request.url.path, _canonical_pairs(request.url.query), canonical)
    body = await request.body()
    canonical = body
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            canonical = b"form:" + _canonical_pairs(body.decode("latin-1")).encode()
        elif body and "json" in content_type.split(";")[0]:
            canonical = canonical_json(await request.json())  # parsed once at the edge, cached on the request
    except (ValueError, RecursionError):
        canonical = body  # not what it claims to be: compared as bytes (the route refuses it anyway)
    return request_fingerprint(request.method, request.url.path, _canonical_pairs(request.url.query), canonical)


def canonical_json(value: object) -> bytes:
    """One spelling of a JSON value: sorted keys, no spaces, ASCII escapes."""
    return b"json:" + json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _canonical_pairs(encoded: str) -> str:
    return urlencode(sorted(parse_qsl(encoded, keep_blank_values=True)))


async def _canonical_form(request: Request) -> bytes:
    form = await request.form()  # cached: the route reads the same parsed form
    parts: list[list[str]] = []
    for name, value in form.multi_items():
        if isinstance(value, StarletteUpload):
            content = await value.read()
            await value.seek(0)
            parts.append([name, "file", value.filename or "", value.content_type or "",
                          hashlib.sha256(content).hexdigest()])
        else:
            parts.append([name, "field", value])
    return b"multipart:" + json.dumps(sorted(parts), separators=(",", ":")).encode()


class IdempotencyStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, *,
                 ttl_seconds: int, lock_seconds: int) -> None:
        self._sessions = sessions
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._lock = timedelta(seconds=lock_seconds)

    async def claim(self, scope: str, caller: str, key: str, request_hash: str) -> Claim | StoredResponse:
        if not _KEY_SHAPE.match(key):
            raise Unprocessable(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                                code="invalid_idempotency_key")
        table = IdempotencyRecord.__table__
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            inserted = await session.execute(
                insert_ignore(session, table).values(
                    scope=scope, caller=caller, key=key, request_hash=request_hash, status="in_flight",
                    locked_at=now, expires_at=now + self._ttl,
                ).returning(table.c.id)
            )
            new_id = inserted.scalar_one_or_none()
            if new_id is not None:
                return Claim(new_id)
            row = (await session.execute(
                sa.select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.caller == caller,
                    IdempotencyRecord.key == key,
                )
            )).scalar_one()
            if row.expires_at <= now:
                # An expired key starts afresh, as if it had been swept.
                row.request_hash, row.status, row.locked_at = request_hash, "in_flight", now
                row.expires_at = now + self._ttl
                row.response_status = row.response_body = row.response_content_type = None
                return Claim(row.id)
            if row.request_hash != request_hash:
                raise Unprocessable(
                    "this Idempotency-Key was already used with a different request",
                    code="idempotency_key_reused",
                )
            if row.status == "done" and row.response_status is not None:
                return StoredResponse(row.response_status, row.response_content_type or "application/json",
                                      row.response_body or b"")
            if row.locked_at > now - self._lock:
                raise Conflict("a request with this Idempotency-Key is still being processed",
                               code="idempotency_key_in_flight", headers={"Retry-After": "1"})
            # The first attempt died without finishing: take its claim over.
            taken = await session.execute(
                sa.update(IdempotencyRecord)
                .where(IdempotencyRecord.id == row.id, IdempotencyRecord.locked_at == row.locked_at)
                .values(locked_at=now)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("a request with this Idempotency-Key is still being processed",
                               code="idempotency_key_in_flight", headers={"Retry-After": "1"})
            return Claim(row.id)

    @staticmethod
    async def complete(session: AsyncSession, claim: Claim, response: Response) -> None:
        """Record the reply inside the transaction that did the work."""
        await session.execute(
            sa.update(IdempotencyRecord).where(IdempotencyRecord.id == claim.record_id).values(
                status="done", response_status=response.status_code,
                response_content_type=response.media_type or response.headers.get("content-type"),
                response_body=bytes(response.body),
            )
        )

    async def complete_alone(self, claim: Claim, response: Response) -> None:
        """Record a reply for work that was rolled back (a 4xx problem): replays give the same answer."""
        async with self._sessions() as session, session.begin():
            await self.complete(session, claim, response)

    async def release(self, claim: Claim) -> None:
        """Forget a claim whose request failed unexpectedly, so a retry can run."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == claim.record_id, IdempotencyRecord.status == "in_flight"
                )
            )

    @staticmethod
    async def sweep(session: AsyncSession, now: datetime) -> int:
        result = await session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now))
        return int(result.rowcount)  # type: ignore[attr-defined]


class ReplayStored(Exception):
    """Raised by the idempotency check to short-circuit a request with its stored reply."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("replay")
        self.stored = stored
