"""A server that answers a proof question slowly, a byte at a time, cannot stall
a client: the whole proof has one deadline and a small answer, and the farms
found on the LAN are asked in parallel, so a trickling impostor cannot hide the
real farm behind it. Real TLS servers on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from zeroconf import ServiceInfo, Zeroconf

from coordinator.client import choosing, pinning
from coordinator.client.browser import FoundCoordinator
from coordinator.core.protocol import SERVICE_TYPE
from coordinator.core.selfsigned import self_signed
from tests.support.impostor import LOOPBACK, Impostor
from tests.support.localfarm import LocalFarm

TOKEN = "a-farm-token-nobody-guesses-0123"


class Trickler:
    """A TLS server (its own certificate) that reads the question, then sends
    `head` and one more byte every 0.5 s, never finishing."""

    def __init__(self, tmp: Path, head: bytes) -> None:
        cert, key = self_signed("trickler")
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "cert.pem").write_text(cert)
        (tmp / "key.pem").write_text(key)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
        self.head = head
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(4096)
                tls.sendall(self.head)
                while not self.stop.wait(0.5):
                    tls.sendall(b"x")
        except OSError:
            pass

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def trickler(tmp_path: Path) -> Iterator[Trickler]:
    server = Trickler(tmp_path / "t", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    yield server
    server.close()


def test_a_trickled_answer_is_given_up_at_the_deadline(trickler: Trickler) -> None:
    start = time.monotonic()
    with pytest.raises(pinning.NoTls, match="did not prove itself within 1 s"):
        pinning.prove(trickler.url, TOKEN, timeout=1.0)
    assert time.monotonic() - start < 2.0  # was over 12 s: the timeout was per read


def test_a_trickled_header_is_given_up_at_the_deadline(tmp_path: Path) -> None:
    server = Trickler(tmp_path / "h", b"HTTP/1.1 200 OK\r\nX-Slow: ")
    try:
        start = time.monotonic()
        with pytest.raises(pinning.NoTls):
            pinning.prove(server.url, TOKEN, timeout=1.0)
        assert time.monotonic() - start < 2.0
    finally:
        server.close()


def test_an_oversized_answer_is_not_read(tmp_path: Path) -> None:
    server = Trickler(tmp_path / "big", b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n")
    try:
        start = time.monotonic()
        with pytest.raises(pinning.NotProven):
            pinning.prove(server.url, TOKEN, timeout=5.0)
        assert time.monotonic() - start < 1.0  # refused on its length, not read
    finally:
        server.close()


def found(name: str, url: str) -> FoundCoordinator:
    port = int(url.rsplit(":", 1)[1])
    return FoundCoordinator(
        name, url, "127.0.0.1", port, "1", None, f"{name}-{port}", ("127.0.0.1",), tls=True
    )


def test_trickling_impostors_do_not_hide_the_real_farm(tmp_path: Path) -> None:
    impostors = [
        Trickler(tmp_path / f"i{n}", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for n in range(3)
    ]
    try:
        with LocalFarm(root=tmp_path / "farm", tls=True) as farm:
            farm.start_coordinator("--no-zeroconf")
            candidates = [found("studio", i.url) for i in impostors]
            candidates.append(found("studio", farm.url))
            start = time.monotonic()
            good, bad = choosing.proven(candidates, farm.token)
            took = time.monotonic() - start
            assert [c.farm.url for c in good] == [farm.url]
            assert len(bad) == 3
            # in parallel: about one PROOF_TIMEOUT, not one per impostor
            assert took < choosing.PROOF_TIMEOUT + 2.0, took
    finally:
        for impostor in impostors:
            impostor.close()


def test_an_impostor_who_answers_first_cannot_end_the_search_before_the_farm_is_seen(
    tmp_path: Path,
) -> None:
    """The impostor is announced at once; the real farm is announced only after the
    time a search settles in once something answered. Without a proof from
    anyone, the search goes on until its timeout and finds the farm."""
    name = f"studio-{uuid.uuid4().hex[:8]}"
    impostor = Impostor(tmp_path / "impostor", name=name, tls=True)
    impostor.advertise(name, {"api": "1", "tls": "1"})
    zc = Zeroconf(interfaces=LOOPBACK)
    try:
        with LocalFarm(root=tmp_path / "farm", tls=True) as farm:
            farm.start_coordinator("--no-zeroconf")
            real = ServiceInfo(
                SERVICE_TYPE,
                f"{name}.{SERVICE_TYPE}",
                port=farm.port,
                properties={"api": "1", "tls": "1", "name": name, "port": str(farm.port)},
                server=f"farm-{farm.port}.local.",
                addresses=[socket.inet_aton("127.0.0.1")],
            )
            later = threading.Timer(2.0, zc.register_service, args=(real,))
            later.start()
            try:
                found = choosing.search(
                    farm.token, interfaces=LOOPBACK, name=name, timeout=6.0, settle=0.5
                )
            finally:
                later.join()
            assert [c.farm.url for c in found.good] == [farm.url]
            assert [c.farm.url for c in found.bad] == [impostor.url]
            assert b"Bearer" not in impostor.received
    finally:
        zc.close()
        impostor.close()
