"""Workers killed with kill -9 and restarted mid-task: the task spends no try.

Real processes on loopback (coordinator, worker agents) and a sleep job, so no
Blender is needed: what is tested is the farm's bookkeeping of interruptions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.localfarm import LocalFarm
from tests.support.waiting import wait_for


@pytest.mark.slow
def test_a_task_interrupted_three_times_still_completes(tmp_path: Path) -> None:
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        client = farm.client()
        worker = farm.start_worker("w1")
        # one try only: before interruptions were told apart, the first kill failed it
        job = client.submit(
            {
                "name": "interrupted",
                "type": "sleep",
                "settings": {"task_count": 1, "seconds": 4.0},
                "max_attempts": 1,
            }
        )

        def task() -> dict:
            found: dict = client.job(job["id"])["tasks"][0]
            return found

        for kill in range(3):
            wait_for(
                lambda n=kill + 1: _sleeping(task(), attempt=n),
                90,  # a restarted agent probes its Blender first: slow on a loaded machine
                f"the task to start sleeping (attempt {kill + 1})",
            )
            worker.kill()  # kill -9: no sign-off, the lease still held
            # the same worker (its saved credentials) asks for work again at once
            worker = farm.start_worker("w1", wait_registered=False)
        done = farm.wait_for_job(job["id"], timeout=120)
        assert done["status"] == "completed", farm.describe()
        detail = client.task(task()["id"])
        assert (detail["attempts"], detail["interruptions"]) == (4, 3)
        assert [f["blamed"] for f in detail["failures"]] == [False] * 3
        assert all("interrupted" in f["reason"] for f in detail["failures"])
        assert len(client.workers()) == 1  # one worker, restarted


def _sleeping(task: dict, *, attempt: int) -> bool:
    """The task runs its `attempt` on a worker that reported starting it."""
    running = (task["status"], task["attempts"]) == ("active", attempt)
    return running and task["activity"].startswith("sleeping")
