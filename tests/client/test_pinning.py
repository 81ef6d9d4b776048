"""FarmClient against a real `serve --tls` on 127.0.0.1: the proof before any
token, the pinned certificate, a new certificate proven again, a worker's
secret proven on its own, a relay that cannot use the farm's proof, and no
token over plain HTTP to another machine."""

from __future__ import annotations

import http.client
import shutil
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from coordinator.client import pinning
from coordinator.client.http import (
    FarmClient,
    NotProvenError,
    PlainHttpRefused,
    Unreachable,
)
from coordinator.core.selfsigned import self_signed
from tests.support.localfarm import LocalFarm


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[LocalFarm]:
    with LocalFarm(root=tmp_path / "farm", tls=True) as farm:
        farm.start_coordinator("--no-zeroconf")
        yield farm


def test_a_client_proves_the_farm_then_pins_its_certificate(farm: LocalFarm) -> None:
    client = FarmClient(farm.url, token=farm.token)
    assert client.jobs()["total"] == 0
    fingerprint = pinning.proven(farm.url, farm.token)
    assert fingerprint == client.health()["fingerprint"]
    adapter = client.session.get_adapter(farm.url + "/api/v1/jobs")
    assert isinstance(adapter, pinning.PinnedAdapter) and adapter.fingerprint == fingerprint
    with pytest.raises(NotProvenError, match="did not prove that it knows this farm token"):
        FarmClient(farm.url, token="another-farms-token-0123456789").jobs()
    client.session.close()


def test_a_worker_secret_is_proven_by_itself(farm: LocalFarm) -> None:
    creds = farm.client().register_worker(
        name="w", host="h", blender_version="3.4.1", devices=["CPU"]
    )
    worker = FarmClient(farm.url, token=creds.secret)
    assert worker.next_task(wait=0) is None
    assert pinning.proven(farm.url, creds.secret) == pinning.proven(farm.url, farm.token)


def test_a_new_certificate_is_refused_then_proven_again(farm: LocalFarm) -> None:
    client = FarmClient(farm.url, token=farm.token)
    before = client.prove()
    assert farm.coordinator is not None
    farm.coordinator.stop()
    shutil.rmtree(farm.root / "coordinator" / "tls")  # the farm makes a new one
    farm.start_coordinator("--no-zeroconf")
    # The session still pins the old certificate: the new one is refused...
    with pytest.raises(requests.exceptions.SSLError, match="Fingerprints did not match"):
        client.session.get(f"{farm.url}/api/v1/health", timeout=5)
    # ...until the farm has proved the token again, for its new certificate.
    assert client.jobs()["total"] == 0
    after = pinning.proven(farm.url, farm.token)
    assert after not in (None, before)
    assert client.session.get_adapter(farm.url + "/").fingerprint == after  # type: ignore[attr-defined]
    client.session.close()


def test_no_token_over_plain_http_to_another_machine() -> None:
    started = time.monotonic()
    with pytest.raises(PlainHttpRefused, match="refusing to send the farm token"):
        FarmClient("http://192.0.2.10:8765", token="t" * 20).jobs()
    assert time.monotonic() - started < 0.5  # refused before any connection
    allowed = FarmClient("http://192.0.2.10:8765", token="t" * 20, plain_http=True, timeout=0.2)
    with pytest.raises(Unreachable):
        allowed.jobs()
    with pytest.raises(PlainHttpRefused):  # a farm found on the LAN: never, even here
        FarmClient("http://127.0.0.1:9", token="t" * 20, plain_http=False).jobs()


class _ProofRelay(BaseHTTPRequestHandler):
    """TLS with its own certificate, passing each question on to the real farm."""

    protocol_version = "HTTP/1.1"
    farm_port = 0
    heard: ClassVar[list[bytes]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.heard.append(bytes(self.headers) + body)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        upstream = http.client.HTTPSConnection("127.0.0.1", self.farm_port, context=context)
        upstream.request("POST", self.path, body, {"Content-Type": "application/json"})
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST


def test_a_relay_gets_the_real_farms_proof_which_does_not_fit_its_certificate(
    farm: LocalFarm, tmp_path: Path
) -> None:
    cert_pem, key_pem = self_signed("relay")
    (tmp_path / "c.pem").write_text(cert_pem)
    (tmp_path / "k.pem").write_text(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    _ProofRelay.farm_port, _ProofRelay.heard = farm.port, []
    relay = ThreadingHTTPServer(("127.0.0.1", 0), _ProofRelay)
    relay.socket = context.wrap_socket(relay.socket, server_side=True)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{relay.server_address[1]}"
        with pytest.raises(NotProvenError):
            FarmClient(url, token=farm.token).jobs()
    finally:
        relay.shutdown()
        relay.server_close()
    assert len(_ProofRelay.heard) == 1  # the proof question, and nothing after it
    assert b"authorization" not in _ProofRelay.heard[0].lower()
    assert farm.token.encode() not in _ProofRelay.heard[0]
