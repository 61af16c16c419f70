"""Syslog over TLS: octet-counted RFC 5424 frames to a TLS collector whose certificate is
checked against the destination's `ca` (Debian's rsyslog here has no TLS driver, so the
collector is an asyncio TLS server with a certificate made for the test)."""

import asyncio
import contextlib
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import TenantHandle
from tests.destinations.conftest import create_destination, wait_until, write_actions


def _certificate(directory: Path) -> tuple[str, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (directory / "cert.pem").write_text(pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, directory / "cert.pem", directory / "key.pem"


def _frames(data: bytes) -> list[str]:
    messages = []
    while data:
        length, _, rest = data.partition(b" ")
        size = int(length)
        messages.append(rest[:size].decode())
        data = rest[size:]
    return messages


@pytest.fixture
async def tls_collector(tmp_path: Path) -> AsyncIterator[tuple[int, str, list[str]]]:
    pem, cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    messages: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := await reader.read(65536):
                data += chunk
        messages.extend(_frames(data))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    yield port, pem, messages
    server.close()
    await server.wait_closed()


async def test_records_arrive_over_tls_checked_against_the_ca(
    client: httpx.AsyncClient, tenant: TenantHandle, tls_collector: Any
) -> None:
    port, pem, messages = tls_collector
    await create_destination(
        client,
        tenant,
        type="syslog",
        config={"host": "127.0.0.1", "port": port, "tls": True, "ca": pem},
        kinds=["action"],
    )
    await write_actions(client, tenant, 5, user_id="tls-user")
    await wait_until(lambda: len(messages) >= 5)
    for message in messages:
        head, _, body = message.partition(" - action - ")
        assert head.startswith("<110>1 ") and head.endswith(" actionlog")
        record = json.loads(body)
        assert record["kind"] == "action" and record["user_id"] == "tls-user"
    ids = [json.loads(m.partition(" - action - ")[2])["stream_id"] for m in messages]
    assert ids == sorted(ids)
