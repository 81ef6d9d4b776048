"""A real coordinator process advertised on 127.0.0.1, found by the client
code and by a real worker agent that was not told its address."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from coordinator.client.browser import find_coordinators
from tests.support.blendgen import DEBIAN_BLENDER
from tests.support.localfarm import LocalFarm

LOOPBACK = ["127.0.0.1"]


def test_running_coordinator_is_found_on_loopback_and_goes_away(tmp_path: Path) -> None:
    name = f"farm-{uuid.uuid4().hex[:8]}"
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--name", name)
        found = find_coordinators(interfaces=LOOPBACK, name=name, first=True, timeout=10)
        assert [f.url for f in found] == [farm.url]
        assert found[0].api_version == "1" and found[0].workers == 0
        assert farm.coordinator is not None
        farm.coordinator.stop()
    deadline = time.monotonic() + 10
    while find_coordinators(interfaces=LOOPBACK, name=name, timeout=1.0):
        assert time.monotonic() < deadline, "the stopped coordinator is still announced"


@pytest.mark.blender
def test_worker_without_an_address_finds_the_farm(tmp_path: Path) -> None:
    with LocalFarm(root=tmp_path, tls=True) as farm:
        name = f"farm-{uuid.uuid4().hex[:8]}"
        farm.start_coordinator("--name", name)
        # --farm-name: other farms may be announced on loopback by parallel runs.
        farm.start_worker("finder", "--farm-name", name, blender=DEBIAN_BLENDER, discover=True)
        job = farm.client().submit(
            {"name": "found", "type": "sleep", "settings": {"task_count": 1, "seconds": 0}}
        )
        assert farm.wait_for_job(job["id"], timeout=60)["status"] == "completed"
        assert "found coordinator" in farm.workers[0].log()
