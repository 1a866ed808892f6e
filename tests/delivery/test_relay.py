"""The outbox relay: every committed row, in order, to every subscriber at least once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.pipeline.models import OutboxMessage
from questline.relay import service as relay
from questline.relay.service import RelayMessage
from questline.relay.tasks import run_relay
from tests.conftest import Factory
from tests.pipeline.helpers import recorded_statements

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A subscriber keeping what it was handed for one app (outside the database: at least once)."""

    def __init__(self, name: str, app_id: str, *, fail_times: int = 0) -> None:
        self.name, self.app_id, self.fail_times = name, app_id, fail_times
        self.seen: list[RelayMessage] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
        self.seen.extend(m for m in messages if m.app_id == self.app_id)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("subscriber failed")


async def _write(runtime: Runtime, app_id: str, players: list[str], per_player: int) -> list[int]:
    """Outbox rows for ``players`` in several transactions; returns their seqs in commit order."""
    seqs: list[int] = []
    for round_ in range(per_player):
        async with unit_of_work(runtime.sessions) as session:
            await event_log.add_outbox(session, [
                event_log.outbox_row(app_id, "test.step", p, {"n": round_}, runtime.clock.now()) for p in players])
            rows = await session.execute(sa.select(OutboxMessage.seq).where(OutboxMessage.app_id == app_id)
                                         .order_by(OutboxMessage.seq))
            seqs = list(rows.scalars())
    return seqs


def _ids(seqs: list[int]) -> list[str]:
    return [f"msg_{s}" for s in seqs]


def _unique(messages: Sequence[RelayMessage]) -> list[str]:
    seen: set[str] = set()
    out = []
    for m in messages:
        if m.id not in seen:
            seen.add(m.id)
            out.append(m.id)
    return out


async def test_every_subscriber_gets_every_message_in_order(runtime: Runtime, factory: Factory) -> None:
    keys = await factory.app()
    a, b = Recorder(f"a-{uuid.uuid4().hex[:6]}", keys.app_id), Recorder(f"b-{uuid.uuid4().hex[:6]}", keys.app_id)
    relay.install(runtime, [a, b])
    await relay.prepare(runtime, from_head=True)
    seqs = await _write(runtime, keys.app_id, ["alice", "bob"], 5)
    await relay.drain(runtime, limit=3)
    assert [m.id for m in a.seen] == _ids(seqs) == [m.id for m in b.seen]
    assert [m.payload["n"] for m in a.seen if m.player_id == "alice"] == [0, 1, 2, 3, 4]
    # Progress is durable: a second drain hands nothing over again.
    assert await relay.drain(runtime) == 0
    state = await relay.lag(runtime)
    assert state[a.name]["behind"] is False


async def test_a_failing_subscriber_gets_the_batch_again_and_delays_only_itself(runtime: Runtime,
                                                                                 factory: Factory) -> None:
    keys = await factory.app()
    flaky = Recorder(f"flaky-{uuid.uuid4().hex[:6]}", keys.app_id, fail_times=2)
    steady = Recorder(f"steady-{uuid.uuid4().hex[:6]}", keys.app_id)
    relay.install(runtime, [flaky, steady])
    await relay.prepare(runtime, from_head=True)
    seqs = await _write(runtime, keys.app_id, ["alice"], 4)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await relay.step(runtime, flaky)
    assert await relay.step(runtime, steady) > 0
    await relay.drain(runtime)
    assert len(flaky.seen) > len(seqs)  # at least once: the failed batches came again
    assert _unique(flaky.seen) == _ids(seqs) == [m.id for m in steady.seen]


async def test_subscribers_at_one_position_share_one_read_and_one_transaction(runtime: Runtime, factory: Factory,
                                                                               backend: str) -> None:
    keys = await factory.app()
    a, b, c = (Recorder(f"{n}-{uuid.uuid4().hex[:6]}", keys.app_id) for n in "abc")
    relay.install(runtime, [a, b, c])
    await relay.prepare(runtime, from_head=True)
    seqs = await _write(runtime, keys.app_id, ["alice", "bob"], 2)
    with recorded_statements(runtime) as seen:
        moved = await relay.step_together(runtime, [a, b], 500)
    assert moved == {a.name: len(seqs), b.name: len(seqs)}
    assert [m.id for m in a.seen] == _ids(seqs) == [m.id for m in b.seen]
    # One lock of both cursors, one read of the outbox, one save of both cursors.
    assert len([s for s in seen if "FROM relay_cursors" in s]) == 1
    assert len([s for s in seen if "FROM outbox" in s]) == 1
    assert len([s for s in seen if s.startswith("UPDATE relay_cursors")]) == 1
    state = await relay.lag(runtime)
    assert state[a.name]["delivered"] == state[b.name]["delivered"] == len(seqs)
    assert state[c.name]["delivered"] == 0
    assert await relay.step_together(runtime, [a, b]) == {a.name: 0, b.name: 0}

    # At different positions (c stayed behind), each reads from its own.
    more = await _write(runtime, keys.app_id, ["carol"], 1)
    with recorded_statements(runtime) as seen:
        assert await relay.step_together(runtime, [a, c], 500) == {a.name: 1, c.name: len(more)}
    # Two reads: in one statement on PostgreSQL, one each on SQLite.
    assert len([s for s in seen if "FROM outbox" in s]) == (1 if backend == "postgres" else 2)
    assert [m.id for m in a.seen] == _ids(more) == [m.id for m in c.seen]


async def test_the_relay_loop_hands_each_subscriber_everything_while_one_fails(runtime: Runtime,
                                                                               factory: Factory) -> None:
    keys = await factory.app()
    flaky = Recorder(f"flaky-{uuid.uuid4().hex[:6]}", keys.app_id, fail_times=3)
    steady = Recorder(f"steady-{uuid.uuid4().hex[:6]}", keys.app_id)
    relay.install(runtime, [flaky, steady])
    await relay.prepare(runtime, from_head=True)
    seqs = await _write(runtime, keys.app_id, ["alice", "bob"], 3)
    stop = asyncio.Event()
    loop = asyncio.create_task(run_relay(runtime, stop))
    try:
        for _ in range(1000):
            behind = await relay.behind(runtime)
            if not behind[flaky.name] and not behind[steady.name]:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await loop
    assert _unique(flaky.seen) == _ids(seqs) and len(flaky.seen) > len(seqs)  # its failed batches came again
    # The steady one went on: it had its batch (together with flaky's, then alone) at least once.
    assert _unique(steady.seen) == _ids(seqs)
    assert await relay.drain(runtime) == 0


async def test_relay_cancelled_mid_batch_loses_nothing(runtime: Runtime, factory: Factory) -> None:
    keys = await factory.app()
    sub = Recorder(f"cut-{uuid.uuid4().hex[:6]}", keys.app_id)
    relay.install(runtime, [sub])
    await relay.prepare(runtime, from_head=True)
    seqs = await _write(runtime, keys.app_id, ["alice", "bob", "carol"], 3)
    sub.gate = asyncio.Event()
    task = asyncio.create_task(relay.step(runtime, sub, 4))
    await sub.entered.wait()
    task.cancel()  # killed while the batch is in hand: its effect happened, its progress did not
    with pytest.raises(asyncio.CancelledError):
        await task
    sub.gate = None
    await relay.drain(runtime, limit=4)
    assert len(sub.seen) == len(seqs) + 4
    assert _unique(sub.seen) == _ids(seqs)


@pytest.mark.slow
async def test_relay_process_killed_mid_batch_loses_nothing(runtime: Runtime, factory: Factory,
                                                            tmp_path: Path) -> None:
    """SIGKILL a real relay process at random points; restarted, it finishes with nothing lost."""
    keys = await factory.app()
    sink = tmp_path / "sink.txt"
    name = f"drill-{keys.app_id}"

    class Named:
        def __init__(self) -> None:
            self.name = name

        async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
            raise AssertionError("only the child relays")

    relay.install(runtime, [Named()])
    await relay.prepare(runtime, from_head=True)
    seqs = await _write(runtime, keys.app_id, [f"p{i}" for i in range(20)], 6)
    cmd = [sys.executable, "-m", "tests.delivery.relay_child", runtime.settings.database_url, keys.app_id, str(sink)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    kills = 0
    for delay in (0.6, 0.9, 1.2):
        child = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE, env=env)
        await asyncio.sleep(delay)
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        await child.wait()
    child = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE, env=env)
    out, _ = await asyncio.wait_for(child.communicate(), timeout=120)
    assert b"drained" in out
    lines = sink.read_text().split()
    unique = list(dict.fromkeys(lines))
    assert kills >= 1
    assert unique == _ids(seqs)  # every message, in order, after dedupe


async def test_a_row_committed_late_is_not_skipped(runtime: Runtime, factory: Factory, backend: str) -> None:
    """PostgreSQL draws seqs (and transaction ids) before commit: a transaction that began first can
    commit last. Its rows are not skipped, and it holds back no one else's."""
    if backend != "postgres":
        pytest.skip("SQLite's writers are serial: seq order is commit order")
    keys = await factory.app()
    sub = Recorder(f"late-{uuid.uuid4().hex[:6]}", keys.app_id)
    relay.install(runtime, [sub])
    await relay.prepare(runtime, from_head=True)
    now = runtime.clock.now()
    async with runtime.sessions() as slow, runtime.sessions() as quick:
        await slow.begin()
        await event_log.add_outbox(slow, [event_log.outbox_row(keys.app_id, "t", "alice", {"n": 1}, now)])
        await quick.begin()
        await event_log.add_outbox(quick, [event_log.outbox_row(keys.app_id, "t", "bob", {"n": 2}, now)])
        await event_log.add_outbox(slow, [event_log.outbox_row(keys.app_id, "t", "alice", {"n": 3}, now)])
        await quick.commit()
        await relay.drain(runtime, limit=1)
        assert [m.payload["n"] for m in sub.seen] == [2]  # committed: out at once, the open one aside
        await slow.commit()
    await relay.drain(runtime, limit=1)
    assert [m.payload["n"] for m in sub.seen] == [2, 1, 3]
    assert await relay.drain(runtime) == 0
