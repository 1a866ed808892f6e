"""SQLite's one write lock, queued in process (``kit.db._WriteGate``): a writer that takes the lock
again and again (the worker, batch after batch) cannot starve one that waits (ingest), and a
writer that waits past the busy timeout gets SQLite's own "database is locked", which the
callers that retry treat as load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from questline.kit import db
from questline.kit.db import create_engine, is_busy


async def _table(tmp_path: Path) -> tuple[sa.ext.asyncio.AsyncEngine, sa.Table]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}", pool_size=4)
    table = sa.Table("writes", sa.MetaData(), sa.Column("seq", sa.Integer, primary_key=True),
                     sa.Column("writer", sa.String(10)))
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
    return engine, table


async def test_a_waiting_writer_goes_next_not_after_a_writer_that_keeps_coming_back(tmp_path: Path) -> None:
    engine, table = await _table(tmp_path)
    sessions = async_sessionmaker(engine)
    holding = asyncio.Event()

    async def greedy() -> None:  # back-to-back write transactions, each holding the lock a while
        for i in range(12):
            async with sessions() as session, session.begin():
                await session.execute(table.insert().values(writer=f"g{i}"))
                holding.set()
                await asyncio.sleep(0.05)

    async def patient() -> None:
        await holding.wait()
        async with sessions() as session, session.begin():
            await session.execute(table.insert().values(writer="p"))

    try:
        await asyncio.gather(greedy(), patient())
        async with engine.connect() as conn:
            order = list((await conn.execute(sa.select(table.c.writer).order_by(table.c.seq))).scalars())
    finally:
        await engine.dispose()
    assert len(order) == 13
    assert order.index("p") <= 2  # in after the transaction it waited for, not after all twelve


async def test_a_writer_waiting_past_the_busy_timeout_is_told_the_database_is_locked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    engine, table = await _table(tmp_path)
    sessions = async_sessionmaker(engine)
    try:
        async with sessions() as holder, holder.begin():
            await holder.execute(table.insert().values(writer="holder"))
            with pytest.raises(sa.exc.OperationalError) as refused:
                async with sessions() as late, late.begin():
                    await late.execute(table.insert().values(writer="late"))
            assert is_busy(refused.value)
        async with sessions() as after, after.begin():  # the gate was left free by the refused writer
            await after.execute(table.insert().values(writer="after"))
        async with engine.connect() as conn:
            rows = list((await conn.execute(sa.select(table.c.writer).order_by(table.c.seq))).scalars())
    finally:
        await engine.dispose()
    assert rows == ["holder", "after"]


async def test_reads_do_not_queue_behind_a_writer(tmp_path: Path) -> None:
    engine, table = await _table(tmp_path)
    sessions = async_sessionmaker(engine)
    reads = async_sessionmaker(engine.execution_options(sqlite_begin=None))
    try:
        async with sessions() as writer, writer.begin():
            await writer.execute(table.insert().values(writer="w"))
            async with reads() as reader:  # no BEGIN: not a writer, so not gated
                count = (await reader.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
        assert count == 0  # the writer's row is not committed yet: the read ran beside it
    finally:
        await engine.dispose()
