"""One place that turns errors into problem JSON `{"code", "message", ...}`."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from jobyard.errors import JobyardError, Unauthorized

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    """Register the exception handlers."""
    app.add_exception_handler(JobyardError, _jobyard_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def problem(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    """A problem JSON response."""
    return JSONResponse(status_code=status, content={"code": code, "message": message, **details})


async def _jobyard_error(request: Request, exc: JobyardError) -> Response:
    if isinstance(exc, Unauthorized) and _wants_page(request):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/login?next={target}", status_code=303)
    return problem(exc.http_status, exc.code, exc.message, **exc.details)


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
    codes = {404: "not_found", 405: "method_not_allowed"}
    return problem(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal_error", "an unexpected error occurred; see the server log")
