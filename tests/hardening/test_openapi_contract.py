"""The OpenAPI document as a contract : checked as data, so that a new route
cannot forget a description, a bound or the documented error shapes."""

from typing import Any

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    app: FastAPI = create_app(Settings(admin_token="x" * 20))
    return app.openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]


def _unbounded(schema: dict[str, Any]) -> list[str]:
    problems = []
    for alternative in [schema, *schema.get("anyOf", [])]:
        kind = alternative.get("type")
        if kind == "integer" and "maximum" not in alternative:
            problems.append("integer without maximum")
        if kind == "string" and not {"maxLength", "enum", "format"} & alternative.keys():
            problems.append("string without maxLength")
        if kind == "array":
            problems += _unbounded(alternative.get("items", {}))
    return problems


NOT_YET: set[str] = set()  # paths exempt from the rule (none)


def test_every_parameter_is_described_and_bounded(spec: dict[str, Any]) -> None:
    problems = []
    for method, path, operation in _operations(spec):
        if path in NOT_YET:
            continue
        for parameter in operation.get("parameters", []):
            where = f"{method.upper()} {path} {parameter['name']}"
            if not parameter.get("description"):
                problems.append(f"{where}: no description")
            problems += [f"{where}: {p}" for p in _unbounded(parameter.get("schema", {}))]
    assert problems == []


def test_the_admin_token_has_its_own_scheme(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["AdminToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Admin-Token",
        "description": "The operator's ADMIN_TOKEN",
    }
    assert schemes["ApiKey"]["name"] == "X-API-Key"
    for method, path, operation in _operations(spec):
        names = {name for item in operation.get("security", []) for name in item}
        if path.startswith("/api/v1/admin/"):
            assert names == {"AdminToken"}, (method, path)
        elif path.startswith(("/api/v1/logs", "/api/v1/keys", "/action-logs")):
            assert names == {"ApiKey", "BearerKey"}, (method, path)


def test_every_422_is_the_documented_list(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        response = operation["responses"].get("422")
        if response is None:
            continue
        ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        detail = spec["components"]["schemas"][ref]["properties"]["detail"]
        assert detail["type"] == "array", (method, path)


def test_list_routes_declare_their_paging_headers(spec: dict[str, Any]) -> None:
    for path in (
        "/api/v1/logs/actions",
        "/api/v1/logs/audits",
        "/api/v1/logs/audits/resource/{resource_type}/{resource_id}",
    ):
        headers = spec["paths"][path]["get"]["responses"]["200"]["headers"]
        assert {"X-Next-Cursor", "Link"} <= headers.keys()


def test_status_aliases_are_in_the_enum(spec: dict[str, Any]) -> None:
    body = spec["components"]["schemas"]["ActionCreate"]["properties"]["status"]
    assert {"completed", "failed", "initiated", "success"} <= set(body["enum"])


def test_common_errors_are_documented(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        assert {"429", "500", "503"} <= operation["responses"].keys(), (method, path)
    assert "Retry-After" in spec["paths"]["/ready"]["get"]["responses"]["503"]["headers"]
