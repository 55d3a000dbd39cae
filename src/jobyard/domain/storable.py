"""What a database can store exactly as it was sent: the checks every submitted value passes.

PostgreSQL refuses NUL characters and lone surrogates in text (a 500 if they get that far),
and JSON stores NaN, Infinity and out-of-range numbers as null, so a job would run with other
args than submitted. Deeply nested values cannot be serialized back. Each problem is named with
the path of the value (`args.items[3].name`), so the caller knows what to fix.
"""

from __future__ import annotations

import math
from typing import Any

#: Deepest nesting of objects and arrays accepted in args.
MAX_DEPTH = 64
#: Integers a 64-bit column or JSON number round trip holds.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1


def text_problem(value: str) -> str | None:
    """Why this text cannot be stored, or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (invalid Unicode)"
    return None


Problem = tuple[str, str]


def json_problem(value: Any, path: str, depth: int = 0) -> Problem | None:
    """The first value under `path` that cannot be stored exactly: (its path, the reason)."""
    if depth > MAX_DEPTH:
        return path, f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return path, f"{value} is not a JSON number (NaN, Infinity and values beyond 1e308)"
    if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
        return path, "integer outside the 64-bit range"
    if isinstance(value, dict):
        return _first(
            (_key_problem(key, path) or json_problem(item, f"{path}.{key}", depth + 1))
            for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return _first(
            json_problem(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)
        )
    return None


def storable_args(value: Any) -> Any:
    """For pydantic validators: the args unchanged, or ValueError naming the bad value."""
    found = json_problem(value, "args")
    if found is not None:
        raise ValueError(f"{found[0]} {found[1]}")
    return value


def storable_text(value: Any) -> Any:
    """For pydantic validators: the text unchanged, or ValueError saying what is wrong."""
    problem = text_problem(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return value


def _key_problem(key: Any, path: str) -> Problem | None:
    problem = text_problem(key) if isinstance(key, str) else None
    return (path, f"a key {problem}") if problem else None


def _first(problems: Any) -> Problem | None:
    return next((problem for problem in problems if problem), None)
