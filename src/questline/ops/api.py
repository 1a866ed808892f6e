from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from questline.kit.errors import ServiceUnavailable, problem_response
from questline.kit.responses import JsonResponse
from questline.kit.routing import RuntimeDep
from questline.ops import service

router = APIRouter(tags=["operations"])


@router.get("/healthz", openapi_extra={"x-access": "anonymous"})
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", openapi_extra={"x-access": "anonymous"}, responses={503: {"description": "not ready"}})
async def readyz(request: Request, runtime: RuntimeDep) -> Response:
    """What this process's roles need answers (the database, Redis when configured, the event log,
    the background loops, a migrated schema); 503 problem+json otherwise."""
    checks = await service.readiness(runtime)
    if all(v == "ok" for v in checks.values()):
        return JsonResponse({"status": "ready", "checks": checks})
    problem = ServiceUnavailable("a dependency is unreachable", code="not_ready", extra={"checks": checks})
    return problem_response(request, problem)


@router.get("/metrics", openapi_extra={"x-access": "anonymous"})
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics: requests by route, and what this process's roles do (events ingested and
    processed, batch time, lag per partition, JetStream pending, partitions owned)."""
    return Response(await service.render_metrics(runtime), media_type="text/plain; version=0.0.4")
