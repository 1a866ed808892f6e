"""Layering rules checked over every module, so an area added later is covered without editing a list.

(import-linter checks the same contracts in CI with named lists; this test needs no list.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "questline"


# A line scanner rather than ``ast``: CPython 3.11.7's parser can fail spuriously late in a long
# session ("AST constructor recursion depth mismatch"), and imports here are one per line.
_FROM = re.compile(r"^\s*from\s+(questline[\w.]*)\s+import\s+\(?([\w\s,]*)", re.MULTILINE)
_IMPORT = re.compile(r"^\s*import\s+(questline[\w.]*)", re.MULTILINE)


def _imports(path: Path) -> set[str]:
    text = path.read_text()
    found = set(_IMPORT.findall(text))
    for module, names in _FROM.findall(text):
        found.add(module)
        found.update(f"{module}.{name.strip()}" for name in names.split(",") if name.strip())
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out.append((".".join(p for p in parts if p != "__init__"), path))
    return out


MODULES = _modules()


def test_the_package_has_areas() -> None:
    areas = {name.split(".")[1] for name, _ in MODULES if name.count(".") >= 2}
    assert {"kit", "tenancy", "players", "pipeline", "rules", "ledger", "progression", "gating"} <= areas


@pytest.mark.parametrize(("name", "path"), [m for m in MODULES if m[0].startswith("questline.kit")],
                         ids=lambda v: str(v) if isinstance(v, str) else "")
def test_kit_imports_no_area(name: str, path: Path) -> None:
    outside = {i for i in _imports(path) if not i.startswith("questline.kit")}
    assert not outside, f"{name} imports {sorted(outside)}"


@pytest.mark.parametrize(("name", "path"), [m for m in MODULES if m[0].endswith(".api")],
                         ids=lambda v: str(v) if isinstance(v, str) else "")
def test_routes_never_reach_a_repository(name: str, path: Path) -> None:
    reached = {i for i in _imports(path) if i.endswith(".repository") or ".repository." in i}
    assert not reached, f"{name} imports {sorted(reached)}"


# questline.models gathers every table for Alembic; it reads no rows.
@pytest.mark.parametrize(("name", "path"), [m for m in MODULES
                                            if not m[0].startswith("questline.ledger") and m[0] != "questline.models"],
                         ids=lambda v: str(v) if isinstance(v, str) else "")
def test_only_the_ledger_touches_its_tables(name: str, path: Path) -> None:
    touched = {i for i in _imports(path)
               if i.startswith(("questline.ledger.models", "questline.ledger.repository"))}
    assert not touched, f"{name} imports {sorted(touched)}"
