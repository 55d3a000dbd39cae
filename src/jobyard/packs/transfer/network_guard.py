"""Which URLs a transfer may fetch: http(s) only, and (unless allowed) no private, loopback,
link-local or otherwise non-public address, so a job's URL cannot reach internal services
(SSRF). Every redirect hop is checked again."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from jobyard.context import Fail

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")


def check_scheme(url: str) -> str:
    """The URL, if it is http(s) with a host; ValueError naming the problem otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"only http and https URLs can be downloaded, not {parts.scheme or url!r}")
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    return url


def check_destination(url: str, allowed: Sequence[Network]) -> None:
    """Fail (no retry) when the URL's host resolves to an address a job may not reach."""
    try:
        check_scheme(url)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise Fail(f"cannot resolve {host}: {exc.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_global or any(address in network for network in allowed):
            continue
        raise Fail(
            f"{host} resolves to {address}, a private or local address; list its network in "
            "[packs.transfer] allow_networks to allow it"
        )
