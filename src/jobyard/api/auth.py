"""Who is calling, and whether their role allows it: FastAPI dependencies.

Requests authenticate with `Authorization: Bearer KEY`, or (the dashboard) with a session
cookie. Cookie-authenticated requests that change something must also carry the CSRF token
(`X-CSRF-Token` header or `csrf_token` form field) matching the CSRF cookie.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from jobyard import access
from jobyard.access import Principal
from jobyard.domain.roles import Role
from jobyard.errors import Forbidden, Unauthorized
from jobyard.runtime import Runtime

SESSION_COOKIE = "jobyard_session"
CSRF_COOKIE = "jobyard_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def principal_of(connection: HTTPConnection) -> Principal:
    """The caller of a request or WebSocket.

    Raises:
        Unauthorized: no credentials, or an unknown, revoked or expired one.
    """
    cached: Principal | None = getattr(connection.state, "principal", None)
    if cached is not None:
        return cached
    found = _identify(connection)
    connection.state.principal = found
    return found


def _identify(connection: HTTPConnection) -> Principal:
    if connection.app.state.auth_mode == "open":
        return access.OPEN_PRINCIPAL
    runtime: Runtime = connection.app.state.runtime
    header = connection.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if header:
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("send the key as 'Authorization: Bearer KEY'")
        found = access.authenticate(runtime, secret.strip())
        if found is None:
            raise Unauthorized("the API key is unknown or revoked")
        return found
    token = connection.cookies.get(SESSION_COOKIE)
    if token:
        found = access.session_principal(runtime, token)
        if found is not None:
            return found
        raise Unauthorized("the dashboard session expired: log in again")
    raise Unauthorized()


def require(
    role: Role, *, csrf_header: bool = True
) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency that admits callers with at least `role`.

    Async, so a caller already identified (open mode, or a body's credentials checked by
    `BodyGuard`) costs no thread hop; a key or session still to look up is looked up on a
    worker thread (the database).

    Args:
        role: the least role allowed.
        csrf_header: check the CSRF header on cookie-authenticated changes (dashboard forms
            check their form field instead).
    """

    async def check(request: Request) -> Principal:
        caller: Principal | None = getattr(request.state, "principal", None)
        if caller is None:
            if request.app.state.auth_mode == "open":
                caller = principal_of(request)
            else:
                caller = await run_in_threadpool(principal_of, request)
        if not caller.role.allows(role):
            raise Forbidden(
                f"this needs the {role.value} role; '{caller.name}' is {caller.role.value}"
            )
        if csrf_header and caller.via == "session" and request.method not in SAFE_METHODS:
            check_csrf_header(request)
        return caller

    return check


def check_csrf_header(request: Request) -> None:
    """A cookie-authenticated change must repeat the CSRF cookie in a header.

    Raises:
        Forbidden: missing or wrong token.
    """
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if not cookie or not sent or not secrets.compare_digest(cookie, sent):
        raise Forbidden("missing or wrong CSRF token: send the X-CSRF-Token header")


def client_of(request: HTTPConnection) -> str | None:
    """The client address, for the audit log."""
    return request.client.host if request.client else None


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
