"""Where the CLI prints: rich consoles made when a command prints, not when a module is imported.

rich fixes a console's size in its constructor when ``COLUMNS`` and ``LINES`` are set, so a console
made at import keeps the terminal of that moment and never sees a later one: Click's ``CliRunner``
setting ``COLUMNS`` for one command, or a pytest-xdist worker, whose environment got
``COLUMNS=80``/``LINES=24`` from GNU readline when pytest imported it, drew tables cut to 80
columns whatever the command was given.
"""

from __future__ import annotations

from rich.console import Console


def out(*, soft_wrap: bool = False) -> Console:
    """Standard output, sized from the environment and terminal of this moment."""
    return Console(soft_wrap=soft_wrap)


def err() -> Console:
    """Standard error, likewise."""
    return Console(stderr=True)
