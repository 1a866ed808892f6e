"""The benchmark harness (bench/run.py) itself: its arithmetic, its report, its load generator's script.

No timing is asserted anywhere: figures depend on the machine. What is checked is that ratios,
comparisons and the JSON file are right, that the ceiling validates bodies as the engine does,
and that wrk with bench/wrk.lua really sends unique event ids (every acknowledged event is a row).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.ceilings import EVENTS_TABLE, create_app, prepare
from bench.common import free_port
from bench.run import parse, sqlite_vs_postgres
from sqlalchemy.engine import make_url

from bench import loadgen, loophealth, report
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (Debian package wrk)")


def rows() -> list[report.Row]:
    return [
        {"name": "bare INSERT, single", "kind": "ceiling", "unit": "events/s", "value": 2000.0},
        {"name": "bare 202, single", "kind": "ceiling", "unit": "events/s", "value": 6000.0},
        {"name": "bare PK SELECT", "kind": "ceiling", "unit": "req/s", "value": 4000.0},
        {"name": "single event, PostgreSQL", "kind": "engine", "unit": "events/s", "value": 1500.0,
         "ceiling": "bare INSERT, single", "bare_ceiling": "bare 202, single", "processed_per_s": 1400.0,
         "p50_ms": 3.0, "p99_ms": 12.0,
         "cpu_s_per_1k": 0.5, "statements_per_event": 0.25, "rss_mb": 120.0},
        {"name": "single event, SQLite", "kind": "engine", "unit": "events/s", "value": 900.0,
         "ceiling": "bare INSERT, single", "processed_per_s": 700.0},
        {"name": "authenticated one-query GET, PostgreSQL", "kind": "engine", "unit": "req/s", "value": 1000.0,
         "ceiling": "bare PK SELECT"},
        {"name": "idle RSS, SQLite", "kind": "single", "unit": "MB", "value": 110.0},
    ]


def test_each_figure_gets_its_ceiling_and_ratio() -> None:
    out = {r["name"]: r for r in report.with_ratios(rows())}
    assert out["single event, PostgreSQL"]["ceiling_value"] == 2000.0
    assert out["single event, PostgreSQL"]["ratio"] == 0.75
    assert out["single event, PostgreSQL"]["ratio_bare"] == 0.25
    assert out["authenticated one-query GET, PostgreSQL"]["ratio"] == 0.25
    assert "ratio" not in out["idle RSS, SQLite"] and "ratio" not in out["bare PK SELECT"]


def test_a_missing_ceiling_gives_no_ratio() -> None:
    out = report.with_ratios([{"name": "x", "kind": "engine", "unit": "req/s", "value": 5.0, "ceiling": "gone"}])
    assert "ratio" not in out[0]


def test_sqlite_rows_are_set_beside_postgres() -> None:
    data = rows()
    sqlite_vs_postgres(data)
    sqlite = next(r for r in data if r["name"] == "single event, SQLite")
    assert sqlite["vs_postgres"] == 0.6 and sqlite["processed_vs_postgres"] == 0.5
    assert report.sqlite_lines(data) == ["single event, SQLite: 0.60× PostgreSQL's figure, processed 0.50×"]


def test_markdown_lists_every_figure_and_every_ceiling() -> None:
    text = report.markdown(report.with_ratios(rows()))
    line = next(x for x in text.splitlines() if x.startswith("| single event, PostgreSQL"))
    assert "1,500 events/s" in line and "2,000 (bare INSERT, single)" in line and "| 0.750 | 0.250 |" in line
    assert "| 0.25 |" not in line and line.count("| 0.250 |") == 2  # vs bare 202, and statements per event
    assert "| bare PK SELECT | 4,000 req/s |" in text
    assert "| idle RSS, SQLite | 110 MB |" in text


def test_compare_reports_changes_and_which_way_is_better(tmp_path: Path) -> None:
    old = report.with_ratios(rows())
    new = report.with_ratios(rows())
    pg = next(r for r in new if r["name"] == "single event, PostgreSQL")
    pg.update(value=3000.0, ratio=1.5, p99_ms=6.0, statements_per_event=0.5)
    new.append({"name": "only now", "kind": "engine", "unit": "req/s", "value": 1.0})
    path = tmp_path / "old.json"
    report.save(path, old, {"command": "python bench/run.py"})
    previous, meta = report.load(path)
    assert meta["command"] == "python bench/run.py"
    changes = {(c["name"], c["metric"]): c for c in report.compare(new, previous)}
    assert changes[("single event, PostgreSQL", "value")] | {} == {
        "name": "single event, PostgreSQL", "metric": "value", "old": 1500.0, "new": 3000.0, "change_pct": 100.0,
        "better": True}
    assert changes[("single event, PostgreSQL", "p99_ms")]["better"] is True
    assert changes[("single event, PostgreSQL", "p99_ms")]["change_pct"] == -50.0
    assert changes[("single event, PostgreSQL", "statements_per_event")]["better"] is False
    assert changes[("single event, PostgreSQL", "rss_mb")]["better"] is None  # unchanged
    assert changes[("idle RSS, SQLite", "value")]["better"] is None
    assert not any(name == "only now" for name, _ in changes)
    # memory and time: smaller is better
    assert report.better("value", "MB", 120, 110) and report.better("value", "s", 5, 4)
    assert not report.better("value", "events/s", 5, 4)


def test_loop_lag_and_gc_pauses_of_a_phase_are_read_from_two_scrapes() -> None:
    """bench/loophealth.py reads the engine's own histograms (kit/loopwatch.py) as /metrics renders them."""
    from prometheus_client import CollectorRegistry

    from questline.kit.metrics import HttpMetrics

    metrics = HttpMetrics(CollectorRegistry())
    metrics.loop_lag.observe(0.0004)
    before = loophealth.parse(metrics.render().decode())
    for seconds in [0.0004] * 97 + [0.015, 0.03, 0.3]:
        metrics.loop_lag.observe(seconds)
    metrics.gc_pause.labels("2").observe(0.04)
    metrics.gc_pause.labels("0").observe(0.0002)
    phase = loophealth.between(before, loophealth.parse(metrics.render().decode()))
    assert phase["loop_lag"] == {"ticks": 100, "p50_ms<=": 0.5, "p99_ms<=": 50.0, "worst_ms<=": 500.0,
                                 "over_20ms": 2, "total_s": 0.384}
    assert phase["gc"] == {"gen0": {"collections": 1, "total_ms": 0.2, "worst_ms<=": 0.5},
                           "gen2": {"collections": 1, "total_ms": 40.0, "worst_ms<=": 50.0}}


def test_wrk_result_line_is_read() -> None:
    out = ("Running 1s test @ http://127.0.0.1:1\n"
           'QLJSON {"requests":120,"duration_us":2000000,"bytes":1,"connect_errors":0,"read_errors":1,'
           '"write_errors":0,"timeouts":2,"non_2xx":20,"p50_us":1500,"p90_us":2500,"p99_us":9000,"max_us":12000,'
           '"mean_us":1800.5,"statuses":{"2xx":100,"503":20}}\n')
    load = loadgen.parse(out)
    assert (load.requests, load.ok, load.seconds, load.per_second) == (120, 100, 2.0, 50.0)
    assert (load.p50_ms, load.p99_ms, load.socket_errors) == (1.5, 9.0, 3)
    assert load.statuses == {"2xx": 100, "503": 20}
    with pytest.raises(RuntimeError, match="no result line"):
        loadgen.parse("unable to connect")


def test_wrk_command_is_pinned_when_asked() -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    cmd = loadgen.command("http://127.0.0.1:1", seconds=2.4, connections=8, cpus="1")
    assert cmd[:3] == ["taskset", "-c", "1"] and "-c8" in cmd and "-d2s" in cmd and str(loadgen.LUA) in cmd
    assert loadgen.command("http://x", seconds=1, connections=1, cpus=None)[0].endswith("wrk")


async def test_the_bare_ceiling_validates_bodies_like_the_engine() -> None:
    app = create_app(None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ceiling") as client:
        one = await client.post("/bare/events", json={"id": "e1", "player_id": "p1", "type": "match.won",
                                                      "data": {"score": 3}})
        assert one.status_code == 202 and one.json()["accepted"] == ["e1"]
        many = await client.post("/bare/events", json={"events": [
            {"id": f"e{i}", "player_id": "p1", "type": "t"} for i in range(3)]})
        assert many.status_code == 202 and many.json()["accepted"] == ["e0", "e1", "e2"]
        for bad in ({"id": "has space", "player_id": "p1", "type": "t"},
                    {"id": "e1", "player_id": "p1", "type": "t", "extra": 1},
                    {"events": []}, {"events": [{"id": "e1"}]}, [1, 2]):
            assert (await client.post("/bare/events", json=bad)).status_code == 422, bad


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--quick", "--json", "--compare", "--server-cpus", "--load-cpus", "--only"):
        assert option in text
    args = parse(["--quick", "--only", "sqlite", "--only", "ceilings", "--server-cpus", ""])
    assert args.quick and args.only == ["sqlite", "ceilings"] and args.server_cpus == ""


@pytest.fixture
def bare_postgres() -> Iterator[str]:
    """An empty scratch database (no migrations) for the ceiling's own tables."""
    if not PG_URL:
        pytest.skip("needs PostgreSQL (QUESTLINE_TEST_DATABASE_URL)")
    import asyncpg

    base = make_url(PG_URL)
    name = f"bench_harness_{uuid.uuid4().hex[:8]}"
    admin = {"host": base.host, "port": base.port, "user": base.username, "password": base.password,
             "database": base.database}

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(**admin)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@needs_wrk
def test_wrk_sends_unique_event_ids_and_rotates_reads(bare_postgres: str, tmp_path: Path) -> None:
    import asyncpg

    asyncio.run(prepare(bare_postgres, 50))
    port = free_port()
    log = (tmp_path / "ceiling.log").open("wb")
    proc = subprocess.Popen([sys.executable, "bench/ceilings.py", "--port", str(port), "--dsn", bare_postgres],
                            cwd=ROOT, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # waiting for a real server to open its port
            try:
                if httpx.get(f"{base}/select/players/p1", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "ceiling.log").read_text()
            time.sleep(0.2)
        load = asyncio.run(loadgen.run(base, seconds=1, connections=4, cpus=None, path="/insert/events", batch=3,
                                       kind="demo", players=10, run="t1"))
        targets = tmp_path / "targets.txt"
        targets.write_text("/select/players/p1\t\n/select/players/p2\tBearer x\n/select/players/nobody\t\n")
        reads = asyncio.run(loadgen.run(base, seconds=1, connections=2, cpus=None, mode="get", targets=str(targets)))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()

    async def count() -> tuple[int, int]:
        conn = await asyncpg.connect(bare_postgres)
        try:
            row = await conn.fetchrow(f"SELECT count(*), count(DISTINCT event_id) FROM {EVENTS_TABLE}")
            assert row is not None
            return int(row[0]), int(row[1])
        finally:
            await conn.close()

    rows_, distinct = asyncio.run(count())
    assert load.ok > 0 and load.statuses == {"2xx": load.ok}
    # every acknowledged request inserted its 3 events: no id was ever sent twice
    # (wrk may stop with a request in flight that the server still committed)
    assert distinct == rows_ and load.ok * 3 <= rows_ <= (load.requests + 4) * 3
    # a third of the reads ask for a player who does not exist: the rotation reaches every line
    assert reads.statuses.get("4xx", 0) > 0 and reads.ok > 0


@needs_wrk
@pytest.mark.slow
def test_a_tiny_sqlite_run_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "bench/run.py", "--quick", "--only", "sqlite", "--seconds", "1",
                           "--server-cpus", "", "--load-cpus", "", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text())
    by_name = {r["name"]: r for r in data["rows"]}
    single = by_name["single event, SQLite"]
    assert single["events"] > 0 and single["left_pending"] == 0 and single["processed_per_s"] > 0
    assert single["errors"] == {}
    batch = by_name["batch of 100, SQLite, bench rules"]
    assert batch["events"] % 100 == 0 and batch["events"] > 0
    assert by_name["authenticated one-query GET, SQLite"]["value"] > 0
    assert by_name["idle RSS, SQLite"]["value"] > 0
    assert data["meta"]["quick"] is True and len(data["meta"]["load_before"]) == 3
    assert "the engine beside its ceilings" in done.stdout
