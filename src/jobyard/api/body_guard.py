"""Who is calling, and how much they send, before any body is read.

FastAPI reads and parses a request body before it runs the endpoint's dependencies, so an
unauthenticated client could make the server read and parse 64 MiB before being told 401.
This ASGI middleware answers first: a request with a body must carry valid credentials (in
`keys` mode; the login form is the exception), and its body may not exceed `web.max_body_bytes`
(`web.max_batch_body_bytes` for the batch endpoint), whether it says its length or streams it.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard.api.auth import principal_of
from jobyard.config import WebSettings
from jobyard.errors import JobyardError, PayloadTooLarge, Unauthorized

WITH_BODY = {"POST", "PUT", "PATCH"}
#: Posts that carry the credentials themselves.
OPEN_POSTS = ("/login",)
BATCH_PATH = "/api/v1/jobs/batch"


class BodyGuard:
    """Refuses unauthenticated and oversized request bodies before they are read."""

    def __init__(self, app: ASGIApp, web: WebSettings) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        refusal = await self._unauthenticated(scope, path)
        if refusal is not None and path.startswith("/ui/"):  # a dashboard form: log in again
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", b"/login")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if refusal is not None:
            await _answer(send, refusal, {"www-authenticate": 'Bearer realm="jobyard"'})
            return
        limit = self.web.max_batch_body_bytes if path == BATCH_PATH else self.web.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _answer(send, _too_large(limit))
            return
        guard = _Capped(receive, send, limit)
        await self.app(scope, guard.receive, guard.send)

    async def _unauthenticated(self, scope: Scope, path: str) -> JobyardError | None:
        if path.startswith(OPEN_POSTS) or not path.startswith(("/api/", "/ui/")):
            return None
        connection = HTTPConnection(scope)
        if connection.app.state.auth_mode == "open":
            return None
        try:
            await run_in_threadpool(principal_of, connection)
        except Unauthorized as exc:
            return exc
        except Exception:  # the database is away: the route answers (503), not this guard
            return None
        return None


class _Capped:
    """Stops a streamed body at `limit` bytes with a 413; the app's own answer is then
    dropped (it sees the client disconnect)."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self._seen = 0
        self._answered = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not self._answered:
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                self._answered = True
                await _answer(self._send, _too_large(self._limit))
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if not self._answered:
            await self._send(message)


def _too_large(limit: int) -> JobyardError:
    return PayloadTooLarge(
        f"the request body is over {limit} bytes (web.max_body_bytes, or "
        "web.max_batch_body_bytes for batches): send less per request"
    )


async def _answer(send: Send, error: JobyardError, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"code": error.code, "message": error.message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
