"""`/api/v1/events`: a WebSocket of job events, current state first.

Messages are JSON objects: first `{"kind": "snapshot", "jobs": [...]}` (the job, or the newest
matching jobs), then `{"kind": "events", "events": [...]}` batches of state, progress and log
events as they happen. A client that falls too far behind gets `{"kind": "overflow"}` and is
closed with code 1013; it reconnects and reads the snapshot again.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from jobyard.api.auth import principal_of
from jobyard.api.schemas import JobPublic
from jobyard.domain.states import JobState
from jobyard.domain.storable import text_problem
from jobyard.errors import Forbidden, InvalidRequest, JobyardError
from jobyard.events.hub import EventHub, Subscription
from jobyard.events.types import EventFilter
from jobyard.runtime import Runtime
from jobyard.store import jobs

router = APIRouter(tags=["events"])
SNAPSHOT_LIMIT = 100
CLOSE_NOT_FOUND = 4404
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_INVALID = 4422


@router.websocket("/api/v1/events")
async def events(
    websocket: WebSocket,
    job_id: Annotated[str | None, Query(description="Only this job (a UUID).")] = None,
    type: Annotated[str | None, Query(description="Only jobs of this type.")] = None,
    pool: Annotated[str | None, Query(description="Only jobs of this pool.")] = None,
    state: Annotated[str | None, Query(description="Only events into this state.")] = None,
) -> None:
    """Stream job events matching the filters (all events without filters).

    A filter that cannot match anything stored (not a UUID, an unknown state, NUL or a lone
    surrogate, too long) is answered on the socket with an `invalid_request` error message
    and close code 4422, like any other refusal."""
    runtime: Runtime = websocket.app.state.runtime
    hub: EventHub = websocket.app.state.events
    await websocket.accept()
    try:
        wanted = _filter(job_id, type, pool, state)
    except JobyardError as exc:
        await websocket.send_json({"kind": "error", "code": exc.code, "message": exc.message})
        await websocket.close(CLOSE_INVALID)
        return
    try:
        await run_in_threadpool(_authorize, websocket)
    except JobyardError as exc:
        await websocket.send_json({"kind": "error", "code": exc.code, "message": exc.message})
        await websocket.close(CLOSE_UNAUTHORIZED if exc.http_status == 401 else CLOSE_FORBIDDEN)
        return
    subscription = hub.subscribe(wanted)
    try:
        snapshot = await run_in_threadpool(_snapshot, runtime, wanted)
        if job_id is not None and not snapshot:
            await websocket.send_json(
                {"kind": "error", "code": "job_not_found", "message": f"no job with id {job_id}"}
            )
            await websocket.close(CLOSE_NOT_FOUND)
            return
        await websocket.send_json({"kind": "snapshot", "jobs": snapshot})
        await _stream(websocket, subscription)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(subscription)


def _filter(
    job_id: str | None, type: str | None, pool: str | None, state: str | None
) -> EventFilter:
    """The stream's filter, or InvalidRequest naming the first bad parameter."""
    for name, value, limit in (("type", type, 200), ("pool", pool, 64), ("state", state, 16)):
        problem = text_problem(value) if value is not None else None
        if problem is None and value is not None and len(value) > limit:
            problem = f"is longer than {limit} characters"
        if problem:
            raise InvalidRequest(f"query parameter '{name}' {problem}")
    if job_id is not None:
        try:
            job_id = str(uuid.UUID(job_id))
        except ValueError:
            raise InvalidRequest(
                f"query parameter 'job_id': '{job_id[:40]}' is not a UUID"
            ) from None
    if state is not None and state not in {s.value for s in JobState}:
        known = ", ".join(s.value for s in JobState)
        raise InvalidRequest(f"query parameter 'state': '{state}' is not one of {known}")
    return EventFilter(job_id=job_id, type=type, pool=pool, state=state)


def _authorize(websocket: WebSocket) -> None:
    """Viewers and up; a browser's cookie login only from the dashboard's own origin."""
    caller = principal_of(websocket)
    if caller.via == "session":
        secure = websocket.url.scheme == "wss"
        host = websocket.headers.get("host", "")
        if not same_origin(websocket.headers.get("origin", ""), host, secure=secure):
            raise Forbidden("a cookie login may open the event stream from the dashboard only")


def same_origin(origin: str, host: str, *, secure: bool) -> bool:
    """Whether a browser's `Origin` is the dashboard's own: scheme, host and port all equal
    (default ports made explicit, so `http://h` matches host `h:80`)."""
    scheme = "https" if secure else "http"
    default = 443 if secure else 80
    try:
        seen = urlsplit(origin)
        mine = urlsplit(f"{scheme}://{host}")
        return (seen.scheme, seen.hostname, seen.port or default) == (
            scheme,
            mine.hostname,
            mine.port or default,
        ) and bool(mine.hostname)
    except ValueError:  # a malformed port
        return False


def _snapshot(runtime: Runtime, wanted: EventFilter) -> list[dict[str, Any]]:
    with runtime.db.read() as conn:
        if wanted.job_id is not None:
            found = jobs.fetch(conn, uuid.UUID(wanted.job_id))
            records = [found] if found is not None else []
        else:
            records = jobs.page(
                conn,
                state=JobState(wanted.state) if wanted.state else None,
                type_=wanted.type,
                pool=wanted.pool,
                limit=SNAPSHOT_LIMIT,
            )
    return [JobPublic.of(r).model_dump(mode="json") for r in records]


async def _stream(websocket: WebSocket, subscription: Subscription) -> None:
    """Send what the hub queues; a watcher task stops the sender when the client leaves.

    One plain `await` per message (no task or wait set per message): with hundreds of
    clients the per-message overhead is what the web process spends its time on.
    """
    sender = asyncio.ensure_future(_send_all(websocket, subscription))
    closed = asyncio.ensure_future(_until_closed(websocket))
    try:
        await asyncio.wait({sender, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sender.cancel()
        closed.cancel()
    if sender.done() and not sender.cancelled() and sender.exception() is not None:
        raise sender.exception()  # type: ignore[misc]


async def _send_all(websocket: WebSocket, subscription: Subscription) -> None:
    while True:
        text = await subscription.messages.get()
        if subscription.overflowed:
            await websocket.send_json({"kind": "overflow"})
            await websocket.close(CLOSE_TRY_AGAIN)
            return
        await websocket.send_text(text)


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until the client goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
