"""Files written whole: a reader sees the old content or the new, never a half-written file."""

from __future__ import annotations

import os
from pathlib import Path


def write_files(root: Path, files: dict[str, bytes]) -> None:
    """Write each ``relative path -> content`` under ``root`` (folders made as needed), atomically per file."""
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(content)
        os.replace(partial, target)
