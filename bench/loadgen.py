"""The load generator of bench/run.py: wrk with bench/wrk.lua, pinned to its own core(s)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "wrk.lua"
MARKER = "QLJSON "


@dataclass
class Load:
    """What one wrk run measured (latencies in milliseconds)."""

    requests: int
    seconds: float
    ok: int  # 2xx answers
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: int = 0

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def parse(output: str) -> Load:
    """Read the ``QLJSON`` line that bench/wrk.lua's ``done`` prints."""
    for line in output.splitlines():
        if line.startswith(MARKER):
            data: dict[str, Any] = json.loads(line[len(MARKER):])
            break
    else:
        raise RuntimeError(f"wrk printed no result line:\n{output[-2000:]}")
    statuses = {str(k): int(v) for k, v in data.get("statuses", {}).items()}
    ok = sum(n for code, n in statuses.items() if code.startswith("2")) if statuses else \
        data["requests"] - data["non_2xx"]
    return Load(requests=data["requests"], seconds=data["duration_us"] / 1e6, ok=ok,
                p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000, statuses=statuses,
                socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"])


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian's package) and run again")
    return found


def command(url: str, *, seconds: float, connections: int, cpus: str | None, threads: int = 1) -> list[str]:
    cmd = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(LUA), url]
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus, *cmd]
    return cmd


async def run(url: str, *, seconds: float, connections: int, cpus: str | None, **lua: str | int) -> Load:
    """One wrk run against ``url``; ``lua`` sets bench/wrk.lua's ``QL_*`` variables (``mode="get"`` …)."""
    env = {**os.environ, **{f"QL_{k.upper()}": str(v) for k, v in lua.items()}}
    proc = await asyncio.create_subprocess_exec(*command(url, seconds=seconds, connections=connections, cpus=cpus),
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text[-2000:]}")
    return parse(text)
