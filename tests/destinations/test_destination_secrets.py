"""Secrets at rest: sealed to their destination, opened by the key that sealed them."""

import base64
import os
from uuid import uuid4

import pytest

from app.destinations.secrets import KeyRing, SecretsUnreadable, parse_key


def _key() -> bytes:
    return os.urandom(32)


def test_a_sealed_secret_opens_only_for_its_destination() -> None:
    ring = KeyRing(_key(), [])
    tenant, destination = uuid4(), uuid4()
    sealed = ring.seal({"token": "t0ken"}, tenant, destination)
    assert "t0ken" not in sealed
    assert ring.open(sealed, tenant, destination) == {"token": "t0ken"}
    with pytest.raises(SecretsUnreadable):
        ring.open(sealed, tenant, uuid4())  # copied to another row
    with pytest.raises(SecretsUnreadable):
        KeyRing(_key(), []).open(sealed, tenant, destination)  # another key


def test_secrets_of_the_generated_key_open_after_the_setting_is_given() -> None:
    generated, configured = _key(), _key()
    tenant, destination = uuid4(), uuid4()
    old = KeyRing(generated, []).seal({"api_key": "k"}, tenant, destination)
    ring = KeyRing(configured, [generated])
    assert ring.open(old, tenant, destination) == {"api_key": "k"}
    new = ring.seal({"api_key": "k2"}, tenant, destination)
    assert KeyRing(configured, []).open(new, tenant, destination) == {"api_key": "k2"}


def test_the_setting_must_be_32_bytes_of_base64() -> None:
    assert len(parse_key(base64.b64encode(_key()).decode())) == 32
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError, match="SECRETS_ENCRYPTION_KEY"):
            parse_key(bad)
