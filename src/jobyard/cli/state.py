"""What the root options give every command: where the config is and how loud to be."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from jobyard.config import Settings, load_settings
from jobyard.runtime import Runtime


@dataclass
class CliState:
    """Root options, loaded once per invocation."""

    config: Path | None = None
    verbose: int = 0

    def settings(self) -> Settings:
        """Validated settings (raises ConfigError naming the bad keys)."""
        return load_settings(self.config)

    def runtime(self) -> Runtime:
        """An opened runtime; callers close it."""
        return Runtime.open(self.settings())


def state_of(ctx: typer.Context) -> CliState:
    """The CliState the root callback stored."""
    state = ctx.find_root().obj
    assert isinstance(state, CliState)
    return state
