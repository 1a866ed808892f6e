"""The review queue of large transactions.

Money that crosses the platform's edge or changes currency moves through the ledger's ``external``
and ``exchange`` system accounts (deposits, payouts, dispute losses, conversions). Every transaction
on them of at least the currency's threshold (``review_above``, in minor units; default 1,000,000)
lands in the queue as ``pending`` for a finance verdict: ``approved`` or ``rejected`` with a note,
once (a conditional update), each in the audit log. A verdict never edits the ledger: a rejected
transaction is one finance follows up on (a dispute, a compensating transaction).

The queue is filled by a scan of those accounts' statements from where the last scan stopped (less a
margin, for transactions committed late; one row per transaction whatever the overlap), run before
the queue is read and by the ``finance.review_scan`` job.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from questline.audit import service as audit
from questline.finance import repository as repo
from questline.finance.schemas import DeskSettingsBody, RejectIn, ReviewIn, ReviewOut
from questline.kit.errors import Conflict, NotFound
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import FIAT_PATTERN, AccountRef
from questline.tenancy.auth import Caller

SCANNED_ACCOUNTS = (ledger.EXTERNAL, ledger.EXCHANGE)
MARGIN = timedelta(minutes=5)
FIRST_SCAN = timedelta(days=31)
CHUNK = timedelta(days=1)
_FIAT = re.compile(FIAT_PATTERN)


async def settings_of(session: AsyncSession, app_id: str) -> DeskSettingsBody:
    found = await repo.get_settings(session, app_id)
    return DeskSettingsBody() if found is None else DeskSettingsBody.model_validate(found.body)


async def put_settings(session: AsyncSession, runtime: Runtime, app_id: str,
                       body: DeskSettingsBody) -> DeskSettingsBody:
    await repo.put_settings(session, app_id, body.model_dump(), runtime.clock.now())
    return await settings_of(session, app_id)


def threshold(body: DeskSettingsBody, currency: str) -> int:
    return body.review_above.get(currency, body.default_review_above)


async def scan(session: AsyncSession, runtime: Runtime, app_id: str) -> int:
    """Queue every transaction above its threshold since the last scan; how many were seen above it."""
    now = runtime.clock.now()
    await repo.ensure_settings(session, app_id, DeskSettingsBody().model_dump(), now)
    found = await repo.get_settings(session, app_id, lock=True)
    assert found is not None
    body = DeskSettingsBody.model_validate(found.body)
    start = (found.scanned_to - MARGIN) if found.scanned_to is not None else now - FIRST_SCAN
    currencies = [c.code for c in await ledger.list_currencies(session, app_id) if _FIAT.match(c.code)]
    rows: dict[str, dict[str, object]] = {}
    until = now + timedelta(seconds=1)  # what was made this very instant too
    while start < until:
        end = min(start + CHUNK, until)
        for currency in currencies:
            limit = threshold(body, currency)
            for account in SCANNED_ACCOUNTS:
                moved = await ledger.movements(session, app_id=app_id, account=AccountRef.system(account, currency),
                                               start=start, end=end)
                for line in moved:
                    if abs(line.amount) >= limit and line.transaction_id not in rows:
                        rows[line.transaction_id] = {
                            "id": new_id("rev"), "app_id": app_id, "transaction_id": line.transaction_id,
                            "account": account, "kind": line.kind[:32], "currency": currency,
                            "amount": abs(line.amount), "reference": line.reference,
                            "transacted_at": line.created_at, "status": "pending", "note": None,
                            "reviewed_by": None, "reviewed_at": None, "created_at": now}
        start = end
    await repo.insert_reviews(session, list(rows.values()))
    await repo.set_scanned(session, app_id, now)
    return len(rows)


async def queue(session: AsyncSession, runtime: Runtime, caller: Caller, status: str | None,
                paging: PageParams) -> Page[ReviewOut]:
    await scan(session, runtime, caller.app)
    rows = await repo.list_reviews(session, caller.app, status, after=paging.after_str(), limit=paging.limit)
    page = build_page(list(rows), paging.limit, lambda r: [r.id])
    return Page[ReviewOut](items=[ReviewOut.model_validate(r) for r in page.items], next_cursor=page.next_cursor)


async def decide(session: AsyncSession, runtime: Runtime, caller: Caller, review_id: str, verdict: str,
                 body: ReviewIn | RejectIn) -> ReviewOut:
    """Approve or reject a queued transaction, once; the verdict is audited."""
    found = await repo.get_review(session, caller.app, review_id)
    if found is None:
        raise NotFound(f"review {review_id} not found", code="review_not_found")
    now = runtime.clock.now()
    won = await repo.decide_review(session, caller.app, review_id, {
        "status": verdict, "note": body.note, "reviewed_by": caller.identity, "reviewed_at": now})
    if not won:
        raise Conflict(f"review {review_id} was already decided", code="review_already_decided")
    await audit.record_step(session, app_id=caller.app, actor_kind=caller.kind.value,
                            actor_id=caller.admin_id or caller.identity, action=f"finance.review.{verdict}",
                            target={"review_id": review_id, "transaction_id": found.transaction_id}, now=now)
    decided = await repo.get_review(session, caller.app, review_id)
    assert decided is not None
    await session.refresh(decided)
    return ReviewOut.model_validate(decided)
