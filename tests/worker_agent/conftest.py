"""The coordinator the agent's in-process tests talk to (test_agent_loop, test_warm_*)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from coordinator.client.http import FarmClient
from coordinator.server.app import create_app
from tests.conftest import TOKEN, make_config


@dataclass
class LiveFarm:
    url: str  # where the coordinator listens
    client: FarmClient  # with the farm token, as a person uses it
    root: Path  # a folder for the test's own files


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[LiveFarm]:
    """The coordinator app on a real SQLite file, served from a thread on 127.0.0.1."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(make_config(tmp_path / "farm", lease=10.0)))
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock).start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="coordinator", daemon=True)
    thread.start()
    assert started.wait(15), "the coordinator did not start"
    try:
        yield LiveFarm(url, FarmClient(url, token=TOKEN), tmp_path)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        sock.close()
