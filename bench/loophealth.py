"""The engine's event-loop lag and GC pauses during a phase, from its ``/metrics`` histograms.

``questline_event_loop_lag_seconds`` (how late a 25 ms timer fired: synchronous work holding the
loop) and ``questline_gc_pause_seconds`` (each collection, by generation), kit/loopwatch.py. A
phase's figures are the difference of two scrapes; percentiles are bucket upper bounds.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

LAG = "questline_event_loop_lag_seconds"
GC = "questline_gc_pause_seconds"
_LINE = re.compile(r'^(\w+)_(bucket|sum|count)(?:\{(.*)\})? ([0-9.e+-]+|\+Inf|NaN)$')
_LABEL = re.compile(r'(\w+)="([^"]*)"')

Histograms = dict[tuple[str, str], dict[str, float]]  # (metric, labels but le) -> {"le=…"|"sum"|"count": value}


def parse(text: str) -> Histograms:
    out: Histograms = {}
    for line in text.splitlines():
        found = _LINE.match(line)
        if found is None or found.group(1) not in (LAG, GC):
            continue
        name, part, labels, value = found.groups()
        pairs = dict(_LABEL.findall(labels or ""))
        le = pairs.pop("le", None)
        key = (name, ",".join(f"{k}={v}" for k, v in sorted(pairs.items())))
        out.setdefault(key, {})[f"le={le}" if part == "bucket" else part] = float(value)
    return out


async def scrape(base: str) -> Histograms:
    """The engine's loop and GC histograms now (empty if it has none)."""
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            return parse((await client.get("/metrics")).text)
    except httpx.HTTPError:
        return {}


def _quantile(buckets: list[tuple[float, float]], total: float, q: float) -> float | None:
    for bound, cumulative in buckets:
        if cumulative >= q * total:
            return bound
    return None


def between(before: Histograms, after: Histograms) -> dict[str, Any]:
    """What happened between two scrapes: lag p50/p99/worst bucket (ms), ticks over 20 ms; GC
    collections, total and worst pause per generation."""
    out: dict[str, Any] = {}
    for key, now in sorted(after.items()):
        then = before.get(key, {})
        delta = {k: v - then.get(k, 0.0) for k, v in now.items()}
        count = delta.get("count", 0.0)
        if not count:
            continue
        buckets = sorted((float(k[3:]), v) for k, v in delta.items() if k.startswith("le="))
        worst = next((bound for bound, cumulative in buckets if cumulative >= count), None)
        finite = [(b, c) for b, c in buckets if b != float("inf")]
        over_20ms = count - max((c for b, c in finite if b <= 0.02), default=0.0)
        def ms(seconds: float | None) -> float | str | None:
            return None if seconds is None else "inf" if seconds == float("inf") else round(seconds * 1000, 1)

        name, labels = key
        if name == LAG:
            out["loop_lag"] = {"ticks": int(count), "p50_ms<=": ms(_quantile(buckets, count, 0.5)),
                               "p99_ms<=": ms(_quantile(buckets, count, 0.99)), "worst_ms<=": ms(worst),
                               "over_20ms": int(over_20ms), "total_s": round(delta.get("sum", 0.0), 3)}
        else:
            out.setdefault("gc", {})[labels.replace("generation=", "gen")] = {
                "collections": int(count), "total_ms": round(delta.get("sum", 0.0) * 1000, 1),
                "worst_ms<=": ms(worst)}
    return out
