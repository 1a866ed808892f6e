"""Forms generated from a definition kind's JSON Schema.

Simple top-level fields (text, numbers, choices, switches) become inputs; anything nested (objects,
arrays, unions of shapes) gets a small JSON or YAML box of its own. The API validates what is
posted, and its messages are shown next to the field they name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PREFIX = "field."


@dataclass
class Field:
    name: str
    widget: str  # text | integer | number | choice | switch | json
    required: bool
    description: str = ""
    options: list[str] = field(default_factory=list)
    value: str = ""
    checked: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**defs.get(ref.removeprefix("#/$defs/"), {}), **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _widget(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[str, list[str]]:
    schema = _resolve(schema, defs)
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        real = [b for b in branches if b.get("type") != "null"]
        if len(real) != 1:
            return "json", []
        schema = _resolve(real[0], defs)
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        return "choice", [str(v) for v in schema["enum"]]
    kind = schema.get("type")
    if kind == "string":
        return "text", []
    if kind in ("integer", "number"):
        return str(kind), []
    if kind == "boolean":
        return "switch", []
    return "json", []


def fields_of(schema: dict[str, Any], body: dict[str, Any] | None) -> list[Field]:
    """The form's fields, in the schema's order, filled from ``body``."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    found = []
    for name, prop in (schema.get("properties") or {}).items():
        widget, options = _widget(prop, defs)
        item = Field(name, widget, name in required, str(prop.get("description", "")), options)
        value = (body or {}).get(name, prop.get("default") if body is None else None)
        if widget == "switch":
            item.checked = bool(value)
        elif widget == "json":
            item.value = "" if value is None else json.dumps(value, indent=2)
        elif value is not None:
            item.value = str(value)
        found.append(item)
    return found


def body_of(fields: list[Field], posted: dict[str, str]) -> dict[str, Any]:
    """The definition a posted form describes; a nested box that does not parse gets its error."""
    body: dict[str, Any] = {}
    for item in fields:
        raw = posted.get(item.input_name, "")
        if item.widget == "switch":
            item.checked = raw == "on"
            body[item.name] = item.checked
            continue
        item.value = raw
        if raw.strip() == "":
            continue  # left empty: the kind's default applies, or the API says the field is required
        if item.widget == "json":
            import yaml  # on first use (about 1 MB)

            try:
                body[item.name] = yaml.safe_load(raw)
            except yaml.YAMLError as bad:
                item.errors.append(f"not JSON or YAML: {str(bad).splitlines()[0]}")
        elif item.widget in ("integer", "number"):
            body[item.name] = _number(raw.strip(), item.widget)
        else:
            body[item.name] = raw
    return body


def _number(text: str, widget: str) -> int | float | str:
    """The number typed, or the text itself so that the API names what is wrong with it."""
    try:
        return int(text) if widget == "integer" else float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        return text


def place_errors(fields: list[Field], problem: Any) -> list[str]:
    """Put the API's validation messages on the fields they name; returns those that name no field."""
    by_name = {item.name: item for item in fields}
    general = []
    errors = problem.get("errors") if isinstance(problem, dict) else None
    for error in errors or []:
        if not isinstance(error, dict):
            continue
        loc = [str(p) for p in error.get("loc", [])]
        loc = loc[1:] if loc[:1] == ["body"] else loc
        message = str(error.get("msg", ""))
        if loc and loc[0] in by_name:
            rest = ".".join(loc[1:])
            by_name[loc[0]].errors.append(f"{rest}: {message}" if rest else message)
        else:
            general.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return general
