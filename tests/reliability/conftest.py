"""Reliability fixtures reuse the integration ones."""

from __future__ import annotations

from tests.integration.conftest import client, module_settings, running, settings, stack

__all__ = ["client", "module_settings", "running", "settings", "stack"]
