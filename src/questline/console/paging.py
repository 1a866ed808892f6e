"""Paging through a console list: the API's forward cursor, and the way back.

The engine's lists page forward only (``next_cursor``). A console page carries the cursors of the
pages before it in its address (``back``, dot-separated; cursors are URL-safe base64, never a dot),
so *Previous page* is a plain link too, reachable by keyboard like *Next page*. The trail keeps the
last ``TRAIL`` pages; further back, *First page* still leads to the start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import Request

TRAIL = 40
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,512}")


@dataclass
class Pager:
    """Where a list page stands: its cursor, the pages before it, and the page's other query values."""

    cursor: str | None = None
    back: list[str] = field(default_factory=list)
    keep: dict[str, str] = field(default_factory=dict)
    next_cursor: str | None = None
    prefix: str = ""  # for a second list on one page: its own ``<prefix>cursor`` and ``<prefix>back``

    @classmethod
    def of(cls, request: Request, *keep: str, prefix: str = "") -> Pager:
        """The pager of ``request``; ``keep``: the query values its links carry along (filters)."""
        query = request.query_params
        cursor = query.get(f"{prefix}cursor") or None
        if cursor is not None and not _CURSOR.fullmatch(cursor):
            cursor = None  # not a cursor the engine made: the first page
        back = [c for c in (query.get(f"{prefix}back") or "").split(".") if _CURSOR.fullmatch(c)] if cursor else []
        return cls(cursor, back[-TRAIL:], {k: query[k] for k in keep if query.get(k)}, prefix=prefix)

    def params(self, limit: int, **extra: object) -> dict[str, object]:
        """The API's query for this page."""
        return {"limit": limit, **({"cursor": self.cursor} if self.cursor else {}), **extra}

    def after(self, body: object) -> Pager:
        """This pager, told the API's answer (its ``next_cursor``)."""
        found = body.get("next_cursor") if isinstance(body, dict) else None
        self.next_cursor = found if isinstance(found, str) and _CURSOR.fullmatch(found) else None
        return self

    def _href(self, cursor: str | None, back: list[str]) -> str:
        query = dict(self.keep)
        if cursor:
            query[f"{self.prefix}cursor"] = cursor
            if back:
                query[f"{self.prefix}back"] = ".".join(back[-TRAIL:])
        return "?" + urlencode(query)

    @property
    def next_href(self) -> str | None:
        if self.next_cursor is None:
            return None
        return self._href(self.next_cursor, [*self.back, self.cursor] if self.cursor else [])

    @property
    def previous_href(self) -> str | None:
        if self.cursor is None:
            return None
        return self._href(self.back[-1], self.back[:-1]) if self.back else self._href(None, [])

    @property
    def first_href(self) -> str | None:
        return self._href(None, []) if self.cursor else None
