"""Connection limits that hold before any token is checked.

aiohttp closes a connection that never sends a byte, but one that sends half
a request line and then a byte a minute would be kept forever, and a few
hundred of them would take every file descriptor. The guard wraps each
connection's protocol to count connections per address (one address gets at
most `max_per_address`; the one over is closed at once) and closes a
connection whose request head has not arrived whole `header_timeout` seconds
after its first byte, or that has sent nothing for `idle_timeout` seconds
outside a request (a kept-alive connection nobody uses). A request in
progress (a long-poll, an upload) is never cut: its time is the handler's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0  # seconds from a request's first byte to its whole head
    idle_timeout: float = 30.0  # seconds a connection may sit unused between requests
    max_per_address: int = 64  # open connections one client address may hold
    sweep_interval: float = 0.5  # seconds between idle checks


class _Guarded(asyncio.Protocol):
    """One connection: forwards to aiohttp's handler, and tells the guard."""

    def __init__(self, inner: Any, guard: ConnectionGuard) -> None:
        self.inner: Any = inner
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.busy = 0  # requests being handled
        self.idle_since = time.monotonic()
        self.head_since: float | None = None  # first byte of a request head not yet whole

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream server's (uvloop's too)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.guard.admit(self):
            self.inner = None
            transport.abort()
            return
        self.transport = transport
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.busy == 0 and self.head_since is None:
            self.head_since = time.monotonic()
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self.inner is None else self.inner.eof_received()

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.release(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)


class ConnectionGuard:
    """The coordinator's connections, by address and by idleness."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: dict[Any, _Guarded] = {}  # aiohttp's handler -> its connection
        self._per_address: Counter[str] = Counter()
        self.refused = 0  # connections closed for the per-address cap
        self.timed_out = 0  # connections closed for idling outside a request

    def protocol_factory(self, make_handler: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        """What `loop.create_server` gets instead of aiohttp's own factory."""
        return lambda: _Guarded(make_handler(), self)

    def admit(self, conn: _Guarded) -> bool:
        if self._per_address[conn.address] >= self.limits.max_per_address:
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.warning(
                    "%s holds %d connections, the most one address may; closing new ones"
                    " (%d so far)",
                    conn.address,
                    self.limits.max_per_address,
                    self.refused,
                )
            return False
        self._per_address[conn.address] += 1
        self._open[conn.inner] = conn
        return True

    def release(self, conn: _Guarded) -> None:
        if conn.inner is not None and self._open.pop(conn.inner, None) is not None:
            self._per_address[conn.address] -= 1
            if self._per_address[conn.address] <= 0:
                del self._per_address[conn.address]

    def sweep(self, now: float) -> None:
        """Close every connection that is slow to send a head, or unused too long."""
        limits = self.limits
        for conn in list(self._open.values()):
            if conn.busy or conn.transport is None:
                continue
            if conn.head_since is not None:
                late = now - conn.head_since > limits.header_timeout
            else:
                late = now - conn.idle_since > limits.idle_timeout
            if late:
                self.timed_out += 1
                conn.transport.abort()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the connection busy while its request is handled."""
        conn = self._open.get(request.protocol)
        if conn is None:  # not served through the guard (tests' own runners)
            return await handler(request)
        conn.busy += 1
        conn.head_since = None
        try:
            return await handler(request)
        finally:
            conn.busy -= 1
            conn.idle_since = time.monotonic()

    async def sweeping(self, _app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: the idle sweep, for as long as the app runs."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.limits.sweep_interval)
                self.sweep(time.monotonic())

        task = asyncio.create_task(loop(), name="connection-guard")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


GUARD = web.AppKey("guard", ConnectionGuard)


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections go through a ConnectionGuard, and whose TLS
    handshakes get the same time limit as a request head."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, **kwargs: Any) -> None:
        self._guard: ConnectionGuard = kwargs.pop("guard")
        super().__init__(runner, host, port, **kwargs)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers with the runner; TCPSite's own listen is below
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        ssl_kwargs: dict[str, Any] = {}
        if self._ssl_context is not None:
            ssl_kwargs["ssl_handshake_timeout"] = self._guard.limits.header_timeout
        self._server = await loop.create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            **ssl_kwargs,
        )
        sockets = self._server.sockets or ()
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
