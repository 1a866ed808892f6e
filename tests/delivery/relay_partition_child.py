"""A relay process for the partitioned drills: relays the outbox to a shared file until drained.

Run as ``python -m tests.delivery.relay_partition_child DATABASE_URL APP_ID SINK PARTITIONS NAME``.
It makes its cursors, prints ``ready``, waits for a line on stdin, then relays with one subscriber
(NAME) that appends ``<pid> <partition> <message id> <player>`` for each message of the app to SINK
(one locked, fsynced write per batch, before the cursor commits), five messages at a time, and
prints ``drained`` when nothing is left. Several run at once; a SIGKILL lands between a batch's
outside effect and its progress.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline.models import outbox_partition
from questline.relay import service as relay
from questline.relay.service import RelayMessage


class SharedSink:
    def __init__(self, name: str, app_id: str, path: str, partitions: int) -> None:
        self.name, self.app_id, self.path, self.partitions = name, app_id, path, partitions

    async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
        mine = [m for m in messages if m.app_id == self.app_id]
        lines = "".join(f"{os.getpid()} {outbox_partition(m.app_id, m.player_id, self.partitions)} {m.id} "
                        f"{m.player_id}\n" for m in mine)
        await asyncio.to_thread(self._append, lines)
        await asyncio.sleep(0.05)  # the window where a kill loses the progress but not the effect

    def _append(self, text: str) -> None:
        with open(self.path, "a") as sink:
            fcntl.flock(sink, fcntl.LOCK_EX)
            sink.write(text)
            sink.flush()
            os.fsync(sink.fileno())


async def main(url: str, app_id: str, path: str, partitions: int, name: str) -> None:
    runtime = Runtime.build(Settings(env="test", database_url=url, relay_partitions=partitions,
                                     secret_key="test-secret-key-that-is-long-enough-0123456789"))  # type: ignore[arg-type]
    relay.install(runtime, [SharedSink(name, app_id, path, partitions)])
    try:
        await relay.prepare(runtime)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await relay.drain(runtime, limit=5)
        print("drained", flush=True)
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
