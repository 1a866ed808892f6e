"""A relay process for the kill drill: relays the outbox to a file, slowly, until killed.

Run as ``python -m tests.delivery.relay_child DATABASE_URL APP_ID SINK``. Its one subscriber
appends each message of the app to SINK (flushed and fsynced before the cursor commits), five at
a time, so a SIGKILL lands between a batch's outside effect and its progress.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.relay import service as relay
from questline.relay.service import RelayMessage


class FileSink:
    def __init__(self, name: str, app_id: str, path: str) -> None:
        self.name, self.app_id, self.path = name, app_id, path

    async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
        await asyncio.to_thread(self._append, [m.id for m in messages if m.app_id == self.app_id])
        await asyncio.sleep(0.01)  # the window where a kill loses the progress but not the effect


    def _append(self, ids: list[str]) -> None:
        with open(self.path, "a") as sink:
            sink.writelines(f"{i}\n" for i in ids)
            sink.flush()
            os.fsync(sink.fileno())


async def main(url: str, app_id: str, path: str) -> None:
    runtime = Runtime.build(Settings(env="test", database_url=url,
                                     secret_key="test-secret-key-that-is-long-enough-0123456789"))  # type: ignore[arg-type]
    relay.install(runtime, [FileSink(f"drill-{app_id}", app_id, path)])
    try:
        await relay.drain(runtime, limit=5)
        print("drained", flush=True)
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
