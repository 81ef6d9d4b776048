"""Connection limits that hold before any token is checked, and the pace a
request's body must keep once its head has arrived.

aiohttp closes a connection that never sends a byte, but one that sends half
a request line and then a byte a minute would be kept forever, and a few
hundred of them would take every file descriptor. The guard wraps each
connection's protocol from the moment the kernel accepts it (before a TLS
handshake: the guard puts the loop's TLS layer on the socket itself, so that
a handshake in progress counts like any connection) to count connections per
address (one address gets at most `max_per_address`; the one over is closed
at once) and closes a connection whose TLS handshake and request head have
not arrived whole `header_timeout` seconds after they began, or that has sent
nothing for `idle_timeout` seconds outside a request (a kept-alive connection
nobody uses).

A request being handled (a long-poll, an upload) is not cut for its length:
its time is the handler's. Its body, though, must keep a pace: every
`body_window` seconds at least `body_min_rate` bytes per second of it must
arrive, time during which the coordinator itself is not reading (its buffer
is full) not counted, or the handler's next read fails with a 408 and the
connection is closed. That is a rate, not a deadline, so an upload of any
size at an ordinary network's speed goes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from coordinator.server.errors import FarmError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0  # seconds from accept (TLS) or a request's first byte to its head
    idle_timeout: float = 30.0  # seconds a connection may sit unused between requests
    max_per_address: int = 64  # open connections one client address may hold, handshakes too
    sweep_interval: float = 0.5  # seconds between checks
    body_window: float = 20.0  # seconds over which a body's pace is measured
    body_min_rate: int = 16 << 10  # bytes per second a body must average over each window
    body_grace: float = 5.0  # seconds a handler gets to answer a slow body before the close


class BodyTooSlow(FarmError):
    """A request's body arrived slower than the guard's minimum rate."""

    status = 408


class _Guarded(asyncio.Protocol):
    """One connection: forwards to aiohttp's handler, and tells the guard."""

    def __init__(self, inner: Any, guard: ConnectionGuard, tls: ssl.SSLContext | None) -> None:
        self.inner: Any = inner
        self.guard = guard
        self.tls = tls  # None: plain HTTP; else the handshake is ours to start
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.ready = False  # the handshake (if any) is done and aiohttp has the connection
        self.busy = 0  # requests being handled
        self.idle_since = time.monotonic()
        self.head_since: float | None = None  # handshake or request head begun, not yet whole
        self.body: Any = None  # the StreamReader of the request whose body is arriving
        self.window_since = 0.0  # when the body's current window began
        self.window_bytes = 0  # the body's total_bytes when it began
        self.too_slow_since: float | None = None  # when its handler was told

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Called by the server for the accepted socket, then (TLS) once more by
        the loop's TLS layer with the encrypted channel, after the handshake."""
        transport = cast(asyncio.Transport, transport)  # a stream server's (uvloop's too)
        if self.transport is not None:  # the handshake is done
            self._serve(transport)
            return
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.guard.admit(self):
            self.inner = None
            transport.abort()
            return
        self.transport = transport
        if self.tls is None:
            self._serve(transport)
            return
        self.head_since = time.monotonic()  # the handshake is part of the head's time
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        done.add_done_callback(self._handshake_ended)
        layer = _tls_layer(loop, self, self.tls, done, self.guard.limits.header_timeout)
        transport.set_protocol(layer)
        layer.connection_made(transport)

    def _serve(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.head_since = None
        self.idle_since = time.monotonic()
        self.ready = True
        self.inner.connection_made(transport)

    def _handshake_ended(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.debug("TLS handshake with %s failed: %s", self.address, done.exception())
        if not self.ready:  # failed, timed out or closed: the loop closed the socket
            self.guard.release(self)

    def data_received(self, data: bytes) -> None:
        if self.busy == 0 and self.head_since is None:
            self.head_since = time.monotonic()
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if not self.ready or self.inner is None:
            return None
        return cast(bool | None, self.inner.eof_received())

    def pause_writing(self) -> None:
        if self.ready and self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.ready and self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.release(self)
        inner, self.inner = self.inner, None
        if inner is not None and self.ready:
            inner.connection_lost(exc)

    # --- the body's pace --------------------------------------------------
    def body_began(self, body: Any, now: float) -> None:
        self.body = None if body.is_eof() else body
        self.window_since, self.window_bytes = now, body.total_bytes
        self.too_slow_since = None

    def check_body(self, now: float, elapsed: float) -> None:
        """Called by each sweep while a request is handled."""
        body, limits = self.body, self.guard.limits
        if body is None or body.is_eof() or self.transport is None:
            return
        if self.too_slow_since is not None:  # told; a handler that ignores it loses the socket
            if now - self.too_slow_since > limits.body_grace:
                self.transport.abort()
            return
        if not self.transport.is_reading():  # paused by us, not slow on their side
            self.window_since += elapsed
            return
        if now - self.window_since < limits.body_window:
            return
        arrived = body.total_bytes - self.window_bytes
        needed = int(limits.body_min_rate * limits.body_window)
        if arrived >= needed:
            self.window_since, self.window_bytes = now, body.total_bytes
            return
        self.guard.too_slow += 1
        self.too_slow_since = now
        log.warning(
            "%s sent %d bytes of a request body in %.0f s, under the %d bytes per second"
            " every body must keep; refusing it (408) and closing the connection",
            self.address,
            arrived,
            limits.body_window,
            limits.body_min_rate,
        )
        body.set_exception(
            BodyTooSlow(
                f"the request body arrived too slowly ({arrived} bytes in"
                f" {limits.body_window:g} s; the coordinator needs at least"
                f" {limits.body_min_rate // 1024} KiB per second): check the network"
                " between this machine and the coordinator, then send it again"
            )
        )


def _tls_layer(
    loop: asyncio.AbstractEventLoop,
    app: asyncio.Protocol,
    context: ssl.SSLContext,
    done: asyncio.Future[None],
    timeout: float,
) -> asyncio.BufferedProtocol:
    """The loop's own TLS layer for an accepted socket: what `create_server(ssl=)`
    puts there, built here so that the connection is counted before its handshake.
    uvloop and asyncio each have theirs, with the same signature."""
    layer: Any
    if type(loop).__module__.startswith("uvloop"):
        import uvloop.loop

        layer = uvloop.loop.SSLProtocol  # type: ignore[attr-defined]
    else:
        from asyncio import sslproto

        layer = sslproto.SSLProtocol
    return cast(
        asyncio.BufferedProtocol,
        layer(loop, app, context, done, server_side=True, ssl_handshake_timeout=timeout),
    )


class ConnectionGuard:
    """The coordinator's connections, by address and by idleness."""

    def __init__(self, limits: ConnectionLimits, tls: ssl.SSLContext | None = None) -> None:
        self.limits = limits
        self.tls = tls  # the handshake each connection runs first, if any
        self._conns: set[_Guarded] = set()  # every admitted connection, handshakes too
        self._by_handler: dict[Any, _Guarded] = {}  # aiohttp's handler -> its connection
        self._per_address: Counter[str] = Counter()
        self._last_sweep = time.monotonic()
        self.refused = 0  # connections closed for the per-address cap
        self.timed_out = 0  # connections closed for a slow handshake or head, or idling
        self.too_slow = 0  # request bodies refused for their pace

    def protocol_factory(self, make_handler: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        """What `loop.create_server` gets instead of aiohttp's own factory."""
        return lambda: _Guarded(make_handler(), self, self.tls)

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
        self._conns.add(conn)
        self._by_handler[conn.inner] = conn
        return True

    def release(self, conn: _Guarded) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        self._by_handler.pop(conn.inner, None)
        self._per_address[conn.address] -= 1
        if self._per_address[conn.address] <= 0:
            del self._per_address[conn.address]

    def sweep(self, now: float) -> None:
        """Close every connection slow to shake hands or send a head, or unused
        too long; hold each arriving body to its pace."""
        limits = self.limits
        elapsed, self._last_sweep = now - self._last_sweep, now
        for conn in list(self._conns):
            if conn.transport is None:
                continue
            if conn.busy:
                conn.check_body(now, elapsed)
                continue
            if conn.head_since is not None:
                late = now - conn.head_since > limits.header_timeout
            else:
                late = now - conn.idle_since > limits.idle_timeout
            if late:
                self.timed_out += 1
                conn.transport.abort()

    def open_connections(self, address: str) -> int:
        """How many connections `address` holds now (handshakes included)."""
        return self._per_address.get(address, 0)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the connection busy while its request is handled; a body refused
        for its pace closes the connection after the answer."""
        conn = self._by_handler.get(request.protocol)
        if conn is None:  # not served through the guard (tests' own runners)
            return await handler(request)
        conn.busy += 1
        conn.head_since = None
        conn.body_began(request.content, time.monotonic())
        try:
            response = await handler(request)
            if conn.too_slow_since is not None:
                await _answer_and_close(request, response)
            return response
        finally:
            conn.busy -= 1
            conn.body = None
            conn.idle_since = time.monotonic()

    async def sweeping(self, _app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: the sweep, for as long as the app runs."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.limits.sweep_interval)
                self.sweep(time.monotonic())

        task = asyncio.create_task(loop(), name="connection-guard")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _answer_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Send the answer, then close at once: aiohttp would otherwise go on reading
    the rest of the body (and meet the error again) before closing."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()


GUARD = web.AppKey("guard", ConnectionGuard)


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections go through a ConnectionGuard, which also runs
    their TLS handshakes (so that a handshake counts and has the head's deadline)."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, **kwargs: Any) -> None:
        self._guard: ConnectionGuard = kwargs.pop("guard")
        super().__init__(runner, host, port, **kwargs)
        self._guard.tls = self._ssl_context

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers with the runner; TCPSite's own listen is below
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets or ()
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
