"""The web app of one of several `jobyard web` processes (`web.workers`).

uvicorn starts each worker process by importing a factory, so the app cannot be handed over
built: every process reads the same settings again (`jobyard web` puts the config file, host
and port it resolved into the environment first) and opens its own database pool, publisher
and event listener. Nothing is shared between them but the database and the broker.
"""

from __future__ import annotations

from fastapi import FastAPI

from jobyard.api.app import create_app
from jobyard.cli import log_setup
from jobyard.config import load_settings
from jobyard.loader import load_yard_for

#: What uvicorn imports in each worker process.
FACTORY = f"{__name__}:app_from_environment"


def app_from_environment() -> FastAPI:
    """The app, built from `$JOBYARD_CONFIG` and `JOBYARD_*` settings."""
    settings = load_settings()
    log_setup.configure(settings.log_format, role="web")
    return create_app(settings, yard=load_yard_for(settings))
