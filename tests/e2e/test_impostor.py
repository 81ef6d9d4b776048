"""An impostor announced by zeroconf (127.0.0.1 only) under the real farm's name
and TXT record, speaking plain HTTP or TLS with its own certificate: a real
worker process, the CLI as a process and the add-on's discovery each find it
first and send it nothing secret; once the real farm appears, each uses it.

The real farm runs once before the impostor appears, so that the impostor can
copy its TXT record (certificate fingerprint included) as anyone on the LAN
could; then it is stopped, and started again on the same data folder later.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordinator.client import choosing
from coordinator.client.browser import FoundCoordinator
from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core import trust
from flamenco_addon.finder import Finder
from tests.cli.conftest import run_process
from tests.support.blendgen import DEBIAN_BLENDER
from tests.support.impostor import LOOPBACK, Impostor
from tests.support.localfarm import LocalFarm
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.blender]

LO = ("--zeroconf-interface", "127.0.0.1")
# plain: plain HTTP but the real TXT (tls=1), so clients try TLS and fail;
# plain-untagged: plain HTTP announced as such; tls: its own certificate.
KINDS = ("tls", "plain", "plain-untagged")


@dataclass
class Scene:
    farm: LocalFarm  # the real one, not running at first
    impostor: Impostor  # announced under the farm's name
    name: str  # that name
    kind: str  # one of KINDS


@pytest.fixture(params=KINDS)
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scene]:
    name = f"studio-{uuid.uuid4().hex[:8]}"
    farm = LocalFarm(root=tmp_path / "farm", tls=True)
    farm.start_coordinator("--name", name)
    real_txt = {"api": "1", "tls": "1", "fp": farm.client().health()["fingerprint"]}
    assert farm.coordinator is not None
    farm.coordinator.stop()
    kind = request.param
    impostor = Impostor(tmp_path / "impostor", name=name, tls=kind == "tls")
    impostor.advertise(name, {"api": "1"} if kind == "plain-untagged" else real_txt)
    try:
        yield Scene(farm, impostor, name, kind)
    finally:
        impostor.close()
        farm.stop()


def assert_nothing_secret(impostor: Impostor, farm: LocalFarm) -> None:
    """The impostor got neither the token nor its key, and asked only public paths."""
    received = impostor.received
    assert farm.token.encode() not in received
    assert trust.proof_key(farm.token).encode() not in received
    assert b"authorization" not in received.lower()
    for path in impostor.paths:
        assert path.startswith(("/api/v1/proof", "/api/v1/health")), path


def assert_useless_to_the_farm(impostor: Impostor, farm: LocalFarm) -> None:
    """Each request the impostor got, replayed to the real farm, opens nothing."""
    client = farm.client()
    client.prove()  # pins the real certificate on this session
    key_id = trust.key_id(trust.proof_key(farm.token))
    for credential in (key_id, *nonces_in(impostor.received)):
        resp = client.session.get(
            f"{farm.url}/api/v1/jobs", headers={"Authorization": f"Bearer {credential}"}
        )
        assert resp.status_code == 401, credential


def nonces_in(data: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb"[0-9a-f]{64}", data)]


def test_worker_cli_and_addon_send_the_impostor_nothing_and_use_the_real_farm(
    scene: Scene,
) -> None:
    farm, impostor, name = scene.farm, scene.impostor, scene.name
    worker = farm.start_worker(
        "w1",
        "--farm-name",
        name,
        "--no-standby",
        blender=DEBIAN_BLENDER,
        discover=True,
        wait_registered=False,
    )
    finder = Finder()
    finder.start(online=False, interfaces=LOOPBACK)
    try:
        # The CLI, told only the token: the impostor cannot prove it, so it gets nothing.
        cli = run_process(*LO, "--farm-name", name, "jobs", env={"FARM_TOKEN": farm.token})
        assert cli.code == 4, cli.err
        assert "no farm found on the LAN proved that it knows this farm token" in cli.err
        assert f"127.0.0.1:{impostor.port}" in cli.err
        # The add-on: only a farm that can prove itself is listed, and using it
        # (as the operators do, with the token) fails before the token is sent.
        if scene.kind != "plain-untagged":
            wait_for(lambda: listed(finder, name), what="the impostor to be listed")
            (entry,) = listed(finder, name)
            with pytest.raises(FarmClientError):
                FarmClient(entry.url, token=farm.token, timeout=5).jobs()
        else:
            time.sleep(2.0)
            assert listed(finder, name) == []  # plain HTTP: it could not prove anything
        wait_for(
            lambda: f"found coordinator '{name}'" in worker.log(),
            timeout=60,
            what="the worker to find the impostor",
        )
        time.sleep(1.0)
        assert_nothing_secret(impostor, farm)

        farm.start_coordinator("--name", name)  # the real farm, same data folder and certificate
        wait_for(lambda: len(farm.client().workers()) == 1, timeout=60, what="the worker to join")
        assert f"using farm '{name}' at {farm.url}" in worker.log()
        cli = run_process(*LO, "--farm-name", name, "jobs", env={"FARM_TOKEN": farm.token})
        assert cli.code == 0, cli.err
        assert f"using coordinator '{name}' at {farm.url} (found on the LAN; it proved" in cli.err
        wait_for(lambda: farm.url in [e.url for e in listed(finder, name)], what="the real farm")
        good, _bad = choosing.proven(listed(finder, name), farm.token)
        assert [c.farm.url for c in good] == [farm.url]
        assert FarmClient(farm.url, token=farm.token).jobs()["total"] == 0
        assert_nothing_secret(impostor, farm)
        assert_useless_to_the_farm(impostor, farm)
    finally:
        finder.stop()


def listed(finder: Finder, name: str) -> list[FoundCoordinator]:
    return [e for e in finder.entries() if e.name == name]
