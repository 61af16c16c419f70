"""Which JSON Schema library validates recorded payloads: a measured choice.

Validates one typical action payload (an object of a dozen fields, nested, with formats and
patterns) against its schema many times with each library that is installed, and reports
microseconds per valid and per invalid payload (collecting every error, as the service does),
plus the time to compile a schema. The figures go into bench/RESULTS.md.

    .venv/bin/python bench/schema_validators.py
"""

import importlib
import time
from collections.abc import Callable
from typing import Any

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["contact", "pipeline"],
    "additionalProperties": False,
    "properties": {
        "contact": {
            "type": "object",
            "required": ["id", "email"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
                "stage": {"enum": ["lead", "customer", "churned"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
            },
        },
        "pipeline": {"type": "string", "minLength": 1, "maxLength": 64},
        "amount": {"type": "number", "minimum": 0},
        "dry_run": {"type": "boolean"},
    },
}
VALID = {
    "contact": {"id": 4812, "email": "a@example.com", "stage": "lead", "tags": ["x", "y"]},
    "pipeline": "sales",
    "amount": 120.5,
    "dry_run": False,
}
INVALID = {"contact": {"id": 0, "email": "nope", "stage": "other"}, "pipeline": ""}


def _jsonschema_rs() -> tuple[Callable[[Any], list[Any]], Callable[[], Any]]:
    import jsonschema_rs

    def compile_() -> Any:
        return jsonschema_rs.Draft202012Validator(SCHEMA)

    validator = compile_()
    return lambda payload: list(validator.iter_errors(payload)), compile_


def _jsonschema() -> tuple[Callable[[Any], list[Any]], Callable[[], Any]]:
    import jsonschema

    def compile_() -> Any:
        return jsonschema.Draft202012Validator(SCHEMA)

    validator = compile_()
    return lambda payload: list(validator.iter_errors(payload)), compile_


def _fastjsonschema() -> tuple[Callable[[Any], list[Any]], Callable[[], Any]]:
    import fastjsonschema

    # Draft 7 at most (no 2020-12), and it stops at the first error.
    schema = {k: v for k, v in SCHEMA.items() if k != "$schema"}

    def compile_() -> Any:
        return fastjsonschema.compile(schema)

    validator = compile_()

    def errors(payload: Any) -> list[Any]:
        try:
            validator(payload)
        except fastjsonschema.JsonSchemaException as exc:
            return [exc]
        return []

    return errors, compile_


LIBRARIES = {
    "jsonschema_rs": _jsonschema_rs,
    "jsonschema": _jsonschema,
    "fastjsonschema": _fastjsonschema,
}


def _per_call_us(fn: Callable[[], Any], seconds: float = 0.5) -> float:
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            fn()
        calls += 100
    return elapsed / calls * 1e6


def main() -> None:
    print(f"{'library':16} {'valid µs':>10} {'invalid µs':>11} {'compile µs':>11}")
    for name, build in LIBRARIES.items():
        try:
            importlib.import_module(name)
        except ImportError:
            print(f"{name:16} not installed")
            continue
        errors, compile_ = build()
        assert not errors(VALID) and errors(INVALID)
        valid = _per_call_us(lambda errors=errors: errors(VALID))  # type: ignore[misc]
        invalid = _per_call_us(lambda errors=errors: errors(INVALID))  # type: ignore[misc]
        compiled = _per_call_us(compile_, 0.3)
        print(f"{name:16} {valid:10.1f} {invalid:11.1f} {compiled:11.1f}")


if __name__ == "__main__":
    main()
