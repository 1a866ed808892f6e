"""A campaign's totals changed: told to listeners once the transaction has committed.

Impression batches move a campaign's impressions, spend and commission. ``changed`` queues the
campaign (once per transaction) and, after commit, tells every listener registered with
``listen_totals`` (``mechanics.install`` registers the live channels', which publish the totals
on ``campaign:{id}``). Never before commit: a rolled-back batch is never shown. A listener only
learns *which* campaign moved; it reads the totals itself, so what it shows is never older than
the commit that told it.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import after_commit
from questline.kit.runtime import Runtime

LISTENERS = "campaigns.totals_listeners"


class TotalsListener(Protocol):
    def __call__(self, app_id: str, campaign_id: str) -> None: ...


def listen_totals(runtime: Runtime, name: str, listener: TotalsListener) -> None:
    """Register a listener of campaigns' totals under a name (installing again replaces it).
    It is called after commit and must not block: it schedules its own work."""
    runtime.extensions.setdefault(LISTENERS, {})[name] = listener


class _Tell:
    """One after-commit hook per transaction, holding the campaigns it moved."""

    def __init__(self, listeners: dict[str, TotalsListener]) -> None:
        self.listeners, self.moved = listeners, set[tuple[str, str]]()

    def __call__(self) -> None:
        for app_id, campaign_id in sorted(self.moved):
            for listener in list(self.listeners.values()):
                listener(app_id, campaign_id)


def changed(session: AsyncSession, runtime: Runtime, app_id: str, campaign_id: str) -> None:
    """Queue a change of this campaign's totals, told to the listeners after commit (a rollback drops
    the hook with the others, so nothing is told)."""
    listeners: dict[str, TotalsListener] = runtime.extensions.get(LISTENERS) or {}
    if not listeners:
        return
    tell = next((h for h in session.info.get("after_commit", []) if isinstance(h, _Tell)), None)
    if tell is None:
        tell = _Tell(listeners)
        after_commit(session, tell)
    tell.moved.add((app_id, campaign_id))
