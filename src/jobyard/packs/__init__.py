"""Built-in job packs: job types a team would otherwise write itself, enabled in jobyard.toml.

`[packs.transfer]` (options inside, or none) adds the pack's job types to the application's
Yard in every process; `jobyard.packs.transfer.pack(...)` gives the same Yard in Python. Each
pack validates its own options, so a bad one names its key (`packs.transfer.max_bytes`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from jobyard.app import Yard
from jobyard.errors import ConfigError

#: Pack name → module with a `pack(**options) -> Yard` function.
PACKS = {
    "transfer": "jobyard.packs.transfer",
    "media": "jobyard.packs.media",
    "vision": "jobyard.packs.vision",
}


def load_pack(name: str, options: Mapping[str, Any]) -> Yard:
    """The job types of pack `name` configured with `options` (ConfigError naming the key)."""
    if name not in PACKS:
        raise ConfigError(f"packs.{name}: unknown pack (available: {', '.join(sorted(PACKS))})")
    module = importlib.import_module(PACKS[name])
    try:
        yard: Yard = module.pack(**options)
    except ValidationError as exc:
        problems = "; ".join(
            f"packs.{name}.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(problems) from None
    return yard
