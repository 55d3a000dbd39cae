"""JSON Schema checks for the args of command job types (which have no pydantic model).

`jsonschema` is imported on first use: most processes (and every job process) never need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a valid JSON Schema (draft 2020-12), or None."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(dict(schema))
    except SchemaError as exc:
        return str(exc.message)
    return None


def schema_errors(schema: Mapping[str, Any], value: Any) -> list[dict[str, str]]:
    """One entry per place where `value` breaks `schema`, in the shape of pydantic's errors."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(dict(schema))
    return [
        {
            "field": ".".join(str(p) for p in error.absolute_path) or "(args)",
            "message": error.message,
            "type": str(error.validator),
        }
        for error in sorted(
            validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]
        )
    ]
