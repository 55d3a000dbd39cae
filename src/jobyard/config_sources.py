"""Where each effective setting came from, for `jobyard config show`."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobyard.config import ENV_PREFIX, Settings, find_config_file
from jobyard.redaction import mask, redact_url


def describe(
    settings: Settings, config_file: Path | None, environ: Mapping[str, str] | None = None
) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) for every setting; source is env, file or default."""
    env = os.environ if environ is None else environ
    path = find_config_file(config_file, env)
    from_file = _flatten(tomllib.loads(path.read_text(encoding="utf-8"))) if path else {}
    rows = []
    for key, value in _flatten(settings.model_dump(mode="json")).items():
        env_name = ENV_PREFIX + key.upper().replace(".", "__")
        if _env_sets(env, env_name):
            source = f"env {env_name}"
        elif key in from_file or any(k.startswith(key + ".") for k in from_file):
            source = f"file {path}"
        else:
            source = "default"
        rows.append((key, mask(key, value), source))
    rows.append(("(resolved) database", redact_url(settings.database), "derived"))
    rows.append(("(resolved) broker", redact_url(settings.broker), "derived"))
    return rows


def _env_sets(env: Mapping[str, str], name: str) -> bool:
    """The variable itself, or a parent one holding JSON (JOBYARD_POOLS='{…}')."""
    if name in env:
        return True
    parts = name.split("__")
    return any("__".join(parts[:i]) in env for i in range(1, len(parts)))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat
