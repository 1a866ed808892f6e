"""What free-form JSON may hold: one check for every place the engine keeps what a caller wrote.

Python's JSON parser accepts values the engine cannot store faithfully, and each used to turn
into a 500 (or, worse, into a silent change) somewhere further in:

- integers outside ``[-2**63, 2**64 - 1]``: orjson, which writes every stored document, cannot;
- ``NaN`` and ``Infinity``: not JSON at all; they would be stored as ``null``;
- lone UTF-16 surrogates (``"\\ud800"``): not Unicode text, no database can hold them;
- NUL characters: PostgreSQL text cannot hold them (refused alike on every backend);
- nesting deeper than ``MAX_DEPTH``: more than any stored document needs.

``json_value_problem`` names the first such value by its path (``data.items[2]``), or returns
None. ``JsonObject`` is the pydantic type for free-form objects in request models; the request
edge runs the same check over every JSON body (see ``kit.routing``).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

T = TypeVar("T")

MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
MAX_DEPTH = 32
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def json_value_problem(value: Any, where: str = "") -> str | None:
    """The first value in ``value`` that the engine cannot store, with its path and why; else None."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if _BAD_TEXT.search(item):
                return f"{path or 'value'}: {_text_problem(item)}"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                return f"{path or 'value'}: the integer {_short(item)} is outside the 64-bit range [-2^63, 2^64-1]"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{path or 'value'}: {item!r} is not a JSON number (NaN and Infinity are refused)"
        elif isinstance(item, dict):
            if depth >= MAX_DEPTH:
                return f"{path or 'value'}: nested deeper than {MAX_DEPTH} levels"
            for key, sub in item.items():
                if not isinstance(key, str):  # only from Python callers; JSON keys are text
                    return f"{path or 'value'}: the key {key!r} is not text"
                child = f"{path}.{key}" if path else key
                if _BAD_TEXT.search(key):
                    return f"{child}: the key holds {_text_problem(key)}"
                stack.append((sub, child, depth + 1))
        elif isinstance(item, list | tuple):
            if depth >= MAX_DEPTH:
                return f"{path or 'value'}: nested deeper than {MAX_DEPTH} levels"
            stack.extend((sub, f"{path}[{index}]", depth + 1) for index, sub in enumerate(item))
        else:
            return f"{path or 'value'}: a {type(item).__name__} is not a JSON value"
    return None


def _text_problem(text: str) -> str:
    found = _BAD_TEXT.search(text)
    assert found is not None
    char = found.group()
    if char == "\x00":
        return "a NUL character (\\u0000), which text may not contain"
    return f"a lone UTF-16 surrogate (\\u{ord(char):04x}), which is not Unicode text"


def _short(number: int) -> str:
    text = str(number)
    return text if len(text) <= 30 else f"{text[:12]}…({len(text)} digits)"


def ensure_json_value(value: T) -> T:
    """A pydantic after-validator: ``value`` unchanged, or a clear error naming what cannot be stored."""
    problem = json_value_problem(value)
    if problem is not None:
        raise PydanticCustomError("json_value", "{problem}", {"problem": problem})
    return value


# Put on any free-form field: ``Annotated[dict[str, Any] | None, JSON_CHECKED]``.
JSON_CHECKED = AfterValidator(ensure_json_value)
# A free-form JSON object as a request model field: anything JSON can say that can be stored.
JsonObject = Annotated[dict[str, Any], JSON_CHECKED]
