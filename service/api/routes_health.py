"""`GET /healthz` (the process is alive) and `GET /readyz` (it can answer)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.api.auth import bearer_scheme
from service.api.errors import ApiError
from service.api.runtime import runtime_of
from service.api.schemas import BackendStatus, ErrorResponse, Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: answers at once, needs no key")
@router.head("/healthz", include_in_schema=False)  # uptime probes often send HEAD
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz", response_model=Readiness, dependencies=[Depends(bearer_scheme)],
    summary="Readiness: the index is loaded and the default backend is usable",
    responses={503: {"model": ErrorResponse, "description": "not ready; the message says why"},
               401: {"model": ErrorResponse}},
)
async def readyz(request: Request) -> Readiness:
    runtime = runtime_of(request)
    if runtime.service is not None:
        await runtime.check_backend()
    reason = runtime.not_ready_reason()
    if reason:
        raise ApiError(503, f"not ready: {reason}", code="not_ready", headers={"Retry-After": "5"})
    index = runtime.require_service().index
    backend = runtime.backend
    detail = backend.detail if backend.usable else f"{backend.detail}; answering extractively instead"
    return Readiness(documents=len(index.manifest), sentences=len(index.sentences),
                     backend=BackendStatus(name=backend.name, usable=bool(backend.usable), detail=detail))
