"""A client's side of trust: the coordinator's proof, and the pinned certificate.

No bpy, no asyncio: the stdlib's `ssl` and `http.client` for the proof (one
connection, whose certificate is the one the proof is checked against), and
a requests adapter that lets every later request through only to a server
showing that same certificate (urllib3's `assert_fingerprint`).

Proven fingerprints are remembered per origin and token for the life of the
process, so the clients one program makes (the worker's upload and control
threads) do not each prove again; a client with another token proves anew.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from coordinator.core import trust
from coordinator.core.protocol import API_PREFIX

MAX_ANSWER = 64 << 10  # bytes of a proof answer read at most
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


def peer_fingerprint(url: str, *, timeout: float) -> str:
    """The fingerprint of the certificate the server at url shows (trusts nothing)."""
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(
        parts.hostname or "", parts.port or 443, timeout=timeout, context=_unverified_context()
    )
    try:
        conn.connect()
        return _fingerprint_of(conn)
    except (OSError, ssl.SSLError) as ex:
        raise NoTls(f"{origin(url)} does not answer TLS ({ex})") from ex
    finally:
        conn.close()


def _fingerprint_of(conn: http.client.HTTPSConnection) -> str:
    sock = conn.sock
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    if not der:
        raise NoTls("the server showed no certificate")
    return trust.fingerprint(der)


def prove(url: str, token: str, *, timeout: float) -> str:
    """Ask the server at url to prove it holds `token`'s key for the certificate
    this very connection shows; remember and return that fingerprint.

    Sends a nonce and the key's id, nothing secret and nothing a farm would
    accept as a credential.
    """
    parts = urlsplit(url)
    key = trust.proof_key(token)
    nonce = trust.new_nonce()
    conn = http.client.HTTPSConnection(
        parts.hostname or "", parts.port or 443, timeout=timeout, context=_unverified_context()
    )
    try:
        conn.connect()
        seen = _fingerprint_of(conn)
        body = json.dumps({"nonce": nonce, "key_id": trust.key_id(key)})
        conn.request("POST", f"{API_PREFIX}/proof", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read(MAX_ANSWER)
    except (OSError, ssl.SSLError, http.client.HTTPException) as ex:
        raise NoTls(f"{origin(url)} does not answer TLS ({ex})") from ex
    finally:
        conn.close()
    answer = _proof_in(raw)
    if response.status != 200 or not trust.proves(
        answer, key=key, nonce=nonce, cert_fingerprint=seen
    ):
        raise NotProven(
            f"{origin(url)} did not prove that it knows this farm token (HTTP"
            f" {response.status}): it is another farm or an impostor; nothing secret was sent"
        )
    with _lock:
        _proven[_slot(url, token)] = seen
    return seen


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
