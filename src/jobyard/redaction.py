"""Masking credentials wherever settings are shown: `config show`, config errors, logs.

A URL keeps its scheme, user, host and path but not its password; a setting whose name says
it is a secret (key, password, secret, token) shows only that it is set.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
#: The last part of a dotted name: `key`, `password`, `secret`, `token`, or `…_key` and so on.
_SECRET_NAME = re.compile(r"(^|_)(key|password|secret|token)s?$", re.I)


def redact_url(url: str) -> str:
    """`scheme://user:***@host/path`: the password replaced, everything else kept."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, host = rest.rsplit("@", 1)
    if ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:{MASK}@{host}"


def is_secret_name(dotted: str) -> bool:
    """Whether a setting's dotted name says it holds a secret."""
    return bool(_SECRET_NAME.search(dotted.rsplit(".", 1)[-1]))


def mask(dotted: str, value: Any) -> Any:
    """The value as it may be shown for the setting `dotted`."""
    if value is None or value == "":
        return value
    if is_secret_name(dotted):
        return MASK
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value
