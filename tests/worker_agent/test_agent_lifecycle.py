"""The worker agent as a process: shutdown signals, a Blender that disappears,
and starting it from inside Blender."""

from __future__ import annotations

import os
import signal
import subprocess
import sysconfig
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.blendgen import DEBIAN_BLENDER, make_scene
from tests.support.localfarm import REPO_ROOT, Child, LocalFarm
from tests.support.waiting import wait_for

pytestmark = pytest.mark.blender


def task_status(farm: LocalFarm, job_id: int) -> dict[str, Any]:
    task: dict[str, Any] = farm.client().job(job_id)["tasks"][0]
    return task


def sleep_job(farm: LocalFarm, seconds: float) -> int:
    job = farm.client().submit(
        {"name": "nap", "type": "sleep", "settings": {"task_count": 1, "seconds": seconds}}
    )
    return int(job["id"])


def test_first_signal_finishes_the_task_then_signs_off(tmp_path: Path) -> None:
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        worker = farm.start_worker("w", blender=DEBIAN_BLENDER)
        job_id = sleep_job(farm, 2.0)
        wait_for(lambda: f"task {job_id}: sleep" in worker.log(), 10, "the task to start")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 0
        assert task_status(farm, job_id)["status"] == "completed"
        assert [w["status"] for w in farm.client().workers()] == ["offline"]
        assert "finishing the current task" in worker.log()


def test_second_signal_stops_now_and_hands_the_task_back(tmp_path: Path) -> None:
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        worker = farm.start_worker("w", blender=DEBIAN_BLENDER)
        job_id = sleep_job(farm, 60.0)
        wait_for(lambda: f"task {job_id}: sleep" in worker.log(), 10, "the task to start")
        started = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 0
        assert time.monotonic() - started < 10
        task = task_status(farm, job_id)
        assert task["status"] == "queued"
        # handing back is an interruption, not a failed try
        assert (task["attempts"], task["interruptions"]) == (1, 1)


def test_blender_gone_fails_the_task_readably_and_the_agent_keeps_serving(
    tmp_path: Path,
) -> None:
    wrapper = tmp_path / "bin" / "blender"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {DEBIAN_BLENDER} "$@"\n')
    wrapper.chmod(0o755)
    scene = make_scene(tmp_path / "s.blend", frames=(1, 1))
    with LocalFarm(root=tmp_path / "farm") as farm:
        farm.start_coordinator("--no-zeroconf")
        # No standby: one booted before the unlink would render the task.
        worker = farm.start_worker("w", "--no-standby", blender=str(wrapper))
        wrapper.unlink()  # Blender uninstalled under a running worker
        client = farm.client()
        files, _ = client.upload_project({"s.blend": scene})
        job = client.submit(
            {
                "name": "no blender",
                "type": "blender-render",
                "blend": "s.blend",
                "files": files,
                "settings": {"frames": "1", "output": str(tmp_path / "out" / "f_####")},
            }
        )
        done = farm.wait_for_job(job["id"], timeout=60)
        assert done["status"] == "failed"
        assert "could not start Blender" in done["status_reason"]
        assert worker.process.poll() is None
        assert farm.wait_for_job(sleep_job(farm, 0), timeout=30)["status"] == "completed"


def test_agent_started_inside_blender_renders_with_that_blender(tmp_path: Path) -> None:
    """blender -b --python-expr '... main_in_blender()' -- OPTIONS (Debian's Blender runs
    the system Python; --python-use-system-env lets it see the project's packages)."""
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        site = sysconfig.get_paths()["purelib"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), site]))
        log_path = tmp_path / "inside.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                [
                    DEBIAN_BLENDER, "-b", "--factory-startup", "--python-use-system-env",
                    "--python-expr", "import worker_agent.cli as w; w.main_in_blender()", "--",
                    "--coordinator", farm.url, "--token", farm.token, "--name", "inside",
                    "--cache-dir", str(tmp_path / "cache"), "--max-tasks", "1",
                ],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        child = Child("inside", process, log_path)
        try:
            job_id = sleep_job(farm, 0)
            assert farm.wait_for_job(job_id, timeout=60)["status"] == "completed"
            assert process.wait(30) == 0
        finally:
            child.stop()
        assert f"rendering with Blender 3.4.1 ({DEBIAN_BLENDER}" in child.log()
        assert [w["name"] for w in farm.client().workers()] == ["inside"]
