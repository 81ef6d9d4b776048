"""The ETA on a real farm: coordinator and two worker agents, a sleep job whose
tasks take 1, 2 and 3 s in turn."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.localfarm import LocalFarm
from tests.support.waiting import wait_for


@pytest.mark.slow
def test_eta_halfway_is_within_a_quarter_of_the_time_left(tmp_path: Path) -> None:
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        for name in ("w1", "w2"):
            farm.start_worker(name)
        client = farm.client()
        job = client.submit(
            {
                "name": "uneven",
                "type": "sleep",
                "settings": {"task_count": 20, "seconds": 2.0, "uneven": 0.5},
            }
        )
        assert job["eta_seconds"] is None  # nothing measured yet
        halfway: dict = {}

        def past_halfway() -> bool:
            nonlocal halfway
            halfway = client.job(job["id"], tasks=False)
            return halfway["task_counts"].get("completed", 0) >= 10

        wait_for(past_halfway, 60, "half the tasks to finish")
        asked = time.monotonic()
        eta = halfway["eta_seconds"]
        done = farm.wait_for_job(job["id"], timeout=60)
        actual = time.monotonic() - asked
        assert done["status"] == "completed"
        assert done["eta_seconds"] is None  # finished: nothing left to estimate
        assert eta is not None
        assert abs(eta - actual) <= 0.25 * actual, (eta, actual)
