"""Pools on a real farm: a coordinator, worker agents started with and without
--tag, and the CLI (submit --require-tag, workers, workers tag), as processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.localfarm import REPO_ROOT, LocalFarm
from tests.support.waiting import wait_for


def cli(farm: LocalFarm, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator",
            "--coordinator",
            farm.url,
            "--token",
            farm.token,
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_a_job_requiring_gpu_waits_for_a_tagged_worker_then_runs_only_there(
    tmp_path: Path,
) -> None:
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        farm.start_worker("plain")
        submitted = cli(
            farm, "submit", "--type", "sleep", "--set", "task_count=4", "--set", "seconds=0.3",
            "--require-tag", "gpu",
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        job_id = int(submitted.stdout.splitlines()[0])  # submit prints the job id first
        client = farm.client()
        time.sleep(3)  # the untagged worker polls meanwhile
        job = client.job(job_id, tasks=False)
        assert job["status"] == "queued" and job["task_counts"] == {"queued": 4}
        assert job["warning"].startswith("no online worker with tag gpu"), job["warning"]
        shown = cli(farm, "job", str(job_id))
        assert "no online worker with tag gpu" in shown.stdout, shown.stdout

        farm.start_worker("gpu-box", "--tag", "gpu")
        done = farm.wait_for_job(job_id, timeout=60)
        assert done["status"] == "completed", farm.describe()
        workers = {w["id"]: w for w in client.workers()}
        ran_on = {workers[t["worker_id"]]["name"] for t in client.job(job_id)["tasks"]}
        assert ran_on == {"gpu-box"}
        listed = cli(farm, "workers")
        assert "gpu" in listed.stdout and listed.returncode == 0
        tagged = next(w for w in workers.values() if w["name"] == "gpu-box")
        assert tagged["tags"] == ["gpu"]
        assert "CYCLES" in tagged["capabilities"]["engines"]
        assert tagged["capabilities"]["os"] == "linux"


@pytest.mark.slow
def test_tagging_a_running_worker_from_the_cli_lets_it_take_the_job(tmp_path: Path) -> None:
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        farm.start_worker("desk")
        job = farm.client().submit(
            {
                "name": "pool",
                "type": "sleep",
                "settings": {"task_count": 2, "seconds": 0.1},
                "requires_tags": ["render"],
            }
        )
        wait_for(
            lambda: "tag render" in farm.client().job(job["id"], tasks=False)["warning"],
            10,
            "the warning",
        )
        bad = cli(farm, "workers", "tag", "desk", "no good")
        assert bad.returncode == 2 and "'no good' is not a tag" in bad.stderr, bad.stderr
        tagged = cli(farm, "workers", "tag", "desk", "render,fast")
        assert tagged.returncode == 0, tagged.stderr
        assert "worker desk: tags render, fast" in tagged.stdout
        assert farm.wait_for_job(job["id"], timeout=60)["status"] == "completed"


@pytest.mark.slow
def test_a_worker_restarted_with_a_tag_keeps_its_id_and_gets_the_tag(tmp_path: Path) -> None:
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        first = farm.start_worker("desk")
        (before,) = farm.client().workers()
        first.stop()
        farm.start_worker("desk", "--tag", "gpu", wait_registered=False)
        wait_for(lambda: farm.client().workers()[0]["tags"] == ["gpu"], 30, "the tag")
        (after,) = farm.client().workers()
        assert after["id"] == before["id"]  # the same worker, by its saved secret
