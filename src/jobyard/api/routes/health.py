"""`/healthz` (the process answers) and `/readyz` (database and broker reachable)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from jobyard.api.deps import RuntimeDep
from jobyard.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the web process is serving."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: 200 when the database and the broker answer, 503 naming what does not."""
    checks: dict[str, str] = {}
    for name, check in (("database", runtime.db.ping), ("broker", runtime.publisher.ping)):
        try:
            check()
            checks[name] = "ok"
        except ServiceUnavailable as exc:
            checks[name] = exc.message
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        status_code=200 if ready else 503,
        content={"status": "ready" if ready else "unavailable", **checks},
    )
