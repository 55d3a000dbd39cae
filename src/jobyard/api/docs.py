"""`/docs`: Swagger UI served from the `swagger-ui-bundle` wheel, so the API docs need no CDN
(and no network at all) at run time.

`/docs` and `/openapi.json` follow the API's rules: in `keys` mode they need a key or a
dashboard session with any role (the schema lists every endpoint and field), like any read.
"""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from jobyard.api.auth import require
from jobyard.domain.roles import Role

ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    """Serve Swagger UI at /docs with its assets from the installed package, and the schema
    at /openapi.json, both to callers the API would answer (create the app with
    `openapi_url=None`, so FastAPI does not serve an open copy)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs")
    viewer = [Depends(require(Role.VIEWER))]

    @app.get("/openapi.json", include_in_schema=False, dependencies=viewer)
    def openapi() -> JSONResponse:
        schema: dict[str, Any] = app.openapi()
        return JSONResponse(schema)

    @app.get("/docs", include_in_schema=False, dependencies=viewer)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
