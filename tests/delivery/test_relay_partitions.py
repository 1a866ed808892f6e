"""The relay per partition: outbox rows carry their partition, each subscriber has a cursor per
partition, several relays share the partitions, and an upgraded database carries on where it was."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from questline import migrations
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline import repository as event_log
from questline.pipeline.models import OutboxMessage, partition_of
from questline.relay import service as relay
from questline.relay.service import RelayMessage
from tests.conftest import PG_URL
from tests.pipeline.helpers import recorded_statements

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4


class Recorder:
    """A subscriber keeping what it was handed for one app, with the partition of each batch."""

    def __init__(self, name: str, app_id: str, *, fail_on: str | None = None) -> None:
        self.name, self.app_id, self.fail_on = name, app_id, fail_on
        self.seen: list[RelayMessage] = []
        self.batches: list[list[str]] = []

    async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
        mine = [m for m in messages if m.app_id == self.app_id]
        self.seen.extend(mine)
        self.batches.append([m.id for m in mine])
        if self.fail_on is not None and any(m.player_id == self.fail_on for m in mine):
            self.fail_on = None
            raise RuntimeError("subscriber failed")


@pytest.fixture
async def parted(settings: Settings, clock: ManualClock) -> AsyncIterator[Runtime]:
    """A runtime whose outbox has four relay partitions."""
    rt = Runtime.build(settings.model_copy(update={"relay_partitions": PARTITIONS}), clock)
    yield rt
    await rt.close()


def _app() -> str:
    return f"app_{uuid.uuid4().hex[:12]}"


async def _write(runtime: Runtime, app_id: str, players: list[str], rounds: int) -> list[tuple[int, str, int]]:
    """Rounds of outbox rows, one transaction each; returns (seq, player, round) of every row."""
    for round_ in range(rounds):
        async with unit_of_work(runtime.sessions) as session:
            await event_log.add_outbox(session, [
                event_log.outbox_row(app_id, "test.step", p, {"n": round_}, runtime.clock.now()) for p in players])
    async with runtime.read_sessions() as session:
        rows = await session.execute(sa.select(OutboxMessage.seq, OutboxMessage.player_id, OutboxMessage.payload)
                                     .where(OutboxMessage.app_id == app_id).order_by(OutboxMessage.seq))
        return [(int(seq), str(player), int(payload["n"])) for seq, player, payload in rows]


async def test_rows_are_written_into_their_players_partition(parted: Runtime) -> None:
    app_id = _app()
    players = [f"p{i}" for i in range(12)]
    now = parted.clock.now()
    async with unit_of_work(parted.sessions) as session:
        await event_log.add_outbox(session, [event_log.outbox_row(app_id, "t", p, {}, now) for p in players])
        await event_log.add_outbox(session, [event_log.outbox_row(app_id, "app.wide", None, {}, now),
                                             event_log.outbox_row(app_id, "chat.message", "p1", {}, now,
                                                                  order_key="chat:room-9")])
    async with parted.read_sessions() as session:
        rows = (await session.execute(sa.select(OutboxMessage.type, OutboxMessage.player_id, OutboxMessage.partition)
                                      .where(OutboxMessage.app_id == app_id))).all()
    by_player = {player: part for type_, player, part in rows if type_ == "t"}
    assert by_player == {p: partition_of(app_id, p, PARTITIONS) for p in players}
    assert len(set(by_player.values())) > 1  # the players are spread out
    assert {type_: part for type_, _, part in rows if type_ != "t"} == {
        "app.wide": partition_of(app_id, "", PARTITIONS),
        "chat.message": partition_of(app_id, "chat:room-9", PARTITIONS)}


async def test_each_partition_in_order_every_player_in_order_once_each(parted: Runtime) -> None:
    app_id = _app()
    sub = Recorder(f"parts-{uuid.uuid4().hex[:6]}", app_id)
    relay.install(parted, [sub])
    await relay.prepare(parted, from_head=True)
    written = await _write(parted, app_id, [f"p{i}" for i in range(8)], 5)
    assert await relay.drain(parted, limit=3) >= len(written)
    ids = [m.id for m in sub.seen]
    assert sorted(ids) == sorted(f"msg_{seq}" for seq, _, _ in written) and len(set(ids)) == len(ids)
    # A partition's messages come in seq order (a batch may hold several partitions').
    per_partition: dict[int, list[int]] = defaultdict(list)
    for m in sub.seen:
        per_partition[partition_of(app_id, m.player_id or "", PARTITIONS)].append(m.seq)
    assert len(per_partition) > 1
    assert all(seqs == sorted(seqs) for seqs in per_partition.values())
    for player in {p for _, p, _ in written}:
        assert [m.payload["n"] for m in sub.seen if m.player_id == player] == [0, 1, 2, 3, 4]
    state = (await relay.lag(parted))[sub.name]
    assert state["delivered"] == len(written) and state["behind"] is False
    assert await relay.drain(parted) == 0  # progress is durable, per partition


async def test_partitions_with_messages_waiting_are_relayed_in_one_transaction(parted: Runtime, backend: str) -> None:
    app_id = _app()
    a, b = (Recorder(f"{n}-{uuid.uuid4().hex[:6]}", app_id) for n in "ab")
    relay.install(parted, [a, b])
    await relay.prepare(parted, from_head=True)
    written = await _write(parted, app_id, [f"p{i}" for i in range(8)], 3)
    spread = {partition_of(app_id, player, PARTITIONS) for _, player, _ in written}
    assert len(spread) > 1
    ready = {p: [a, b] for p in range(PARTITIONS)}
    with recorded_statements(parted) as seen:
        moved = await relay.step_many(parted, ready, 500)
    per_partition = Counter(partition_of(app_id, player, PARTITIONS) for _, player, _ in written)
    assert moved == {(s.name, p): per_partition[p] for s in (a, b) for p in range(PARTITIONS)}
    # One handle per subscriber, with every partition's messages, each partition's in seq order.
    assert len(a.batches) == len(b.batches) == 1
    assert sorted(a.batches[0]) == sorted(f"msg_{seq}" for seq, _, _ in written) == sorted(b.batches[0])
    for partition in spread:
        seqs = [m.seq for m in a.seen if partition_of(app_id, m.player_id or "", PARTITIONS) == partition]
        assert seqs == sorted(seqs)
    # One lock of every cursor, one save of them all; one read of the outbox on PostgreSQL (one per
    # partition on SQLite, whose reads are in process).
    assert len([s for s in seen if "FROM relay_cursors" in s]) == 1
    assert len([s for s in seen if s.startswith("UPDATE relay_cursors")]) == 1
    reads = [s for s in seen if "FROM outbox" in s]
    assert len(reads) == (1 if backend == "postgres" else PARTITIONS)
    state = (await relay.lag(parted))
    assert state[a.name]["delivered"] == state[b.name]["delivered"] == len(written)
    # Progress is durable: nothing again, and only what comes next.
    assert await relay.step_many(parted, ready, 500) == {pair: 0 for pair in moved}
    newest = (await _write(parted, app_id, ["p0"], 1))[-1][0]
    assert await relay.drain(parted) == 2
    assert a.seen[-1].id == b.seen[-1].id == f"msg_{newest}"


def test_a_partition_with_a_backlog_goes_alone_and_joins_the_others_once_caught_up() -> None:
    a, b = _Named("a"), _Named("b")
    backlogs = relay.Backlogs()
    ready = {p: [a, b] for p in range(PARTITIONS)}
    assert backlogs.groups(ready) == [ready]  # nothing known yet: all together
    backlogs.note(("b", 2), 500, 500)  # a full batch: a backlog
    backlogs.note(("a", 1), 499, 500)
    assert backlogs.groups(ready) == [{0: [a, b], 1: [a, b], 3: [a, b]}, {2: [a, b]}]
    assert backlogs.groups({2: [a]}) == [{2: [a]}]  # b's backlog is b's
    backlogs.note(("b", 2), 17, 500)  # caught up
    assert backlogs.groups(ready) == [ready]


async def test_a_failing_partition_gets_its_batch_again_and_holds_back_no_other(parted: Runtime) -> None:
    app_id = _app()
    players = [f"p{i}" for i in range(8)]
    victim = players[0]
    sub = Recorder(f"fail-{uuid.uuid4().hex[:6]}", app_id, fail_on=victim)
    relay.install(parted, [sub])
    await relay.prepare(parted, from_head=True)
    written = await _write(parted, app_id, players, 2)
    broken = partition_of(app_id, victim, PARTITIONS)
    with pytest.raises(RuntimeError):
        await relay.step(parted, sub, 100, broken)
    failed = list(sub.batches[-1])
    others = [p for p in range(PARTITIONS) if p != broken]
    for partition in others:
        await relay.step(parted, sub, 100, partition)
    assert {m.player_id for m in sub.seen[len(failed):]} == {p for p in players
                                                            if partition_of(app_id, p, PARTITIONS) != broken}
    assert await relay.step(parted, sub, 100, broken) == len(failed)
    assert sub.batches[-1] == failed  # the same messages, with the same ids
    assert sorted({m.id for m in sub.seen}) == sorted(f"msg_{seq}" for seq, _, _ in written)
    assert await relay.drain(parted) == 0


async def _children(runtime: Runtime, app_id: str, sink: Path, name: str,
                    count: int) -> list[asyncio.subprocess.Process]:
    cmd = [sys.executable, "-m", "tests.delivery.relay_partition_child", runtime.settings.database_url, app_id,
           str(sink), str(PARTITIONS), name]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    children = [await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
                                                     stdout=asyncio.subprocess.PIPE, env=env) for _ in range(count)]
    for child in children:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), timeout=120) == b"ready\n"
    return children


def _go(children: list[asyncio.subprocess.Process]) -> None:
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")


def _sink(path: Path) -> list[tuple[int, int, str, str]]:
    return [(int(pid), int(part), mid, player)
            for pid, part, mid, player in (line.split() for line in path.read_text().splitlines())]


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name

    async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
        raise AssertionError("only the children relay")


def _in_order(lines: list[tuple[int, int, str, str]], written: list[tuple[int, str, int]]) -> None:
    """First arrivals: each partition's in seq order, each player's in the order written."""
    first = list(dict.fromkeys(mid for _, _, mid, _ in lines))
    seq_of = {f"msg_{seq}": seq for seq, _, _ in written}
    part_of = {mid: part for _, part, mid, _ in lines}
    for partition in range(PARTITIONS):
        seqs = [seq_of[mid] for mid in first if part_of[mid] == partition]
        assert seqs == sorted(seqs)
    player_of = {f"msg_{seq}": player for seq, player, _ in written}
    for player in {p for _, p, _ in written}:
        assert [seq_of[mid] for mid in first if player_of[mid] == player] == \
            [seq for seq, p, _ in written if p == player]


@pytest.mark.slow
async def test_two_relay_processes_hand_each_message_over_once(parted: Runtime, backend: str, tmp_path: Path) -> None:
    if backend != "postgres":
        pytest.skip("relays in several processes are the scaled tier's (PostgreSQL)")
    app_id, name, sink = _app(), f"pair-{uuid.uuid4().hex[:8]}", tmp_path / "sink.txt"
    relay.install(parted, [_Named(name)])
    await relay.prepare(parted, from_head=True)
    children = await _children(parted, app_id, sink, name, 2)
    written = await _write(parted, app_id, [f"p{i}" for i in range(16)], 8)
    _go(children)
    outs = [await asyncio.wait_for(child.communicate(), timeout=300) for child in children]
    assert all(b"drained" in out for out, _ in outs)
    lines = _sink(sink)
    counts = Counter(mid for _, _, mid, _ in lines)
    assert set(counts) == {f"msg_{seq}" for seq, _, _ in written}  # none missing, none foreign
    assert set(counts.values()) == {1}  # no duplicates: each batch went to one relay
    assert len({pid for pid, _, _, _ in lines}) == 2  # both relays took partitions
    _in_order(lines, written)


@pytest.mark.slow
async def test_a_relay_process_killed_mid_batch_loses_nothing(parted: Runtime, backend: str, tmp_path: Path) -> None:
    """SIGKILL one of the relays (on SQLite, the one relay) mid-run; the messages it held come again,
    with the same ids, and every partition and player keeps its order."""
    app_id, name, sink = _app(), f"kill-{uuid.uuid4().hex[:8]}", tmp_path / "sink.txt"
    relay.install(parted, [_Named(name)])
    await relay.prepare(parted, from_head=True)
    written = await _write(parted, app_id, [f"p{i}" for i in range(16)], 8)
    count = 2 if backend == "postgres" else 1
    children = await _children(parted, app_id, sink, name, count)
    _go(children)
    for _ in range(1200):  # until the victim is well under way, then kill it mid-run
        await asyncio.sleep(0.05)
        if (sink.exists() and sink.read_text().count("\n") > 10) or children[0].returncode is not None:
            break
    kills = 0
    if children[0].returncode is None:
        children[0].send_signal(signal.SIGKILL)
        kills += 1
    await children[0].wait()
    for child in children[1:]:
        await asyncio.wait_for(child.communicate(), timeout=300)
    for child in await _children(parted, app_id, sink, name, count):  # restarted: they finish the work
        _go([child])
        out, _ = await asyncio.wait_for(child.communicate(), timeout=300)
        assert b"drained" in out
    assert kills >= 1
    lines_ = _sink(sink)
    counts = Counter(mid for _, _, mid, _ in lines_)
    assert set(counts) == {f"msg_{seq}" for seq, _, _ in written}  # nothing lost, redeliveries by the same ids
    _in_order(lines_, written)
    assert await relay.drain(parted) == 0  # nothing left behind a dead relay's lock


@asynccontextmanager
async def _empty_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own (the shared one is already at every head)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'upgraded.db'}"
        return
    import asyncpg

    assert PG_URL is not None
    base = make_url(PG_URL)
    db = f"questline_u_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    try:
        await admin.execute(f'CREATE DATABASE "{db}"')
        yield base.set(database=db).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


async def test_an_upgraded_database_carries_on_where_its_one_cursor_was(backend: str, tmp_path: Path,
                                                                       clock: ManualClock) -> None:
    """Cursor rows of the old shape (one per subscriber, over the whole outbox): after 0461 the relay,
    now with four partitions, hands over what that cursor had not, and nothing it had."""
    async with _empty_database(backend, tmp_path) as url:
        await asyncio.to_thread(migrations.upgrade, url, "0402_webhooks", from_models=False)
        engine = create_async_engine(url)
        app_id, name = _app(), "upgraded"
        txids: list[int] = []
        seqs: list[int] = []
        try:
            for n in range(6):  # six transactions of two rows each, under the old schema
                async with engine.begin() as conn:
                    for player in ("alice", "bob"):
                        row = (await conn.execute(sa.text(
                            "INSERT INTO outbox (app_id, type, player_id, event_seq, payload, created_at) "
                            "VALUES (:app, 't', :player, NULL, :payload, :at) RETURNING seq, txid"),
                            {"app": app_id, "player": player, "payload": f'{{"n": {n}}}',
                             "at": clock.now().replace(tzinfo=None)})).one()
                        seqs.append(int(row[0]))
                    txids.append(int(row[1]))
            # The old relay had handed over the first three transactions (SQLite: the first six rows).
            async with engine.begin() as conn:
                await conn.execute(sa.text(
                    "INSERT INTO relay_cursors (subscriber, low, done, partial, seq, delivered, updated_at) "
                    "VALUES (:name, :low, :done, '{}', :seq, 6, :at)"),
                    {"name": name, "low": txids[0] if backend == "postgres" else 0,
                     "done": str(txids[:3]) if backend == "postgres" else "[]",
                     "seq": seqs[5] if backend == "sqlite" else 0, "at": clock.now().replace(tzinfo=None)})
        finally:
            await engine.dispose()
        await asyncio.to_thread(migrations.upgrade, url)
        settings = Settings(env="test", database_url=url, relay_partitions=PARTITIONS,
                            secret_key="test-secret-key-that-is-long-enough-0123456789")  # type: ignore[arg-type]
        runtime = Runtime.build(settings, clock)
        try:
            sub = Recorder(name, app_id)
            relay.install(runtime, [sub])
            after = await _write(runtime, app_id, ["alice", "bob", "carol", "dan"], 2)
            await relay.drain(runtime, limit=3)
            new = [seq for seq, _, _ in after if seq > seqs[-1]]
            # No replay (the first six rows), no skip (the other six, and every new one), once each.
            assert sorted(m.seq for m in sub.seen) == seqs[6:] + new
            for player in ("alice", "bob"):  # each player's rows in order, the old ones and the new ones
                assert [m.payload["n"] for m in sub.seen if m.player_id == player and m.seq <= seqs[-1]] == [3, 4, 5]
                assert [m.payload["n"] for m in sub.seen if m.player_id == player and m.seq > seqs[-1]] == [0, 1]
            state = (await relay.lag(runtime))[name]
            assert state["delivered"] == 6 + len(sub.seen) and state["behind"] is False
        finally:
            await runtime.close()
