"""The console calls the engine's API in process, as the signed-in admin.

Every page is a client of the same routes a script would use, so the console cannot do anything the
admin's role does not allow, and every rule (validation, audit, idempotency) applies unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def problem(self) -> str:
        if self.ok or not isinstance(self.body, dict):
            return ""
        errors = self.body.get("errors") or []
        detail = "; ".join(f"{_where(e.get('loc', []))}: {e.get('msg')}" for e in errors if isinstance(e, dict))
        return f"{self.body.get('code', self.status)}: {detail or self.body.get('detail', '')}"


def _where(loc: list[Any]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts[1:] if parts[:1] == ["body"] else parts) or "the definition"


class EngineApi:
    def __init__(self, app: ASGIApp, token: str | None, app_id: str | None = None,
                 client_address: str | None = None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if app_id:
            headers["X-Questline-App"] = app_id
        transport = httpx.ASGITransport(app=app, client=(client_address or "127.0.0.1", 0))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://console.internal", headers=headers,
                                         timeout=30)

    async def __aenter__(self) -> EngineApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Answer:
        headers = {"Idempotency-Key": f"console-{uuid.uuid4().hex}"} if method == "POST" else {}
        response = await self._client.request(method, path, json=json, params=params, headers=headers)
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        return Answer(response.status_code, body)
