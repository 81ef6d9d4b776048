"""Limits that hold without a token: a real `serve` process on 127.0.0.1, and
the guard on a real socket in-process where a short idle timeout is needed.

The crowd connects from 127.0.0.2 (Linux routes all of 127/8 to loopback),
so it is another address than the worker's, as on a LAN.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from coordinator.client.http import FarmClient
from coordinator.server.app import create_app
from coordinator.server.config import AppConfig
from coordinator.server.guard import GUARD, ConnectionLimits, GuardedSite
from tests.conftest import TOKEN, make_config
from tests.support.coordinator_process import CoordinatorProcess, coordinator_process

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="127.0.0.2 is Linux's")

CROWD = "127.0.0.2"


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
    with coordinator_process(tmp_path_factory.mktemp("limits") / "data", token=TOKEN) as running:
        yield running


def connect(port: int, *, source: str = CROWD) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def raw_request(port: int, head: bytes) -> bytes:
    with connect(port) as s:
        s.sendall(head)
        data = b""
        with contextlib.suppress(TimeoutError):
            while chunk := s.recv(65536):
                data += chunk
        return data


def test_a_non_utf8_authorization_header_is_a_401_not_a_500(farm: CoordinatorProcess) -> None:
    for value in (
        b"Bearer \xff\xfe\x80",
        b"Bearer tok\xe9n",
        b"Bearer \xc3\xa9t\xc3\xa9",
        b"Basic abc",
        b"Bearer " + b"x" * 600,
    ):
        head = b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
        answer = raw_request(port_of(farm.url), head + value + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 401"), (value, answer[:200])
    assert "Traceback" not in farm.log_text()  # the fixture checks again at the end


def test_slow_headers_and_a_crowd_do_not_stop_the_farm_answering(
    farm: CoordinatorProcess,
) -> None:
    port = port_of(farm.url)
    crowd: list[socket.socket] = []
    try:
        for _ in range(400):  # half-sent request heads, far more than one address may hold
            try:
                s = connect(port)
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                crowd.append(s)
            except OSError:
                break  # refused or reset: the cap at work
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
    assert len(crowd) == 400  # the kernel accepts them all; the farm closes those over its cap


@pytest.fixture
async def guarded(tmp_path: Path) -> Iterator[tuple[int, web.AppRunner]]:
    limits = ConnectionLimits(
        header_timeout=0.6, idle_timeout=1.5, max_per_address=5, sweep_interval=0.1
    )
    config = make_config(tmp_path / "farm", lease=10.0)
    app = create_app(AppConfig(farm=config.farm, limits=limits))
    runner = web.AppRunner(app)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, guard=app[GUARD])
    await site.start()
    try:
        yield site._bound_port or 0, runner
    finally:
        await runner.cleanup()


def closed_within(s: socket.socket, seconds: float) -> bool:
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_a_half_sent_request_is_closed_after_the_header_timeout(
    guarded: tuple[int, web.AppRunner],
) -> None:
    import asyncio

    port, runner = guarded
    s = await asyncio.to_thread(connect, port)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    assert await asyncio.to_thread(closed_within, s, 3.0)
    assert time.monotonic() - started < 1.2  # the header timeout (0.6 s), not the idle one
    s.close()
    guard = runner.app[GUARD]  # type: ignore[union-attr]
    assert guard.timed_out >= 1


async def test_a_kept_alive_connection_is_kept_until_the_idle_timeout(
    guarded: tuple[int, web.AppRunner],
) -> None:
    import asyncio

    port, _runner = guarded
    s = await asyncio.to_thread(connect, port)
    for _ in range(2):  # requests on one connection, a pause between them
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.to_thread(s.recv, 4096)
        assert answer.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.9)  # past the header timeout, within the idle one
    assert await asyncio.to_thread(closed_within, s, 3.0)  # then idle too long
    s.close()


async def test_one_address_gets_at_most_its_cap_of_connections(
    guarded: tuple[int, web.AppRunner],
) -> None:
    import asyncio

    port, runner = guarded
    crowd = [await asyncio.to_thread(connect, port) for _ in range(8)]
    await asyncio.sleep(0.2)
    guard = runner.app[GUARD]  # type: ignore[union-attr]
    assert guard.refused == 3
    # Another address is not held up by the crowd's cap.
    other = await asyncio.to_thread(connect, port, source="127.0.0.1")
    other.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.to_thread(other.recv, 4096)
    assert answer.startswith(b"HTTP/1.1 200")
    for s in [*crowd, other]:
        s.close()
