"""Cursor pagination: an opaque cursor over a stable sort key, and a bounded ``limit``."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from questline.kit.errors import ProblemError

T = TypeVar("T")

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def after(self) -> list[Any] | None:
        return decode_cursor(self.cursor) if self.cursor else None

    def after_str(self) -> str | None:
        """The single string sort key of a cursor over one text column (``400 invalid_cursor`` otherwise)."""
        value: str | None = self._after_one(str)
        return value

    def after_int(self) -> int | None:
        """The single integer sort key of a cursor over one numeric column (``400 invalid_cursor`` otherwise)."""
        value: int | None = self._after_one(int)
        return value

    def _after_one(self, kind: type[Any]) -> Any:
        values = self.after()
        if values is None:
            return None
        if len(values) != 1 or type(values[0]) is not kind:
            raise _invalid_cursor()
        return values[0]


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="from a previous page's next_cursor")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort values a cursor carries: a non-empty list of strings and integers.

    Anything else is ``400 invalid_cursor``, so a forged cursor never reaches a query with
    a value the database would choke on (NUL characters, huge numbers, nested objects).
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(values, list) or not values or not all(_is_cursor_value(v) for v in values):
        raise _invalid_cursor()
    return values


def _is_cursor_value(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and len(value) <= 256 and "\x00" not in value


def _invalid_cursor() -> ProblemError:
    return ProblemError("the cursor is not one this API issued", code="invalid_cursor")


def build_page(rows: list[T], limit: int, key: Any) -> Page[T]:
    """``rows`` were fetched with ``limit + 1``; ``key(row)`` gives the sort values for the cursor."""
    has_more = len(rows) > limit
    items = rows[:limit]
    next_cursor = encode_cursor(list(key(items[-1]))) if has_more and items else None
    return Page[T](items=items, next_cursor=next_cursor)
