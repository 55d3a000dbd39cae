"""Submit forms generated from a job type's args schema, and their parsing.

The schema is the JSON schema of the job type's pydantic model, so the form and the API
validate with the same rules; the errors pydantic reports are shown next to their fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jobyard.app import JobDefinition

SIMPLE_KINDS = {"string", "integer", "number", "boolean"}


@dataclass
class FormField:
    """One input of the form."""

    name: str
    title: str
    kind: str  # string | integer | number | boolean | enum | json
    required: bool
    value: Any
    help: str | None = None
    options: list[Any] | None = None
    error: str | None = None


def fields_for(definition: JobDefinition, values: dict[str, Any] | None = None) -> list[FormField]:
    """One field per argument, prefilled with `values` or the schema defaults."""
    schema = definition.args_json_schema()
    required = set(schema.get("required", []))
    definitions = schema.get("$defs", {})
    fields = []
    for name, spec in schema.get("properties", {}).items():
        resolved = _resolve(spec, definitions)
        kind, options = _kind(resolved)
        default = resolved.get("default", spec.get("default"))
        value = (values or {}).get(name, default)
        if kind == "json" and value is not None and not isinstance(value, str):
            value = json.dumps(value)
        fields.append(
            FormField(
                name=name,
                title=spec.get("title", name),
                kind=kind,
                required=name in required,
                value=value,
                help=spec.get("description"),
                options=options,
            )
        )
    return fields


def parse_form(
    fields: list[FormField], form: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Args from posted `arg.NAME` values, and errors for values that are not even JSON."""
    args: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields:
        raw = form.get(f"arg.{field.name}")
        if field.kind == "boolean":
            args[field.name] = raw in {"true", "on", "1"}
            continue
        if raw is None or raw == "":
            continue  # left empty: the default applies, or the schema reports it missing
        if field.kind == "json":
            try:
                args[field.name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                errors[field.name] = f"not valid JSON: {exc.msg}"
            continue
        args[field.name] = raw  # pydantic converts "12" to 12 and names what does not fit
    return args, errors


def _resolve(spec: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**definitions.get(ref.removeprefix("#/$defs/"), {}), **spec}
    return spec


def _kind(spec: dict[str, Any]) -> tuple[str, list[Any] | None]:
    if "enum" in spec:
        return "enum", list(spec["enum"])
    kind = spec.get("type")
    if kind in SIMPLE_KINDS:
        return str(kind), None
    return "json", None
