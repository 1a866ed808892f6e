"""Bad input never gets a 500: hypothesis drives every operation of /openapi.json.

Inputs are drawn from each operation's own schema (so many requests get past validation
and reach the services and the database), then bent: wrong types, odd text, huge numbers,
unknown fields, malformed JSON, strange path segments and query values. Every reply must be
below 500, and every error must be problem+json with a code and the request id. New routes
are fuzzed as soon as they appear in the OpenAPI document.
"""

from __future__ import annotations

import string
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from questline.kit.runtime import Runtime
from tests.conftest import AdminLogin, AppKeys, Factory

JSON = dict[str, Any]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10),
                                                                                               inner, max_size=4),
                        max_leaves=12)
ODD_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "..", "%", "%2F", "a/b", "\u202e", "\U0001f600", "null", "0", "-1", "1e309",
                     "x" * 300, "app_" + "Z" * 26, "key_00000000000000000000000000", "' OR 1=1 --"]),
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: JSON


def resolve(schema: JSON, components: JSON) -> JSON:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def from_schema(schema: JSON, components: JSON, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value that mostly fits ``schema`` (a small JSON Schema subset), sometimes not."""
    schema = resolve(schema, components)
    if depth > 4:
        return SCALARS
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, components, depth + 1) for s in schema[key]])
    if "allOf" in schema:
        return from_schema(schema["allOf"][0], components, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props: JSON = schema.get("properties", {})
        required = set(schema.get("required", []))
        fields = {name: from_schema(sub, components, depth + 1) for name, sub in props.items()}
        extra = schema.get("additionalProperties")
        free = (st.dictionaries(st.text(string.ascii_letters + "_.", min_size=1, max_size=12),
                                from_schema(extra, components, depth + 1) if isinstance(extra, dict) else SCALARS,
                                max_size=3) if extra else st.just({}))
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        ).flatmap(lambda base: free.map(lambda more: {**more, **base}))
    if kind == "array":
        items = from_schema(schema.get("items", {}), components, depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) < 200)
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(lambda d: d.isoformat())
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum", -(2**40)), max_value=schema.get("maximum", 2**40))
    if kind == "number":
        return st.floats(min_value=schema.get("minimum"), max_value=schema.get("maximum"), allow_nan=False,
                         allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return ANY_JSON


def bent(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the schema's own values; sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, ANY_JSON)


@st.composite
def requests(draw: st.DrawFn, operations: list[Operation], components: JSON) -> tuple[str, str, JSON]:
    op = draw(st.sampled_from(operations))
    path = op.path
    query: dict[str, str] = {}
    for param in op.spec.get("parameters", []):
        schema = param.get("schema", {})
        value = draw(st.one_of(from_schema(schema, components).map(_as_text), ODD_TEXT))
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", urllib.parse.quote(value, safe="") or "x")
        elif param["in"] == "query" and draw(st.booleans()):
            query[param["name"]] = value
    kwargs: JSON = {"params": query}
    content = op.spec.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None or op.method in ("POST", "PUT", "PATCH"):
        schema = (content or {}).get("schema", {})
        how = draw(st.sampled_from(["schema", "schema", "schema", "junk", "raw", "none"]))
        if how == "schema":
            kwargs["json"] = draw(bent(from_schema(schema, components)))
        elif how == "junk":
            kwargs["json"] = draw(ANY_JSON)
        elif how == "raw":
            kwargs["content"] = draw(st.binary(max_size=60) | st.sampled_from([b"{", b"[1,", b'{"a":}', b"\x00"]))
            kwargs["headers"] = {"content-type": "application/json"}
    return op.method, path, kwargs


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


@pytest.fixture
async def fuzz_setup(engine: FastAPI, factory: Factory, runtime: Runtime) -> tuple[list[Operation], JSON, AppKeys,
                                                                                    AdminLogin]:
    spec = engine.openapi()
    operations = [Operation(method.upper(), path, op) for path, ops in spec["paths"].items()
                  for method, op in ops.items() if path != "/metrics"]
    keys = await factory.app()
    admin = await factory.admin(keys.org_id)
    return operations, spec.get("components", {}).get("schemas", {}), keys, admin


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(data=st.data())
async def test_no_input_gets_a_500(client: httpx.AsyncClient, fuzz_setup: tuple[list[Operation], JSON, AppKeys,
                                                                                 AdminLogin],
                                   data: st.DataObject) -> None:
    operations, components, keys, admin = fuzz_setup
    method, path, kwargs = data.draw(requests(operations, components))
    as_admin = data.draw(st.booleans())
    auth = admin.headers(keys.app_id) if as_admin else keys.server
    kwargs["headers"] = {**auth, **kwargs.get("headers", {})}
    if method == "POST" and data.draw(st.booleans()):
        kwargs["headers"]["Idempotency-Key"] = data.draw(st.text(string.printable.strip(), min_size=1, max_size=20))
    resp = await client.request(method, path, **kwargs)
    event(f"{resp.status_code // 100}xx")
    assert resp.status_code < 500, f"{method} {path} {kwargs}: {resp.status_code} {resp.text[:500]}"
    if resp.status_code >= 400:
        assert resp.headers["content-type"].startswith("application/problem+json"), (method, path, resp.text)
        body = resp.json()
        assert body["code"] and body["request_id"] and body["status"] == resp.status_code
