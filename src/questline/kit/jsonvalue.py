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
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

T = TypeVar("T")

MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
MAX_DEPTH = 32
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class JsonProblem:
    """Where (``loc``: keys and list indexes from the root) and why a value cannot be stored."""

    loc: tuple[str | int, ...]
    reason: str

    def path(self, root: str = "") -> str:
        text = root
        for part in self.loc:
            text = f"{text}[{part}]" if isinstance(part, int) else (f"{text}.{part}" if text else part)
        return text or "value"

    def message(self, root: str = "") -> str:
        return f"{self.path(root)}: {self.reason}"


def find_json_problem(value: Any) -> JsonProblem | None:
    """The first value in ``value`` that the engine cannot store, or None."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            if _BAD_TEXT.search(item):
                return JsonProblem(loc, _text_problem(item))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                return JsonProblem(loc, f"the integer {_short(item)} is outside the 64-bit range [-2^63, 2^64-1]")
        elif isinstance(item, float):
            if not math.isfinite(item):
                return JsonProblem(loc, f"{item!r} is not a JSON number (NaN and Infinity are refused)")
        elif isinstance(item, dict | list | tuple):
            if len(loc) >= MAX_DEPTH:
                return JsonProblem(loc, f"nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, sub in item.items():
                    if not isinstance(key, str):  # only from Python callers; JSON keys are text
                        return JsonProblem(loc, f"the key {key!r} is not text")
                    if _BAD_TEXT.search(key):
                        return JsonProblem((*loc, key), f"the key holds {_text_problem(key)}")
                    stack.append((sub, (*loc, key)))
            else:
                stack.extend((sub, (*loc, index)) for index, sub in enumerate(item))
        else:
            return JsonProblem(loc, f"a {type(item).__name__} is not a JSON value")
    return None


def json_value_problem(value: Any, where: str = "") -> str | None:
    """``find_json_problem`` as one sentence, its path rooted at ``where`` (``body.data.items[2]: …``)."""
    problem = find_json_problem(value)
    return None if problem is None else problem.message(where)


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
