"""A worker started without a token (its saved credentials only) finds an
impostor announced under the real farm's name, over TLS: it has no credentials
for it, so it skips it, sends it nothing and keeps browsing; when the real farm
appears it joins it with its saved secret (it used to exit on the impostor)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.blendgen import DEBIAN_BLENDER
from tests.support.impostor import Impostor
from tests.support.localfarm import REPO_ROOT, LocalFarm
from tests.support.waiting import wait_for
from worker_agent.credentials import FILE_NAME, save_credentials

pytestmark = [pytest.mark.timeout(180), pytest.mark.blender]


def test_a_worker_without_a_token_skips_an_impostor_and_joins_its_farm(tmp_path: Path) -> None:
    name = f"studio-{uuid.uuid4().hex[:8]}"
    farm = LocalFarm(root=tmp_path / "farm", tls=True)
    impostor: Impostor | None = None
    worker: subprocess.Popen[bytes] | None = None
    log_path = tmp_path / "worker.log"
    try:
        farm.start_coordinator("--name", name)
        client = farm.client()
        real_txt = {"api": "1", "tls": "1", "fp": client.health()["fingerprint"]}
        creds = client.register_worker(
            name="w1", host="h", blender_version="3.4.1", devices=["CPU"]
        )
        cache = tmp_path / "w1"
        save_credentials(cache / FILE_NAME, farm.url, creds)
        assert farm.coordinator is not None
        farm.coordinator.stop()

        impostor = Impostor(tmp_path / "impostor", name=name, tls=True)
        impostor.advertise(name, real_txt)
        env = {k: v for k, v in os.environ.items() if k != "FARM_TOKEN"}
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        with log_path.open("ab") as out:
            worker = subprocess.Popen(
                [
                    sys.executable, "-m", "worker_agent",
                    "--zeroconf-interface", "127.0.0.1", "--farm-name", name,
                    "--name", "w1", "--cache-dir", str(cache), "--poll-wait", "5",
                    "--no-standby", "--blender", DEBIAN_BLENDER,
                ],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=REPO_ROOT,
            )  # fmt: skip

        def log() -> str:
            return log_path.read_text(errors="replace")

        wait_for(
            lambda: f"skipping farm '{name}' at {impostor.url}" in log(),
            timeout=60,
            what="the worker to skip the impostor",
        )
        time.sleep(3.0)  # a few more rounds of browsing
        assert worker.poll() is None, log()
        assert "needs the farm token" not in log()
        assert impostor.received == b"", impostor.received  # not even a proof question

        farm.start_coordinator("--name", name)  # the real farm, same certificate
        wait_for(
            lambda: any(w["status"] != "offline" for w in farm.client().workers()),
            timeout=60,
            what="the worker to join the real farm with its saved secret",
        )
        assert worker.poll() is None, log()
        assert impostor.received == b""
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        if impostor is not None:
            impostor.close()
        farm.stop()
