"""Small network helpers shared by the coordinator, its clients and the add-on."""

from __future__ import annotations

import errno
import ipaddress
import socket


class NoFreePort(OSError):
    """Every port in the searched range is taken."""


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address without its ``%scope`` suffix, or None when *text* is not one."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def free_port(host: str = "127.0.0.1", *, start: int | None = None, count: int = 50) -> int:
    """A TCP port nobody listens on at *host*.

    With *start*, the first free one of ``start .. start+count-1`` (a farm
    prefers its well-known port); without, whatever the OS hands out.
    """
    if start is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    for port in range(start, start + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError as ex:
                if ex.errno == errno.EADDRINUSE:
                    continue
                raise
            return port
    raise NoFreePort(f"no free port from {start} to {start + count - 1}")
