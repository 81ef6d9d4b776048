"""The coordinators the panel lists: zeroconf on the LAN, live. No `bpy` here.

A thin layer over `coordinator.client.browser.CoordinatorBrowser`, run in the
add-on's helper process, that reports every change and follows Blender's
"Allow Online Access": without it, mDNS stays on the loopback interface, so
only a farm on this computer is found and nothing leaves the machine.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence

from coordinator.client.browser import CoordinatorBrowser, FoundCoordinator

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1",)
# Restricts zeroconf to these local addresses (comma-separated), for machines
# with several networks, and for tests and docs runs that must stay on loopback.
INTERFACES_ENV = "FARM_ZEROCONF_INTERFACES"


# A farm that went away without saying goodbye on the LAN (power cut, crash,
# a lost packet) would stay listed until its records expire, over an hour for
# some: each listed farm is knocked on (a TCP connect, nothing sent) this often,
# and one that refused or did not answer MISSES times in a row is not listed
# until it answers again.
KNOCK_EVERY = 3.0
KNOCK_TIMEOUT = 1.0
MISSES = 2


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
        self._misses: dict[tuple[str, str], int] = {}  # (service, url) -> knocks unanswered
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()

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
        self._stopping = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch, args=(self._browser, self._stopping), name="farm-knock", daemon=True
        )
        self._watcher.start()
        self._changed()

    def _watch(self, browser: CoordinatorBrowser, stopping: threading.Event) -> None:
        """Knocks on every listed farm until stopped; reports when one goes or comes back."""
        while not stopping.wait(KNOCK_EVERY):
            listed = {(c.service_name, c.url): c for c in browser.snapshot()}
            changed = False
            for key, found in listed.items():
                before = self._misses.get(key, 0)
                after = 0 if _answers(found.host, found.port) else before + 1
                self._misses[key] = after
                changed |= (before >= MISSES) != (after >= MISSES)
            for key in set(self._misses) - set(listed):
                del self._misses[key]
            if changed and not stopping.is_set():
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
        return [
            c
            for c in self._browser.snapshot()
            if c.compatible
            and c.can_prove()
            and self._misses.get((c.service_name, c.url), 0) < MISSES
        ]

    @property
    def running(self) -> bool:
        return self._browser is not None

    def stop(self) -> None:
        self._stopping.set()
        if self._browser is not None:
            self._browser.close()
        self._browser, self._interfaces = None, None
        self._misses = {}


def _answers(host: str, port: int) -> bool:
    """Whether something listens at host:port (a connect, closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=KNOCK_TIMEOUT):
            return True
    except OSError:
        return False


def label(found: FoundCoordinator) -> str:
    """How the panel lists one coordinator."""
    if found.workers is None:
        return f"{found.name} ({found.host})"
    plural = "" if found.workers == 1 else "s"
    return f"{found.name}: {found.workers} worker{plural} ({found.host})"
