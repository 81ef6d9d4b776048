"""The warm Blender with real Blender 3.4: the same pixels, and faults cost one task.

The scene animates an object (the box moves), a material value (the ball's
colour) and a frame-dependent modifier (a Wave on a subdivided floor). The
agent runs in this process against a real coordinator (conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import blendgen
from tests.support.waiting import wait_for
from tests.worker_agent.conftest import LiveFarm
from tests.worker_agent.test_agent_loop import config, run
from worker_agent.agent import Agent
from worker_agent.kinds import KINDS
from worker_agent.probe import probe
from worker_agent.task_run import TaskRun
from worker_agent.warm import WarmLimits

pytestmark = [pytest.mark.blender, pytest.mark.slow]

FRAMES = 4
BLENDER = [str(blendgen.DEBIAN_BLENDER), "-b", "--factory-startup", "-Y"]

# Runs in Blender on a blendgen scene: animates a material value and adds a
# frame-dependent modifier stack (the box's location is animated already).
_ANIMATE = """
import bpy
ball = bpy.data.objects["Ball"]
bsdf = next(n for n in ball.active_material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
color = bsdf.inputs["Base Color"]
color.default_value = (0.1, 0.4, 0.8, 1.0)
color.keyframe_insert("default_value", frame=1)
color.default_value = (0.9, 0.8, 0.1, 1.0)
color.keyframe_insert("default_value", frame=%(last)d)
floor = bpy.data.objects["Floor"]
sub = floor.modifiers.new("Subdivide", "SUBSURF")
sub.subdivision_type = "SIMPLE"
sub.levels = sub.render_levels = %(levels)d
wave = floor.modifiers.new("Wave", "WAVE")
wave.height, wave.width, wave.speed = 0.4, 1.2, 0.3
bpy.ops.wm.save_mainfile()
"""


def animated_scene(path: Path, *, samples: int = 8, levels: int = 5, size=(96, 72)) -> Path:
    blend = blendgen.make_scene(path, frames=(1, FRAMES), samples=samples, resolution=size)
    script = path.with_suffix(".py")
    script.write_text(_ANIMATE % {"last": FRAMES, "levels": levels}, encoding="utf-8")
    subprocess.run(
        [*BLENDER, str(blend), "--python-exit-code", "1", "--python", str(script)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return blend


def real_config(farm: LiveFarm, **options: Any) -> Any:
    info = probe(blendgen.DEBIAN_BLENDER)
    return config(farm, Path(info.path), threads=2, **options)


def submit(farm: LiveFarm, blend: Path, out: Path, **job: Any) -> int:
    files, _ = farm.client.upload_project({"shot.blend": blend})
    body = {
        "name": "warm",
        "type": "blender-render",
        "blend": "shot.blend",
        "files": files,
        "settings": {
            "frames": f"1-{FRAMES}",
            "chunk_size": 1,
            "output": str(out / "f_####"),
            "preview": False,  # the subject is the warm Blender's render tasks
        },
        **job,
    }
    return int(farm.client.submit(body)["id"])


def delivered(out: Path, frames: int = FRAMES) -> dict[int, bytes]:
    wait_for(lambda: len(list(out.glob("f_*.png"))) == frames, 30, f"{frames} frames delivered")
    return {int(p.stem[2:]): blendgen.png_pixels(p) for p in sorted(out.glob("f_*.png"))}


def local(blend: Path, out: Path, *frame_args: str) -> dict[int, bytes]:
    subprocess.run(
        [*BLENDER, str(blend), "-o", str(out / "f_####"), "-t", "2", *frame_args],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return {int(p.stem[2:]): blendgen.png_pixels(p) for p in sorted(out.glob("f_*.png"))}


def test_a_warm_blender_renders_the_same_pixels_as_a_fresh_one_and_a_local_render(
    farm: LiveFarm,
) -> None:
    blend = animated_scene(farm.root / "scene" / "shot.blend")
    warm_job = submit(farm, blend, farm.root / "warm")
    agent = Agent(real_config(farm, burst=True))
    assert run(agent, timeout=300) == 0
    assert agent.blender.started == 1  # four tasks, one Blender
    warm = delivered(farm.root / "warm")

    fresh_job = submit(farm, blend, farm.root / "fresh")
    agent = Agent(real_config(farm, burst=True, warm=WarmLimits(max_tasks=1)))
    assert run(agent, timeout=300) == 0
    assert agent.blender.started == FRAMES
    fresh = delivered(farm.root / "fresh")

    kept_job = submit(farm, blend, farm.root / "kept")
    agent = Agent(real_config(farm, burst=True, persistent_data=True))
    assert run(agent, timeout=300) == 0
    kept = delivered(farm.root / "kept")  # Cycles kept its render data between the tasks

    animation = local(blend, farm.root / "local-a", "-a")
    single = local(blend, farm.root / "local-f", "-f", "3")
    for job_id in (warm_job, fresh_job, kept_job):
        assert farm.client.job(job_id)["status"] == "completed"
    assert sorted(warm) == list(range(1, FRAMES + 1))
    assert len(set(warm.values())) == FRAMES  # the frames do differ: the scene moves
    assert warm == fresh == animation == kept
    assert single[3] == warm[3]


# ---------------------------------------------------------------- faults


def slow_scene(farm: LiveFarm) -> Path:
    """About two seconds a frame here, so a fault lands mid-render."""
    return animated_scene(farm.root / "slow" / "shot.blend", samples=400, levels=4, size=(160, 120))


def during_second_task(act: Any) -> Any:
    """A render kind that calls act(run, Blender's pid) once the second task renders
    in the warm Blender (its first progress)."""
    count = {"tasks": 0}

    def render(run: TaskRun) -> None:
        count["tasks"] += 1
        if count["tasks"] == 2:
            threading.Thread(target=_when_rendering, args=(run, act), daemon=True).start()
        KINDS["render"](run)

    return render


def _when_rendering(run: TaskRun, act: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not run.stopped.is_set():
        served = run.agent.blender.served
        if served is not None and served.tasks >= 2 and "first_sample" in run._stages_seen:
            act(run, served.process.pid)
            return
        time.sleep(0.05)


def spare_worker(farm: LiveFarm) -> None:
    farm.client.register_worker(name="spare", host="elsewhere", blender_version="3.4.1", devices=[])


def statuses(farm: LiveFarm, job_id: int) -> dict[int, str]:
    return {t["frames"][0]: t["status"] for t in farm.client.tasks(job_id)["tasks"]}


def fault_run(farm: LiveFarm, act: Any, **options: Any) -> tuple[Agent, int]:
    """Frames 1-3 as one-frame tasks; act hits the warm Blender during frame 2."""
    blend = slow_scene(farm)
    job_id = submit(farm, blend, farm.root / "out", settings={
        "frames": "1-3", "chunk_size": 1, "output": str(farm.root / "out" / "f_####"),
        "preview": False,
    })  # fmt: skip
    spare_worker(farm)
    agent = Agent(
        real_config(farm, max_tasks=3, **options),
        kinds={**KINDS, "render": during_second_task(act)},
    )
    assert run(agent, timeout=300) == 0
    return agent, job_id


def test_kill_9_mid_task_costs_that_task_and_the_next_renders(farm: LiveFarm) -> None:
    agent, job_id = fault_run(farm, lambda run, pid: os.kill(pid, signal.SIGKILL))
    assert statuses(farm, job_id) == {1: "completed", 2: "queued", 3: "completed"}
    (task2,) = [t for t in farm.client.tasks(job_id)["tasks"] if t["frames"] == [2]]
    (failure,) = farm.client.task(task2["id"])["failures"]
    assert "killed by SIGKILL" in failure["reason"], failure
    assert agent.blender.started == 2


def test_a_blender_that_stops_answering_costs_that_task(farm: LiveFarm) -> None:
    agent, job_id = fault_run(
        farm,
        lambda run, pid: os.kill(pid, signal.SIGSTOP),
        warm=WarmLimits(silence_seconds=3.0),
    )
    assert statuses(farm, job_id) == {1: "completed", 2: "queued", 3: "completed"}
    (task2,) = [t for t in farm.client.tasks(job_id)["tasks"] if t["frames"] == [2]]
    (failure,) = farm.client.task(task2["id"])["failures"]
    assert failure["reason"].startswith("Blender stopped answering"), failure
    assert agent.blender.started == 2


def test_a_cancel_stops_the_warm_render_within_a_second_and_the_next_renders(
    farm: LiveFarm,
) -> None:
    stopped_in: list[float] = []

    def cancel(run: TaskRun, pid: int) -> None:
        t0 = time.monotonic()
        farm.client.cancel_task(run.task.task_id)
        wait_for(lambda: not _running(pid), 10, "the warm Blender stopped")
        stopped_in.append(time.monotonic() - t0)

    agent, job_id = fault_run(farm, cancel)
    assert statuses(farm, job_id) == {1: "completed", 2: "canceled", 3: "completed"}
    assert stopped_in and stopped_in[0] < 1.5, stopped_in
    assert agent.blender.started == 2


def test_past_the_memory_limit_the_next_task_gets_a_fresh_blender(farm: LiveFarm) -> None:
    agent, job_id = fault_run(farm, lambda run, pid: None, warm=WarmLimits(max_rss_mb=20))
    assert statuses(farm, job_id) == {1: "completed", 2: "completed", 3: "completed"}
    assert agent.blender.started == 3  # every task ended past 20 MB: none was lost


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
