"""A client's side of trust: the coordinator's proof, and the pinned certificate.

No bpy, no asyncio: the stdlib's `ssl` and `socket` for the proof (one
connection, whose certificate is the one the proof is checked against, with
one deadline for the whole exchange and a small answer), and
a requests adapter that lets every later request through only to a server
showing that same certificate (urllib3's `assert_fingerprint`).

Proven fingerprints are remembered per origin and token for the life of the
process, so the clients one program makes (the worker's upload and control
threads) do not each prove again; a client with another token proves anew.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from coordinator.core import trust
from coordinator.core.protocol import API_PREFIX

MAX_ANSWER = 1 << 10  # bytes of a proof answer's body read at most (it is about 200)
MAX_HEAD = 8 << 10  # bytes of its status line and headers
# Set to 1 to let a token travel over plain HTTP to a farm on another machine.
ALLOW_PLAIN_ENV = "FARM_ALLOW_PLAIN_HTTP"

_lock = threading.Lock()
# (origin, key id) -> the fingerprint that proved there that it holds that key
_proven: dict[tuple[str, str], str] = {}


class NotProven(Exception):
    """The server did not prove it holds the key: it is not that farm."""


class NoTls(Exception):
    """The server at an https address does not speak TLS, or cannot be reached."""


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _slot(url: str, token: str) -> tuple[str, str]:
    return origin(url), trust.key_id(trust.proof_key(token))


def proven(url: str, token: str | None) -> str | None:
    """The fingerprint that proved it holds `token` at url; without a token, any
    that proved itself there (nothing secret will be sent to it)."""
    with _lock:
        if token:
            return _proven.get(_slot(url, token))
        where = origin(url)
        return next((fp for (o, _), fp in _proven.items() if o == where), None)


def forget(url: str) -> None:
    """The pinned certificate was not shown: the next request proves again."""
    where = origin(url)
    with _lock:
        for slot in [slot for slot in _proven if slot[0] == where]:
            del _proven[slot]


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_allowed(url: str, explicit: bool | None) -> bool:
    """Whether a token may go to this http:// address: the person said so, or it is
    this machine (and the person did not forbid it, as discovery does)."""
    if explicit is not None:
        return explicit
    return is_loopback(url) or os.environ.get(ALLOW_PLAIN_ENV) == "1"


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the proof, not an authority, vouches for it
    return context


class _Deadline:
    """One overall time limit for a connection: each socket operation gets only
    what is left, and a watchdog shuts the socket at the end, so a server that
    trickles its handshake or its answer a byte at a time cannot stall us."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"nothing whole within {self.seconds:g} s")
        return left


@contextlib.contextmanager
def _tls_socket(url: str, deadline: _Deadline) -> Iterator[ssl.SSLSocket]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    raw = socket.create_connection((host, parts.port or 443), timeout=deadline.left())
    # wrap_socket takes raw's descriptor over: the watchdog keeps its own copy
    with raw, raw.dup() as guard:
        watchdog = threading.Timer(deadline.left(), _shut, (guard,))
        watchdog.daemon = True
        watchdog.start()
        try:
            raw.settimeout(deadline.left())
            with _unverified_context().wrap_socket(raw, server_hostname=host) as sock:
                yield sock
        finally:
            watchdog.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read in the proving thread


def peer_fingerprint(url: str, *, timeout: float) -> str:
    """The fingerprint of the certificate the server at url shows (trusts nothing)."""
    try:
        with _tls_socket(url, _Deadline(timeout)) as sock:
            return _fingerprint_of(sock)
    except (OSError, ssl.SSLError) as ex:
        raise NoTls(f"{origin(url)} does not answer TLS ({ex})") from ex


def _fingerprint_of(sock: ssl.SSLSocket) -> str:
    der = sock.getpeercert(binary_form=True)
    if not der:
        raise NoTls("the server showed no certificate")
    return trust.fingerprint(der)


def prove(url: str, token: str, *, timeout: float) -> str:
    """Ask the server at url to prove it holds `token`'s key for the certificate
    this very connection shows; remember and return that fingerprint.

    Sends a nonce and the key's id, nothing secret and nothing a farm would
    accept as a credential. The whole exchange (connect, handshake, question,
    answer) has `timeout` seconds, and at most MAX_ANSWER bytes of answer are read.
    """
    key = trust.proof_key(token)
    nonce = trust.new_nonce()
    deadline = _Deadline(timeout)
    body = json.dumps({"nonce": nonce, "key_id": trust.key_id(key)}).encode("ascii")
    head = (
        f"POST {API_PREFIX}/proof HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    try:
        with _tls_socket(url, deadline) as sock:
            seen = _fingerprint_of(sock)
            sock.settimeout(deadline.left())
            sock.sendall(head.encode("ascii") + body)
            status, raw = _read_answer(sock, deadline)
    except TimeoutError as ex:
        raise NoTls(f"{origin(url)} did not prove itself within {timeout:g} s") from ex
    except (OSError, ssl.SSLError) as ex:
        raise NoTls(f"{origin(url)} does not answer TLS ({ex})") from ex
    answer = _proof_in(raw)
    if status != 200 or not trust.proves(answer, key=key, nonce=nonce, cert_fingerprint=seen):
        raise NotProven(
            f"{origin(url)} did not prove that it knows this farm token (HTTP"
            f" {status}): it is another farm or an impostor; nothing secret was sent"
        )
    with _lock:
        _proven[_slot(url, token)] = seen
    return seen


def _read_answer(sock: ssl.SSLSocket, deadline: _Deadline) -> tuple[int, bytes]:
    """(HTTP status, body) of the answer, reading each piece with the time left;
    status 0 and no body when it is not a small HTTP answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            return 0, b""
        sock.settimeout(deadline.left())
        chunk = sock.recv(4096)
        if not chunk:
            deadline.left()  # shut by the watchdog: a timeout, not an answer
            return 0, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    match = re.fullmatch(r"HTTP/1\.[01] (\d{3})( .*)?", lines[0])
    if match is None:
        return 0, b""
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if length is None or length > MAX_ANSWER:  # a proof answer is about 200 bytes
        return int(match.group(1)), b""
    while len(body) < length:
        sock.settimeout(deadline.left())
        chunk = sock.recv(length - len(body))
        if not chunk:
            deadline.left()
            break
        body += chunk
    return int(match.group(1)), body[:length]


def _proof_in(raw: bytes) -> str:
    try:
        data: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ""
    value = data.get("proof") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


class PinnedAdapter(HTTPAdapter):
    """Lets requests through only to a server showing this certificate."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self.fingerprint
        super().init_poolmanager(*args, **kwargs)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs["verify"] = False  # no authority: the fingerprint is checked instead
        return super().send(request, *args, **kwargs)


def pin(session: requests.Session, url: str, fingerprint: str) -> None:
    """Make the session's requests to url's origin go only to that certificate."""
    prefix = origin(url) + "/"
    current = session.adapters.get(prefix)
    if isinstance(current, PinnedAdapter) and current.fingerprint == fingerprint:
        return
    session.mount(prefix, PinnedAdapter(fingerprint))
