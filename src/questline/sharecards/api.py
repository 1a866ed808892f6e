"""Routes: a player's share settings and cards, and the public page and image of a card."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.kit.runtime import Runtime
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.sharecards import service
from questline.sharecards.schemas import ShareCardIn, ShareCardOut, ShareCards, ShareSettingsIn, ShareSettingsOut
from questline.tenancy.auth import PlayerOrServer, PlayerOrServerWrite

router = APIRouter(prefix="/v1", tags=["share cards"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN)]
CardId = Annotated[str, Path(max_length=64, description="the card's random id, from its url")]
_PUBLIC = {"x-access": "anonymous"}


def _base_url(request: Request, runtime: Runtime) -> str:
    return runtime.settings.public_url or str(request.base_url)


@router.get("/players/{player_id}/share-settings", response_model=ShareSettingsOut,
            responses={404: {"description": "player_not_found"}})
async def get_settings(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep) -> ShareSettingsOut:
    """Whether the player's share cards are public (private until the player says otherwise)."""
    return await service.settings_of(session, caller.app, player_id)


@router.put("/players/{player_id}/share-settings", response_model=ShareSettingsOut,
            responses={404: {"description": "player_not_found"}})
async def put_settings(player_id: PlayerId, body: ShareSettingsIn, caller: PlayerOrServerWrite, session: SessionDep,
                       clock: ClockDep) -> ShareSettingsOut:
    """Make the player's cards public or private (the player's token, the server key or an app admin).

    Private takes effect at once: every card of the player answers 404 from the next request on.
    """
    return await service.set_public(session, clock, caller.app, player_id, body.public)


@router.post("/players/{player_id}/share-cards", response_model=ShareCardOut, status_code=201,
             responses={200: {"model": ShareCardOut, "description": "the card for this subject existed already"},
                        404: {"description": "player_not_found, not_achieved, achievement_not_found, "
                                             "track_not_found, streak_not_found, milestone_not_found"},
                        409: {"description": "share_cards_private: make them public first"}})
async def create_card(player_id: PlayerId, body: ShareCardIn, caller: PlayerOrServerWrite, session: SessionDep,
                      runtime: RuntimeDep, request: Request, response: Response) -> ShareCardOut:
    """A share link for something the player achieved: an unlocked achievement, a competition result,
    a streak milestone, a level reached.

    201 with a new card; 200 with the existing one when asked again for the same subject (redrawn if
    its text changed). ``url`` is the page to share, ``image_url`` its 1200×630 PNG.
    """
    out, created = await service.make_card(session, runtime, caller.app, player_id, body,
                                           _base_url(request, runtime))
    response.status_code = 201 if created else 200
    return out


@router.get("/players/{player_id}/share-cards", response_model=ShareCards,
            responses={404: {"description": "player_not_found"}})
async def list_cards(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep, runtime: RuntimeDep,
                     request: Request) -> ShareCards:
    """The player's cards, and whether they are served now."""
    return await service.list_cards(session, caller.app, player_id, _base_url(request, runtime))


@router.delete("/players/{player_id}/share-cards/{card_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "share_card_not_found"}})
async def delete_card(player_id: PlayerId, card_id: CardId, caller: PlayerOrServerWrite, session: SessionDep) -> None:
    """Withdraw a card: its links answer 404 from now on (asking again makes a new link)."""
    await service.delete_card(session, caller.app, player_id, card_id)


def _cached(request: Request, body: bytes, etag: str, media_type: str, headers: dict[str, str]) -> Response:
    tag = f'"{etag}"'
    if tag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={**headers, "ETag": tag})
    return Response(body, media_type=media_type, headers={**headers, "ETag": tag})


@router.get("/share/{card_id}", openapi_extra=_PUBLIC, response_class=Response,
            responses={200: {"content": {"text/html": {}}}, 304: {"description": "not modified (If-None-Match)"},
                       404: {"description": "share_card_not_found: unknown, withdrawn, or the player's cards "
                                            "are private"}})
async def card_page(card_id: CardId, session: SessionDep, runtime: RuntimeDep, request: Request) -> Response:
    """The card's public page, with Open Graph and Twitter card tags (no key needed).

    ``Cache-Control: public, no-cache`` with an ``ETag``: caches revalidate every use, so a
    player who turns private is not served from a cache.
    """
    card = await service.served(session, card_id)
    html, etag = service.page(card, _base_url(request, runtime))
    return _cached(request, html, etag, "text/html; charset=utf-8", service.PAGE_HEADERS)


@router.get("/share/{card_id}/image.png", openapi_extra=_PUBLIC, response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 304: {"description": "not modified (If-None-Match)"},
                       404: {"description": "share_card_not_found"}})
async def card_image(card_id: CardId, session: SessionDep, request: Request) -> Response:
    """The card's 1200×630 PNG (no key needed; cached like the page)."""
    card = await service.served(session, card_id)
    return _cached(request, card.png, card.etag, "image/png", service.CACHE_HEADERS)
