"""Responses every API route can give, for the OpenAPI schema: who may call, and outages."""

from __future__ import annotations

from jobyard.api.schemas import Problem

#: 401 without or with a bad key, 403 for a role too low, 503 while the database or broker
#: is away (with `Retry-After`), 413 for a body over the size limit.
COMMON: dict[int | str, dict[str, object]] = {
    401: {
        "model": Problem,
        "description": "No key, or an unknown, revoked or expired one (`code: unauthorized`); "
        "the response carries `WWW-Authenticate: Bearer`.",
    },
    403: {"model": Problem, "description": "The caller's role is too low (`code: forbidden`)."},
    413: {
        "model": Problem,
        "description": "The body is over `web.max_body_bytes` (`code: payload_too_large`).",
    },
    503: {
        "model": Problem,
        "description": "The database or the broker is unreachable (`database_unavailable`, "
        "`broker_unavailable`); nothing was changed; retry after `Retry-After` seconds.",
    },
}
