"""`/api/v1/audit`: who submitted, cancelled, retried or changed what (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from jobyard.api.auth import Admin
from jobyard.api.deps import RuntimeDep
from jobyard.api.responses import COMMON
from jobyard.api.schemas import Problem
from jobyard.domain.storable import MAX_INT
from jobyard.store import audit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=COMMON)


class AuditPublic(BaseModel):
    """One audited action."""

    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str | None
    details: dict[str, Any] | None
    client: str | None


class AuditPage(BaseModel):
    """Newest first; pass `next_cursor` as `cursor` for older entries."""

    items: list[AuditPublic]
    next_cursor: int | None


@router.get("", responses={code: {"model": Problem} for code in (401, 403)})
def list_audit(
    runtime: RuntimeDep,
    _caller: Admin,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit entries, filtered by actor or action."""
    with runtime.db.read() as conn:
        found = audit.page(conn, actor=actor, action=action, before=cursor, limit=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    return AuditPage(
        items=[AuditPublic.model_validate(e, from_attributes=True) for e in found],
        next_cursor=found[-1].id if more else None,
    )
