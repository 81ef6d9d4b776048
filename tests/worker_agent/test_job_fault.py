"""A failure that is the job's own, from the runner inside Blender to the farm.

The runner says so on its error event (``"job_fault": true``), the agent's
parser reads it, the TaskRun sends it with its fail report, and the farm fails
the task without retrying it. The agent loop runs in this process against the
real coordinator app with a fake Blender that answers each task with one error
event, as the runner does for a job that lacks a file.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from coordinator.client.http import FarmClient
from coordinator.core.protocol import Assignment
from tests.support import blendgen
from tests.support.blendgen import DEBIAN_BLENDER
from tests.worker_agent.conftest import LiveFarm
from tests.worker_agent.test_agent_loop import config, run, submit_render
from tests.worker_agent.test_missing_inputs import run_runner
from worker_agent import events as ev
from worker_agent import kinds
from worker_agent.agent import Agent
from worker_agent.in_blender import runner
from worker_agent.in_blender.emit import PREFIX, Emitter
from worker_agent.in_blender.inputs import Input, case_twin
from worker_agent.in_blender.render_task import JobFault, RenderTask, TaskError
from worker_agent.in_blender.serve import Session, serve
from worker_agent.task_run import TaskFailure, TaskRun

NOT_RETRIED = "; not retried: every worker would meet the same"
MISSING = "missing files (the scene reads them; the job's project lacks them): tex/Holz_木.png"


# ---------------------------------------------------------------- the event


def test_the_error_event_says_job_fault_only_for_the_jobs_own_failures() -> None:
    out = io.StringIO()
    Emitter(out).error(JobFault(MISSING))
    Emitter(out).error(TaskError("no CUDA device on this machine"))
    own, other = out.getvalue().splitlines()
    assert own == PREFIX + json.dumps(
        {"event": "error", "message": MISSING, "job_fault": True},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert other == PREFIX + '{"event":"error","message":"no CUDA device on this machine"}'
    assert ev.parse_line(own) == ev.RunnerError(message=MISSING, job_fault=True)
    assert ev.parse_line(other) == ev.RunnerError(message="no CUDA device on this machine")


@pytest.mark.parametrize("value", ["true", 1, None, {}])
def test_anything_but_true_is_not_the_jobs_fault(value: Any) -> None:
    line = PREFIX + json.dumps({"event": "error", "message": "x", "job_fault": value})
    assert ev.parse_line(line) == ev.RunnerError(message="x", job_fault=False)


def test_the_warm_runner_passes_the_jobs_fault_on() -> None:
    out = io.StringIO()
    session = mock.create_autospec(Session, instance=True)
    session.emitter = Emitter(out)
    session.handle.side_effect = JobFault(MISSING)
    assert serve(['{"kind": "render", "task": "/job/out/task.json"}\n'], session) == 1
    (line,) = out.getvalue().splitlines()
    assert ev.parse_line(line) == ev.RunnerError(message=MISSING, job_fault=True)
    session.close.assert_called_once_with()


# ---------------------------------------------------------------- missing files


def _task(tmp_path: Path) -> RenderTask:
    job = tmp_path / "jobs" / "7"
    return RenderTask(
        blend=str(job / "project" / "shot.blend"), frames=(1,), output_dir=str(job / "out-1-1")
    )


def _missing(path: str, stored: str) -> Input:
    return Input(kind="image", owner="Holz", path=path, stored=stored)


def test_files_missing_from_the_project_are_the_jobs_fault(tmp_path: Path) -> None:
    task = _task(tmp_path)
    inside = _missing(str(tmp_path / "jobs/7/project/tex/wood.png"), "//tex/wood.png")
    with (
        mock.patch.object(runner, "missing_inputs", autospec=True, return_value=[inside]),
        pytest.raises(JobFault, match=r"tex/wood\.png"),
    ):
        runner.check_inputs(task)


def test_a_file_outside_the_project_may_be_on_another_worker(tmp_path: Path) -> None:
    """A path on a share some workers mount: missing here is this worker's failure."""
    task = _task(tmp_path)
    missing = [
        _missing(str(tmp_path / "jobs/7/project/tex/wood.png"), "//tex/wood.png"),
        _missing("/mnt/library/hdri.exr", "/mnt/library/hdri.exr"),
    ]
    with (
        mock.patch.object(runner, "missing_inputs", autospec=True, return_value=missing),
        pytest.raises(TaskError) as raised,
    ):
        runner.check_inputs(task)
    assert not raised.value.job_fault
    assert "/mnt/library/hdri.exr" in str(raised.value)


# ---------------------------------------------------------------- the payload


def _render_run(tmp_path: Path, payload: dict[str, Any], **settings: Any) -> TaskRun:
    run = mock.create_autospec(TaskRun, instance=True)
    run.task = Assignment(
        task_id=1,
        job_id=1,
        job_name="j",
        kind="render",
        payload=payload,
        attempt=1,
        lease_seconds=60,
    )
    run.config = config(
        LiveFarm("http://127.0.0.1:1", mock.create_autospec(FarmClient), tmp_path),
        tmp_path / "blender",
        **settings,
    )
    return run


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"frames": [1], "device": "VULKAN"}, "device 'VULKAN' is not one of"),
        ({"frames": [1], "missing_files": "skip"}, "missing_files 'skip' is not fail or render"),
        ({"frames": [1], "region": [0.5, 0, 0.2, 1]}, "region"),
    ],
)
def test_a_payload_this_worker_cannot_read_is_not_the_jobs_fault(
    tmp_path: Path, payload: dict[str, Any], says: str
) -> None:
    """A newer coordinator may send what an older worker's code refuses (a new
    device, a new missing_files mode) while a newer worker renders it: retried."""
    run = _render_run(tmp_path, payload)
    with pytest.raises(TaskFailure) as raised:
        kinds._render_task(run, tmp_path / "shot.blend", tmp_path / "out")
    reason = str(raised.value)
    assert not raised.value.job_fault
    assert reason.startswith("this worker cannot read the task: ") and says in reason
    assert f"It runs {kinds.this_worker()} and may be older than the coordinator" in reason
    assert kinds.this_worker() == f"lanfarm {importlib.metadata.version('lanfarm')}"


def test_this_workers_own_settings_are_not_the_jobs_fault(tmp_path: Path) -> None:
    run = _render_run(tmp_path, {"frames": [1]}, threads=0)
    with pytest.raises(TaskFailure, match="this worker's settings") as raised:
        kinds._render_task(run, tmp_path / "shot.blend", tmp_path / "out")
    assert not raised.value.job_fault


# ---------------------------------------------------------------- the agent loop

# Answers the version probe like Blender 3.4.1; each task it is handed gets one
# error event, as the runner prints it, and the exit code 1 the runner gives.
FAILING_BLENDER = """#!{python}
import json, sys

if "--version" in sys.argv:
    print("Blender 3.4.1")
    sys.exit(0)
if "--python-expr" in sys.argv:
    sys.exit(0)
print("Read blend: " + sys.argv[sys.argv.index("-Y") + 1], flush=True)
request = json.loads(sys.stdin.readline())
print("@@FARM@@ " + json.dumps({{"event": "accepted", "task": request["task"]}}), flush=True)
error = {{"event": "error", "message": {message!r}}}
if {job_fault!r}:
    error["job_fault"] = True
print("@@FARM@@ " + json.dumps(error, ensure_ascii=False), flush=True)
sys.exit(1)
"""


def failing_blender(folder: Path, *, job_fault: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "blender"
    script = FAILING_BLENDER.format(python=sys.executable, message=MISSING, job_fault=job_fault)
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)
    return path


def test_the_agent_reports_the_jobs_fault_and_the_task_is_not_retried(farm: LiveFarm) -> None:
    job_id, _out = submit_render(farm)  # the default max_attempts: 3
    blender = failing_blender(farm.root / "bin", job_fault=True)
    agent = Agent(config(farm, blender, burst=True))
    assert run(agent) == 0

    job = farm.client.job(job_id)
    assert job["status"] == "failed", job
    (listed,) = farm.client.tasks(job_id)["tasks"]
    task = farm.client.task(listed["id"])
    assert task["status"] == "failed"
    assert task["attempts"] == 1
    (failure,) = task["failures"]
    assert failure["blamed"] is False
    said = f"{MISSING} (Blender exited with code 1; frames 1, 2 were not written)"
    assert failure["reason"] == said + NOT_RETRIED
    assert job["status_reason"] == f"task '{task['name']}' failed: {failure['reason']}"
    assert job["blocklist"] == []


def test_an_error_not_the_jobs_is_retried_as_before(farm: LiveFarm) -> None:
    job_id, _out = submit_render(farm)
    # Another worker that could take the task, so it is not out of workers either.
    farm.client.register_worker(name="other", host="other", blender_version="3.4.1", devices=[])
    blender = failing_blender(farm.root / "bin", job_fault=False)
    assert run(Agent(config(farm, blender, burst=True))) == 0

    (listed,) = farm.client.tasks(job_id)["tasks"]
    task = farm.client.task(listed["id"])
    assert task["status"] == "queued"  # for another worker: this one failed it
    (failure,) = task["failures"]
    assert failure["blamed"] is True
    assert not failure["reason"].endswith(NOT_RETRIED)
    assert farm.client.job(job_id)["status"] != "failed"


# ---------------------------------------------------------------- in Blender


@pytest.mark.blender
def test_blender_says_a_scene_the_file_lacks_is_the_jobs_fault(tmp_path: Path) -> None:
    """The real runner in Debian's Blender 3.4 (binary, runner.py): the error event
    carries job_fault for a scene the job names and the file does not have."""
    blend = blendgen.make_scene(tmp_path / "shot.blend", frames=(1, 1))
    (scene,) = [
        e
        for e in run_runner(DEBIAN_BLENDER, blend, tmp_path / "a", scene="Nope")
        if isinstance(e, ev.RunnerError)
    ]
    assert scene.message.startswith("scene 'Nope' not found") and scene.job_fault


# ---------------------------------------------------------------- names and .blend


def test_a_task_naming_no_blend_or_one_it_does_not_send_is_the_jobs_fault() -> None:
    """Facts of the task itself, not of any worker's rules: no worker could render it."""
    with pytest.raises(TaskFailure, match=r"names no \.blend") as none:
        kinds.check_blend(None, {"shot.blend": "0" * 64})
    with pytest.raises(TaskFailure, match=r"'other\.blend' is not one of the job's files") as other:
        kinds.check_blend("other.blend", {"shot.blend": "0" * 64})
    assert none.value.job_fault and other.value.job_fault
    assert kinds.check_blend("shot.blend", {"shot.blend": "0" * 64}) == "shot.blend"


@pytest.mark.parametrize("blend", ["shots/aux.blend", "/etc/shot.blend", "../shot.blend"])
def test_a_name_this_workers_rules_refuse_is_not_the_jobs_fault(blend: str) -> None:
    """The rule is this worker's code (stricter than the coordinator's check of
    project paths): refused here, retried, the worker's version named."""
    with pytest.raises(TaskFailure, match="is refused") as raised:
        kinds.check_blend(blend, {blend: "0" * 64})
    assert not raised.value.job_fault
    assert "Nothing was run" in str(raised.value) and kinds.this_worker() in str(raised.value)


# ---------------------------------------------------------------- the reason


def test_the_runners_message_leads_the_reason_and_frames_are_joined() -> None:
    frames = list(range(1, 25))
    assert kinds.render_failure(1, frames, MISSING, "ignored") == (
        f"{MISSING} (Blender exited with code 1; frames 1-24 were not written)"
    )
    # no runner error: how Blender ended, then its last line
    assert kinds.render_failure(-11, [2, 3], None, "Writing: /tmp/shot.crash.txt") == (
        "Blender crashed (killed by SIGSEGV, exit code -11); frames 2, 3 were not written:"
        " Writing: /tmp/shot.crash.txt"
    )
    assert kinds.render_failure(1, [], None, "no output") == "Blender exited with code 1: no output"


def test_frames_in_a_reason_are_short() -> None:
    assert kinds.frames_text([1, 2]) == "1, 2"
    assert kinds.frames_text([5, 1, 2, 3, 9, 10]) == "1-3, 5, 9, 10"
    assert kinds.frames_text([-3, -2, -1, 0]) == "-3-0"
    every_other = kinds.frames_text(list(range(1, 500, 2)))
    assert len(every_other) < 110, every_other
    assert every_other.startswith("1, 3, 5, ") and every_other.endswith(", ... (250 frames)")


# ---------------------------------------------------------------- the case of names


def _files(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_a_file_there_under_another_case_is_found(tmp_path: Path) -> None:
    _files(tmp_path, "tex/tex.png", "Maps/wood.png", "seq/Plate_0001.png", "seq/plate.txt")
    assert case_twin(str(tmp_path / "tex/Tex.png")) == str(tmp_path / "tex/tex.png")
    assert case_twin(str(tmp_path / "maps/Wood.png")) == str(tmp_path / "Maps/wood.png")
    assert case_twin(str(tmp_path / "maps/wood.png")) == str(tmp_path / "Maps/wood.png")
    assert case_twin(str(tmp_path / "SEQ/plate_0007.png"), sequence=True) == str(
        tmp_path / "seq/Plate_0001.png"
    )
    assert case_twin(str(tmp_path / "seq/plate_0007.png")) is None  # not a sequence
    assert case_twin(str(tmp_path / "tex/tex2.png")) is None
    assert case_twin(str(tmp_path / "gone/tex.png")) is None
    assert case_twin(str(tmp_path / "tex/tex.png")) is None  # the very name: not a twin


def test_a_missing_file_there_under_another_case_is_not_the_jobs_fault(tmp_path: Path) -> None:
    """Linux workers tell "Tex.png" from "tex.png", Windows and macOS workers do
    not: the job may render there, so the failure is an ordinary one."""
    task = _task(tmp_path)
    project = tmp_path / "jobs/7/project"
    _files(project, "tex/tex.png")
    missing = [
        _missing(str(project / "tex/Tex.png"), "//tex/Tex.png"),
        _missing(str(project / "tex/gone.png"), "//tex/gone.png"),
    ]
    with (
        mock.patch.object(runner, "missing_inputs", autospec=True, return_value=missing),
        pytest.raises(TaskError) as raised,
    ):
        runner.check_inputs(task)
    assert not raised.value.job_fault
    message = str(raised.value)
    assert message.startswith(
        "missing files (the scene reads them; the job's project lacks them):"
        " tex/Tex.png (image 'Holz') is missing, tex/tex.png exists (the names differ in"
        " case; Linux workers tell them apart), tex/gone.png (image 'Holz'). Make the"
        " .blend's paths and the files' names agree in case"
    ), message
    assert str(tmp_path) not in message
