"""The overlay: a browser source (OBS and the like) reached by a participation's unguessable URL.

``GET /v1/overlay/{token}`` is a small page that shows the campaign's creative and, while it is on
screen, reports one impression a minute to ``POST /v1/overlay/{token}/impressions`` (each with a
fresh id). The token is the only credential: rotating it (or the participation ending, or the
campaign pausing) stops the page at once. The page works offline from any CDN: everything it needs
is in it or served here.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from questline.assets import service as assets
from questline.assets.models import Asset
from questline.campaigns import earnings
from questline.campaigns import repository as repo
from questline.campaigns.models import Campaign, Participation
from questline.campaigns.schemas import ImpressionResult, OverlayBatch
from questline.campaigns.service import token_hash
from questline.kit.errors import NotFound
from questline.kit.runtime import Runtime

OVERLAY_RATE = "30/minute"
REPORT_EVERY_SECONDS = 60


@dataclass(frozen=True)
class Resolved:
    participation: Participation
    campaign: Campaign
    creative: Asset | None


async def resolve(session: AsyncSession, token: str) -> Resolved:
    if not 16 <= len(token) <= 64:
        raise NotFound("no such overlay", code="overlay_not_found")
    participation = await repo.by_token(session, token_hash(token))
    if participation is None:
        raise NotFound("no such overlay (revoked, or never made)", code="overlay_not_found")
    campaign = await repo.get(session, participation.app_id, participation.campaign_id)
    assert campaign is not None
    creatives = await assets.of_campaign(session, campaign.app_id, campaign.id)
    return Resolved(participation, campaign, creatives[0] if creatives else None)


async def limit(runtime: Runtime, token: str) -> None:
    await runtime.limiter.enforce(OVERLAY_RATE, "overlay", token_hash(token), what="this overlay")


def page(resolved: Resolved, token: str) -> tuple[str, str]:
    """The overlay's HTML and the script nonce its Content-Security-Policy allows."""
    nonce = secrets.token_urlsafe(12)
    running = resolved.campaign.status == "active" and resolved.participation.status == "active"
    creative = resolved.creative
    media = ""
    if running and creative is not None:
        src = f"/v1/overlay/{html.escape(token)}/creative"
        media = (f'<video src="{src}" autoplay loop muted playsinline></video>' if creative.kind == "video"
                 else f'<img src="{src}" alt="{html.escape(resolved.campaign.title)}">')
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(resolved.campaign.title)}</title>
<style>html,body{{margin:0;background:transparent;overflow:hidden}}img,video{{max-width:100vw;max-height:100vh}}</style>
</head><body data-running="{str(running).lower()}">{media}
<script nonce="{nonce}">
(function () {{
  if (document.body.dataset.running !== "true") return;
  var url = location.pathname.replace(/\\/$/, "") + "/impressions";
  function id() {{ var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) {{ return ("0" + b.toString(16)).slice(-2); }}).join(""); }}
  function report() {{
    if (document.visibilityState === "hidden") return;
    fetch(url, {{method: "POST", headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{impressions: [{{id: id()}}]}})}}).catch(function () {{}});
  }}
  report(); setInterval(report, {REPORT_EVERY_SECONDS * 1000});
}})();
</script></body></html>"""
    return body, nonce


def headers(nonce: str) -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": (f"default-src 'none'; img-src 'self'; media-src 'self'; connect-src 'self'; "
                                    f"style-src 'unsafe-inline'; script-src 'nonce-{nonce}'"),
    }


def creative_file(runtime: Runtime, resolved: Resolved) -> tuple[Path, str]:
    if resolved.creative is None:
        raise NotFound("this campaign has no creative yet", code="asset_not_found")
    return assets.file_of(runtime, resolved.creative, overlay=True), resolved.creative.content_type


async def impressions(session: AsyncSession, runtime: Runtime, token: str, batch: OverlayBatch) -> ImpressionResult:
    resolved = await resolve(session, token)
    p = resolved.participation
    items = [earnings.Item(id=i.id, streamer_id=p.streamer_id) for i in batch.impressions]
    return await earnings.record(session, runtime, p.app_id, p.campaign_id, items, "overlay")
