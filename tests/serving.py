"""``questline serve`` as a real process: a free port, a bounded wait for readiness, a clean stop.

Used where the point is the real process (the CLI's ``serve``, the documentation's curl examples).
Its stdout and stderr go to files in its working directory, never to pipes: a pipe nobody reads
fills up and stalls a server that logs every request.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    base: str
    cwd: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]

    def stdout(self) -> str:
        return (self.cwd / "serve.out").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.cwd / "serve.err").read_text(errors="replace")


def serve_env(cwd: Path, **settings: str) -> dict[str, str]:
    """This environment without its ``QUESTLINE_*`` variables, plus a SQLite file in ``cwd``, passwords
    hashed at the test cost, and ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_")}
    # argon2 at its minimum, as in the suite's own engines (a setting may say otherwise).
    return env | {"QUESTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{cwd / 'questline.db'}",
                  "QUESTLINE_PASSWORD_HASH_COST": "low"} | settings


def prepare(cwd: Path, **settings: str) -> Path:
    """``questline init`` in ``cwd``: what ``serve``'s first start does there before it serves (the
    migrated SQLite file, the demo, ``questline-demo.json``, the secret file), for ``serving(from_prepared=)``."""
    cwd.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "questline", "init"], cwd=cwd, env=serve_env(cwd, **settings),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, timeout=300)
    return cwd


@contextmanager
def serving(cwd: Path, ready_seconds: float = 180, from_prepared: Path | None = None,
            **settings: str) -> Iterator[Served]:
    """Run ``questline serve`` in ``cwd`` (where it writes ``questline-demo.json``) until the block ends.

    The environment is this one without its ``QUESTLINE_*`` variables, plus a SQLite file in ``cwd``
    and ``settings`` (``QUESTLINE_LOG_JSON="true"``, …); ``Served.env`` is that environment, for
    commands that should see the engine's settings. Output is readable after the block ends.
    ``from_prepared``: a directory made by ``prepare`` whose files are copied into ``cwd`` first, so
    the server starts where a first start would have left it, without paying for it again.
    """
    if from_prepared is not None:
        shutil.copytree(from_prepared, cwd, dirs_exist_ok=True)
    port = free_port()
    env = serve_env(cwd, **settings)
    with (cwd / "serve.out").open("wb") as out, (cwd / "serve.err").open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "questline", "serve", "--host", "127.0.0.1", "--port",
                                 str(port)], cwd=cwd, env=env, stdout=out, stderr=err)
    served = Served(f"http://127.0.0.1:{port}", cwd, env, proc)
    try:
        deadline = time.monotonic() + ready_seconds
        # One client for every poll: each ``httpx.get`` builds a client and loads the CA bundle
        # (about 25 ms of CPU), which a slow start repeats dozens of times.
        with httpx.Client(timeout=1) as poll:
            while True:  # waiting for a real process to open its port is the point here
                assert proc.poll() is None, f"questline serve exited:\n{served.stdout()}\n{served.stderr()}"
                try:
                    if poll.get(f"{served.base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"questline serve did not come up:\n{served.stderr()}"
                time.sleep(0.2)
        yield served
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
