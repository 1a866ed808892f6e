"""What areas above communities add to a join: verified link clicks, the referral program, items.

Communities sit below referrals and the shop in the layering, so the composition root installs
one ``CommunityExtension`` on the runtime (``questline.links`` provides it) and the join calls it
in the join's own transaction. Without one, click ids attribute nothing and item rewards are
refused when set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from questline.communities.models import Community
from questline.kit.runtime import Runtime

EXTENSION = "communities.extension"


@dataclass(frozen=True)
class ClickVerdict:
    """What a click id presented with a join is worth: ``attributed`` (to ``referrer_id``, when the
    link was a member's) or the reason it attributes nothing."""

    status: str  # attributed | invalid | expired | other_community | used
    click_id: str | None = None
    referrer_id: str | None = None


@dataclass(frozen=True)
class JoinSignals:
    """What the referral program's fraud rules see about the joining player."""

    ip: str | None
    device_fingerprint: str | None
    email: str | None


class CommunityExtension(Protocol):
    async def verify_click(self, session: AsyncSession, runtime: Runtime, community: Community,
                           click_id: str) -> ClickVerdict: ...

    async def joined(self, session: AsyncSession, runtime: Runtime, community: Community, player_id: str,
                     verdict: ClickVerdict, signals: JoinSignals) -> None: ...

    async def check_item(self, session: AsyncSession, runtime: Runtime, app_id: str, item: str) -> None: ...

    async def grant_item(self, session: AsyncSession, runtime: Runtime, community: Community, player_id: str,
                         item: str, quantity: int) -> None: ...


def extend(runtime: Runtime, extension: CommunityExtension) -> None:
    runtime.extensions[EXTENSION] = extension


def extension_of(runtime: Runtime) -> CommunityExtension | None:
    found: CommunityExtension | None = runtime.extensions.get(EXTENSION)
    return found
