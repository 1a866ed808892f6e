"""Shared pieces for benchmarks: a real server in a subprocess, latency stats, result files."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def questline(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "questline", *args], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"questline {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextlib.contextmanager
def server(env: dict[str, str], port: int, log: Path | None = None) -> Iterator[psutil.Process]:
    """Run ``questline serve`` on a loopback port until the block ends (its log kept in ``log``)."""
    sink = log.open("w") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "questline", "serve", "--no-demo", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "QUESTLINE_DATABASE_URL": database_url, "QUESTLINE_LOG_LEVEL": "WARNING",
            "QUESTLINE_RATE_LIMIT_PER_KEY": "100000000/minute", "QUESTLINE_RATE_LIMIT_PER_PLAYER": "100000000/minute",
            "QUESTLINE_API_KEY_CACHE_SECONDS": "60"}


@dataclass
class Result:
    name: str
    events: int
    requests: int
    seconds: float
    committed_seconds: float
    latencies_ms: list[float] = field(repr=False)
    server_rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.committed_seconds if self.committed_seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "name": self.name, "events": self.events, "requests": self.requests,
            "ingest_events_per_s": round(self.events / self.seconds, 1),
            "committed_events_per_s": round(self.events_per_second, 1),
            "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2),
            "mean_ms": round(statistics.fmean(lat), 2) if lat else 0.0,
            "server_rss_mb": round(self.server_rss_mb, 1), **self.extra,
        }


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def save(results: list[dict[str, Any]], path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2))


def compare(current: list[dict[str, Any]], baseline_path: Path) -> list[str]:
    """Lines comparing each named result with the same name in a previous run's JSON."""
    baseline = {r["name"]: r for r in json.loads(baseline_path.read_text())}
    lines = []
    for row in current:
        old = baseline.get(row["name"])
        if old is None:
            continue
        for metric in ("committed_events_per_s", "p50_ms", "p99_ms", "server_rss_mb"):
            if old.get(metric):
                change = (row[metric] - old[metric]) / old[metric] * 100
                lines.append(f"{row['name']:<28} {metric:<24} {old[metric]:>10} -> {row[metric]:>10} ({change:+.1f}%)")
    return lines


def asdict_summary(result: Result) -> dict[str, Any]:
    return result.summary() | {"raw": {k: v for k, v in asdict(result).items() if k != "latencies_ms"}}
