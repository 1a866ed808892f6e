"""The desk's reports: platform revenue and commissions per period, reconciliation of the ledger against
the payment provider's records, and an audit report; each as JSON, CSV or an Excel workbook.

Revenue is read from the ledger itself (the platform revenue account's movements over the period), so
its figures are the ledger's to the minor unit: ``opening + net = closing``. Reconciliation compares
the PSP deposits credited and payouts paid in the period (the ``external`` account's movements) with
the provider's own records of succeeded payments and paid payouts, object by object.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.audit import service as audit
from questline.finance import render
from questline.finance import repository as repo
from questline.finance.render import Rows
from questline.finance.schemas import (
    AuditLine,
    AuditReport,
    Mismatch,
    ReconciliationReport,
    RevenueLine,
    RevenueReport,
)
from questline.kit.errors import NotFound, ServiceUnavailable, Unprocessable
from questline.kit.pagination import PageParams
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import AccountRef
from questline.tenancy.auth import Caller
from questline.treasury import providers, withdrawals
from questline.treasury import service as treasury

_log = structlog.get_logger("questline.finance")
MAX_AUDIT_LINES = 5_000
MAX_PROVIDER_OBJECTS = 10_000
# Audit actions that concern money: domain steps and the finance/treasury routes of trusted callers.
AUDIT_PREFIXES = ("withdrawal.", "dispute.", "finance.", "finance_", "treasury_", "sponsors_deposit",
                  "campaigns_approve")


def _period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    if start.tzinfo is None or end.tzinfo is None:
        raise Unprocessable("a report's period needs times with a time zone (e.g. 2026-11-01T00:00:00Z)",
                            code="invalid_period")
    try:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
    except OverflowError as exc:
        raise Unprocessable("a report's period must lie within the years 1 to 9999 in UTC",
                            code="invalid_period") from exc
    if end <= start:
        raise Unprocessable("a report's period must end after it starts", code="invalid_period")
    return start, end


# Revenue --------------------------------------------------------------------------------------


async def revenue(session: AsyncSession, app_id: str, currency: str, start: datetime, end: datetime) -> RevenueReport:
    start, end = _period(start, end)
    found = await ledger.statement(session, app_id=app_id, owner_kind="platform", owner_id=ledger.PLATFORM_REVENUE,
                                   currency=currency, start=start, end=end)
    kinds: dict[str, list[int]] = {}
    by_campaign: dict[str, int] = {}
    for line in found.movements:
        total = kinds.setdefault(line.kind, [0, 0])
        total[0] += line.amount
        total[1] += 1
        campaign = (line.reference or {}).get("campaign_id")
        if line.kind == "earning" and isinstance(campaign, str):
            by_campaign[campaign] = by_campaign.get(campaign, 0) + line.amount
    amount = {kind: total[0] for kind, total in kinds.items()}
    known = ("earning", "platform_fee", "dispute_refund")
    decided = await repo.disputes_decided(session, app_id, currency, start, end)
    return RevenueReport(
        currency=currency, exponent=found.exponent, start=start, end=end, opening_balance=found.opening_balance,
        closing_balance=found.closing_balance, commissions=amount.get("earning", 0),
        fixed_fees=amount.get("platform_fee", 0), refunds=amount.get("dispute_refund", 0),
        other=sum(v for k, v in amount.items() if k not in known), net=found.closing_balance - found.opening_balance,
        disputes_loss=sum(d.loss for d in decided),
        by_kind=[RevenueLine(kind=k, amount=v[0], transactions=v[1]) for k, v in sorted(kinds.items())],
        by_campaign=dict(sorted(by_campaign.items())))


def revenue_rows(report: RevenueReport) -> Rows:
    rows: list[list[render.Cell]] = [["section", "item", "amount", "transactions"]]
    rows += [["period", "from", render.stamp(report.start), None], ["period", "to", render.stamp(report.end), None],
             ["summary", "currency", report.currency, None],
             ["summary", "opening_balance", report.opening_balance, None],
             ["summary", "commissions", report.commissions, None], ["summary", "fixed_fees", report.fixed_fees, None],
             ["summary", "refunds", report.refunds, None], ["summary", "other", report.other, None],
             ["summary", "net", report.net, None], ["summary", "closing_balance", report.closing_balance, None],
             ["summary", "disputes_loss", report.disputes_loss, None]]
    rows += [["kind", line.kind, line.amount, line.transactions] for line in report.by_kind]
    rows += [["campaign", campaign, amount, None] for campaign, amount in report.by_campaign.items()]
    return rows


# Reconciliation -------------------------------------------------------------------------------


async def _provider_objects(runtime: Runtime, app_id: str, path: str) -> list[dict[str, Any]]:
    """The provider's records of this app (``GET /v1/payment_intents`` or ``/v1/payouts?app_id=``)."""
    import httpx
    psp = providers.provider(runtime.settings, "psp")
    assert isinstance(psp, providers.PspProvider)
    try:
        async with httpx.AsyncClient(base_url=psp.base_url, timeout=psp.timeout) as client:
            reply = await client.get(path, params={"app_id": app_id, "limit": MAX_PROVIDER_OBJECTS},
                                     headers={"Authorization": f"Bearer {psp.api_key}"})
    except httpx.HTTPError as exc:
        _log.warning("psp_unreachable", path=path, error=type(exc).__name__)
        raise ServiceUnavailable("the payment provider did not answer; try again", code="provider_unavailable",
                                 headers={"Retry-After": "5"}) from exc
    if reply.status_code != 200:
        raise ServiceUnavailable(f"the payment provider answered {reply.status_code}", code="provider_unavailable",
                                 headers={"Retry-After": "5"})
    try:
        body = reply.json()
    except ValueError:
        body = None
    objects = body.get("data") if isinstance(body, dict) else None
    if not isinstance(objects, list):
        raise ServiceUnavailable("the payment provider's answer was not understood", code="provider_unavailable")
    return [o for o in objects if isinstance(o, dict) and isinstance(o.get("id"), str)]


def _meta(found: dict[str, Any], key: str) -> str | None:
    metadata = found.get("metadata")
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None


def _at(found: dict[str, Any], key: str) -> datetime | None:
    value = found.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC)


async def reconcile(session: AsyncSession, runtime: Runtime, caller: Caller, currency: str, start: datetime,
                    end: datetime) -> ReconciliationReport:
    start, end = _period(start, end)
    app_id = caller.app
    intents = await _provider_objects(runtime, app_id, "/v1/payment_intents")
    payouts = await _provider_objects(runtime, app_id, "/v1/payouts")
    moved = await ledger.movements(session, app_id=app_id, account=AccountRef.system(ledger.EXTERNAL, currency),
                                   start=start, end=end)
    ledger_in: dict[str, tuple[int, str | None]] = {}  # deposit id -> (amount, provider ref)
    ledger_out: dict[str, int] = {}  # withdrawal id -> amount
    for line in moved:
        ref = line.reference or {}
        if line.kind == "deposit" and ref.get("provider") == "psp" and isinstance(ref.get("deposit_id"), str):
            deposit = await treasury.get_deposit(session, app_id, ref["deposit_id"])
            ledger_in[ref["deposit_id"]] = (-line.amount, deposit.provider_ref)
        elif line.kind == "payout" and isinstance(ref.get("withdrawal_id"), str):
            try:
                paid = await withdrawals.get(session, caller, ref["withdrawal_id"])
            except NotFound:
                continue
            if paid.provider == "psp":
                ledger_out[ref["withdrawal_id"]] = line.amount
    mismatches: list[Mismatch] = []
    matched = 0

    def compare(kind: Literal["payment", "payout"], local: dict[str, int], records: list[dict[str, Any]],
                done: str, key: str, refs: dict[str, str | None]) -> int:
        nonlocal matched
        total = 0
        seen = {_meta(o, key): o for o in records if o.get("currency") == currency and o.get("status") == done}
        for local_id, amount in local.items():
            found = seen.pop(local_id, None)
            if found is None:
                mismatches.append(Mismatch(kind="missing_at_provider", object=kind,
                                           provider_ref=refs.get(local_id), local_id=local_id, ledger_amount=amount,
                                           provider_amount=None))
                continue
            total += int(found.get("amount") or 0)
            if found.get("amount") != amount:
                mismatches.append(Mismatch(kind="amount_mismatch", object=kind,
                                           provider_ref=found["id"], local_id=local_id, ledger_amount=amount,
                                           provider_amount=found.get("amount")))
            else:
                matched += 1
        for named, extra in seen.items():
            when = _at(extra, "settled_at") or _at(extra, "created")
            if when is None or not start <= when < end:
                continue
            total += int(extra.get("amount") or 0)
            mismatches.append(Mismatch(kind="missing_in_ledger", object=kind,
                                       provider_ref=extra["id"], local_id=named, ledger_amount=None,
                                       provider_amount=extra.get("amount")))
        return total

    provider_in = compare("payment", {k: v[0] for k, v in ledger_in.items()}, intents, "succeeded", "deposit_id",
                          {k: v[1] for k, v in ledger_in.items()})
    provider_out = compare("payout", ledger_out, payouts, "paid", "payout_id", {})
    return ReconciliationReport(provider="psp", currency=currency, start=start, end=end,
                                ledger_in=sum(v[0] for v in ledger_in.values()), provider_in=provider_in,
                                ledger_out=sum(ledger_out.values()), provider_out=provider_out, matched=matched,
                                mismatches=mismatches, balanced=not mismatches)


def reconciliation_rows(report: ReconciliationReport) -> Rows:
    rows: list[list[render.Cell]] = [["kind", "object", "provider_ref", "local_id", "ledger_amount",
                                      "provider_amount"]]
    rows += [["summary", "payments", None, None, report.ledger_in, report.provider_in],
             ["summary", "payouts", None, None, report.ledger_out, report.provider_out]]
    rows += [[m.kind, m.object, m.provider_ref, m.local_id, m.ledger_amount, m.provider_amount]
             for m in report.mismatches]
    return rows


# Audit ----------------------------------------------------------------------------------------


async def audit_report(session: AsyncSession, caller: Caller, start: datetime, end: datetime) -> AuditReport:
    """The money-related entries of the audit log in the period, newest first (at most 5,000)."""
    start, end = _period(start, end)
    lines: list[AuditLine] = []
    cursor: str | None = None
    while len(lines) < MAX_AUDIT_LINES:
        page = await audit.entries(session, caller, actor=None, action=None,
                                   paging=PageParams(limit=200, cursor=cursor))
        older = False
        for entry in page.items:
            if entry.created_at >= end:
                continue
            if entry.created_at < start:
                older = True
                break
            if entry.action.startswith(AUDIT_PREFIXES):
                lines.append(AuditLine(at=entry.created_at, actor=f"{entry.actor_kind}:{entry.actor_id}",
                                       action=entry.action, target=dict(entry.target or {}), status=entry.status))
        if older or page.next_cursor is None:
            break
        cursor = page.next_cursor
    by_action: dict[str, int] = {}
    for line in lines:
        by_action[line.action] = by_action.get(line.action, 0) + 1
    decided = await repo.disputes_decided(session, caller.app, None, start, end)
    return AuditReport(start=start, end=end, entries=lines[:MAX_AUDIT_LINES], by_action=dict(sorted(by_action.items())),
                       disputes_decided=len(decided),
                       reviews_decided=await repo.count_reviews_decided(session, caller.app, start, end))


def audit_rows(report: AuditReport) -> Rows:
    rows: list[list[render.Cell]] = [["at", "actor", "action", "target", "status"]]
    rows += [[render.stamp(line.at), line.actor, line.action,
              " ".join(f"{k}={v}" for k, v in sorted(line.target.items())), line.status] for line in report.entries]
    return rows
