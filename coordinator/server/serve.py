"""`python -m coordinator serve`: data dir, token, port, and the running server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import secrets
import signal
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from coordinator.core.datadirs import coordinator_data_dir
from coordinator.core.network import NoFreePort, free_port
from coordinator.core.protocol import DEFAULT_PORT
from coordinator.server.app import create_app
from coordinator.server.config import AppConfig, FarmConfig

log = logging.getLogger(__name__)

PORT_SEARCH = 50  # how many ports after the default to try
SHUTDOWN_GRACE = 2.0  # seconds requests in flight get to finish when the coordinator stops


def default_data_dir() -> Path:
    """Where a coordinator keeps its database and files unless told otherwise."""
    return coordinator_data_dir()


def load_token(data_dir: Path, explicit: str | None) -> tuple[str, bool]:
    """The farm token: --token, FARM_TOKEN, token.txt, or a new one (saved). -> (token, new)"""
    token = explicit or os.environ.get("FARM_TOKEN")
    path = data_dir / "token.txt"
    if token:
        return token, False
    if path.is_file():
        saved = path.read_text(encoding="utf-8").strip()
        if saved:
            return saved, False
    token = secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True


def pick_port(host: str, wanted: int | None) -> int:
    """The asked-for port, or the first free one from the default on."""
    if wanted is not None:
        return wanted
    try:
        return free_port(
            host if host not in ("", "0.0.0.0") else "0.0.0.0",
            start=DEFAULT_PORT,
            count=PORT_SEARCH,
        )
    except NoFreePort as ex:
        raise SystemExit(f"{ex}; pass --port") from ex


@dataclass(frozen=True)
class ServeOptions:
    host: str  # address to listen on; 0.0.0.0 for the LAN
    port: int | None  # None: 8765 or the first free port after it
    data_dir: Path  # database, files, outputs, logs, token
    token: str | None  # None: FARM_TOKEN, token.txt, or a new one
    name: str  # shown to artists and workers
    zeroconf: bool  # advertise on the LAN
    zeroconf_interfaces: list[str] | None  # None: every interface
    lease_seconds: float  # silent workers lose their task after this


def public_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("10.255.255.255", 1))  # picks the LAN address; sends nothing
                host = s.getsockname()[0]
        except OSError:
            host = socket.gethostname()
    return f"http://{host}:{port}"


def banner(url: str, token: str, data_dir: Path, *, new_token: bool) -> str:
    lines = [
        f"Farm coordinator running at {url}",
        f"  dashboard:  {url}/",
        f"  data:       {data_dir}",
        f"  farm token: {token}" + ("  (new; saved in token.txt)" if new_token else ""),
        "Add a render machine with:",
        f"  python -m worker_agent --coordinator {url} --token {token}",
        "  (or leave out --coordinator to find this farm on the LAN by zeroconf)",
    ]
    return "\n".join(lines)


async def run_server(options: ServeOptions) -> None:
    options.data_dir.mkdir(parents=True, exist_ok=True)
    token, new = load_token(options.data_dir, options.token)
    port = pick_port(options.host, options.port)
    config = AppConfig(
        farm=FarmConfig(
            data_dir=options.data_dir,
            name=options.name,
            token=token,
            lease_seconds=options.lease_seconds,
        ),
        advertise=options.zeroconf,
        zeroconf_interfaces=options.zeroconf_interfaces,
        port=port,
    )
    # Open long-polls and event streams (workers, dashboards) would otherwise hold
    # a stop up for a minute or two; they all reconnect by themselves.
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    site = web.TCPSite(runner, options.host, port, reuse_address=True)
    await site.start()
    print(
        banner(public_url(options.host, port), token, options.data_dir, new_token=new), flush=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("coordinator stopping", flush=True)
        await runner.cleanup()


def serve_forever(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop where it is installed (Linux, macOS: about a fifth
    more requests per CPU second, see docs/performance.md), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def default_name() -> str:
    return f"{platform.node() or 'farm'}"
