"""Compiling schemas and checking recorded payloads against them (jsonschema-rs).

jsonschema-rs was chosen by measure (bench/schema_validators.py, bench/RESULTS.md): about 1 µs
to check a valid payload of a dozen fields, against 54 µs for `jsonschema` and 2.6 µs for
`fastjsonschema` (which has no draft 2020-12). A schema is compiled once per version; remote
`$ref`s are never fetched (`offline`), so a schema cannot make the service call out.

A part of an action that is absent (`response_data` of a running action) is not checked: its
schema applies once the part is given. Findings are `{path, message}`, the path starting at
the part (`request_payload.contact.id`), the message naming the rule that failed.
"""

import math
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from app.action_schemas.schemas import PARTS
from app.core.storable import NOT_FINITE, text_problem

MAX_FINDINGS = 20  # of one action: enough to fix it, bounded in size


class SchemaInvalid(Exception):
    """A schema that is not valid JSON Schema: `part` and why."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part
        self.message = message


def _unstorable(value: Any) -> str | None:
    """Why the database could not store a schema's text (NUL, lone surrogates), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and (problem := text_problem(item)):
            return problem
        if isinstance(item, float) and not math.isfinite(item):
            return NOT_FINITE
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _compile(part: str, schema: dict[str, Any]) -> Any:
    if (problem := _unstorable(schema)) is not None:
        raise SchemaInvalid(part, problem)
    try:
        jsonschema_rs.meta.validate(schema)
        return jsonschema_rs.Draft202012Validator(schema, offline=True)
    except jsonschema_rs.ValidationError as exc:
        where = "/".join(str(p) for p in exc.instance_path)
        message = exc.message.splitlines()[0] if exc.message else str(exc).splitlines()[0]
        raise SchemaInvalid(part, f"{where + ': ' if where else ''}{message}") from None
    except (ValueError, TypeError, jsonschema_rs.ReferencingError) as exc:  # a bad regex, a $ref
        lines = str(exc).splitlines()
        raise SchemaInvalid(part, lines[0] if lines else exc.__class__.__name__) from None


def _path(part: str, instance_path: list[str | int]) -> str:
    return ".".join([part, *(str(p) for p in instance_path)])


def _rule(schema_path: list[str | int]) -> str:
    """The keyword that failed: the last name of its path in the schema (`minimum`)."""
    names = [p for p in schema_path if isinstance(p, str)]
    return names[-1] if names else "schema"


@dataclass(frozen=True)
class CompiledSchema:
    """One version of an action type's schema, compiled: checks the parts of an action."""

    action_type: str
    version: int
    mode: str
    validators: tuple[tuple[str, Any], ...]

    @classmethod
    def of(
        cls, action_type: str, version: int, mode: str, parts: dict[str, Any]
    ) -> "CompiledSchema":
        validators = tuple(
            (part, _compile(part, parts[part])) for part in PARTS if parts.get(part) is not None
        )
        return cls(action_type, version, mode, validators)

    def findings(self, values: dict[str, Any]) -> list[dict[str, str]]:
        """What the action's parts break (empty when they match)."""
        found: list[dict[str, str]] = []
        for part, validator in self.validators:
            value = values.get(part)
            if value is None or validator.is_valid(value):
                continue
            for error in validator.iter_errors(value):
                text = error.message if len(error.message) <= 300 else error.message[:297] + "…"
                message = f"{text} (rule: {_rule(error.schema_path)})"
                found.append({"path": _path(part, error.instance_path), "message": message})
                if len(found) >= MAX_FINDINGS:
                    return found
        return found


def check_schema(parts: dict[str, Any]) -> None:
    """Raise SchemaInvalid unless every given part is a valid JSON Schema."""
    CompiledSchema.of("", 0, "enforce", parts)
