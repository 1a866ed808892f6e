"""The console's live pages in headless Chromium against a real ``questline serve``: a campaign's
impressions and spend (campaign.js, over campaign:<id>) and a competition's standings (standings.js,
over competition:<id>) change on the open page, without a reload, when the engine records what moves
them through its API."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.test_console import LAUNCH_ARGS, demo, sign_in
from tests.serving import serving
from tests.widgets.test_widgets import CHROMIUM, browser_or_skip

pytestmark = pytest.mark.slow


@contextmanager
def console_page(base: str, password: str) -> Iterator[tuple[Any, list[str]]]:
    """Chromium signed in to the console as the demo admin: the page, and the errors its console logs."""
    sync_playwright = browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            sign_in(page, base, password)
            yield page, errors
        finally:
            browser.close()


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, f"{answer.request.url}: {answer.status_code} {answer.text}"
    return answer.json()


def running_campaign(api: httpx.Client, client_key: str) -> tuple[str, str]:
    """A brand's funded, approved campaign (a cent an impression) with one streamer in it."""
    client = {"Authorization": f"Bearer {client_key}"}
    email, password = f"brand-{uuid.uuid4().hex[:8]}@example.test", "correct horse battery staple"
    brand = ok(api.post("/v1/brands", headers=client, json={
        "company_name": "Fizz", "industry": "beverages",
        "owner": {"email": email, "password": password, "name": "Owner"}}), 201)
    token = ok(api.post("/v1/brands/login", headers=client, json={"email": email, "password": password}))["token"]
    as_brand = {"Authorization": f"Bearer {token}"}
    ok(api.post(f"/v1/brands/{brand['id']}/wallet/deposits", headers={"Idempotency-Key": uuid.uuid4().hex},
                json={"currency": "USD", "amount": 100_000}), 201)
    made = ok(api.post("/v1/campaigns", headers=as_brand, json={
        "title": "Fizz launch", "currency": "USD", "budget": 100_000, "rate_per_mille": 1_000,
        "categories": ["gaming"], "impression_target": 1_000_000}), 201)
    ok(api.post(f"/v1/campaigns/{made['id']}/submit", headers=as_brand))
    ok(api.post(f"/v1/campaigns/{made['id']}/approve"))
    streamer_email = f"streamer-{uuid.uuid4().hex[:8]}@example.test"
    streamer = ok(api.post("/v1/streamers", headers=client, json={
        "email": streamer_email, "password": password, "display_name": "Sam", "content_categories": ["gaming"],
        "platforms": [{"name": "twitch", "username": "sam-live"}]}), 201)
    ok(api.post(f"/v1/streamers/{streamer['id']}/platforms/twitch/verification", json={"status": "verified"}))
    ok(api.put(f"/v1/streamers/{streamer['id']}/audience", json={
        "demographics": {"primary_country": "DE"},
        "platforms": {"twitch": {"followers": 5000, "average_viewers": 500, "peak_viewers": 1000,
                                 "content_categories": ["gaming"]}}}))
    signed = ok(api.post("/v1/streamers/login", headers=client, json={"email": streamer_email, "password": password}))
    ok(api.post(f"/v1/campaigns/{made['id']}/join", json={},
                headers={"Authorization": f"Bearer {signed['token']}", "Idempotency-Key": uuid.uuid4().hex}), 201)
    return made["id"], streamer["id"]


def test_the_campaign_page_shows_impressions_and_spend_as_they_are_recorded(tmp_path: Path) -> None:
    browser_or_skip()
    expect = importlib.import_module("playwright.sync_api").expect
    with serving(tmp_path) as served:
        base, secrets = served.base, demo(served)
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {secrets['server_key']}"}) \
                as api:
            campaign_id, streamer_id = running_campaign(api, secrets["client_key"])
            with console_page(base, secrets["admin_password"]) as (page, errors):
                page.goto(f"{base}/console/apps/{secrets['app_id']}/campaigns/{campaign_id}")
                page.click("text=Impressions and spend, live")
                expect(page.locator("#live-state")).to_contain_text("Connected", timeout=15_000)
                expect(page.locator("#impressions")).to_have_text("0")
                for n, count in enumerate((250, 130)):
                    ok(api.post(f"/v1/campaigns/{campaign_id}/impressions", json={
                        "impressions": [{"id": f"live-{n}", "streamer_id": streamer_id, "count": count}]}))
                # No reload: the frames on campaign:<id> moved the numbers.
                expect(page.locator("#impressions")).to_have_text("380", timeout=20_000)
                expect(page.locator("#spent")).to_have_text("380")
                expect(page.locator("#remaining")).to_have_text(str(100_000 - 380))
                expect(page.locator("#totals-updated")).to_contain_text("Updated")
                assert not [e for e in errors if "Content Security Policy" in e], errors


def test_the_standings_page_moves_when_a_competitor_scores(tmp_path: Path) -> None:
    browser_or_skip()
    expect = importlib.import_module("playwright.sync_api").expect
    now = datetime.now(UTC)
    with serving(tmp_path) as served:
        base, secrets = served.base, demo(served)
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {secrets['server_key']}"}) \
                as api:
            made = ok(api.post("/v1/competitions", json={
                "name": "Night trading cup", "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=2)).isoformat(),
                "scoring": {"event_type": "trade", "field": "data.volume", "operator": "sum"}}), 201)

            def trade(n: int, player: str, volume: int) -> None:
                sent = ok(api.post("/v1/events?wait=true", json={
                    "id": f"trade-{n}", "player_id": player, "type": "trade", "data": {"volume": volume}}))
                assert sent["processed"] is True, sent

            for player in ("ana", "bo"):
                ok(api.post(f"/v1/competitions/{made['id']}/participants/{player}"), 201)
            trade(1, "ana", 500)
            trade(2, "bo", 300)
            with console_page(base, secrets["admin_password"]) as (page, errors):
                page.goto(f"{base}/console/apps/{secrets['app_id']}/competitions/{made['id']}/live")
                expect(page.locator("#live-state")).to_contain_text("Connected", timeout=15_000)
                rows = page.locator("#standings-rows tr")
                expect(rows).to_have_count(2)
                expect(rows.first).to_contain_text("ana")
                trade(3, "bo", 450)  # bo overtakes ana: 750 against 500
                expect(rows.first).to_contain_text("bo", timeout=20_000)
                expect(rows.first).to_contain_text("750")
                expect(rows.nth(1)).to_contain_text("ana")
                expect(page.locator("#board-updated")).to_contain_text("Updated")
                assert not [e for e in errors if "Content Security Policy" in e], errors
