"""One place that turns errors into problem JSON `{"code", "message", ...}`.

A database or broker that is down (or restarting) is a 503 with `Retry-After` and a stable code,
logged as one line, on every endpoint and dashboard page: clients retry, nothing was changed.
Those errors get handlers of their own because Starlette's catch-all `Exception` handler
re-raises after answering, which makes the server log a traceback.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import quote

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from jobyard.errors import (
    BrokerUnavailable,
    DatabaseUnavailable,
    JobyardError,
    ServiceUnavailable,
    Unauthorized,
)
from jobyard.store.db import describe, is_transient

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    """Register the exception handlers."""
    app.add_exception_handler(JobyardError, _jobyard_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_error)  # type: ignore[arg-type]
    for broker_error in (redis.ConnectionError, redis.TimeoutError, KombuOperationalError):
        app.add_exception_handler(broker_error, _broker_error)
    app.add_exception_handler(Exception, _unexpected)


async def answer(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer a request with the registered handler for `exc`, for code that runs outside
    FastAPI's routing (the lean submit path) but must answer exactly as a route would."""
    handlers = scope["app"].exception_handlers
    handler = next(handlers[kind] for kind in type(exc).__mro__ if kind in handlers)
    response: Response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)


def problem(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    """A problem JSON response."""
    return JSONResponse(status_code=status, content={"code": code, "message": message, **details})


async def _jobyard_error(request: Request, exc: JobyardError) -> Response:
    if isinstance(exc, Unauthorized) and _wants_page(request):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/login?next={target}", status_code=303)
    if isinstance(exc, ServiceUnavailable):
        return _unavailable(request, exc)
    response = problem(exc.http_status, exc.code, exc.message, **exc.details)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="jobyard"'
    return response


async def _database_error(request: Request, exc: DBAPIError) -> Response:
    if not is_transient(exc):
        return await _unexpected(request, exc)
    return _unavailable(request, DatabaseUnavailable(), cause=exc)


async def _broker_error(request: Request, exc: Exception) -> Response:
    return _unavailable(request, BrokerUnavailable(), cause=exc)


def _unavailable(
    request: Request, exc: ServiceUnavailable, *, cause: BaseException | None = None
) -> Response:
    """503 with `Retry-After`: JSON for the API, a page that reloads itself for a browser."""
    log.warning(
        "%s %s: %s (%s)",
        request.method,
        request.url.path,
        exc.code.replace("_", " "),
        describe(cause or exc.__cause__ or exc),
        extra={"action": exc.code},
    )
    headers = {"Retry-After": str(exc.retry_after_s)}
    if _wants_page(request):
        body = UNAVAILABLE_PAGE.format(seconds=exc.retry_after_s, message=html.escape(exc.message))
        return HTMLResponse(body, status_code=exc.http_status, headers=headers)
    response = problem(exc.http_status, exc.code, exc.message, **exc.details)
    response.headers.update(headers)
    return response


UNAVAILABLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jobyard: unavailable</title>
<meta http-equiv="refresh" content="{seconds}"></head>
<body><h1>jobyard is waiting for a service</h1><p>{message}</p>
<p>This page reloads itself in {seconds} s.</p></body></html>
"""


def _wants_page(request: Request) -> bool:
    """A dashboard page a browser navigates to (not the API, not a fragment)."""
    path = request.url.path
    return (
        request.method == "GET"
        and not path.startswith(("/api/", "/ui/fragments/"))
        and "text/html" in request.headers.get("accept", "")
    )


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
        return problem(400, "malformed_json", f"the request body is not valid JSON: {reason}")
    fields = [
        {
            "field": ".".join(str(p) for p in e["loc"] if p != "body") or "(body)",
            "message": e["msg"].removeprefix("Value error, "),
            "type": e["type"],
        }
        for e in errors
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return problem(422, "invalid_request", f"the request is invalid: {summary}", errors=fields)


async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        # A body nested too deeply for the JSON parser: a parse failure like any other.
        return problem(400, "malformed_json", "the request body is not valid JSON: too deep")
    codes = {404: "not_found", 405: "method_not_allowed"}
    response = problem(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
    response.headers.update(exc.headers or {})  # e.g. `Allow` on 405
    return response


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal_error", "an unexpected error occurred; see the server log")
