"""The Finder's knocks and the helper's farm list, on real loopback sockets.

A knock is a TCP connect: a farm whose machine refuses it (nothing listens
there any more) leaves the list; one nobody answers (a firewall that drops
the knock, a machine powered off) stays listed, shown "not answering".
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from coordinator.client.browser import FoundCoordinator
from coordinator.core.protocol import API_VERSION
from flamenco_addon import finder, service
from flamenco_addon.finder import MISSES, Knock, Knocker

pytestmark = pytest.mark.timeout(60)


def farm_at(port: int, name: str) -> FoundCoordinator:
    return FoundCoordinator(
        name=name, url=f"https://127.0.0.1:{port}", host="127.0.0.1", port=port,
        api_version=API_VERSION, workers=0, service_name=f"{name}._lanrenderfarm._tcp.local.",
        addresses=("127.0.0.1",), tls=True,
    )  # fmt: skip


@pytest.fixture
def sockets() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def listening(stack: ExitStack, backlog: int = 8) -> socket.socket:
    s = stack.enter_context(socket.socket())
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def silent(stack: ExitStack) -> int:
    """A port whose knocks go unanswered: a listener whose queue of connections
    nobody accepts is full, so the kernel drops new ones (as a firewall does)."""
    full = listening(stack, backlog=0)
    port = int(full.getsockname()[1])
    for _ in range(3):
        filler = stack.enter_context(socket.socket())
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    return port


@pytest.mark.skipif(sys.platform != "linux", reason="a full accept queue drops SYNs on Linux")
def test_only_a_refused_knock_takes_a_farm_off_the_list(
    sockets: ExitStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(finder, "KNOCK_TIMEOUT", 0.3)
    up = farm_at(listening(sockets).getsockname()[1], "up")
    gone = farm_at(closed_port(), "gone")
    firewalled = farm_at(silent(sockets), "firewalled")
    assert finder.knock(up.host, up.port) is Knock.ANSWERED
    assert finder.knock(gone.host, gone.port) is Knock.REFUSED
    assert finder.knock(firewalled.host, firewalled.port) is Knock.SILENT
    knocker = Knocker(lambda: [up, gone, firewalled], on_change=lambda: None)
    changes = [knocker.knock_round() for _ in range(MISSES + 1)]
    assert changes == [False] * (MISSES - 1) + [True, False]  # told once, when it left
    assert knocker.hides(gone)
    assert not knocker.hides(up)
    assert not knocker.hides(firewalled)  # stays, greyed "not answering" by its probe
    # the gone farm is back on its port: listed again after one knock
    back = sockets.enter_context(socket.socket())
    back.bind(("127.0.0.1", gone.port))
    back.listen()
    assert knocker.knock_round()
    assert not knocker.hides(gone)


def test_a_stopped_knocker_counts_nothing_and_never_in_its_successor(
    sockets: ExitStack,
) -> None:
    # A restart (Allow Online Access switched) stops a knocker that may be in
    # the middle of a round: what it finishes must reach nobody.
    gone = farm_at(closed_port(), "gone")
    told: list[str] = []
    old = Knocker(lambda: [gone], on_change=lambda: told.append("old"))
    for _ in range(MISSES):
        old.knock_round()
    assert old.hides(gone)
    old.stopping.set()
    new = Knocker(lambda: [gone], on_change=lambda: told.append("new"))
    counts = dict(old.refused)
    assert not old.knock_round()  # the round it was in when stopped
    assert old.refused == counts and new.refused == {}
    assert not new.hides(gone)  # the new one starts from its own, empty count
    new.knock_round()
    assert new.refused == {(gone.service_name, gone.url): 1} and told == []
    new.listed = list  # no longer listed: forgotten
    new.knock_round()
    assert new.refused == {}


def test_a_finder_restarted_reads_its_new_knocker_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(finder, "KNOCK_EVERY", 0.05)
    seen = finder.Finder()
    seen.start(online=False, interfaces=["127.0.0.1"])
    try:
        first = seen._knocker
        seen.stop()  # as start() does when Allow Online Access is switched
        seen.start(online=False, interfaces=["127.0.0.1"])
        assert first is not None and first.stopping.is_set()
        assert seen._knocker is not None and seen._knocker is not first
        assert seen._knocker.is_alive() and not seen._knocker.stopping.is_set()
        first.join(timeout=5)
        assert not first.is_alive()  # ended by itself, without being waited for
    finally:
        seen.stop()


class _Listing:
    """A Finder's list that changes with every look, as farms come and go."""

    def __init__(self) -> None:
        self.looks = 0
        self.lock = threading.Lock()

    def entries(self) -> list[FoundCoordinator]:
        with self.lock:
            self.looks += 1
            return [farm_at(1000 + self.looks, "farm")]


def test_the_farm_list_sent_last_is_the_one_built_last(monkeypatch: pytest.MonkeyPatch) -> None:
    # The knocks, zeroconf and the probe each announce from their own thread:
    # a list built earlier must never arrive after a newer one.
    sent: list[int] = []
    monkeypatch.setattr(service, "_finder", _Listing())
    monkeypatch.setattr(service, "_local_addresses", lambda: {"127.0.0.1"})
    monkeypatch.setattr(service, "emit", lambda message: sent.append(message["farms"][0]["port"]))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    try:
        threads = [
            threading.Thread(target=lambda: [service._announce() for _ in range(300)])
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(sent) == 1800
    assert sent == sorted(sent)
