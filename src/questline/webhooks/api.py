"""Routes for webhook endpoints, their delivery log, redelivery and dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from questline.kit.clock import ensure_utc
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.tenancy.auth import ServerOrAdmin, ServerOrViewer
from questline.webhooks import service
from questline.webhooks.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointUpdate,
    Requeued,
    RotateIn,
    SecretRotated,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=UnitOfWorkRoute)
EndpointId = Annotated[str, Path(max_length=40, description="the endpoint's id (whe_…)")]
DeliveryId = Annotated[str, Path(max_length=40, description="the delivery's id (whd_…)")]
Paging = Annotated[PageParams, Depends(page_params)]
_ENDPOINT: dict[int | str, dict[str, Any]] = {404: {"description": "endpoint_not_found"}}
_DELIVERY: dict[int | str, dict[str, Any]] = {404: {"description": "endpoint_not_found, delivery_not_found"},
             409: {"description": "endpoint_disabled"}}


@router.post("", response_model=EndpointCreated, status_code=201,
             responses={422: {"description": "url_not_allowed (a private or loopback address)"}})
async def create_endpoint(body: EndpointIn, caller: ServerOrAdmin, session: SessionDep,
                          runtime: RuntimeDep) -> EndpointCreated:
    """Add an endpoint; the answer holds its signing secret, shown only this once."""
    return await service.create_endpoint(session, runtime, caller.app, body)


@router.get("", response_model=Page[EndpointOut])
async def list_endpoints(caller: ServerOrViewer, session: SessionDep, paging: Paging) -> Page[EndpointOut]:
    return await service.list_endpoints(session, caller.app, paging)


@router.get("/dead-letters", response_model=Page[DeliveryOut])
async def dead_letters(caller: ServerOrViewer, session: SessionDep, paging: Paging) -> Page[DeliveryOut]:
    """Deliveries of every endpoint that ran out of attempts or were refused for good (newest first)."""
    return await service.deliveries(session, caller.app, None, "dead", paging)


@router.get("/{endpoint_id}", response_model=EndpointOut, responses=_ENDPOINT)
async def get_endpoint(endpoint_id: EndpointId, caller: ServerOrViewer, session: SessionDep) -> EndpointOut:
    return await service.get_endpoint(session, caller.app, endpoint_id)


@router.patch("/{endpoint_id}", response_model=EndpointOut,
              responses={**_ENDPOINT, 422: {"description": "url_not_allowed"}})
async def update_endpoint(endpoint_id: EndpointId, body: EndpointUpdate, caller: ServerOrAdmin,
                          session: SessionDep, runtime: RuntimeDep) -> EndpointOut:
    return await service.update_endpoint(session, runtime, caller.app, endpoint_id, body)


@router.delete("/{endpoint_id}", status_code=204, responses=_ENDPOINT)
async def delete_endpoint(endpoint_id: EndpointId, caller: ServerOrAdmin, session: SessionDep) -> Response:
    await service.delete_endpoint(session, caller.app, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", response_model=SecretRotated, responses=_ENDPOINT)
async def rotate_secret(endpoint_id: EndpointId, body: RotateIn, caller: ServerOrAdmin, session: SessionDep,
                        runtime: RuntimeDep) -> SecretRotated:
    """A new secret (shown only now); the old one keeps signing too until ``overlap_seconds`` pass."""
    return await service.rotate_secret(session, runtime, caller.app, endpoint_id, body)


@router.get("/{endpoint_id}/deliveries", response_model=Page[DeliveryOut], responses=_ENDPOINT)
async def deliveries(endpoint_id: EndpointId, caller: ServerOrViewer, session: SessionDep, paging: Paging,
                     status: Annotated[DeliveryStatus | None, Query()] = None) -> Page[DeliveryOut]:
    """The endpoint's delivery log, newest first (``status=dead``: its dead letters)."""
    return await service.deliveries(session, caller.app, endpoint_id, status, paging)


@router.get("/{endpoint_id}/deliveries/{delivery_id}", response_model=DeliveryDetail,
            responses={404: _DELIVERY[404]})
async def delivery(endpoint_id: EndpointId, delivery_id: DeliveryId, caller: ServerOrViewer,
                   session: SessionDep) -> DeliveryDetail:
    """One delivery with the body sent and every attempt (status, response time, body excerpt)."""
    return await service.delivery_detail(session, caller.app, endpoint_id, delivery_id)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/retry", response_model=DeliveryOut, responses=_DELIVERY)
async def retry(endpoint_id: EndpointId, delivery_id: DeliveryId, caller: ServerOrAdmin, session: SessionDep,
                clock: ClockDep) -> DeliveryOut:
    """Deliver this message again now, from the first step of the retry schedule."""
    return await service.retry(session, clock, caller.app, endpoint_id, delivery_id)


@router.post("/{endpoint_id}/replay", response_model=Requeued, responses=_DELIVERY)
async def replay(endpoint_id: EndpointId, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep,
                 since: Annotated[datetime, Query(description="deliver again everything made since (ISO 8601)")]
                 ) -> Requeued:
    return await service.replay(session, clock, caller.app, endpoint_id, ensure_utc(since))
