"""The documentation's worked examples work as written, against a real ``questline serve``.

For README.md and each ``docs/*.md`` with examples (one test case per document), a fresh
``questline serve`` runs on SQLite in a temporary directory (its working directory, so the demo's
keys are in ``./questline-demo.json`` as the README says, and ``./.venv`` links to this Python's
environment when it is one, as in a checkout set up by ``./scripts/serve``). Each document gets
its own server and database, as a reader would; the first start's work (migrations, the demo) is
done once per session by ``questline init`` and its files copied into each directory. The document's
examples then run in ONE ``bash`` process, in document order, so later sections see what earlier
ones made (players, ``demo()``, ``AUTH``...).

Which blocks run: every fenced ```` ```bash ```` block that uses ``$QL`` (the engine's address)
or sets ``QL=`` (a setup block) is an API example and runs whole; the others (``./scripts/...``,
environment exports, CLI-only blocks such as ``questline demo simulate``, ``config load`` or
``replay``) are skipped. A block runs as written except for its literal ``http://127.0.0.1:8000``,
which becomes the test server's address. Only ``QL`` is set beforehand (``set -u`` stays off, no
``set -e``): ``KEY``, ``AUTH``, ``JSON``, ``demo()`` and the rest come from the document's own
setup blocks, so a document that uses a variable it never defines fails here as it would for a
reader.

What is checked: a ``curl()`` function wraps the real one with ``--trace-ascii`` to a file per
call (stdout, ``-o``, ``-w`` and ``-i`` behave exactly as written), from which the method, path,
status and response body of every call are read afterwards. Every call must get a response, none
may be a 5xx, and every 4xx must be one the document says is expected: ``EXPECTED_REFUSALS``
lists them per document (method, path pattern, status, problem code), and each listed refusal
must also happen. The script must reach its end (a block cannot swallow the rest), and its stderr
must hold no Python traceback and no "command not found" (an example whose own parsing or
commands are wrong). bash's exit status is not judged: examples end with a deliberate refusal.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.serving import prepare, serving

ROOT = Path(__file__).resolve().parents[2]
WRITTEN_ADDRESS = "http://127.0.0.1:8000"


class Refusal(NamedTuple):
    method: str
    path: str  # a regular expression, matched in full against the request's path and query
    status: int
    code: str  # the problem's "code"
    why: str


# The 4xx answers each document shows on purpose. Anything else in 400-499 fails the test.
EXPECTED_REFUSALS: dict[str, list[Refusal]] = {
    "README.md": [],
    "docs/keys-and-tokens.md": [
        Refusal("GET", r"/v1/players", 401, "key_revoked", "Keys: the rotated-away CI key no longer works (# 401)"),
        Refusal("GET", r"/v1/players/bob/account", 404, "not_found",
                "Keys: alice's player token reading bob (# 404: not alice's)"),
        Refusal("PATCH", r"/v1/players/alice/account", 403, "traits_not_writable",
                "Keys: alice's own token tries to set a trait"),
        Refusal("GET", r"/v1/players/alice/account", 401, "token_revoked",
                "Keys: alice's token after DELETE /v1/players/alice/tokens"),
    ],
    "docs/api-conventions.md": [
        Refusal("PUT", r"/v1/players/alice/account", 422, "validation_failed",
                "The problem example, time zone Mars/Olympus_Mons"),
        Refusal("POST", r"/v1/players/alice/tokens", 422, "idempotency_key_reused",
                "mint-alice-1 reused with another body"),
        Refusal("GET", r"/v1/players\?limit=500", 422, "validation_failed", "limit over 200"),
        Refusal("GET", r"/v1/players\?cursor=oops", 400, "invalid_cursor", "a made-up cursor"),
    ],
    "docs/challenges-and-quests.md": [
        Refusal("POST", r"/v1/challenge-claims/[^/]+/approve", 409, "claim_already_decided",
                "the second approval of Kai's claim"),
        Refusal("PUT", r"/v1/definitions/challenge/broken", 422, "invalid_definition",
                "a time_window objective without window_seconds"),
    ],
    "docs/events-and-progression.md": [],
    "docs/notifications.md": [
        Refusal("PUT", r"/v1/players/nia-[0-9a-f]+/notification-preferences", 422, "validation_failed",
                "A worked example: a channel that does not exist"),
    ],
    "docs/chat-and-announcements.md": [
        Refusal("POST", r"/v1/chat/community:\w+/messages", 422, "blocked_word",
                "A worked example: a message with a blocked word"),
        Refusal("GET", r"/v1/chat/community:\w+/messages", 403, "chat_members_only",
                "A worked example: a player outside the community reads its chat"),
        Refusal("POST", r"/v1/chat/community:\w+/messages", 403, "chat_muted",
                "A worked example: the muted player writes"),
        Refusal("POST", r"/v1/announcements", 403, "announcer_required",
                "A worked example: a community admin announces to the whole app"),
    ],
    "docs/fulfilment.md": [
        Refusal("POST", r"/v1/fulfilments/[^/]+/fulfil", 409, "fulfilment_already_completed",
                "A worked example: the hoodie marked with another reference"),
    ],
    "docs/players.md": [
        Refusal("POST", r"/v1/communities", 403, "starter_reward_forbidden",
                "Communities: a player creates a community that pays"),
        Refusal("PATCH", r"/v1/players/noor/account", 429, "timezone_change_too_soon",
                "Time zones: Noor moves back within the week"),
        Refusal("GET", r"/v1/players/zed/export", 404, "player_not_found", "Export and erasure: Zed is gone"),
    ],
    "docs/marketplace.md": [
        Refusal("POST", r"/v1/campaigns/[^/]+/join", 409, "already_joined", "The join chain: Ann joins twice"),
    ],
    "docs/finance.md": [
        Refusal("POST", r"/v1/streamers/[^/]+/withdrawals", 409, "kyc_required",
                "Withdrawals: Ann asks for $60 before her identity is verified"),
        Refusal("POST", r"/v1/streamers/[^/]+/withdrawals", 422, "withdrawal_out_of_bounds",
                "Withdrawals: Ann asks for more than the per-request maximum"),
        Refusal("POST", r"/v1/billing/invoices/[^/]+/finalize", 409, "invoice_transition_not_allowed",
                "Billing: the invoice is finalized a second time"),
        Refusal("POST", r"/v1/billing/invoices/[^/]+/credit-notes", 422, "credit_exceeds_due",
                "Billing: a credit note for more than is owed"),
        Refusal("POST", r"/v1/billing/invoices/generate", 422, "period_not_over",
                "Billing: the current month is asked for before it is over"),
        Refusal("POST", r"/v1/disputes/[^/]+/decision", 403, "caller_not_allowed",
                "Disputes: the server key may not decide"),
        Refusal("POST", r"/v1/disputes/[^/]+/decision", 409, "dispute_already_decided",
                "Disputes: a second decision refunds nothing more"),
    ],
    "docs/share-cards.md": [
        Refusal("POST", r"/v1/players/rin/share-cards", 409, "share_cards_private",
                "Worked example: Rin asks for a link while her cards are private"),
        Refusal("GET", r"/v1/share/[^/]+", 404, "share_card_not_found", "Worked example: the page once Rin is private"),
        Refusal("GET", r"/v1/share/[^/]+/image.png", 404, "share_card_not_found",
                "Worked example: a cache revalidating the image once Rin is private"),
        Refusal("POST", r"/v1/players/rin/share-cards", 404, "not_achieved",
                "Worked example: a level Rin never reached"),
    ],
    "docs/api-contract.md": [
        Refusal("GET", r"/v1/audit", 403, "caller_not_allowed", "The audit log: a server key may not read it"),
        Refusal("POST", r"/v1/ledger/grants", 422, "validation_failed", "Seeing it work: an integer beyond 64 bits"),
        Refusal("PATCH", r"/v1/players/bob/account", 422, "validation_failed", "Seeing it work: a null time zone"),
    ],
    "docs/referral-links.md": [
        Refusal("PATCH", r"/v1/communities/link-raiders", 422, "validation_failed",
                "Worked example: an http redirect_url is refused"),
    ],
}


@dataclass
class Block:
    number: int
    line: int  # where its text starts in the document
    heading: str
    text: str


def api_blocks(document: Path) -> list[Block]:
    """The document's ```bash blocks that use ``$QL`` or set ``QL=``, in order."""
    blocks: list[Block] = []
    body: list[str] = []
    heading, fence, start = "", False, 0
    for number, line in enumerate(document.read_text().splitlines(), 1):
        if fence:
            if line.strip() == "```":
                fence = False
                text = "\n".join(body) + "\n"
                if "$QL" in text or re.search(r"^QL=", text, re.MULTILINE):
                    blocks.append(Block(len(blocks), start, heading, text))
            else:
                body.append(line)
        elif line.startswith("```bash"):
            fence, start, body = True, number + 1, []
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
    return blocks


DOCUMENTS = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if api_blocks(p)]

# Runs first in the bash process: the engine's address, and curl wrapped so every call leaves a
# trace (call-N.trace), its arguments (call-N.args), the block it ran in (call-N.block) and its exit
# code (call-N.rc) in $QL_CALLS. The counter lives in a file: calls inside $(...) are subshells.
PRELUDE = r"""
QL=__BASE__
QL_CALLS=__CALLS__
curl() {
  local n
  n=$(( $(cat "$QL_CALLS/count" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$QL_CALLS/count"
  printf '%s\n' "$QL_BLOCK" > "$QL_CALLS/call-$n.block"
  printf '%q ' "$@" > "$QL_CALLS/call-$n.args"
  command curl --max-time 60 --trace-ascii "$QL_CALLS/call-$n.trace" "$@"
  local rc=$?
  echo "$rc" > "$QL_CALLS/call-$n.rc"
  return "$rc"
}
"""


@dataclass
class Call:
    number: int
    block: int
    args: str
    rc: int | None
    method: str | None
    target: str | None  # path and query as sent
    status: int | None
    body: str

    def describe(self) -> str:
        return (f"call {self.number}: {self.method} {self.target} -> {self.status} (curl exit {self.rc})\n"
                f"  curl {self.args}\n  response: {self.body[:2000]}")


def trace_sections(trace: str) -> list[tuple[str, str]]:
    """A ``--trace-ascii`` file as (section title, bytes as text) pairs.

    Each dump line shows at most 64 bytes after its hex offset; a header line that ended in CRLF
    shows without it, which the next line's offset reveals (the data of bodies shows newlines as
    ".", good enough for a failure message).
    """
    sections: list[tuple[str, list[tuple[int, str]]]] = []
    for line in trace.splitlines():
        if line.startswith(("=>", "<=", "==")):
            sections.append((line, []))
            continue
        dumped = re.match(r"^([0-9a-f]{4,}): (.*)$", line)
        if dumped and sections:
            sections[-1][1].append((int(dumped.group(1), 16), dumped.group(2)))
    joined = []
    for title, lines in sections:
        text = ""
        for i, (offset, part) in enumerate(lines):
            following = lines[i + 1][0] if i + 1 < len(lines) else None
            text += part + ("\n" if following is not None and following - offset > len(part) else "")
        joined.append((title, text))
    return joined


def read_calls(calls_dir: Path) -> list[Call]:
    count = int((calls_dir / "count").read_text()) if (calls_dir / "count").exists() else 0
    calls = []
    for n in range(1, count + 1):
        trace_file = calls_dir / f"call-{n}.trace"
        trace = trace_file.read_text(errors="replace") if trace_file.exists() else ""
        rc_file = calls_dir / f"call-{n}.rc"
        rc_text = rc_file.read_text().strip() if rc_file.exists() else ""
        method = target = None
        status = None
        body = ""
        for title, text in trace_sections(trace):
            if title.startswith("=> Send header") and method is None:
                request = re.match(r"^([A-Z]+) (\S+) HTTP/", text)
                if request:
                    method, target = request.group(1), request.group(2)
            elif title.startswith("<= Recv header"):
                response = re.match(r"^HTTP/[\d.]+ (\d{3})", text)
                if response and not response.group(1).startswith("1"):
                    status, body = int(response.group(1)), ""  # the final response, after any 100
            elif title.startswith("<= Recv data"):
                body += text
        calls.append(Call(n, int((calls_dir / f"call-{n}.block").read_text()),
                          (calls_dir / f"call-{n}.args").read_text(), int(rc_text) if rc_text else None,
                          method, target, status, body))
    return calls


def problem_code(body: str) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:  # the trace shows newlines as "."; problem bodies have none
        return None
    return parsed.get("code") if isinstance(parsed, dict) else None


@pytest.fixture(scope="session")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory as ``questline serve``'s first start leaves it, made once for every document."""
    return prepare(tmp_path_factory.mktemp("first-start"), QUESTLINE_LOG_LEVEL="WARNING")


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_worked_examples_work_as_written(document: Path, tmp_path: Path, first_start: Path) -> None:
    for tool in ("bash", "curl"):
        if shutil.which(tool) is None:
            why = f"{tool} is not installed: the documentation's examples are bash and curl"
            if REQUIRE_SERVICES:
                pytest.fail(f"{why} (CI must run them)")
            pytest.skip(why)
    name = str(document.relative_to(ROOT))
    blocks = api_blocks(document)
    expected = EXPECTED_REFUSALS.get(name, [])
    work = tmp_path / "work"
    calls_dir = tmp_path / "calls"
    work.mkdir()
    calls_dir.mkdir()
    if sys.prefix != sys.base_prefix:  # the README runs ./.venv/bin/... as in a checkout
        (work / ".venv").symlink_to(sys.prefix, target_is_directory=True)

    started = time.monotonic()
    with serving(work, from_prepared=first_start, QUESTLINE_LOG_LEVEL="WARNING") as served:
        script = PRELUDE.replace("__BASE__", served.base).replace("__CALLS__", str(calls_dir))
        for block in blocks:
            script += f"\nQL_BLOCK={block.number}\n{block.text.replace(WRITTEN_ADDRESS, served.base)}\n"
        script += f'\necho finished > "{calls_dir}/finished"\n'
        (tmp_path / "examples.sh").write_text(script)
        env = dict(served.env)
        env.pop("BASH_ENV", None)
        env.pop("ENV", None)
        run = subprocess.run(["bash", str(tmp_path / "examples.sh")], cwd=work, env=env, capture_output=True,
                             text=True, timeout=900, check=False)
        server_log = served.stderr()
    (tmp_path / "examples.out").write_text(run.stdout)  # for a human reading a failure
    (tmp_path / "examples.err").write_text(run.stderr)
    elapsed = time.monotonic() - started

    calls = read_calls(calls_dir)
    by_block = {b.number: b for b in blocks}
    failures: list[str] = []
    failing_blocks: set[int] = set()
    matched: set[int] = set()

    def fail(call: Call | None, why: str) -> None:
        if call is None:
            failures.append(why)
            return
        block = by_block[call.block]
        failing_blocks.add(block.number)
        failures.append(f"{why} in block {block.number} ({name}:{block.line}, under \"{block.heading}\")\n"
                        f"{call.describe()}")

    for call in calls:
        if call.status is None:
            fail(call, "no response (connection failed or timed out)")
        elif call.status >= 500:
            fail(call, f"a server error, {call.status}")
        elif call.status >= 400:
            code = problem_code(call.body)
            hits = [i for i, r in enumerate(expected)
                    if r.method == call.method and call.target is not None and re.fullmatch(r.path, call.target)
                    and r.status == call.status and r.code == code]
            if hits:
                matched.update(hits)
            else:
                fail(call, f"an unexpected {call.status} {code}")
    for i, refusal in enumerate(expected):
        if i not in matched:
            fail(None, f"the document shows a refusal that did not happen: {refusal}")
    if not (calls_dir / "finished").exists():
        fail(None, "the script did not reach its end (a block stopped the shell)")
    for sign in ("Traceback (most recent call last)", "command not found"):
        if sign in run.stderr:
            fail(None, f"{sign!r} in the examples' stderr")

    summary = f"{name}: {len(blocks)} blocks, {len(calls)} curl calls, {elapsed:.1f}s (script, traces: {tmp_path})"
    print(summary)
    shown = "".join(f"\n--- block {n} ({name}:{by_block[n].line}, under \"{by_block[n].heading}\") ---\n"
                    f"{by_block[n].text}" for n in sorted(failing_blocks))
    assert not failures, (f"{summary}\n\n" + "\n\n".join(failures) + f"\n{shown}"
                          f"\n--- bash stderr ---\n{run.stderr[-4000:]}"
                          f"\n--- server log (tail) ---\n{server_log[-4000:]}")
    assert calls, f"{name}: no curl call ran"
