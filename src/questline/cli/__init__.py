"""The ``questline`` command line."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_collection() -> Iterator[None]:
    """The garbage collector off for a block that makes only objects kept for the whole process
    (imports of the engine: modules, classes, schemas, routes): a collection there frees nothing,
    and the collections an import of the engine set off were about a fifth of a process's start."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run() -> None:
    """The ``questline`` command (``python -m questline`` and the installed script)."""
    with no_collection():
        from questline.cli.main import app
    app()
