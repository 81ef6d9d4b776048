"""The coordinators the panel lists: zeroconf on the LAN, live. No `bpy` here.

A thin layer over `coordinator.client.browser.CoordinatorBrowser`, run in the
add-on's helper process, that reports every change and follows Blender's
"Allow Online Access": without it, mDNS stays on the loopback interface, so
only a farm on this computer is found and nothing leaves the machine.
"""

from __future__ import annotations

import enum
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
# and one refused MISSES times in a row (the machine is up, nothing listens on
# the farm's port: the farm is gone) is not listed until it answers again. A
# knock nobody answers (a firewall that drops it, a machine powered off) hides
# nothing: the panel shows such a farm greyed, "not answering" (its /health
# probe, service.py), which is the hint an artist needs to look at a firewall.
KNOCK_EVERY = 3.0
KNOCK_TIMEOUT = 3.0
MISSES = 2


class Knock(enum.Enum):
    ANSWERED = "answered"  # something listens on the farm's port
    REFUSED = "refused"  # the machine said nothing listens there
    SILENT = "silent"  # no answer in time, or unreachable: nothing is known


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
        self._knocker: Knocker | None = None  # the current browser's knocks

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
        self._knocker = Knocker(self._browser.snapshot, self._changed)
        self._knocker.start()
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
        browser, knocker = self._browser, self._knocker
        if browser is None:
            return []
        return [
            c
            for c in browser.snapshot()
            if c.compatible and c.can_prove() and not (knocker is not None and knocker.hides(c))
        ]

    @property
    def running(self) -> bool:
        return self._browser is not None

    def stop(self) -> None:
        """Not waiting for the knocker: one still in a knock ends it, writing nothing."""
        if self._knocker is not None:
            self._knocker.stopping.set()
        if self._browser is not None:
            self._browser.close()
        self._browser, self._interfaces, self._knocker = None, None, None


class Knocker(threading.Thread):
    """Knocks on every listed farm until stopped, counting refusals in its own
    dict: a knocker stopped in the middle of a knock (up to KNOCK_TIMEOUT) while
    a new one starts writes nothing after it was stopped, and never into the
    new one's counts, which the Finder reads."""

    def __init__(
        self, listed: Callable[[], list[FoundCoordinator]], on_change: Callable[[], None]
    ) -> None:
        super().__init__(name="farm-knock", daemon=True)
        self.listed = listed  # the farms to knock on (the browser's snapshot)
        self.on_change = on_change  # called when one leaves the list or comes back
        self.stopping = threading.Event()
        self.refused: dict[tuple[str, str], int] = {}  # (service, url) -> refusals in a row

    def run(self) -> None:
        while not self.stopping.wait(KNOCK_EVERY):
            if self.knock_round() and not self.stopping.is_set():
                self.on_change()

    def knock_round(self) -> bool:
        """One knock on each listed farm: whether one left the list or came back."""
        listed = {(c.service_name, c.url): c for c in self.listed()}
        changed = False
        for key, found in listed.items():
            answer = knock(found.host, found.port)
            if self.stopping.is_set():
                return False
            before = self.refused.get(key, 0)
            after = {Knock.ANSWERED: 0, Knock.REFUSED: before + 1}.get(answer, before)
            self.refused[key] = after
            changed |= (before >= MISSES) != (after >= MISSES)
        for key in set(self.refused) - set(listed):
            self.refused.pop(key, None)
        return changed

    def hides(self, found: FoundCoordinator) -> bool:
        return self.refused.get((found.service_name, found.url), 0) >= MISSES


def knock(host: str, port: int) -> Knock:
    """A connect to host:port, closed at once: who answered it."""
    try:
        with socket.create_connection((host, port), timeout=KNOCK_TIMEOUT):
            return Knock.ANSWERED
    except ConnectionRefusedError:
        return Knock.REFUSED
    except OSError:  # timed out, no route, network down
        return Knock.SILENT


def label(found: FoundCoordinator) -> str:
    """How the panel lists one coordinator."""
    if found.workers is None:
        return f"{found.name} ({found.host})"
    plural = "" if found.workers == 1 else "s"
    return f"{found.name}: {found.workers} worker{plural} ({found.host})"
