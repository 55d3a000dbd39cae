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
        yard = load_yard(settings.yard)
    yard.declare_config_commands(settings.job_types)
    return yard


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
        raise ConfigError(f"cannot import yard module '{module_name}': {exc}") from exc
    yard = getattr(module, attribute, None)
    if not isinstance(yard, Yard):
        raise ConfigError(f"'{path}' is not a jobyard.Yard (found {type(yard).__name__})")
    return yard
