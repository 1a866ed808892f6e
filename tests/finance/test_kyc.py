"""KYC: documents recognised by content and sealed at rest, served only to reviewers; statuses from
submission to verification, rejection with reasons, expiry; a risk score from rules; the payout gate;
documents deleted after the retention period."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
import sqlalchemy as sa
from fpdf import FPDF
from PIL import Image

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from questline.treasury import kyc
from tests.conftest import Factory, problem
from tests.finance.helpers import fund
from tests.market.helpers import Market, count, idem, verify


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def pdf() -> bytes:
    doc = FPDF()
    doc.add_page()
    doc.set_font("Helvetica", size=12)
    doc.cell(0, 10, "PASSPORT")
    return bytes(doc.output())


async def upload(client: httpx.AsyncClient, streamer_id: str, headers: dict[str, str], content: bytes,
                 kind: str = "passport", name: str = "doc.png") -> httpx.Response:
    return await client.post(f"/v1/streamers/{streamer_id}/kyc/documents", headers=headers,
                             files={"file": (name, content, "image/png")}, data={"kind": kind})


async def test_documents_are_checked_by_content_sealed_and_only_for_reviewers(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    admin = await factory.admin(keys.org_id)
    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    streamer = await market.streamer()
    image, paper = png(), pdf()
    # Not what it claims: a text file named .png, a damaged PNG, an empty file: refused, nothing stored.
    problem(await upload(client, streamer.id, streamer.headers, b"hello, I am a passport"), 415,
            "unsupported_media_type")
    problem(await upload(client, streamer.id, streamer.headers, image[:40] + b"\0" * 200), 422, "invalid_document")
    problem(await upload(client, streamer.id, streamer.headers, b""), 422)
    problem(await upload(client, streamer.id, streamer.headers, image, kind="selfie"), 422)
    assert await count(runtime, "kyc_documents", keys.app_id) == 0
    first = await upload(client, streamer.id, streamer.headers, image)
    assert first.status_code == 201, first.text
    assert first.json()["content_type"] == "image/png"
    second = await upload(client, streamer.id, streamer.headers, paper, kind="national_id", name="id.jpg")
    assert second.json()["content_type"] == "application/pdf"
    async with unit_of_work(runtime.sessions) as session:
        sealed = (await session.execute(sa.text("SELECT sealed FROM kyc_documents WHERE app_id = :a"),
                                        {"a": keys.app_id})).scalars().all()
    assert all(s.startswith("v1:") and "PASSPORT" not in s for s in sealed) and len(sealed) == 2

    out = await market.ok("POST", f"/v1/streamers/{streamer.id}/kyc/submit", headers=streamer.headers,
                          json={"full_name": "Ann Example", "country": "DE", "date_of_birth": "1990-04-01"})
    assert out["status"] == "submitted" and out["documents"] == 2 and "risk_score" not in out
    queue = await market.ok("GET", "/v1/finance/kyc", headers=keys.server, params={"status": "submitted"})
    (case,) = queue["items"]
    assert case["subject_id"] == streamer.id and [d["kind"] for d in case["documents"]] == ["passport",
                                                                                           "national_id"]
    doc_url = f"/v1/finance/kyc/{case['id']}/documents/{case['documents'][0]['id']}"
    # Reviewers (admins) read the content; the server key, a viewer, the streamer and another app may not.
    got = await client.get(doc_url, headers=admin.headers(keys.app_id))
    assert got.status_code == 200 and got.content == image and got.headers["content-type"] == "image/png"
    assert got.headers["cache-control"] == "no-store"
    problem(await client.get(doc_url, headers=keys.server), 403)
    problem(await client.get(doc_url, headers=viewer.headers(keys.app_id)), 403)
    problem(await client.get(doc_url, headers=streamer.headers), 403)
    other = await factory.app()
    problem(await client.get(doc_url, headers=other.server), 403)
    other_admin = await factory.admin(other.org_id)
    problem(await client.get(doc_url, headers=other_admin.headers(other.app_id)), 404)


async def test_statuses_risk_and_the_payout_gate(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                                 clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    reviewer = await factory.admin(keys.org_id)
    rh = reviewer.headers(keys.app_id)
    await market.ok("PUT", "/v1/finance/settings", headers=keys.server, json={
        "default_limits": {"min": 100, "max_per_request": 100_000, "per_day": 500_000, "per_month": 900_000,
                           "approval_above": 90_000, "two_approvers_above": 95_000, "kyc_required_above": 5_000},
        "kyc": {"validity_days": 30, "retention_days": 10, "high_risk_countries": ["KP"]}})
    streamer = await market.streamer(country="DE")
    method = await market.ok("POST", f"/v1/streamers/{streamer.id}/payment-methods", 201, headers=streamer.headers,
                             json={"kind": "bank_account", "holder": "Ann Example", "iban": "DE89370400440532013000"})
    await fund(runtime, keys.app_id, "streamer", streamer.id, 50_000)
    url = f"/v1/streamers/{streamer.id}/withdrawals"
    big = {"currency": "USD", "amount": 6_000, "payment_method_id": method["id"]}

    # No KYC: small withdrawals pass, large ones are refused and hold nothing.
    assert (await client.post(url, headers=idem(streamer.headers), json={**big, "amount": 5_000})).status_code == 201
    body = problem(await client.post(url, headers=idem(streamer.headers), json=big), 409, "kyc_required")
    assert body["kyc_status"] == "not_started"
    assert await market.wallet("streamer", streamer.id) == {"available": 45_000, "held": 5_000, "pending": 0}
    assert (await market.ok("GET", f"/v1/streamers/{streamer.id}/kyc", headers=streamer.headers))["status"] == \
        "not_started"
    submit = f"/v1/streamers/{streamer.id}/kyc/submit"
    details = {"full_name": "Bo Other", "country": "KP", "date_of_birth": "2012-01-01"}
    problem(await client.post(submit, headers=streamer.headers, json=details), 422, "document_required")
    assert (await upload(client, streamer.id, streamer.headers, png())).status_code == 201
    assert (await market.ok("POST", submit, headers=streamer.headers, json=details))["status"] == "submitted"
    problem(await upload(client, streamer.id, streamer.headers, png()), 409, "kyc_not_open")
    (case,) = (await market.ok("GET", "/v1/finance/kyc", headers=keys.server))["items"]
    assert {f["rule"]: f["points"] for f in case["risk_factors"]} == {
        "high_risk_country": 40, "country_mismatch": 20, "name_mismatch": 20, "underage": 50}
    assert case["risk_score"] == 100
    report = await market.ok("GET", "/v1/finance/kyc-report", headers=keys.server)
    assert report["by_status"] == {"submitted": 1} and report["high_risk_open"] == 1

    # In review, rejected with reasons (none: refused); the streamer sees why, adds a document, resubmits.
    case_url = f"/v1/finance/kyc/{case['id']}"
    assert (await market.ok("POST", f"{case_url}/review", headers=rh))["status"] == "in_review"
    problem(await client.post(f"{case_url}/review", headers=rh), 409, "kyc_not_submitted")
    problem(await client.post(f"{case_url}/decision", headers=rh, json={"verdict": "rejected"}), 422,
            "reasons_required")
    problem(await client.post(f"{case_url}/decision", headers=streamer.headers, json={"verdict": "verified"}), 403)
    await market.ok("POST", f"{case_url}/decision", headers=rh,
                    json={"verdict": "rejected", "reasons": ["the name does not match the bank account"]})
    seen = await market.ok("GET", f"/v1/streamers/{streamer.id}/kyc", headers=streamer.headers)
    assert (seen["status"], seen["reasons"]) == ("rejected", ["the name does not match the bank account"])
    problem(await client.post(url, headers=idem(streamer.headers), json=big), 409, "kyc_required")
    assert (await upload(client, streamer.id, streamer.headers, pdf(), kind="drivers_licence")).status_code == 201
    await market.ok("POST", submit, headers=streamer.headers,
                    json={"full_name": "Ann Example", "country": "DE", "date_of_birth": "1990-04-01"})
    case = await market.ok("GET", case_url, headers=keys.server)
    assert (case["status"], case["risk_score"], case["submissions"]) == ("submitted", 0, 2)
    verified = await market.ok("POST", f"{case_url}/decision", headers=rh, json={"verdict": "verified"})
    assert verified["expires_at"].startswith((clock.now() + timedelta(days=30)).date().isoformat())
    problem(await client.post(f"{case_url}/decision", headers=rh,
                              json={"verdict": "rejected", "reasons": ["too late"]}), 409, "kyc_not_submitted")
    await market.sign_in(streamer)
    assert (await client.post(url, headers=idem(streamer.headers), json=big)).status_code == 201

    # The verification runs out: large withdrawals stop at once; the sweep records it and, after the
    # retention period, drops the documents' content.
    clock.advance(days=31)
    await market.sign_in(streamer)
    body = problem(await client.post(url, headers=idem(streamer.headers), json=big), 409, "kyc_required")
    assert body["kyc_status"] == "expired"
    async with unit_of_work(runtime.sessions) as session:
        assert await kyc.sweep(session, runtime) >= 1
    assert (await market.ok("GET", case_url, headers=keys.server))["status"] == "expired"
    doc_url = f"{case_url}/documents/{case['documents'][0]['id']}"
    rh = (await factory.admin(keys.org_id)).headers(keys.app_id)  # a fresh sign-in, a month later
    problem(await client.get(doc_url, headers=rh), 404, "document_not_found")  # decided 31 days ago: > 10
    report = await market.ok("GET", "/v1/finance/kyc-report", headers=keys.server)
    assert report["by_status"] == {"expired": 1} and report["documents_held"] == 0
    assert report["documents_deleted"] == 2
    async with unit_of_work(runtime.sessions) as session:
        left = (await session.execute(sa.text("SELECT count(*) FROM kyc_documents WHERE app_id = :a "
                                              "AND sealed IS NOT NULL"), {"a": keys.app_id})).scalar_one()
    assert left == 0
    assert await verify(runtime, keys.app_id) == []
