"""Routes: a creative's details and file, for its brand, the server key and admins (uploads are under
``/v1/campaigns/{campaign_id}/assets``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from questline.assets import service
from questline.assets.schemas import AssetOut
from questline.kit.ids import ID_PATTERN
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.tenancy.auth import BRAND, SERVER, Caller, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1/assets", tags=["campaign assets"], route_class=UnitOfWorkRoute)
AssetId = Annotated[str, Path(pattern=ID_PATTERN, description="an asset's id (ast_…)")]
BrandReader = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.VIEWER)]


@router.get("/{asset_id}", response_model=AssetOut)
async def get(asset_id: AssetId, caller: BrandReader, session: SessionDep) -> AssetOut:
    """A creative's details (a brand sees only its own)."""
    return service.asset_out(await service.get_for(session, caller, asset_id))


@router.get("/{asset_id}/file", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}, "image/gif": {},
                                         "video/mp4": {}, "video/webm": {}}}})
async def file(asset_id: AssetId, caller: BrandReader, session: SessionDep, runtime: RuntimeDep,
               rendition: Annotated[str, Query(pattern="^(original|overlay)$")] = "original") -> FileResponse:
    """The creative's file (or its overlay rendition), cacheable: a file never changes once uploaded."""
    asset = await service.get_for(session, caller, asset_id)
    path = service.file_of(runtime, asset, overlay=rendition == "overlay")
    return FileResponse(path, media_type=asset.content_type, headers=service.FILE_HEADERS)
