"""The kinds of definition an engine knows, each with its schema. Built per app instance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.errors import NotFound
from questline.rules.schemas import DefinitionBody

ExtraCheck = Callable[[AsyncSession, str, DefinitionBody], Awaitable[list[str]]]
# Like ExtraCheck, also told the definition's key and the (kind, key) pairs a bundle is writing,
# for rules across an app's definitions (e.g. one featured battle pass per app).
KeyedCheck = Callable[[AsyncSession, str, str, DefinitionBody, set[tuple[str, str]]], Awaitable[list[str]]]


@dataclass(frozen=True)
class DefinitionKind:
    name: str
    schema: type[DefinitionBody]
    description: str
    # Checks needing the database (e.g. a reward's currency exists); returns error messages.
    check: ExtraCheck | None = None
    # Other kinds this kind's keys also answer for in references (a "level" is a track or a combined level).
    answers_for: tuple[str, ...] = ()
    keyed_check: KeyedCheck | None = None


class KindRegistry:
    def __init__(self, kinds: list[DefinitionKind]) -> None:
        self._kinds: dict[str, DefinitionKind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"definition kind {kind.name!r} registered twice")
            self._kinds[kind.name] = kind

    def get(self, name: str) -> DefinitionKind:
        kind = self._kinds.get(name)
        if kind is None:
            known = ", ".join(sorted(self._kinds))
            raise NotFound(f"unknown definition kind {name!r}; known kinds: {known}", code="unknown_kind")
        return kind

    def all(self) -> list[DefinitionKind]:
        return [self._kinds[name] for name in sorted(self._kinds)]

    def kinds_answering(self, ref_kind: str) -> list[str]:
        """The definition kinds whose keys satisfy a reference of ``ref_kind``."""
        return [k.name for k in self._kinds.values() if k.name == ref_kind or ref_kind in k.answers_for]
