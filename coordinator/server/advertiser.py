"""The coordinator's zeroconf advertisement (asyncio, for the aiohttp server).

It registers one service of ``core.protocol.SERVICE_TYPE`` whose TXT record
holds ``name`` (the coordinator's display name), ``api``
(``protocol.API_VERSION``), ``port`` and, when known, ``workers`` (the worker
count). Nothing secret goes into TXT: anyone on the LAN can read it. The
browsing half lives in ``coordinator.client.browser``; the quirks of zeroconf
on loopback that both halves work around are written down there.

Two advertisers on one host must not share a host name (``<host>.local.``):
closing one sends a goodbye for the shared A record. Each advertiser gets its
own random host label; URLs are built from addresses anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import secrets
import socket
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from zeroconf import InterfaceChoice, InterfacesType, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from coordinator.core.network import parse_ip
from coordinator.core.protocol import API_VERSION, SERVICE_TYPE

__all__ = ["RESERVED_TXT_KEYS", "Advertiser", "advertise"]

log = logging.getLogger(__name__)

# TXT keys the advertiser owns; extra properties cannot override them.
RESERVED_TXT_KEYS = frozenset({"name", "api", "port", "workers"})

# DNS labels are at most 63 bytes; leave room for zeroconf's "-N" rename suffix.
_MAX_INSTANCE_BYTES = 56
# One TXT string is at most 255 bytes including "key=".
_MAX_TXT_VALUE_BYTES = 200


def _interfaces_arg(interfaces: Sequence[str] | None) -> InterfacesType:
    return InterfaceChoice.All if interfaces is None else list(interfaces)


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _instance_label(name: str) -> str:
    """A DNS-SD instance label for a coordinator name (display name stays in TXT)."""
    # Dots would be read as label separators by zeroconf; control characters
    # are not welcome in labels either.
    label = re.sub(r"[\x00-\x1f\x7f.]+", "-", name).strip(" -")
    return _truncate_utf8(label, _MAX_INSTANCE_BYTES).strip() or "coordinator"


def _host_label() -> str:
    """A host name label unique to this advertiser, e.g. ``render01-3fa9c2``."""
    short = socket.gethostname().split(".", 1)[0].lower()
    short = re.sub(r"[^a-z0-9-]+", "-", short).strip("-")[:40] or "coordinator"
    return f"{short}-{secrets.token_hex(3)}"


def _default_addresses(interfaces: Sequence[str] | None) -> list[str]:
    """Addresses to put in A/AAAA records when the caller gives none."""
    if interfaces is not None:
        return [a for a in interfaces if parse_ip(a) is not None]
    import ifaddr  # a zeroconf dependency

    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and ip.ip not in found:
                found.append(ip.ip)
    usable = [a for a in found if not ipaddress.ip_address(a).is_loopback]
    return usable or found or ["127.0.0.1"]


def _build_txt(
    name: str, port: int, workers: int | None, extra: Mapping[str, str]
) -> dict[str, str]:
    txt = {k: str(v) for k, v in extra.items() if k not in RESERVED_TXT_KEYS}
    txt["name"] = _truncate_utf8(name, _MAX_TXT_VALUE_BYTES)
    txt["api"] = API_VERSION
    txt["port"] = str(port)
    if workers is not None:
        txt["workers"] = str(int(workers))
    return txt


class Advertiser:
    """The coordinator's zeroconf advertisement. Create it with :meth:`start`."""

    def __init__(
        self,
        azc: AsyncZeroconf,
        info: ServiceInfo,
        *,
        name: str,
        port: int,
        addresses: list[str],
        workers: int | None,
        extra: dict[str, str],
        announce: asyncio.Future[Any] | None,
    ) -> None:
        self._azc = azc
        self._info = info
        self._name = name
        self._port = port
        self._addresses = addresses
        self._workers = workers
        self._extra = extra
        self._announce = announce
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def start(
        cls,
        *,
        name: str,
        port: int,
        addresses: Sequence[str] | None = None,
        interfaces: Sequence[str] | None = None,
        workers: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> Advertiser:
        """Probe for a free instance name and register the service.

        ``addresses`` go into the A/AAAA records (default: the ``interfaces``
        given, else every non-loopback address of this machine); pass the
        addresses the HTTP server actually listens on. When another service
        already uses the instance name, zeroconf renames ours to ``<name>-2``,
        ``<name>-3``, ...; the ``name`` TXT entry keeps the display name.
        Returns after probing (about a second); the announcements go on in
        the background.
        """
        addrs = list(addresses) if addresses is not None else _default_addresses(interfaces)
        if not addrs:
            raise ValueError("no address to advertise")
        extra = dict(properties or {})
        info = ServiceInfo(
            SERVICE_TYPE,
            f"{_instance_label(name)}.{SERVICE_TYPE}",
            port=port,
            properties=_build_txt(name, port, workers, extra),
            server=f"{_host_label()}.local.",
            parsed_addresses=addrs,
        )
        azc = AsyncZeroconf(interfaces=_interfaces_arg(interfaces))
        try:
            announce = await azc.async_register_service(info, allow_name_change=True)
        except BaseException:
            await azc.async_close()
            raise
        log.info("advertising %s on %s port %d", info.name, ", ".join(addrs), port)
        return cls(
            azc,
            info,
            name=name,
            port=port,
            addresses=addrs,
            workers=workers,
            extra=extra,
            announce=asyncio.ensure_future(announce),
        )

    @property
    def service_name(self) -> str:
        """The full service name actually registered (after any rename)."""
        return self._info.name

    @property
    def properties(self) -> dict[str, str]:
        """The TXT record as currently advertised."""
        return _build_txt(self._name, self._port, self._workers, self._extra)

    async def _wait_announced(self) -> None:
        announce, self._announce = self._announce, None
        if announce is not None:
            with contextlib.suppress(Exception):
                await announce

    async def update(
        self, properties: Mapping[str, str] | None = None, *, workers: int | None = None
    ) -> None:
        """Refresh the TXT record: merge ``properties`` into the extra keys
        and/or set the worker count. Does nothing when the TXT is unchanged.

        Waits for the previous announcement to finish first (about half a
        second), so rapid calls are serialized; call it from a background
        task rather than inside a request handler.
        """
        async with self._lock:
            if self._closed:
                return
            before = self.properties
            if properties:
                self._extra.update(properties)
            if workers is not None:
                self._workers = workers
            txt = self.properties
            if txt == before:
                return
            await self._wait_announced()
            info = ServiceInfo(
                SERVICE_TYPE,
                self._info.name,
                port=self._port,
                properties=txt,
                server=self._info.server,
                parsed_addresses=self._addresses,
            )
            self._info = info
            self._announce = asyncio.ensure_future(await self._azc.async_update_service(info))

    async def close(self) -> None:
        """Send goodbye packets and release the sockets. Safe to call twice."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            await self._wait_announced()
            try:
                with contextlib.suppress(Exception):
                    await (await self._azc.async_unregister_service(self._info))
            finally:
                await self._azc.async_close()

    async def __aenter__(self) -> Advertiser:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def advertise(
    *,
    name: str,
    port: int,
    addresses: Sequence[str] | None = None,
    interfaces: Sequence[str] | None = None,
    workers: int | None = None,
    properties: Mapping[str, str] | None = None,
) -> Advertiser:
    """Shorthand for :meth:`Advertiser.start`."""
    return await Advertiser.start(
        name=name,
        port=port,
        addresses=addresses,
        interfaces=interfaces,
        workers=workers,
        properties=properties,
    )
