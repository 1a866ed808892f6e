"""What ``questline serve`` loads to serve the common path: not the libraries only some requests
need (docs/operations.md, "First start and memory"). Each is imported on its first use instead;
importing one at module level again adds megabytes to every process's idle memory."""

from __future__ import annotations

import json
import subprocess
import sys

# redis: the scaled tier's client, made by kit.runtime only when QUESTLINE_REDIS_URL is set (about 7 MB).
# httpx: outbound calls only (about 5 MB); cryptography: sealing secrets at rest only (about 6 MB; tokens are
# signed with the standard library, so no JWT library loads it). yaml: the demo's content and the console's YAML
# forms; aiosmtplib: email notifications; argon2: passwords (console sign-ins, admins), not keys or tokens
# (about 1, 1 and 0.5 MB). jinja2: the console's pages, notification templates, invoices, share cards (about
# 1.8 MB); limits: its notation is parsed by kit.ratelimit.parse_rule (the package, with its storage backends, 1.6 MB);
# sqlite3: SQLite engines only (0.9 MB on PostgreSQL); xml.sax: spreadsheets escape with html.escape (0.5 MB).
ON_FIRST_USE = ["alembic", "nats", "aiohttp", "fpdf", "fontTools", "eth_utils", "web3", "eth_account", "lxml", "PIL",
                "redis", "httpx", "httpcore", "jwt", "cryptography", "yaml", "aiosmtplib", "argon2", "jinja2",
                "limits", "sqlite3", "xml.sax"]


def test_the_engine_and_cli_import_without_the_libraries_of_rare_requests() -> None:
    code = ("import json, sys\nimport questline.cli.main, questline.app, questline.migrations\n"
            f"print(json.dumps(sorted(m for m in {ON_FIRST_USE!r} if m in sys.modules)))")
    # A process of its own: this one has imported everything the other tests needed.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
