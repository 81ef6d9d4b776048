"""The warm Blender as the agent uses it, in this process, with the fake Blender.

Which tasks share a Blender process, when a fresh one is started, what the
agent tells the scheduler (warm_job) and the stages it reports. The fake
speaks serve.py's protocol (tests/worker_agent/test_agent_loop.py); the same
faults with real Blender are in test_warm_blender.py.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any
from unittest import mock

import pytest

from coordinator.client.http import FarmClient
from tests.worker_agent.conftest import LiveFarm
from tests.worker_agent.test_agent_loop import (
    config,
    fake_blender,
    frame_sha,
    run,
    submit_render,
)
from worker_agent.agent import Agent
from worker_agent.kinds import KINDS
from worker_agent.task_run import TaskRun
from worker_agent.warm import WarmLimits


def one_frame_tasks(farm: LiveFarm, frames: str = "1-2") -> int:
    job_id, _ = submit_render(farm, settings=_settings(farm, frames))
    return job_id


def _settings(farm: LiveFarm, frames: str) -> dict[str, Any]:
    return {
        "frames": frames,
        "chunk_size": 1,
        "output": str(farm.root / "out" / "frame_####"),
        "file_format": "PNG",
        "preview": False,  # the fake Blender makes no movie; the subject is the render tasks
    }


def spare_worker(farm: LiveFarm) -> None:
    """A second worker on the farm, so a task failed here waits for it (the farm
    fails a task at once when no other worker is left to try it)."""
    farm.client.register_worker(name="spare", host="elsewhere", blender_version="3.4.1", devices=[])


def completed(farm: LiveFarm, job_id: int) -> list[int]:
    return sorted(o["frame"] for o in farm.client.outputs(job_id))


def test_a_jobs_tasks_share_one_blender_and_the_scheduler_hears_of_it(farm: LiveFarm) -> None:
    job_id = one_frame_tasks(farm)
    agent = Agent(config(farm, fake_blender(farm.root / "bin"), burst=True))
    calls: list[dict[str, Any]] = []
    real_next, real_complete = FarmClient.next_task, FarmClient.complete_task

    def next_task(client: FarmClient, **kwargs: Any) -> Any:
        calls.append({"call": "next", **kwargs})
        return real_next(client, **kwargs)

    def complete(client: FarmClient, task_id: int, **kwargs: Any) -> Any:
        calls.append({"call": "complete", **kwargs})
        return real_complete(client, task_id, **kwargs)

    with (
        mock.patch.object(FarmClient, "next_task", autospec=True, side_effect=next_task),
        mock.patch.object(FarmClient, "complete_task", autospec=True, side_effect=complete),
    ):
        assert run(agent) == 0

    assert farm.client.job(job_id)["status"] == "completed"
    assert completed(farm, job_id) == [1, 2]
    outputs = {o["frame"]: o["sha256"] for o in farm.client.outputs(job_id)}
    assert outputs == {1: frame_sha(1), 2: frame_sha(2)}
    assert agent.blender.started == 1  # the second task went to the same process
    assert agent.blender.served is None  # and it ended with the agent
    # The first completion already names the job it has warm; so does the last poll.
    assert calls[0] == {"call": "next", "wait": 0.5, "warm_job": None}
    warm = [c.get("warm_job") for c in calls[1:]]
    assert warm and all(w == job_id for w in warm), calls
    for task in farm.client.tasks(job_id)["tasks"]:
        timings = farm.client.task(task["id"])["stages"]
        stages = ("blender_ready", "first_sample", "last_frame_saved", "uploaded")
        assert set(timings) == set(stages), timings
        assert [timings[s] for s in stages] == sorted(timings.values()), timings
        log = farm.client.task_log(task["id"])
        assert ("has the scene open already" in log) == (task["frames"] == [2]), log


def test_another_job_or_file_gets_a_fresh_blender(
    farm: LiveFarm, caplog: pytest.LogCaptureFixture
) -> None:
    first = one_frame_tasks(farm, "1")
    second = one_frame_tasks(farm, "2")
    agent = Agent(config(farm, fake_blender(farm.root / "bin"), burst=True))
    with caplog.at_level(logging.INFO, logger="worker_agent.warm"):
        assert run(agent) == 0
    assert completed(farm, first) == [1] and completed(farm, second) == [2]
    assert agent.blender.started == 2
    # The first task found a Blender booted while the agent waited for work.
    assert "(standby) takes the task" in caplog.text
    assert agent.blender.standby is None  # ended with the agent


def test_without_standby_each_fresh_blender_starts_with_its_file(
    farm: LiveFarm, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = one_frame_tasks(farm, "1")
    limits = WarmLimits(standby=False)
    agent = Agent(config(farm, fake_blender(farm.root / "bin"), burst=True, warm=limits))
    with caplog.at_level(logging.INFO, logger="worker_agent.warm"):
        assert run(agent) == 0
    assert completed(farm, job_id) == [1]
    assert "standby" not in caplog.text
    log = farm.client.task_log(farm.client.tasks(job_id)["tasks"][0]["id"])
    assert "Read blend: " in log and "shot.blend" in log  # on its command line


def test_warm_tasks_1_means_a_fresh_blender_per_task(farm: LiveFarm) -> None:
    job_id = one_frame_tasks(farm)
    limits = WarmLimits(max_tasks=1)
    agent = Agent(config(farm, fake_blender(farm.root / "bin"), burst=True, warm=limits))
    assert run(agent) == 0
    assert completed(farm, job_id) == [1, 2]
    assert agent.blender.started == 2


def test_a_blender_past_its_memory_limit_is_replaced_after_its_task(farm: LiveFarm) -> None:
    job_id = one_frame_tasks(farm)
    limits = WarmLimits(max_rss_mb=1)  # any process is bigger
    agent = Agent(config(farm, fake_blender(farm.root / "bin"), burst=True, warm=limits))
    assert run(agent) == 0
    assert completed(farm, job_id) == [1, 2]  # no task paid for it
    assert agent.blender.started == 2


def test_a_crash_costs_its_task_and_the_next_gets_a_fresh_blender(farm: LiveFarm) -> None:
    job_id, _ = submit_render(farm, settings=_settings(farm, "1-2"), max_attempts=2)
    spare_worker(farm)
    blender = fake_blender(farm.root / "bin", crash_after=1, once=True)
    agent = Agent(config(farm, blender, max_tasks=2))
    assert run(agent) == 0
    # The crash cost frame 1's attempt (the farm gives it to another worker), no more.
    assert completed(farm, job_id) == [2]
    failures = [farm.client.task(t["id"])["failures"] for t in farm.client.tasks(job_id)["tasks"]]
    assert [len(f) for f in failures] == [1, 0]
    assert agent.blender.started == 2


def test_a_warm_blender_that_stops_answering_is_replaced_at_no_cost(farm: LiveFarm) -> None:
    job_id = one_frame_tasks(farm, "1-2")
    seen: list[int] = []

    def freeze_then_render(run: TaskRun) -> None:
        served = run.agent.blender.served
        if served is not None and len(seen) == 1:
            os.kill(served.process.pid, signal.SIGSTOP)  # idle, alive, deaf
        seen.append(run.task.task_id)
        KINDS["render"](run)

    limits = WarmLimits(accept_seconds=1.0)
    agent = Agent(
        config(farm, fake_blender(farm.root / "bin"), burst=True, warm=limits),
        kinds={**KINDS, "render": freeze_then_render},
    )
    assert run(agent) == 0
    assert completed(farm, job_id) == [1, 2]
    assert farm.client.job(job_id)["task_counts"] == {"completed": 2}
    assert agent.blender.started == 2  # the frozen one was killed, a fresh one took over
    second = farm.client.tasks(job_id)["tasks"][1]
    assert "did not take the task" in farm.client.task_log(second["id"])


def test_a_blender_silent_mid_task_fails_that_task_only(farm: LiveFarm) -> None:
    job_id, _ = submit_render(farm, settings=_settings(farm, "1-2"), max_attempts=2)
    spare_worker(farm)
    blender = fake_blender(farm.root / "bin", crash_after=2, once=True, hang=True)
    limits = WarmLimits(silence_seconds=1.5)
    agent = Agent(config(farm, blender, max_tasks=2, warm=limits))
    assert run(agent) == 0
    assert completed(farm, job_id) == [2]
    first = farm.client.tasks(job_id)["tasks"][0]
    (failure,) = farm.client.task(first["id"])["failures"]
    assert failure["reason"].startswith(
        "Blender stopped answering: it printed nothing and used no CPU for 1.5 s"
    )
    assert agent.blender.started == 2
