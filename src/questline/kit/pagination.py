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


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="from a previous page's next_cursor")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ProblemError("the cursor is not one this API issued", code="invalid_cursor") from exc
    if not isinstance(values, list):
        raise ProblemError("the cursor is not one this API issued", code="invalid_cursor")
    return values


def build_page(rows: list[T], limit: int, key: Any) -> Page[T]:
    """``rows`` were fetched with ``limit + 1``; ``key(row)`` gives the sort values for the cursor."""
    has_more = len(rows) > limit
    items = rows[:limit]
    next_cursor = encode_cursor(list(key(items[-1]))) if has_more and items else None
    return Page[T](items=items, next_cursor=next_cursor)
