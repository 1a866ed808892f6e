"""The JavaScript SDK in headless Chromium: events tracked offline survive a reload and are sent once.

Issue 16 point 3 ("and in headless Chromium"). A host page on its own origin imports
``sdk/js/src/index.js`` as an ES module; Playwright takes the browser offline, the page tracks
events (kept in localStorage), reloads, comes back online and flushes; the engine then holds each
event exactly once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import Served, serving
from tests.widgets.test_widgets import CHROMIUM, browser_or_skip

pytestmark = pytest.mark.slow
SDK = Path(__file__).resolve().parents[2] / "sdk" / "js" / "src" / "index.js"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


class Host(BaseHTTPRequestHandler):
    files: dict[str, tuple[str, bytes]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        content_type, body = type(self).files.get(path, ("text/plain", b"not found"))
        self.send_response(200 if path in type(self).files else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def engine_process(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as served:
        yield served


APP = """
import { Questline } from "/index.js";
window.sdk = new Questline({ baseUrl: "__ENGINE__", token: "__TOKEN__", playerId: "bea", attempts: 1 });
window.ready = true;
"""


def test_events_tracked_offline_survive_a_reload_and_are_sent_once(engine_process: Served, host: str) -> None:
    sync_playwright = browser_or_skip()
    base = engine_process.base
    server_key = json.loads((engine_process.cwd / "questline-demo.json").read_text())["server_key"]
    auth = {"Authorization": f"Bearer {server_key}"}
    token = httpx.post(f"{base}/v1/players/bea/tokens", headers=auth, json={"ttl_seconds": 3600}).json()["token"]
    Host.files = {
        "/": ("text/html", b'<!doctype html><html><body><script type="module" src="/app.js"></script></body></html>'),
        "/index.js": ("text/javascript", SDK.read_bytes()),
        "/app.js": ("text/javascript", APP.replace("__ENGINE__", base).replace("__TOKEN__", token).encode()),
        "/favicon.ico": ("image/x-icon", b""),
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.goto(host + "/")
            page.wait_for_function("window.ready === true")
            context.set_offline(True)
            ids = page.evaluate("[sdk.track('water.logged', {ml: 250}), sdk.track('meal.logged')]")
            offline = page.evaluate("sdk.flush()")
            assert offline["offline"] is True and offline["pending"] == 2

            context.set_offline(False)
            page.reload()  # a new page load: the queue is in localStorage, with the ids made when tracked
            page.wait_for_function("window.ready === true")
            assert page.evaluate("sdk.queued().map(e => e.id)") == ids
            page.evaluate("window.snapshot = localStorage.getItem(sdk.queueKey)")
            sent = page.evaluate("sdk.flush()")
            assert sorted(sent["accepted"]) == sorted(ids) and sent["pending"] == 0
            # A crash between sending and forgetting: the same events go again and are duplicates.
            again = page.evaluate("localStorage.setItem(sdk.queueKey, window.snapshot), sdk.flush()")
            assert sorted(again["duplicates"]) == sorted(ids) and again["accepted"] == []
        finally:
            browser.close()
    events = httpx.get(f"{base}/v1/players/bea/events", headers=auth, params={"limit": 50}).json()["items"]
    assert sorted(e["event_id"] for e in events) == sorted(ids)
