"""Which webhook URLs the service may call: http(s) to public addresses only.

A webhook makes the service send requests where a tenant says, so an address inside the
service's own network (loopback, private ranges, link-local such as the cloud metadata
address 169.254.169.254, and other reserved ranges) is refused, both when the endpoint is
saved and before every attempt (a name may resolve elsewhere later). WEBHOOK_ALLOW_PRIVATE=true
lifts this, for tests and closed networks. Redirects are never followed.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeTarget(ValueError):
    """The URL may not be called; the message says why."""


def check_url(url: str) -> tuple[str, int]:
    """The host and port of a well-formed http(s) URL, or UnsafeTarget."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("url must start with http:// or https://")
    if not parts.hostname:
        raise UnsafeTarget("url must name a host")
    if parts.username or parts.password:
        raise UnsafeTarget("url must not hold credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _refused(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for flag, name in (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_private, "private"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_unspecified, "unspecified"),
    ):
        if flag:
            return f"{name} address {ip}"
    return None


async def check_target(url: str, allow_private: bool) -> None:
    """Refuse URLs that resolve to an address inside the network (unless allowed)."""
    host, port = check_url(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeTarget(f"url host {host!r} does not resolve: {exc.strerror or exc}") from None
    for info in infos:
        if (reason := _refused(str(info[4][0]))) is not None:
            raise UnsafeTarget(
                f"url host {host!r} resolves to a {reason}; such targets are refused "
                "unless WEBHOOK_ALLOW_PRIVATE=true"
            )
