"""Schemathesis over the whole OpenAPI document, against a real ``questline serve``, as four callers.

Issue 10 point 21's bar: with a server key, a player token, a client key and no credential at all,
requests generated from the document (valid ones, and ones that break it on purpose) never get a
5xx, never a status the document does not list for the operation, and every answer has the
documented content type, headers and shape (required fields present). Bounded: a few examples
per operation and caller, so the run takes minutes, not hours; derandomized, so a run is the same
run on every machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from questline.kit.settings import Settings
from tests.conftest import Factory
from tests.serving import Served, serving

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 4
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# Read for admins only, and none of these callers is one: its values, generated for every operation,
# were a third of the generation time, for a header no route reads for these callers.
APP_HEADER = "X-Questline-App"


def without_app_header(spec: dict[str, Any]) -> dict[str, Any]:
    """The document as generated from: the same operations, without the admins' app header."""
    paths = {path: {method: {**op, "parameters": [p for p in op["parameters"] if p.get("name") != APP_HEADER]}
                    if isinstance(op, dict) and "parameters" in op else op
                    for method, op in item.items()}
             for path, item in spec["paths"].items()}
    return {**spec, "paths": paths}


@dataclass(frozen=True)
class Callers:
    headers: dict[str, dict[str, str]]
    known: dict[str, str]  # real path parameter values of the test's app


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[Served]:
    """The engine as a process, on the test's own database (so the test can make its app and keys)."""
    env = {"QUESTLINE_DATABASE_URL": settings.database_url, "QUESTLINE_ENV": "test",
           "QUESTLINE_SECRET_KEY": settings.secret_key.get_secret_value(), "QUESTLINE_LOG_LEVEL": "WARNING",
           "QUESTLINE_RATE_LIMIT_PER_KEY": "100000/minute", "QUESTLINE_RATE_LIMIT_PER_PLAYER": "100000/minute"}
    if settings.redis_url:
        env |= {"QUESTLINE_REDIS_URL": settings.redis_url, "QUESTLINE_REDIS_NAMESPACE": settings.redis_namespace}
    with serving(tmp_path, **env) as process:
        yield process


@pytest.fixture
async def callers(factory: Factory) -> Callers:
    keys = await factory.app()
    alice = await factory.player_token(keys, "alice")
    headers = {"server key": keys.server, "player token": alice, "client key": keys.client, "no credential": {}}
    return Callers(headers, {"player_id": "alice", "app_id": keys.app_id, "org_id": keys.org_id})


def test_no_5xx_and_no_undocumented_answer_for_any_caller(served: Served, callers: Callers) -> None:
    spec = httpx.get(f"{served.base}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(without_app_header(spec))
    session = requests.Session()
    failures: list[str] = []
    seen: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in spec["paths"].values())

    for operation in operations:
        if operation.path == "/metrics":
            continue
        names = {p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "path"}
        known = {name: value for name, value in callers.known.items() if name in names}
        strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
        if known:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known))

        @settings(max_examples=EXAMPLES_PER_OPERATION * len(callers.headers), deadline=None, database=None,
                  derandomize=True, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), caller=st.sampled_from(sorted(callers.headers)))
        def run(case: Any, caller: str) -> None:
            headers = {**(case.headers or {}), **callers.headers[caller]}
            if caller == "no credential":
                headers.pop("Authorization", None)
            response = case.call(base_url=served.base, session=session, headers=headers, timeout=30)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (AssertionError, FailureGroup) as failure:
                failures.append(f"{caller}: {case.method} {case.formatted_path} -> {response.status_code} "
                                f"{response.text[:300]}\n  {str(failure)[:600]}")

        run()
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])
    # The run reached the services (successes and refusals of every kind), not just the front door.
    assert sum(n for status, n in seen.items() if status < 300) >= 50, seen
    assert {400, 401, 403, 404, 422} <= set(seen), seen
    # Nothing in the server's log is an unhandled error either.
    crashes = [line for line in served.stderr().splitlines() if '"unhandled_error"' in line]
    assert not crashes, json.dumps(crashes[:5], indent=1)
