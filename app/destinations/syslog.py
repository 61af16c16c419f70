"""The `syslog` destination: RFC 5424 messages over TCP, octet-counted (RFC 6587), optional TLS.

Each record is one message: `<110>1 {time} {host} actionlog - {kind} - {record JSON}`
(facility 13, log audit; severity 6, informational; the message id is the record's kind),
framed as `{length} {message}`. A batch is one connection: the messages, then (plain TCP)
a half-close and a wait for the collector to close its side, which it does once it has read
everything sent — TCP has no acknowledgement of its own, so this is what tells a delivered
batch from one cut off by a collector going away. Over TLS the connection is closed after the
last write (a TLS stream has no half-close), a weaker signal.
"""

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from typing import Any

from app.alerts.targets import UnsafeTarget, check_target
from app.destinations.transports import HOSTNAME, Outcome, Record

PRIORITY = 13 * 8 + 6


def frame(record: Record) -> bytes:
    stamp = record.created_at.isoformat().replace("+00:00", "Z")
    message = f"<{PRIORITY}>1 {stamp} {HOSTNAME} actionlog - {record.kind} - {record.json()}"
    data = message.encode()
    return str(len(data)).encode() + b" " + data


class Syslog:
    def __init__(self, config: dict[str, Any], timeout: float, allow_private: bool) -> None:
        self.host = config["host"]
        self.port = int(config["port"])
        self.timeout = timeout
        self.allow_private = allow_private
        self.tls: ssl.SSLContext | None = None
        if config.get("tls"):
            self.tls = ssl.create_default_context(cadata=config.get("ca") or None)

    async def send(self, records: Sequence[Record]) -> Outcome:
        try:  # the same policy as webhook URLs, on the collector's address
            await check_target(f"http://{self.host}:{self.port}/", self.allow_private)
        except UnsafeTarget as exc:
            return Outcome(False, error=str(exc).replace("url host", "host"), permanent=True)
        try:
            async with asyncio.timeout(self.timeout):
                await self._deliver(b"".join(frame(record) for record in records))
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:1024])
        return Outcome(True, response=f"{len(records)} messages sent")

    async def _deliver(self, data: bytes) -> None:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.tls, server_hostname=self.host if self.tls else None
        )
        try:
            writer.write(data)
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
                while await reader.read(65536):
                    pass  # collectors send nothing back; wait for them to close
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def close(self) -> None:
        return None
