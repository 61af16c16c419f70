"""The transport of each destination type, built from a destination's full config."""

from typing import Any

from app.destinations.http_types import Datadog, SplunkHec, Webhook
from app.destinations.s3 import S3
from app.destinations.syslog import Syslog
from app.destinations.transports import Transport

BUILDERS: dict[str, Any] = {
    "http": Webhook,
    "splunk_hec": SplunkHec,
    "datadog": Datadog,
    "syslog": Syslog,
    "s3": S3,
}


def build_transport(
    kind: str, config: dict[str, Any], timeout: float, allow_private: bool
) -> Transport:
    transport: Transport = BUILDERS[kind](config, timeout, allow_private)
    return transport
