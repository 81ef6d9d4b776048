"""An impostor farm for tests: it answers like a coordinator, over plain HTTP or
over TLS with a certificate of its own, records every byte it is sent (after
TLS), and can be announced by zeroconf on 127.0.0.1 under a real farm's name
and TXT record.

Its answers tempt a client: /health looks healthy, /proof returns a made-up
proof, and anything else is a 200 with a JSON body, so a client that trusts
it would go on and send what it holds.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from zeroconf import ServiceInfo, Zeroconf

from coordinator.core import trust
from coordinator.core.protocol import API_PREFIX, SERVICE_TYPE
from coordinator.core.selfsigned import self_signed

LOOPBACK = ["127.0.0.1"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)) if length else b""
        self.server.record(self.raw_requestline + bytes(self.headers) + body, self.path)
        if self.path.startswith(f"{API_PREFIX}/health"):
            answer: dict[str, Any] = {"status": "ok", "name": self.server.name, "workers": 3}
            answer["workers_by_status"] = {"idle": 3}
        elif self.path.startswith(f"{API_PREFIX}/proof"):
            answer = {"fingerprint": self.server.fingerprint, "proof": "0" * 64}
        else:
            answer = {"jobs": [], "total": 0, "workers": [], "job_types": []}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str, context: ssl.SSLContext | None, fingerprint: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.fingerprint = fingerprint
        self.lock = threading.Lock()
        self.received = b""  # every request, head and body, as it arrived (after TLS)
        self.paths: list[str] = []  # the paths asked, in order
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)

    def record(self, data: bytes, path: str) -> None:
        with self.lock:
            self.received += data
            self.paths.append(path)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gives up on the handshake is what the tests expect


class Impostor:
    """A fake farm on 127.0.0.1; `tls` gives it its own certificate."""

    def __init__(self, root: Path, *, name: str, tls: bool) -> None:
        context, fingerprint = None, ""
        if tls:
            cert_pem, key_pem = self_signed(name)
            root.mkdir(parents=True, exist_ok=True)
            (root / "cert.pem").write_text(cert_pem)
            (root / "key.pem").write_text(key_pem)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(root / "cert.pem", root / "key.pem")
            fingerprint = trust.fingerprint(ssl.PEM_cert_to_DER_cert(cert_pem))
        self.tls = tls
        self.server = _Server(name, context, fingerprint)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self._zc: Zeroconf | None = None
        self._info: ServiceInfo | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def received(self) -> bytes:
        with self.server.lock:
            return self.server.received

    @property
    def paths(self) -> list[str]:
        with self.server.lock:
            return list(self.server.paths)

    def advertise(self, name: str, properties: Mapping[str, str]) -> None:
        """Announce itself on 127.0.0.1 as `name`, with these TXT entries (its own port)."""
        txt = {**properties, "name": name, "port": str(self.port)}
        self._info = ServiceInfo(
            SERVICE_TYPE,
            f"{name} impostor.{SERVICE_TYPE}",
            port=self.port,
            properties=txt,
            server=f"impostor-{self.port}.local.",
            addresses=[socket.inet_aton("127.0.0.1")],
        )
        self._zc = Zeroconf(interfaces=LOOPBACK)
        self._zc.register_service(self._info)

    def close(self) -> None:
        if self._zc is not None and self._info is not None:
            self._zc.unregister_service(self._info)
            self._zc.close()
        self.server.shutdown()
        self.server.server_close()
