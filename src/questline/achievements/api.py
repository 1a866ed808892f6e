"""Routes for the achievement catalog, a player's achievements, badge uploads and badge files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, UploadFile
from fastapi.responses import FileResponse

from questline.achievements import service
from questline.achievements.schemas import Badge, Catalog, PlayerAchievements
from questline.events.schemas import PLAYER_ID
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.rules.schemas import DEFINITION_KEY
from questline.tenancy.auth import AnyAppCaller, PlayerOrServer, ServerOrAdmin

router = APIRouter(prefix="/v1", tags=["achievements"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID)]
AchievementKey = Annotated[str, Path(pattern=DEFINITION_KEY, description="the achievement definition's key")]
# Secret-looking SVG content is refused at upload; this is the second line of defence when served.
_MEDIA_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


@router.get("/achievements", response_model=Catalog)
async def catalog(caller: AnyAppCaller, session: SessionDep, runtime: RuntimeDep) -> Catalog:
    """Every achievement with its rarity (% of the app's players who have it).

    Secret and hidden achievements are listed only for the server key and app admins.
    """
    return await service.catalog(session, runtime, caller.app, reveal=caller.is_trusted)


@router.get("/players/{player_id}/achievements", response_model=PlayerAchievements)
async def player_achievements(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                              runtime: RuntimeDep) -> PlayerAchievements:
    """The player's achievements: unlocked or not, progress toward each, secrets masked until unlocked."""
    caller.ensure_acts_for(player_id)
    return await service.player_achievements(session, runtime, caller.app, player_id)


@router.post("/achievements/{key}/badge", response_model=Badge, status_code=201,
             responses={413: {"description": "payload_too_large: over 5 MiB"},
                        415: {"description": "unsupported_media_type: not PNG or SVG"},
                        422: {"description": "image_too_large, invalid_image, invalid_svg, unsafe_svg, empty_file"}})
async def upload_badge(
    key: AchievementKey, caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="a PNG (at most 4096×4096) or SVG, up to 5 MiB")],
) -> Badge:
    """Upload (or replace) an achievement's badge image; a PNG also gets a 256×256 thumbnail.

    Each upload is a new version with its own URL; earlier versions' files are kept.
    """
    data = await file.read()
    return await service.upload_badge(session, runtime, caller.app, key, data, caller.identity)


@router.get("/media/badges/{app_id}/{key}/{filename}", openapi_extra={"x-access": "anonymous"},
                  response_class=FileResponse, responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
async def badge_file(app_id: str, key: str, filename: str, runtime: RuntimeDep) -> FileResponse:
    """A badge image or thumbnail, as linked from achievement responses (public, cacheable forever)."""
    path, content_type = service.media_file(runtime, app_id, key, filename)
    return FileResponse(path, media_type=content_type, headers=_MEDIA_HEADERS)
