"""Secrets in the shapes once stored verbatim: more key names by default, header
lists as name/value pairs, credentials in URLs, bearer tokens and JWTs in free text."""

from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.core.redact import REDACTED, Redactor
from tests.conftest import TenantHandle
from tests.hardening.conftest import asgi_client, serving

ACTIONS = "/api/v1/logs/actions"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl"
NEW_DEFAULTS = [
    "pwd",
    "pass",
    "passphrase",
    "auth",
    "credentials",
    "session",
    "sessionid",
    "session_id",
    "jwt",
    "bearer",
    "signature",
    "cvc",
    "pin",
    "otp",
    "mfa_code",
    "dsn",
    "connection_string",
    "database_url",
]


@pytest.mark.parametrize("name", NEW_DEFAULTS)
def test_the_default_key_list_covers_common_names(name: str) -> None:
    redactor = Redactor(Settings().redact_key_set)
    assert redactor.redact({name: "s3cr3t", "other": 1}) == {name: REDACTED, "other": 1}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://bob:hunter2@db.example.com/x", f"https://bob:{REDACTED}@db.example.com/x"),
        ("postgres://u:p@h:5432/d failed", f"postgres://u:{REDACTED}@h:5432/d failed"),
        ("GET /cb?token=abc123&page=2", f"GET /cb?token={REDACTED}&page=2"),
        ("/x?access_token=abc&api_key=k&q=1", f"/x?access_token={REDACTED}&api_key={REDACTED}&q=1"),
        ("401 for Bearer abcdefghijklmnop", f"401 for Bearer {REDACTED}"),
        (f"token was {JWT}.", f"token was {REDACTED}."),
        ("https://example.com/?page=2&sort=asc", "https://example.com/?page=2&sort=asc"),
        ("tokens_used=5 bearer of news", "tokens_used=5 bearer of news"),
    ],
)
def test_secrets_inside_text(given: str, stored: str) -> None:
    assert Redactor(Settings().redact_key_set).scrub(given) == stored


def test_header_lists_keep_no_secret() -> None:
    redactor = Redactor(Settings().redact_key_set)
    headers = [
        {"name": "Authorization", "value": "Bearer abc"},
        {"key": "X-Api-Key", "value": "k"},
        {"name": "Accept", "value": "application/json"},
    ]
    assert redactor.redact({"headers": headers}) == {
        "headers": [
            {"name": "Authorization", "value": REDACTED},
            {"key": "X-Api-Key", "value": REDACTED},
            {"name": "Accept", "value": "application/json"},
        ]
    }


async def test_recorded_actions_are_redacted_end_to_end(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    body: dict[str, Any] = {
        "action_type": "http_call",
        "error_message": f"upstream said 401 to Bearer {JWT}",
        "user_agent": "curl/8 https://u:pw@proxy.example",
        "request_payload": {
            "url": "https://api.example.com/v1?api_key=sk_live_1",
            "headers": [{"name": "Authorization", "value": "Basic dXNlcjpwYXNz"}],
            "pwd": "x",
        },
    }
    for extra in ({}, {"Idempotency-Key": "redact-e2e"}):
        response = await client.post(ACTIONS, json=body, headers={**tenant.headers, **extra})
        assert response.status_code == 201, response.text
        stored = (
            await client.get(f"{ACTIONS}/{response.json()['id']}", headers=tenant.headers)
        ).json()
        assert stored["error_message"] == f"upstream said 401 to Bearer {REDACTED}"
        assert stored["user_agent"] == f"curl/8 https://u:{REDACTED}@proxy.example"
        assert stored["request_payload"] == {
            "url": f"https://api.example.com/v1?api_key={REDACTED}",
            "headers": [{"name": "Authorization", "value": REDACTED}],
            "pwd": REDACTED,
        }


async def test_patch_error_messages_and_audit_user_agents_are_scrubbed(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    created = await client.post(
        ACTIONS, json={"action_type": "x", "status": "pending"}, headers=tenant.headers
    )
    patched = await client.patch(
        f"{ACTIONS}/{created.json()['id']}",
        json={"status": "failed", "error_message": f"bad {JWT}"},
        headers=tenant.headers,
    )
    assert patched.json()["error_message"] == f"bad {REDACTED}"
    audit = await client.post(
        "/api/v1/logs/audits",
        json={
            "action": "create",
            "resource_type": "c",
            "resource_id": "1",
            "user_agent": f"x Bearer {JWT}",
        },
        headers=tenant.headers,
    )
    assert audit.json()["user_agent"] == f"x Bearer {REDACTED}"


async def test_text_scrubbing_can_be_turned_off(settings: Settings, tenant: TenantHandle) -> None:
    off = settings.model_copy(update={"redact_secrets_in_text": False})
    async with serving(off) as app, asgi_client(app) as client:
        response = await client.post(
            ACTIONS,
            json={
                "action_type": "x",
                "error_message": f"Bearer {JWT}",
                "request_payload": {"pwd": 1},
            },
            headers=tenant.headers,
        )
    assert response.json()["error_message"] == f"Bearer {JWT}"
    assert response.json()["request_payload"] == {"pwd": REDACTED}  # keys are still redacted
