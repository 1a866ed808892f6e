"""Rows of bench/run.py: ratios to their ceilings, the printed table, the JSON file and ``--compare``.

A row is a plain dict (so the JSON file is the rows as measured). Keys:

- ``name`` (unique in a run), ``kind`` (``"ceiling"``, ``"engine"`` or ``"single"`` for a one-off
  figure such as an idle RSS), ``unit`` of ``value`` (``"events/s"``, ``"req/s"``, ``"MB"``, ``"s"``);
- ``ceiling``: the name of the ceiling row this figure is measured against (same run), and for
  events ``bare_ceiling``, the bare-202 ceiling of the same body (no database at all);
- optional figures: ``processed_per_s``, ``backlog``, ``p50_ms``, ``p99_ms``, ``cpu_s_per_1k``,
  ``statements_per_event``, ``rss_mb``, ``load``, ``errors``, ``aim``, ``note``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

Row = dict[str, Any]

# Figures where a larger number is better; for the rest (latency, CPU, statements, memory, time) smaller is.
HIGHER_IS_BETTER = {"processed_per_s", "ratio"}
COMPARED = ("value", "ratio", "processed_per_s", "p50_ms", "p99_ms", "cpu_s_per_1k", "statements_per_event",
            "rss_mb")


def with_ratios(rows: list[Row]) -> list[Row]:
    """Each row that names a ceiling gets ``ceiling_value`` and ``ratio`` (ours ÷ ceiling)."""
    by_name = {r["name"]: r for r in rows}
    out = []
    for original in rows:
        row = dict(original)
        ceiling = by_name.get(row.get("ceiling") or "")
        if ceiling is not None and ceiling.get("value"):
            row["ceiling_value"] = ceiling["value"]
            row["ratio"] = round(row["value"] / ceiling["value"], 3)
        bare = by_name.get(row.get("bare_ceiling") or "")
        if bare is not None and bare.get("value"):
            row["ratio_bare"] = round(row["value"] / bare["value"], 3)
        out.append(row)
    return out


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def table(rows: list[Row], title: str) -> Table:
    t = Table(title=title)
    for column in ("scenario", "ours", "ceiling", "ratio", "vs bare 202", "processed/s", "p50 ms", "p99 ms",
                   "CPU s/1k ev", "stmts/ev", "RSS MB", "load", "errors"):
        t.add_column(column, justify="left" if column in ("scenario", "ceiling") else "right")
    for r in rows:
        if r["kind"] == "ceiling":
            continue
        ours = f"{_num(r['value'], 1 if r['unit'] == 's' else 0)} {r['unit']}"
        ceiling = f"{_num(r.get('ceiling_value'))} ({r['ceiling']})" if r.get("ceiling") else ""
        t.add_row(r["name"], ours, ceiling, _ratio(r.get("ratio")), _ratio(r.get("ratio_bare")),
                  _num(r.get("processed_per_s")), _num(r.get("p50_ms"), 2), _num(r.get("p99_ms"), 2),
                  _num(r.get("cpu_s_per_1k"), 3), _num(r.get("statements_per_event"), 3), _num(r.get("rss_mb")),
                  _num(r.get("load"), 2), _errors(r.get("errors")))
    return t


def sqlite_lines(rows: list[Row]) -> list[str]:
    """SQLite beside PostgreSQL for the scenarios run on both (the aim: at least half)."""
    lines = []
    for r in rows:
        if r.get("vs_postgres") is not None:
            line = f"{r['name']}: {r['vs_postgres']:.2f}× PostgreSQL's figure"
            if r.get("processed_vs_postgres") is not None:
                line += f", processed {r['processed_vs_postgres']:.2f}×"
            lines.append(line)
    return lines


def ceilings_table(rows: list[Row]) -> Table:
    t = Table(title="the ceilings (bare FastAPI on uvicorn, same server core, same load generator)")
    for column in ("ceiling", "value", "p50 ms", "p99 ms", "CPU s/1k ev", "RSS MB", "load", "errors"):
        t.add_column(column, justify="left" if column == "ceiling" else "right")
    for r in rows:
        if r["kind"] == "ceiling":
            t.add_row(r["name"], f"{_num(r['value'])} {r['unit']}", _num(r.get("p50_ms"), 2),
                      _num(r.get("p99_ms"), 2), _num(r.get("cpu_s_per_1k"), 3), _num(r.get("rss_mb")),
                      _num(r.get("load"), 2), _errors(r.get("errors")))
    return t


def _ratio(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else ""


def _errors(errors: Any) -> str:
    if not errors:
        return "0"
    return ", ".join(f"{k}: {v}" for k, v in sorted(errors.items()))


def markdown(rows: list[Row]) -> str:
    """The engine's rows as a Markdown table (for docs/benchmarks.md)."""
    lines = ["| scenario | ours | ceiling | ratio | vs bare 202 | processed/s | p50 ms | p99 ms | CPU s/1k ev | "
             "stmts/ev | RSS MB | load |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["kind"] == "ceiling":
            continue
        ceiling = f"{_num(r.get('ceiling_value'))} ({r['ceiling']})" if r.get("ceiling") else ""
        lines.append(f"| {r['name']} | {_num(r['value'], 1 if r['unit'] == 's' else 0)} {r['unit']} | {ceiling} | "
                     f"{_ratio(r.get('ratio'))} | {_ratio(r.get('ratio_bare'))} | {_num(r.get('processed_per_s'))} | "
                     f"{_num(r.get('p50_ms'), 2)} | {_num(r.get('p99_ms'), 2)} | {_num(r.get('cpu_s_per_1k'), 3)} | "
                     f"{_num(r.get('statements_per_event'), 3)} | {_num(r.get('rss_mb'))} | {_num(r.get('load'), 2)} |")
    lines += [""] + [f"- {line}" for line in sqlite_lines(rows)]
    lines += ["", "| ceiling | value | p50 ms | p99 ms | CPU s/1k ev | RSS MB | load |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["kind"] == "ceiling":
            lines.append(f"| {r['name']} | {_num(r['value'])} {r['unit']} | {_num(r.get('p50_ms'), 2)} | "
                         f"{_num(r.get('p99_ms'), 2)} | {_num(r.get('cpu_s_per_1k'), 3)} | {_num(r.get('rss_mb'))} | "
                         f"{_num(r.get('load'), 2)} |")
    return "\n".join(lines)


def save(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


def load(path: Path) -> tuple[list[Row], dict[str, Any]]:
    data = json.loads(path.read_text())
    return data["rows"], data.get("meta", {})


def better(metric: str, unit: str, old: float, new: float) -> bool:
    if metric == "value":
        return new > old if unit.endswith("/s") else new < old
    if metric in HIGHER_IS_BETTER:
        return new > old
    return new < old


def compare(current: list[Row], previous: list[Row]) -> list[Row]:
    """Every figure present in both runs for the same scenario: old, new, change in percent, better or not."""
    before = {r["name"]: r for r in previous}
    changes = []
    for row in current:
        old = before.get(row["name"])
        if old is None:
            continue
        for metric in COMPARED:
            a, b = old.get(metric), row.get(metric)
            if not isinstance(a, int | float) or not isinstance(b, int | float):
                continue
            change = (b - a) / a * 100 if a else 0.0
            changes.append({"name": row["name"], "metric": metric, "old": a, "new": b,
                            "change_pct": round(change, 1),
                            "better": better(metric, row.get("unit", ""), a, b) if a != b else None})
    return changes


def compare_table(changes: list[Row]) -> Table:
    t = Table(title="against the previous run")
    for column in ("scenario", "figure", "before", "now", "change"):
        t.add_column(column, justify="left" if column in ("scenario", "figure") else "right")
    for c in changes:
        colour = "" if c["better"] is None else ("green" if c["better"] else "red")
        change = f"{c['change_pct']:+.1f}%"
        t.add_row(c["name"], c["metric"], _num(c["old"], 3 if abs(c["old"]) < 10 else 0),
                  _num(c["new"], 3 if abs(c["new"]) < 10 else 0), f"[{colour}]{change}[/]" if colour else change)
    return t
