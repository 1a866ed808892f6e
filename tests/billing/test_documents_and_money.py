"""Invoices rendered (a real PDF whose text holds the number; HTML that escapes what brands typed),
credit notes that lower what is owed and never below zero, and payment from the brand's wallet as one
balanced ledger transaction keyed by the invoice."""

from __future__ import annotations

import asyncio

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.billing.helpers import AFTER_MONTH, brand_in, finalize, generate, pdf_text, settings, spend, subscribed
from tests.conftest import Factory, problem
from tests.finance.helpers import fund
from tests.market.helpers import Market, count, idem, verify


async def test_pdf_is_real_and_html_escapes_brand_names(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market)
    brand = await brand_in(market, "DE", name="<script>alert('fizz')</script> & Sons")
    await spend(market, brand, [4_000], rate=500)
    clock.set(AFTER_MONTH)
    draft = (await generate(market, brand.id))[0]
    # A draft renders too, without a number.
    resp = await client.get(f"/v1/billing/invoices/{draft['id']}", headers=keys.server, params={"format": "pdf"})
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF")
    assert f"draft {draft['id']}" in pdf_text(resp.content)
    inv = await finalize(market, draft["id"])
    number = inv["number"]
    resp = await client.get(f"/v1/billing/invoices/{inv['id']}", headers=keys.server, params={"format": "pdf"})
    assert resp.headers["content-type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF-") and resp.content.rstrip().endswith(b"%%EOF")
    text = pdf_text(resp.content)
    assert number in text and "2000.00" not in text
    assert "20.00" in text and "3.80" in text and "23.80" in text  # subtotal, 19% tax, total
    assert "alert('fizz')" in text  # the PDF shows the name as text
    # The brand's own copy, as HTML: the name escaped, never markup.
    token = await market.sign_in(brand)
    page = await client.get(f"/v1/billing/brands/{brand.id}/invoices/{inv['id']}", headers=token.headers,
                            params={"format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&#39;fizz&#39;)&lt;/script&gt; &amp; Sons" in page.text
    assert f"Invoice {number}" in page.text and "3.80" in page.text
    problem(await client.get(f"/v1/billing/invoices/{inv['id']}", headers=keys.server, params={"format": "doc"}),
            422)


async def test_credit_notes_lower_what_is_owed_never_below_zero(client: httpx.AsyncClient, factory: Factory,
                                                                runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market, credit_note_prefix="CR")
    (brand,), _ = await subscribed(market, clock, fee=10_000)
    clock.set(AFTER_MONTH)
    draft = (await generate(market, brand.id))[0]
    assert (draft["subtotal"], draft["tax"], draft["amount_due"]) == (10_000, 1_900, 11_900)
    url = f"/v1/billing/invoices/{draft['id']}/credit-notes"
    problem(await client.post(url, headers=keys.server, json={"amount": 100, "reason": "goodwill"}), 409,
            "invoice_not_creditable")  # a draft is corrected by voiding it
    inv = await finalize(market, draft["id"])
    line = inv["lines"][0]["id"]
    note = await market.ok("POST", url, 201, headers=keys.server,
                           json={"amount": 1_900, "reason": "disputed fee", "line_id": line})
    assert note["number"] == "CR-2026-000001" and note["line_id"] == line
    got = await market.ok("GET", f"/v1/billing/invoices/{inv['id']}", headers=keys.server)
    assert (got["credited"], got["amount_due"], got["status"]) == (1_900, 10_000, "open")
    assert got["total"] == 11_900  # the invoice itself is unchanged; the note stands beside it
    # More than is owed: refused, nothing changes.
    body = problem(await client.post(url, headers=keys.server, json={"amount": 10_001, "reason": "too much"}), 422,
                   "credit_exceeds_due")
    assert body["amount_due"] == 10_000
    problem(await client.post(url, headers=keys.server, json={"amount": 0, "reason": "nothing"}), 422)
    problem(await client.post(url, headers=keys.server, json={"amount": 5, "reason": "x",
                                                              "line_id": "inl_00000000000000000000000000"}), 422)
    problem(await client.post(url, headers=keys.server, json={"amount": 5, "reason": "another line",
                                                              "line_id": "inl_00000000000000000000000000"}), 422,
            "line_not_on_invoice")
    # Racing notes that together exceed what is owed: only those that fit go through.
    replies = await asyncio.gather(*(client.post(url, headers=keys.server, json={"amount": 3_000, "reason": "race"})
                                     for _ in range(5)))
    assert sorted(r.status_code for r in replies) == [201, 201, 201, 422, 422]
    got = await market.ok("GET", f"/v1/billing/invoices/{inv['id']}", headers=keys.server)
    assert (got["credited"], got["amount_due"]) == (10_900, 1_000)
    assert sorted(n["number"] for n in got["credit_notes"]) == [f"CR-2026-{n:06d}" for n in range(1, 5)]
    # The last of it: owed nothing, the invoice is paid; no more notes.
    await market.ok("POST", url, 201, headers=keys.server, json={"amount": 1_000, "reason": "settled"})
    got = await market.ok("GET", f"/v1/billing/invoices/{inv['id']}", headers=keys.server)
    assert (got["amount_due"], got["status"], got["paid"]) == (0, "paid", 0)
    problem(await client.post(url, headers=keys.server, json={"amount": 1, "reason": "after"}), 409,
            "invoice_not_creditable")
    assert await count(runtime, "billing_credit_notes", keys.app_id) == 5


async def test_paying_from_the_wallet_is_one_balanced_transaction(client: httpx.AsyncClient, factory: Factory,
                                                                  runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market)
    (brand,), _ = await subscribed(market, clock, fee=10_000)
    await spend(market, brand, [2_000], rate=500)  # 1000 prepaid from the budget
    clock.set(AFTER_MONTH)
    inv = await finalize(market, (await generate(market, brand.id))[0]["id"])
    assert (inv["subtotal"], inv["prepaid"], inv["tax"]) == (11_000, 1_000, 2_090)
    assert inv["amount_due"] == 12_090
    token = await market.sign_in(brand)
    pay = f"/v1/billing/brands/{brand.id}/invoices/{inv['id']}/pay"
    before = await market.wallet("platform")
    # Not enough money: 409, nothing moves, the invoice stays open.
    await fund(runtime, keys.app_id, "brand", brand.id, 12_000)
    problem(await client.post(pay, headers=idem(token.headers)), 409, "insufficient_funds")
    assert (await market.ok("GET", f"/v1/billing/invoices/{inv['id']}", headers=keys.server))["status"] == "open"
    assert (await market.wallet("brand", brand.id))["available"] == 12_000
    problem(await client.post(pay, headers=token.headers), 400)  # an Idempotency-Key is required
    await fund(runtime, keys.app_id, "brand", brand.id, 1_000)
    # Ten racing payments (each its own key): paid once.
    replies = await asyncio.gather(*(client.post(pay, headers=idem(token.headers)) for _ in range(10)))
    assert sorted(r.status_code for r in replies) == [200] + [409] * 9, [r.text for r in replies]
    paid = next(r.json() for r in replies if r.status_code == 200)
    assert (paid["status"], paid["paid"], paid["amount_due"]) == ("paid", 12_090, 0)
    assert paid["payment_transaction_id"]
    assert (await market.wallet("brand", brand.id))["available"] == 910
    after = await market.wallet("platform")
    assert after["available"] - before["available"] == 12_090
    # One ledger transaction, keyed by the invoice, and the books are sound.
    txns = await count(runtime, "ledger_transactions", keys.app_id, kind="invoice_payment")
    assert txns == 1
    assert await count(runtime, "ledger_transactions", keys.app_id,
                       idempotency_key=f"billing:invoice:{inv['id']}") == 1
    assert await verify(runtime, keys.app_id) == []
    # Paid is final: no void, no note, no second payment.
    problem(await client.post(f"/v1/billing/invoices/{inv['id']}/void", headers=keys.server), 409,
            "invoice_transition_not_allowed")
    problem(await client.post(f"/v1/billing/invoices/{inv['id']}/pay", headers=idem(keys.server)), 409,
            "invoice_transition_not_allowed")
    # Another brand cannot pay (or see) it.
    other = await brand_in(market)
    problem(await client.post(f"/v1/billing/brands/{other.id}/invoices/{inv['id']}/pay",
                              headers=idem(other.headers)), 404)
    problem(await client.post(pay, headers=idem(other.headers)), 404)
