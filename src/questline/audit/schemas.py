from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    app_id: str | None = Field(description="null for an action on the organization (members, new apps)")
    org_id: str | None
    actor_kind: str = Field(description="server or admin; for a domain step (withdrawal.requested, dispute.opened) "
                                        "also brand, streamer, provider or system")
    actor_id: str = Field(description="the server key's id, the admin's id, or the account's")
    action: str = Field(description="the operation, as named in the OpenAPI document (operationId)")
    target: dict[str, str] = Field(description="the path parameters, and `id`: what the request created")
    status: int
    address: str | None = Field(description="the address the request came from (the peer of the connection)")
    request_id: str
    created_at: datetime
