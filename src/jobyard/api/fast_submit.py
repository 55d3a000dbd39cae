"""The lean path of `POST /api/v1/jobs`, the endpoint a busy web app calls most.

FastAPI's routing, dependency solving, body parsing and response machinery cost as much CPU
per submit as storing the job does, and its sync endpoint hops to a thread pool. This ASGI
middleware answers the plain case itself: a JSON body of a job without an idempotency key,
from a caller already known to be an operator (open mode, or a key `BodyGuard` checked); it
validates exactly as the route does (the same `json.loads`, the same `JobCreate` model, the
same `submit.job_row`) and stores through the process's `GroupCommitter`, so concurrent
submits share one statement and one commit.

Anything else — another content type, invalid JSON or args, an idempotency key, a dashboard
session (CSRF), a query string — is replayed unchanged to the FastAPI route, which answers it
as it always did: nothing is stored before that decision, so a replay cannot submit twice. An
error while storing (the database away) is answered by the app's own exception handlers.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard import access
from jobyard.access import Principal
from jobyard.api import problems
from jobyard.api.auth import client_of
from jobyard.api.schemas import JobCreate, JobPublic
from jobyard.dispatch import submit
from jobyard.dispatch.group_commit import GroupCommitter
from jobyard.domain.roles import Role
from jobyard.runtime import Runtime
from jobyard.store.records import JobRecord

PATH = "/api/v1/jobs"
JSON_TYPES = (b"application/json",)


class FastSubmit:
    """Stores plain single submits without FastAPI's routing; replays the rest to it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _candidate(scope):
            await self.app(scope, receive, send)
            return
        body, last = await _read_body(receive)
        replay = _Replay(body, last, receive)
        plan = None if last["type"] != "http.request" else _plan(scope, body)
        if plan is None:
            await self.app(scope, replay.receive, send)
            return
        committer, row, entries = plan
        try:
            await committer.store(row, entries)
        except Exception as exc:  # answered as the route would answer it
            await problems.answer(scope, replay.receive, send, exc)
            return
        document = JobPublic.trusted(JobRecord.from_new_row(row)).model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-length", str(len(document)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": document})


def _candidate(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
        return False
    if scope.get("query_string"):
        return False  # query parameters are checked by the app (`deps.storable_params`)
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    return content_type.split(b";")[0].strip().lower() in JSON_TYPES


Plan = tuple[GroupCommitter, dict[str, Any], list[dict[str, Any]]]


def _plan(scope: Scope, body: bytes) -> Plan | None:
    """The row and audit entry to store, or None when the route must answer."""
    app = scope["app"]
    committer: GroupCommitter | None = getattr(app.state, "submits", None)
    caller = _operator(scope)
    if committer is None or caller is None:
        return None
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            return None
        request = JobCreate.model_validate(data)
        if request.idempotency_key is not None:
            return None  # the route reads the stored job for a known key
        runtime: Runtime = app.state.runtime
        job_request = submit.JobRequest(request.type, request.args, request.priority)
        row = submit.job_row(runtime, job_request, caller.name, runtime.clock())
    except Exception:  # invalid in some way: the route names what is wrong
        return None
    client = client_of(HTTPConnection(scope))
    entry = access.audit_entry(
        runtime, caller, "job.submit", row["id"], {"type": request.type}, client
    )
    return committer, row, [entry]


def _operator(scope: Scope) -> Principal | None:
    """The caller when already known to be allowed to submit without a CSRF check."""
    if scope["app"].state.auth_mode == "open":
        return access.OPEN_PRINCIPAL
    caller: Principal | None = scope.get("state", {}).get("principal")
    if caller is None or caller.via != "bearer" or not caller.role.allows(Role.OPERATOR):
        return None
    return caller


async def _read_body(receive: Receive) -> tuple[bytes, Message]:
    """The whole body, and the last message read (a disconnect ends the read early)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), message


class _Replay:
    """Hands the app the body already read, as one message, then the client's own stream."""

    def __init__(self, body: bytes, last: Message, receive: Receive) -> None:
        self._first: Message | None = (
            {"type": "http.request", "body": body, "more_body": False}
            if last["type"] == "http.request"
            else last
        )
        self._receive = receive

    async def receive(self) -> Message:
        if self._first is not None:
            message, self._first = self._first, None
            return message
        return await self._receive()
