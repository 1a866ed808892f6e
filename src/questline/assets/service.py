"""Creatives of campaigns: stored under ``media_dir/assets/{app}/{asset}/``, listed and served to their brand.

Overlays reach a campaign's creative through their participation's overlay token (see campaigns);
everyone else needs the brand's token, the server key or an admin. Files never change once written
(a new upload is a new asset), so they are served as immutable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from questline.assets import repository as repo
from questline.assets.media import Prepared, prepare
from questline.assets.models import Asset
from questline.assets.schemas import AssetOut
from questline.kit.errors import NotFound, Unprocessable
from questline.kit.files import write_files
from questline.kit.ids import new_id
from questline.kit.runtime import Runtime
from questline.sponsors import service as sponsors
from questline.tenancy.auth import Caller

MAX_ASSETS_PER_CAMPAIGN = 20
FILE_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def asset_out(asset: Asset) -> AssetOut:
    return AssetOut(id=asset.id, campaign_id=asset.campaign_id, brand_id=asset.brand_id,
                    kind=asset.kind, content_type=asset.content_type,
                    bytes=asset.bytes, width=asset.width, height=asset.height, sha256=asset.sha256,
                    overlay_width=asset.overlay_width, overlay_height=asset.overlay_height,
                    file_url=f"/v1/assets/{asset.id}/file", created_at=asset.created_at)


async def store(session: AsyncSession, runtime: Runtime, *, app_id: str, brand_id: str, campaign_id: str,
                data: bytes, actor: str) -> AssetOut:
    """Validate by content, write the files (before commit: a rollback leaves an orphan file, never a
    row without its file), and record the asset."""
    if await repo.count_of_campaign(session, app_id, campaign_id) >= MAX_ASSETS_PER_CAMPAIGN:
        raise Unprocessable(f"a campaign has at most {MAX_ASSETS_PER_CAMPAIGN} creatives; delete one first",
                            code="too_many_assets")
    prepared: Prepared = await asyncio.to_thread(prepare, data, runtime.settings.asset_max_bytes)
    asset_id = new_id("ast")
    folder = f"assets/{app_id}/{asset_id}"
    files = {f"{folder}/original.{prepared.extension}": prepared.data}
    overlay_path = None
    if prepared.overlay is not None:
        overlay_path = f"{folder}/overlay.{prepared.extension}"
        files[overlay_path] = prepared.overlay
    await asyncio.to_thread(write_files, Path(runtime.settings.media_dir), files)
    asset = Asset(id=asset_id, app_id=app_id, brand_id=brand_id, campaign_id=campaign_id, kind=prepared.kind,
                  content_type=prepared.content_type, bytes=len(prepared.data), width=prepared.width,
                  height=prepared.height, sha256=prepared.sha256, path=f"{folder}/original.{prepared.extension}",
                  overlay_path=overlay_path, overlay_width=prepared.overlay_width,
                  overlay_height=prepared.overlay_height, uploaded_by=actor, created_at=runtime.clock.now(),
                  deleted_at=None)
    await repo.add(session, asset)
    return asset_out(asset)


async def get(session: AsyncSession, app_id: str, asset_id: str) -> Asset:
    asset = await repo.get(session, app_id, asset_id)
    if asset is None:
        raise NotFound(f"asset {asset_id} not found", code="asset_not_found")
    return asset


async def get_for(session: AsyncSession, caller: Caller, asset_id: str) -> Asset:
    """The asset, if the caller may see it: its brand, the server key or an admin."""
    asset = await get(session, caller.app, asset_id)
    await sponsors.authorize_brand(session, caller, asset.brand_id)
    return asset


async def of_campaign(session: AsyncSession, app_id: str, campaign_id: str) -> list[Asset]:
    return list(await repo.of_campaign(session, app_id, campaign_id))


async def delete(session: AsyncSession, runtime: Runtime, app_id: str, asset_id: str) -> None:
    """The asset stops being listed and served (its files stay: cached copies may still point at them)."""
    if not await repo.mark_deleted(session, app_id, asset_id, runtime.clock.now()):
        raise NotFound(f"asset {asset_id} not found", code="asset_not_found")


def file_of(runtime: Runtime, asset: Asset, *, overlay: bool = False) -> Path:
    """The file to serve: the overlay rendition when asked and there is one, else the original."""
    relative = asset.overlay_path if overlay and asset.overlay_path else asset.path
    path = Path(runtime.settings.media_dir) / relative
    if not path.is_file():
        raise NotFound("the asset's file is missing", code="asset_not_found")
    return path
