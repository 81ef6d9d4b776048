"""A worker that starts again with saved credentials tells the farm what it can do
now (a new Blender, another GPU, more memory), so jobs are matched to what it has,
not to what it had when it first registered. Real coordinator app, real HTTP."""

from __future__ import annotations

import dataclasses

from tests.worker_agent.conftest import LiveFarm
from tests.worker_agent.test_agent_loop import config, fake_blender, run
from worker_agent.agent import Agent
from worker_agent.probe import BlenderInfo

NEW_BLENDER = BlenderInfo(version="5.0.1", version_tuple=(5, 0, 1), path="", kind="binary")


def test_a_restarted_worker_reports_its_new_blender_and_capabilities(farm: LiveFarm) -> None:
    blender = fake_blender(farm.root / "bin")
    old = config(farm, blender, burst=True, capabilities={"memory_mb": 8192, "os": "linux"})
    assert run(Agent(old)) == 0  # registers, finds no work, leaves
    (before,) = farm.client.workers()
    assert (before["blender_version"], before["capabilities"]["memory_mb"]) == ("3.4.1", 8192)

    # A job for Blender 5.0 and 16 GiB: the worker as it was cannot take it.
    job = {"name": "big", "type": "sleep", "settings": {"task_count": 1, "seconds": 0}}
    job_id = farm.client.submit({**job, "blender_version": "5.0", "needs": {"memory_mb": 16384}})[
        "id"
    ]
    new = dataclasses.replace(
        old,
        blender=dataclasses.replace(NEW_BLENDER, path=str(blender)),
        devices=["CPU", "OPTIX"],
        capabilities={"memory_mb": 65536, "os": "linux", "engines": ["CYCLES"]},
        max_tasks=1,
        burst=False,
    )
    assert (farm.root / "cache" / "credentials.json").exists()  # it comes back, not anew
    assert run(Agent(new)) == 0
    (after,) = farm.client.workers()
    assert after["id"] == before["id"]
    assert after["blender_version"] == "5.0.1" and after["devices"] == ["CPU", "OPTIX"]
    assert after["capabilities"]["memory_mb"] == 65536
    assert farm.client.job(job_id, tasks=False)["status"] == "completed"
