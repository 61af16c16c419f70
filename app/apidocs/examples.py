"""Request-body examples where Swagger UI's "Try it out" looks for them first.

Each write body declares its example with its schema (`json_schema_extra`), next to the fields
it illustrates. Swagger UI fills the editor from the media type's `example` when there is one
and otherwise builds a body from the schema: a fixed `id`, a `parent_id` equal to it, the
largest allowed duration. So each request body that has no example of its own gets its schema's
first example as the media type's `example`: one click records a row that reads as a real one.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Spec = dict[str, Any]


def _schema_example(spec: Spec, schema: Spec) -> Any:
    reference = schema.get("$ref", "")
    if reference.startswith("#/components/schemas/"):
        schema = spec["components"]["schemas"][reference.rsplit("/", 1)[1]]
    examples = schema.get("examples")
    return examples[0] if isinstance(examples, list) and examples else None


def add_body_examples(spec: Spec) -> Spec:
    """Set `example` on every JSON request body whose schema has one and whose media has none."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if not media or "example" in media or "examples" in media:
                continue
            example = _schema_example(spec, media.get("schema", {}))
            if example is not None:
                media["example"] = example
    return spec


def install_body_examples(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /openapi.json) carry the body examples."""
    build: Callable[[], Spec] = app.openapi

    def openapi() -> Spec:
        if app.openapi_schema is None:
            app.openapi_schema = add_body_examples(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
