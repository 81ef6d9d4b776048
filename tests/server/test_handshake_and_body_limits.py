"""TLS handshakes and request bodies under the connection guard, on real sockets.

A handshake in progress is a connection like any other: it counts toward its
address's cap and must end within the head's deadline. A body that arrives
after its head must keep a pace (coordinator/server/guard.py). A real
`serve --tls` process shows the cap; the deadlines, which need short limits,
run in-process on a real listening socket.

The crowd connects from 127.0.0.2 (Linux routes all of 127/8 to loopback),
so it is another address than the worker's, as on a LAN.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from coordinator.client.http import FarmClient
from coordinator.server.app import create_app
from coordinator.server.config import AppConfig
from coordinator.server.guard import GUARD, ConnectionGuard, ConnectionLimits, GuardedSite
from coordinator.server.tls import load_tls
from tests.conftest import TOKEN, make_config
from tests.support.tls_farm import tls_farm

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="127.0.0.2 is Linux's"),
    pytest.mark.timeout(120),
]

CROWD = "127.0.0.2"
CAP = 64  # ConnectionLimits' default per-address cap, which `serve` uses


def connect(port: int, *, source: str = CROWD) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def is_closed(s: socket.socket) -> bool:
    """Whether the farm has closed `s` (without waiting)."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except ConnectionResetError:
        return True
    finally:
        s.setblocking(True)


def closed_within(s: socket.socket, seconds: float) -> bool:
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def half_client_hello(port: int, *, source: str = CROWD) -> socket.socket:
    """A connection that begins a TLS handshake and never finishes it: the first
    bytes of a TLS record announcing a ClientHello, then silence."""
    s = connect(port, source=source)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    return s


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_handshakes_in_progress_count_toward_the_cap_and_the_farm_keeps_answering(
    tmp_path: Path,
) -> None:
    with tls_farm(tmp_path) as farm:
        port = int(farm.url.rsplit(":", 1)[1])
        crowd = [connect(port) for _ in range(200)]  # TCP open, no handshake begun
        crowd += [half_client_hello(port) for _ in range(100)]  # handshake begun, not ended
        try:
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                closed = sum(is_closed(s) for s in crowd)
                if closed >= len(crowd) - CAP:
                    break
                time.sleep(0.1)
            # Before the guard saw handshakes, none of these was closed before the
            # head's 10 s deadline: 300 sockets held, and more for the asking.
            assert closed == len(crowd) - CAP
            client = FarmClient(farm.url, token=TOKEN, timeout=1.0)
            for _ in range(5):
                started = time.monotonic()
                assert client.health()["status"] == "ok"
                assert client.jobs()["jobs"] is not None
                assert time.monotonic() - started < 1.0
            client.session.close()
        finally:
            for s in crowd:
                s.close()
        assert "the most one address may" in farm.log_text()


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[int, ConnectionGuard]]:
    """A real coordinator app serving TLS on 127.0.0.1 with short limits."""
    limits = ConnectionLimits(
        header_timeout=0.6,
        idle_timeout=1.5,
        max_per_address=5,
        sweep_interval=0.1,
        body_window=1.0,
        body_min_rate=4000,
        body_grace=1.0,
    )
    config = make_config(tmp_path / "farm", lease=10.0)
    app = create_app(AppConfig(farm=config.farm, limits=limits))
    runner = web.AppRunner(app)
    await runner.setup()
    tls = load_tls(tmp_path / "farm", "guarded")
    site = GuardedSite(runner, "127.0.0.1", 0, guard=app[GUARD], ssl_context=tls.context)
    await site.start()
    try:
        yield site._bound_port or 0, app[GUARD]
    finally:
        await runner.cleanup()


def tls_connect(port: int, *, source: str = CROWD) -> ssl.SSLSocket:
    return unverified().wrap_socket(connect(port, source=source))


def upload_head(sha: str, length: int) -> bytes:
    return (
        f"PUT /api/v1/files/{sha} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def read_answer(s: socket.socket, seconds: float) -> bytes:
    s.settimeout(seconds)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


async def test_a_handshake_that_never_ends_is_closed_at_the_head_deadline(
    guarded: tuple[int, ConnectionGuard],
) -> None:
    port, guard = guarded
    s = await asyncio.to_thread(half_client_hello, port)
    started = time.monotonic()
    assert await asyncio.to_thread(closed_within, s, 3.0)
    assert time.monotonic() - started < 1.2  # header_timeout 0.6 s
    s.close()
    await asyncio.sleep(0.2)
    assert guard.open_connections(CROWD) == 0


async def test_handshaking_connections_are_capped_per_address_and_others_still_served(
    guarded: tuple[int, ConnectionGuard],
) -> None:
    port, guard = guarded
    crowd = [await asyncio.to_thread(half_client_hello, port) for _ in range(8)]
    await asyncio.sleep(0.3)
    assert guard.refused == 3
    assert guard.open_connections(CROWD) == 5
    # Another address shakes hands and is answered while the crowd holds its cap.
    other = await asyncio.to_thread(tls_connect, port, source="127.0.0.1")
    other.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.to_thread(read_answer, other, 3.0)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    for s in [*crowd, other]:
        s.close()


def trickle(port: int, *, interval: float) -> tuple[bytes, float]:
    """An authenticated upload whose body comes one byte per `interval`: the answer
    and the seconds from the head to the connection's close."""
    s = tls_connect(port)
    s.sendall(upload_head("0" * 64, 100_000))
    started = time.monotonic()
    s.settimeout(interval)
    data = b""
    while time.monotonic() - started < 10:
        try:
            s.sendall(b"x")
        except OSError:
            break
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    data += read_answer(s, 2.0)
    s.close()
    return data, time.monotonic() - started


async def test_a_trickled_body_gets_a_408_and_is_closed(
    guarded: tuple[int, ConnectionGuard],
) -> None:
    port, guard = guarded
    answer, seconds = await asyncio.to_thread(trickle, port, interval=0.05)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"arrived too slowly" in answer
    assert seconds < 3.0  # one window (1 s) and the sweep, then the close
    assert guard.too_slow == 1
    await asyncio.sleep(0.2)
    assert guard.open_connections(CROWD) == 0


def steady_upload(port: int, data: bytes, *, rate: int) -> bytes:
    """An honest upload at `rate` bytes per second, over several windows."""
    sha = hashlib.sha256(data).hexdigest()
    s = tls_connect(port)
    s.sendall(upload_head(sha, len(data)))
    step = rate // 10
    for i in range(0, len(data), step):
        s.sendall(data[i : i + step])
        time.sleep(0.1)
    answer = read_answer(s, 3.0)
    s.close()
    return answer


async def test_a_body_at_an_honest_pace_goes_through_however_long_it_takes(
    guarded: tuple[int, ConnectionGuard],
) -> None:
    port, guard = guarded
    data = bytes(range(256)) * 200  # 51,200 bytes at 20,000/s: 2.6 s, past two windows
    answer = await asyncio.to_thread(steady_upload, port, data, rate=20_000)
    assert answer.startswith(b"HTTP/1.1 201") or answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert guard.too_slow == 0
