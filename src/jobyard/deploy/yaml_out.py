"""YAML as people read it: multi-line strings (jobyard.toml, dashboards) as literal blocks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings in `|` block style."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump(document: Any) -> str:
    """One YAML document, keys in the order built."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def dump_all(documents: Iterable[Any]) -> str:
    """Several YAML documents separated by `---`."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
