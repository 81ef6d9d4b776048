"""The coordinators the panel lists: zeroconf on the LAN, live. No `bpy` here.

A thin layer over `coordinator.client.browser.CoordinatorBrowser`, run in the
add-on's helper process, that reports every change and follows Blender's
"Allow Online Access": without it, mDNS stays on the loopback interface, so
only a farm on this computer is found and nothing leaves the machine.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence

from coordinator.client.browser import CoordinatorBrowser, FoundCoordinator

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1",)
# Restricts zeroconf to these local addresses (comma-separated), for machines
# with several networks, and for tests and docs runs that must stay on loopback.
INTERFACES_ENV = "FARM_ZEROCONF_INTERFACES"


def env_interfaces() -> list[str] | None:
    text = os.environ.get(INTERFACES_ENV, "")
    found = [ip.strip() for ip in text.split(",") if ip.strip()]
    return found or None


class Finder:
    """Runs in the add-on's helper process (service.py), never inside Blender."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._browser: CoordinatorBrowser | None = None
        self._interfaces: tuple[str, ...] | None = None
        self.changed = threading.Event()  # set on every change
        self.on_change = on_change  # also called on every change (from zeroconf's thread)
        self.error = ""  # why browsing could not start, for the panel

    def start(self, *, online: bool, interfaces: Sequence[str] | None = None) -> None:
        """Browse all interfaces when online, else loopback only; restarts on a change."""
        wanted = tuple(interfaces) if interfaces is not None else (None if online else LOOPBACK)
        if self._browser is not None and wanted == self._interfaces:
            return
        self.stop()
        try:
            self._browser = CoordinatorBrowser(
                interfaces=list(wanted) if wanted is not None else None,
                on_change=lambda _found: self._changed(),
            )
        except Exception as ex:  # no network, port 5353 refused, zeroconf missing
            log.warning("can't browse for coordinators: %s", ex)
            self.error = f"can't look for farms on the network: {ex}"
            return
        self._interfaces, self.error = wanted, ""
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        if self.on_change is not None:
            self.on_change()

    def entries(self) -> list[FoundCoordinator]:
        """The farms that could prove themselves (TLS): the add-on's client sends a
        token to one only after it has (FarmClient). One that speaks plain HTTP
        is not listed: on loopback it would get the token unproven. This
        computer's own farm is listed apart, from its folder (farms.rows)."""
        if self._browser is None:
            return []
        return [c for c in self._browser.snapshot() if c.compatible and c.can_prove()]

    @property
    def running(self) -> bool:
        return self._browser is not None

    def stop(self) -> None:
        if self._browser is not None:
            self._browser.close()
        self._browser, self._interfaces = None, None


def label(found: FoundCoordinator) -> str:
    """How the panel lists one coordinator."""
    if found.workers is None:
        return f"{found.name} ({found.host})"
    plural = "" if found.workers == 1 else "s"
    return f"{found.name}: {found.workers} worker{plural} ({found.host})"
