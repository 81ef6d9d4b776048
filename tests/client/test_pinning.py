"""FarmClient against a real `serve --tls` on 127.0.0.1: the proof before any
token, the pinned certificate, a new certificate proven again, a worker's
secret proven on its own, and no token over plain HTTP to another machine."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from coordinator.client import pinning
from coordinator.client.http import (
    FarmClient,
    NotProvenError,
    PlainHttpRefused,
    Unreachable,
)
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
