"""Shared shapes of request bodies.

``PatchBody`` is the base of every partial update (PATCH, and PUT bodies that set only the
fields given). Each field may be left out; an explicit ``null`` is a 422 unless the field is
declared ``Clearable[...]`` (a value the resource may lack, such as a display name). Without
this, ``{"timezone": null}`` passed validation as "no change" in the model but reached the
database as "set to NULL" and failed there.

The JSON Schema says the same: a field that may not be null is documented without ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

T = TypeVar("T")


class _ClearableMarker:
    """Metadata that lets a ``PatchBody`` field be set to null (cleared)."""

    def __repr__(self) -> str:
        return "Clearable"


CLEARABLE = _ClearableMarker()
Clearable = Annotated[T | None, CLEARABLE]


class PatchBody(BaseModel):
    """A partial update: leave a field out to keep it; null clears only ``Clearable`` fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _clearable_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._clearable_fields = frozenset(
            name for name, info in cls.model_fields.items() if any(m is CLEARABLE for m in info.metadata)
        )

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_clearable(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls._clearable_fields:
            raise PydanticCustomError("null_not_allowed",
                                      "may be left out to keep the current value, but not set to null")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: Any) -> JsonSchemaValue:
        schema: JsonSchemaValue = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        for name, prop in target.get("properties", {}).items():
            if name not in cls._clearable_fields:
                _drop_null(prop)
        return schema


def _drop_null(prop: dict[str, Any]) -> None:
    """``anyOf: [X, null]`` (and ``default: null``) becomes plain ``X``: the field is optional, not nullable."""
    options = prop.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            del prop["anyOf"]
            prop.update({k: v for k, v in kept[0].items() if k not in prop})
        else:
            prop["anyOf"] = kept
    if "default" in prop and prop["default"] is None:
        del prop["default"]
