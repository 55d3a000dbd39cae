"""Importing the user's Yard from its `package.module:attribute` path."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from jobyard.app import Yard
from jobyard.errors import ConfigError

if TYPE_CHECKING:
    from jobyard.config import Settings

#: The Yard of a project whose job types are all commands in jobyard.toml (no Python module).
_COMMANDS_ONLY = Yard("commands")


def load_yard_for(settings: Settings) -> Yard:
    """The Yard that `settings` name, with the command job types of jobyard.toml added.

    A project may have no Python at all: with no `yard` but `[job_types]`, those are its jobs.
    """
    if settings.yard is None and settings.job_types:
        yard = _COMMANDS_ONLY
    else:
        try:
            yard = load_yard(settings.yard)
        except YardImportError as exc:
            if exc.missing is None:
                raise
            from jobyard.environments.imports import missing_library_message

            raise ConfigError(missing_library_message(settings, exc.module, exc.missing)) from exc
    yard.declare_config_commands(settings)
    yard.declare_packs(settings)
    return yard


class YardImportError(ConfigError):
    """The Yard's module (or one it imports) failed to import; `missing` is the module that
    was not found, when that was the reason."""

    def __init__(self, message: str, *, module: str, missing: str | None) -> None:
        super().__init__(message)
        self.module = module
        self.missing = missing


def load_yard(path: str | None) -> Yard:
    """Import the Yard named by `path` (`package.module:yard`).

    The current directory is importable, as with `celery -A`, so a project's own modules load
    without installing them.

    Raises:
        ConfigError: when the path is unset, malformed, fails to import, or is not a Yard.
    """
    if not path:
        raise ConfigError(
            'no Yard configured: set yard = "package.module:yard" in jobyard.toml '
            "or JOBYARD_YARD (try `jobyard up --demo` for a ready-made one)"
        )
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"yard '{path}' must look like 'package.module:attribute'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        raise YardImportError(
            f"cannot import yard module '{module_name}': {exc}",
            module=_importer(exc) or module_name,
            missing=missing,
        ) from exc
    yard = getattr(module, attribute, None)
    if not isinstance(yard, Yard):
        raise ConfigError(f"'{path}' is not a jobyard.Yard (found {type(yard).__name__})")
    return yard


def _importer(exc: ImportError) -> str | None:
    """The module whose code ran the failing import (the last frame outside importlib)."""
    name = None
    trace = exc.__traceback__
    while trace is not None:
        module = trace.tb_frame.f_globals.get("__name__")
        if isinstance(module, str) and not module.startswith(("importlib", "jobyard.loader")):
            name = module
        trace = trace.tb_next
    return name
