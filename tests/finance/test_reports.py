"""The desk's reports: revenue per period equals the ledger's sums; reconciliation against the PSP stand-in's
own records is balanced, then reports each mismatch when those records differ; the audit report; and the
exports, as CSV and as a real .xlsx workbook read back from its XML."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from pydantic import SecretStr

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem
from tests.finance import standin
from tests.finance.helpers import fund
from tests.market.helpers import Market, idem, verify

SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


@pytest.fixture
async def psp() -> AsyncIterator[standin.StandIn]:
    async with standin.running() as stand_in:
        yield stand_in


@pytest.fixture
def settings(settings: Settings, psp: standin.StandIn) -> Settings:
    return settings.model_copy(update={
        "psp_url": psp.base, "psp_api_key": SecretStr(standin.API_KEY),
        "psp_webhook_secret": SecretStr(standin.WEBHOOK_SECRET), "psp_timeout_seconds": 2.0})


@pytest.fixture
def stand_in(psp: standin.StandIn, client: httpx.AsyncClient, clock: ManualClock) -> standin.StandIn:
    psp.deliver = client
    psp.now = lambda: clock.now().timestamp()
    return psp


def read_xlsx(content: bytes) -> list[list[str]]:
    """The first worksheet's cells, as text, read straight from the workbook's XML."""
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        names = set(book.namelist())
        assert {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/worksheets/sheet1.xml"} <= names
        assert "spreadsheetml.sheet.main+xml" in book.read("[Content_Types].xml").decode()
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(f"{SHEET}row"):
        cells: dict[int, str] = {}
        for cell in row.iter(f"{SHEET}c"):
            column = 0
            for letter in cell.attrib["r"].rstrip("0123456789"):
                column = column * 26 + ord(letter) - 64
            value = cell.find(f"{SHEET}v")
            text = cell.find(f"{SHEET}is/{SHEET}t")
            cells[column - 1] = (value.text if value is not None else text.text if text is not None else "") or ""
        rows.append([cells.get(i, "") for i in range(max(cells) + 1)] if cells else [])
    return rows


def trimmed(rows: list[list[str]]) -> list[list[str]]:
    """Rows without their trailing empty cells (a workbook does not write empty cells)."""
    out = []
    for row in rows:
        kept = list(row)
        while kept and kept[-1] == "":
            kept.pop()
        out.append(kept)
    return out


async def test_revenue_report_is_the_ledgers_sums_and_exports(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance = (await factory.admin(keys.org_id, Role.FINANCE)).headers(keys.app_id)
    plain = (await factory.admin(keys.org_id, Role.ADMIN)).headers(keys.app_id)
    start, end = clock.now() - timedelta(days=1), clock.now() + timedelta(days=1)
    period = {"currency": "USD", "from": start.isoformat(), "to": end.isoformat()}

    brand, streamer = await market.brand(), await market.streamer()
    first = await market.campaign(brand, budget=10_000, rate=500)
    assert (await market.join(first["id"], streamer)).status_code == 201
    await market.impressions(first["id"], [("r-1", streamer.id, 20_000)])  # 1,000 commission; completes
    await market.ok("PUT", "/v1/finance/fees", headers=finance,
                    json={"commission_bps": 1_000, "by_type": {"gaming": 2_500}, "fixed_fees": {"USD": 333}})
    await market.deposit(brand, 333)
    second = await market.campaign(brand, budget=4_000, rate=1_000)
    assert (await market.join(second["id"], streamer)).status_code == 201
    await market.impressions(second["id"], [("r-2", streamer.id, 1_234)])  # 1,234 gross: 308 commission
    dispute = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers, json={
        "campaign_id": first["id"], "streamer_id": streamer.id, "impressions": 3_000, "reason": "bots"})
    await market.ok("POST", f"/v1/disputes/{dispute['id']}/decision", headers=finance,
                    json={"verdict": "refund", "reason": "agreed", "recover_from_streamer": False})

    problem(await client.get("/v1/finance/reports/revenue", headers=plain, params=period), 403, "insufficient_role")
    report = await market.ok("GET", "/v1/finance/reports/revenue", headers=finance, params=period)
    assert (report["commissions"], report["fixed_fees"], report["refunds"], report["other"]) == (
        1_000 + 308, 333, -1_500, 0)
    assert report["by_campaign"] == {first["id"]: 1_000, second["id"]: 308}
    assert report["disputes_loss"] == 0
    # The ledger's own figures: the revenue account's statement and balance.
    ledger = await market.ok("GET", "/v1/platform/wallet/statement", headers=keys.server, params=period)
    assert report["net"] == ledger["total_in"] - ledger["total_out"] == 1_308 + 333 - 1_500
    assert (report["opening_balance"], report["closing_balance"]) == (ledger["opening_balance"],
                                                                       ledger["closing_balance"])
    assert sum(line["amount"] for line in report["by_kind"]) == sum(m["amount"] for m in ledger["movements"])
    assert report["closing_balance"] == (await market.wallet("platform", "revenue"))["available"]
    # An earlier period holds none of it.
    before = {**period, "from": (start - timedelta(days=9)).isoformat(), "to": start.isoformat()}
    assert (await market.ok("GET", "/v1/finance/reports/revenue", headers=finance, params=before))["net"] == 0
    problem(await client.get("/v1/finance/reports/revenue", headers=finance,
                             params={**period, "to": period["from"]}), 422, "invalid_period")

    exported = await market.ok("GET", "/v1/finance/reports/revenue", headers=finance,
                               params={**period, "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    summary = {r[1]: r[2] for r in rows if r[0] == "summary"}
    assert (summary["commissions"], summary["refunds"], summary["net"]) == ("1308", "-1500", str(report["net"]))
    workbook = await market.ok("GET", "/v1/finance/reports/revenue", headers=finance,
                               params={**period, "format": "xlsx"})
    assert workbook.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = read_xlsx(workbook.content)
    assert sheet == trimmed(rows)
    assert await verify(runtime, keys.app_id) == []


async def test_reconciliation_reports_where_the_provider_differs(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock,
        stand_in: standin.StandIn) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance = (await factory.admin(keys.org_id, Role.FINANCE)).headers(keys.app_id)
    period = {"currency": "USD", "from": (clock.now() - timedelta(days=1)).isoformat(),
              "to": (clock.now() + timedelta(days=1)).isoformat()}
    brand = await market.brand()
    deposits = []
    for amount in (12_000, 7_500):
        made = await market.ok("POST", f"/v1/brands/{brand.id}/deposits", 201, headers=idem(brand.headers),
                               json={"provider": "psp", "currency": "USD", "amount": amount})
        (paid,) = await stand_in.send(made["provider_ref"], "payment_intent.succeeded")
        assert paid.json()["outcome"] == "applied"
        deposits.append(made)
    # A PSP payout, paid.
    streamer = await market.streamer()
    await fund(runtime, keys.app_id, "streamer", streamer.id, 5_000)
    method = await market.ok("POST", f"/v1/streamers/{streamer.id}/payment-methods", 201, headers=streamer.headers,
                             json={"kind": "psp_token", "token": "acct_recon_42"})
    payout = await market.ok("POST", f"/v1/streamers/{streamer.id}/withdrawals", 201, headers=idem(streamer.headers),
                             json={"currency": "USD", "amount": 2_000, "payment_method_id": method["id"]})
    await stand_in.send(payout["provider_ref"], "payout.paid")

    clean = await market.ok("GET", "/v1/finance/reports/reconciliation", headers=finance, params=period)
    assert (clean["ledger_in"], clean["provider_in"], clean["ledger_out"], clean["provider_out"]) == (
        19_500, 19_500, 2_000, 2_000)
    assert (clean["matched"], clean["mismatches"], clean["balanced"]) == (3, [], True)

    # The provider's records differ: one amount, and a payment it says succeeded that the ledger never saw.
    stand_in.objects[deposits[1]["provider_ref"]]["amount"] = 7_000
    ghost = f"pi_ghost_{uuid.uuid4().hex[:6]}"
    stand_in.objects[ghost] = {"id": ghost, "amount": 999, "currency": "USD", "status": "succeeded",
                               "created": int(clock.now().timestamp()), "settled_at": int(clock.now().timestamp()),
                               "metadata": {"app_id": keys.app_id, "deposit_id": "dep_unknown"}}
    found = await market.ok("GET", "/v1/finance/reports/reconciliation", headers=finance, params=period)
    assert found["balanced"] is False and found["matched"] == 2
    mismatches: list[dict[str, Any]] = sorted(found["mismatches"], key=lambda m: m["kind"])
    assert [(m["kind"], m["object"], m["provider_ref"], m["ledger_amount"], m["provider_amount"])
            for m in mismatches] == [
        ("amount_mismatch", "payment", deposits[1]["provider_ref"], 7_500, 7_000),
        ("missing_in_ledger", "payment", ghost, None, 999)]
    exported = await market.ok("GET", "/v1/finance/reports/reconciliation", headers=finance,
                               params={**period, "format": "xlsx"})
    sheet = read_xlsx(exported.content)
    assert sheet[0][:2] == ["kind", "object"]
    assert sorted(row[0] for row in sheet[3:]) == ["amount_mismatch", "missing_in_ledger"]

    # The provider answers 500: 503, nothing else.
    stand_in.mode = "error"
    problem(await client.get("/v1/finance/reports/reconciliation", headers=finance, params=period), 503,
            "provider_unavailable")


async def test_audit_report_lists_the_money_steps(client: httpx.AsyncClient, factory: Factory,
                                                  runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance_login = await factory.admin(keys.org_id, Role.FINANCE)
    finance = finance_login.headers(keys.app_id)
    period = {"from": (clock.now() - timedelta(days=1)).isoformat(),
              "to": (clock.now() + timedelta(days=1)).isoformat()}
    await market.ok("PUT", "/v1/finance/review-settings", headers=finance, json={"default_review_above": 1_000})
    brand = await market.brand()
    await market.deposit(brand, 5_000)
    queue = await market.ok("GET", "/v1/finance/reviews", headers=finance, params={"status": "pending"})
    await market.ok("POST", f"/v1/finance/reviews/{queue['items'][0]['id']}/approve", headers=finance, json={})

    report = await market.ok("GET", "/v1/finance/reports/audit", headers=finance, params=period)
    assert report["reviews_decided"] == 1
    assert report["by_action"]["finance.review.approved"] == 1
    assert report["by_action"]["finance_approve_review"] == 1
    assert report["by_action"]["finance_put_review_settings"] == 1
    assert any(line["actor"] == f"admin:{finance_login.admin_id}" for line in report["entries"])
    exported = await market.ok("GET", "/v1/finance/reports/audit", headers=finance, params={**period, "format": "csv"})
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["at", "actor", "action", "target", "status"] and len(rows) == len(report["entries"]) + 1
    problem(await client.get("/v1/finance/reports/audit", headers=keys.server, params=period), 403)
