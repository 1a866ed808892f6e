"""The admin console in headless Chromium against a real ``questline serve``, and its guards over HTTP.

Issue 16 points 1 and 5: an admin signs in, makes a key (its secret shown once), edits a definition
(a broken one is refused with the API's reason, a good one saved), and approves a claim that a
player filed; the approval pays the player. Without a session every page leads to sign-in, and a
form without its CSRF token changes nothing.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import Served, serving
from tests.widgets.test_widgets import CHROMIUM, browser_or_skip

pytestmark = pytest.mark.slow
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


@pytest.fixture
def engine_process(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as served:
        yield served


def demo(served: Served) -> dict[str, str]:
    data: dict[str, str] = json.loads((served.cwd / "questline-demo.json").read_text())
    return data


def file_a_claim(base: str, server_key: str) -> str:
    auth = {"Authorization": f"Bearer {server_key}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as api:
        assert api.put("/v1/definitions/challenge/coach-check", json={
            "name": "Coach check", "recurrence": "weekly", "completion_mode": "claim",
            "objectives": [{"type": "count", "event_type": "trainer.session", "target": 1}],
            "rewards": {"points": {"currency": "points", "amount": 40}}}).is_success
        sent = api.post("/v1/events?wait=true", json={"id": "t-1", "player_id": "kai", "type": "trainer.session",
                                                       "data": {"minutes": 60}})
        assert sent.json()["processed"] is True, sent.text
        claim = api.post("/v1/players/kai/challenges/coach-check/claim", headers={"Idempotency-Key": "c-1"},
                         json={"verification": {"trainer_id": "coach-3"}})
        assert claim.status_code == 201, claim.text
        return str(claim.json()["id"])


def balance(base: str, server_key: str, player: str) -> int:
    answer = httpx.get(f"{base}/v1/players/{player}/balances", headers={"Authorization": f"Bearer {server_key}"})
    for item in answer.json().get("balances", answer.json() if isinstance(answer.json(), list) else []):
        if item.get("currency") == "points":
            return int(item["balance"])
    return 0


def test_an_admin_signs_in_makes_a_key_edits_a_definition_and_approves_a_claim(engine_process: Served,
                                                                              tmp_path: Path) -> None:
    sync_playwright = browser_or_skip()
    expect = importlib.import_module("playwright.sync_api").expect
    base, secrets = engine_process.base, demo(engine_process)
    claim_id = file_a_claim(base, secrets["server_key"])
    before = balance(base, secrets["server_key"], "kai")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{base}/console")
            assert "/console/login" in page.url
            page.fill("input[name=email]", "demo@questline.local")
            page.fill("input[name=password]", "wrong password")
            page.click("main button[type=submit]")
            expect(page.locator(".error")).to_contain_text("invalid_credentials")
            page.fill("input[name=password]", secrets["admin_password"])
            page.click("main button[type=submit]")
            page.click(f"a[href='/console/apps/{secrets['app_id']}']")
            assert page.locator("a", has_text="challenge").count() >= 1

            # Keys: a new client key's secret is shown once and works.
            page.click("nav >> text=Keys")
            page.select_option("select[name=kind]", "client")
            page.fill("input[name=name]", "console-made")
            page.click("text=Make key")
            expect(page.locator("#new-secret")).to_contain_text("ql_pk_")
            secret = page.inner_text("#new-secret")
            assert secret.startswith("ql_pk_")
            assert httpx.get(f"{base}/v1/achievements", headers={"Authorization": f"Bearer {secret}"}).is_success

            # A definition: a broken one is refused with the API's reason; a good one is saved.
            page.goto(f"{base}/console/apps/{secrets['app_id']}/definitions/leaderboard/console-board")
            page.fill("textarea[name=body]", '{"name": "Console board", "operator": "nonsense"}')
            page.click("text=Save the text")
            expect(page.locator(".error")).to_contain_text("invalid_definition: operator")
            expect(page.locator("#error-operator")).to_contain_text("Input should be")
            page.fill("textarea[name=body]", '{"name": "Console board", "event_type": "steps.logged", '
                                             '"field": "data.steps", "operator": "sum"}')
            page.click("text=Save the text")
            expect(page.locator(".ok")).to_have_text("Saved.")
            # The generated form saves a second version; the history shows what changed.
            page.fill("#input-name", "Console board 2")
            page.click("text=Save the form")
            expect(page.locator(".ok")).to_have_text("Saved.")
            expect(page.locator("h1 small")).to_have_text("version 2")
            page.click("text=History and diff")
            expect(page.locator("#diff tr.removed")).to_contain_text('"name": "Console board"')
            expect(page.locator("#diff tr.added")).to_contain_text('"name": "Console board 2"')
            page.goto(f"{base}/console/apps/{secrets['app_id']}/definitions/leaderboard/console-board")
            saved = httpx.get(f"{base}/v1/definitions/leaderboard/console-board",
                              headers={"Authorization": f"Bearer {secrets['server_key']}"}).json()
            assert saved["body"]["name"] == "Console board 2" and saved["body"]["operator"] == "sum"

            # The claims queue: approve Kai's claim; it leaves the queue and pays him.
            page.click("nav >> text=Claims")
            row = page.locator(f"#claim-{claim_id}")
            assert "kai" in row.inner_text()
            row.locator("button[value=approve]").click()
            expect(page.locator(".ok")).to_contain_text("approved")
            assert page.locator(f"#claim-{claim_id}").count() == 0
            page.click("nav >> text=Audit log")
            expect(page.locator("main")).to_contain_text("challenges_approve")
            shots = os.environ.get("QUESTLINE_SCREENSHOTS")
            page.goto(f"{base}/console/apps/{secrets['app_id']}/players/kai")
            page.screenshot(path=str(Path(shots) / "console.png" if shots else tmp_path / "console.png"),
                            full_page=True)
            assert balance(base, secrets["server_key"], "kai") == before + 40

            # An adjustment with its reason; a refused one shows the API's reason and changes nothing.
            page.fill("input[name=amount]", "-1000000")
            page.fill("input[name=reason]", "too much")
            page.click("button:has-text('Adjust')")
            expect(page.locator(".error")).to_contain_text("insufficient_funds")
            page.fill("input[name=amount]", "10")
            page.fill("input[name=reason]", "goodwill after an outage")
            page.click("button:has-text('Adjust')")
            expect(page.locator(".ok")).to_have_text("Player adjusted.")
            assert balance(base, secrets["server_key"], "kai") == before + 50
            with page.expect_download() as download:
                page.click("text=Export everything")
            exported = json.loads(Path(download.value.path()).read_text())
            assert "kai" in json.dumps(exported)

            # Erasure needs the id typed again.
            page.fill("input[name=confirm]", "not-kai")
            page.click("button.danger:has-text('Erase')")
            expect(page.locator(".error")).to_contain_text("not_confirmed")
            page.fill("input[name=confirm]", "kai")
            page.click("button.danger:has-text('Erase')")
            expect(page.locator(".ok")).to_have_text("Player erased.")
        finally:
            browser.close()
    erased = httpx.get(f"{base}/v1/players/kai/export", headers={"Authorization": f"Bearer {secrets['server_key']}"})
    assert erased.status_code == 404 or "Kai" not in erased.text


def test_pages_need_a_session_and_forms_need_their_csrf_token(engine_process: Served) -> None:
    base, secrets = engine_process.base, demo(engine_process)
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as browser:
        app = secrets["app_id"]
        for path in ("/console", f"/console/apps/{app}/keys", f"/console/apps/{app}/claims"):
            answer = browser.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")
        form = browser.get("/console/login")
        assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
        csrf = browser.cookies.get("ql_console_csrf")
        forged = browser.post("/console/login", data={"email": "demo@questline.local",
                                                       "password": secrets["admin_password"], "csrf": "forged"})
        assert forged.status_code == 403 and "ql_console" not in forged.cookies
        signed = browser.post("/console/login", data={"email": "demo@questline.local",
                                                       "password": secrets["admin_password"], "csrf": csrf})
        assert signed.status_code == 303 and "ql_console" in signed.cookies
        cookie = signed.headers.get_list("set-cookie")[0].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        # Signed in, a form without the token still changes nothing: no key is made.
        keys_before = browser.get(f"/console/apps/{secrets['app_id']}/keys").text.count("<tr>")
        refused = browser.post(f"/console/apps/{secrets['app_id']}/keys", data={"action": "create", "kind": "server"})
        assert refused.status_code == 403
        assert browser.get(f"/console/apps/{secrets['app_id']}/keys").text.count("<tr>") == keys_before


def sign_in(page: Any, base: str, password: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("input[name=email]", "demo@questline.local")
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")


def test_the_live_view_shows_the_engine_and_a_board_moving(tmp_path: Path) -> None:
    sync_playwright = browser_or_skip()
    expect = importlib.import_module("playwright.sync_api").expect
    with serving(tmp_path, QUESTLINE_REALTIME_MONITOR_SECONDS="1") as served:
        base, secrets = served.base, demo(served)
        auth = {"Authorization": f"Bearer {secrets['server_key']}"}
        assert httpx.put(f"{base}/v1/definitions/leaderboard/live-steps", headers=auth, json={
            "name": "Live steps", "event_type": "steps.logged", "field": "data.steps", "operator": "sum"}).is_success
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                sign_in(page, base, secrets["admin_password"])
                page.goto(f"{base}/console/apps/{secrets['app_id']}/live")
                page.select_option("select[name=board]", "live-steps")
                page.click("text=Watch")
                expect(page.locator("#live-state")).to_contain_text("Connected", timeout=15_000)
                expect(page.locator("#eps")).not_to_have_text("–", timeout=15_000)
                for i, (player, steps) in enumerate((("ana", 500), ("bo", 900))):
                    sent = httpx.post(f"{base}/v1/events?wait=true", headers=auth, json={
                        "id": f"live-{i}", "player_id": player, "type": "steps.logged", "data": {"steps": steps}})
                    assert sent.is_success, sent.text
                rows = page.locator("#standings-rows tr")
                expect(rows).to_have_count(2, timeout=20_000)  # no reload: the script read the board again
                expect(rows.first).to_contain_text("900")
                expect(page.locator("#board-updated")).to_contain_text("Updated")
                assert page.locator("#eps-line").get_attribute("points")
                assert not [e for e in errors if "Content Security Policy" in e], errors
            finally:
                browser.close()
