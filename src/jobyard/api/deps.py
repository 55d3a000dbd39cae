"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from jobyard.domain.storable import text_problem
from jobyard.errors import InvalidRequest
from jobyard.runtime import Runtime


async def storable_params(connection: HTTPConnection) -> None:
    """Refuse query parameters the database cannot hold (NUL, lone surrogates) with a 422
    naming the parameter, before any route reads them. Async: no thread hop for a check
    that does no I/O.

    Raises:
        InvalidRequest: naming the first bad parameter.
    """
    if connection.scope["type"] == "websocket":
        return  # the event stream answers on the socket itself (`routes.events`)
    for name, value in connection.query_params.multi_items():
        problem = text_problem(name) or text_problem(value)
        if problem:
            raise InvalidRequest(
                f"query parameter '{name}' {problem}",
                errors=[{"field": name, "message": problem, "type": "value_error"}],
            )


async def get_runtime(request: Request) -> Runtime:
    """The runtime the lifespan opened (async: no thread hop)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
