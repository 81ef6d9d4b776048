"""The control commands of the CLI against a real `python -m coordinator serve`:
regenerate, priority, clear-blocklist, task and worker actions, the filter
language, and the refusals, each with the coordinator's own reason."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient, WorkerCredentials
from tests.cli.conftest import Run, submit_sleep, unique
from tests.support.fakeblend import fake_blend_bytes


def submit_render(run: Run, tmp_path: Path, name: str, *extra: str) -> int:
    blend = tmp_path / f"{name}.blend"
    blend.write_bytes(fake_blend_bytes(256))
    result = run(
        *("submit", str(blend), "--name", name, "--frames", "1-4", "--chunk-size", "2"),
        *("--output", str(tmp_path / "out" / "frame_####"), *extra),
    )
    assert result.code == 0, result.err
    return int(result.out.split()[0])


def register(api: FarmClient, name: str, blender: str = "4.2.0") -> FarmClient:
    creds: WorkerCredentials = api.register_worker(
        name=name, host="test", blender_version=blender, devices=["CPU"]
    )
    return FarmClient(api.url, token=creds.secret)


# =================================================================== jobs
def test_the_filter_language_of_the_issue(run: Run, tmp_path: Path, api: FarmClient) -> None:
    tag = uuid.uuid4().hex[:6]
    rendering = submit_render(run, tmp_path, f"Shot_{tag}_a", "--priority", "90")
    failing = submit_render(
        run, tmp_path, f"shot_{tag}_b", "--max-attempts", "1", "--priority", "99"
    )
    submit_sleep(run, f"shot_{tag}_sleep", "--priority", "80")
    submit_render(run, tmp_path, f"other_{tag}", "--priority", "90")
    worker = register(api, unique("filter"))
    task = worker.next_task(wait=0)
    assert task is not None and task.job_id == failing
    worker.fail_task(task.task_id, reason="boom")  # out of attempts: the job fails
    held = worker.next_task(wait=0)
    assert held is not None and held.job_id == rendering
    result = run(
        *("jobs", "--status", "failed,active", "--type", "blender-render"),
        *("--name", f"shot_{tag}_*", "--json", "--sort", "id"),
    )
    assert result.code == 0, result.err
    found = [(j["name"], j["status"]) for j in json.loads(result.out)["jobs"]]
    assert found == [(f"Shot_{tag}_a", "active"), (f"shot_{tag}_b", "failed")]  # any case
    table = run("jobs", "--name", f"SHOT_{tag}_?", "--sort", "name")
    assert [line.split()[1] for line in table.out.splitlines()[1:]] == [
        f"Shot_{tag}_a",
        f"shot_{tag}_b",
    ]
    worker.fail_task(held.task_id, reason="let go")
    for job_id in (rendering, failing):
        run("cancel", str(job_id))


def test_regenerate_changes_frames_and_says_what_it_kept(run: Run, tmp_path: Path) -> None:
    job_id = submit_render(run, tmp_path, unique("regen"), "--set", "preview=false")
    result = run("regenerate", str(job_id), "--frames", "1-6", "--chunk-size", "3")
    assert result.code == 0, result.err
    assert result.out.startswith(f"job {job_id} ") and result.out.endswith(": queued\n")
    assert "2 tasks, 0 kept as finished, 0 running stopped" in result.err
    assert "regenerated as generation 2" in result.err
    detail = json.loads(run("job", str(job_id), "--json").out)
    assert [t["frames"] for t in detail["tasks"]] == [[1, 2, 3], [4, 5, 6]]
    assert (detail["settings"]["frames"], detail["settings"]["chunk_size"]) == ("1-6", 3)
    text = run("job", str(job_id)).out
    assert "generation: 2 (regenerated)" in text
    fresh = run("regenerate", str(job_id), "--set", "camera=CamB", "--fresh")
    assert fresh.code == 0, fresh.err
    assert json.loads(run("job", str(job_id), "--json").out)["settings"]["camera"] == "CamB"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--frames", "9-1"), "setting 'frames'"),
        (("--set", "colour=red"), "'colour'"),
        (("--set", "nokey"), "expected KEY=VALUE"),
        (("--chunk-size", "0"), "'chunk_size'"),
    ],
)
def test_regenerate_refusals(run: Run, tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    job_id = submit_render(run, tmp_path, unique("bad"))
    result = run("regenerate", str(job_id), *argv)
    assert result.code == 2
    assert message in result.err and result.err.startswith("error: ")
    assert run("regenerate", "999999").err == "error: there is no job 999999\n"


def test_priority(run: Run) -> None:
    job_id = submit_sleep(run, unique("prio"))
    result = run("priority", str(job_id), "90")
    assert result.code == 0 and result.out.endswith(": priority 90\n")
    bad = run("priority", str(job_id), "101")
    assert bad.code == 2
    assert bad.err == "error: 'priority' must be a whole number from 0 to 100\n"


def test_clear_blocklist(run: Run, api: FarmClient) -> None:
    name = unique("block")
    job_id = submit_sleep(
        run, name, "--set", "task_count=4", "--max-attempts", "9", "--priority", "100"
    )
    nothing = run("clear-blocklist", str(job_id))  # nothing to clear: already so (exit 0)
    assert nothing.code == 0
    assert nothing.err == (
        f"job {job_id} has no blocklisted workers; nothing to clear (already so: nothing to do)\n"
    )
    bad_name = unique("bad")
    bad = register(api, bad_name)
    register(api, unique("spare"))  # someone else could still run it
    for _ in range(3):
        task = bad.next_task(wait=0)
        assert task is not None and task.job_id == job_id
        bad.fail_task(task.task_id, reason="no GPU")
    shown = run("job", str(job_id)).out
    assert f"blocklisted workers: {bad_name} (3 failures)" in shown
    assert run("clear-blocklist", str(job_id), "--worker", "nobody").err.startswith(
        "error: no worker 'nobody'"
    )
    result = run("clear-blocklist", str(job_id), "--worker", bad_name)
    assert result.code == 0 and result.out.endswith(": blocklist cleared\n")
    assert bad.next_task(wait=0) is not None
    run("cancel", str(job_id))


# ================================================================== tasks
def test_task_actions(run: Run, api: FarmClient) -> None:
    job_id = submit_sleep(run, unique("tasks"), "--set", "task_count=2")
    first, second = (t["id"] for t in api.job(job_id)["tasks"])
    result = run("cancel-task", str(first))
    assert result.code == 0
    assert result.out == f"task {first} 'sleep 1/2' of job {job_id}: canceled\n"
    again = run("cancel-task", str(first))  # canceled already: exit 0, saying so
    assert again.code == 0 and again.out == result.out
    assert "canceled; cancel applies to a task that is active, failed, queued" in again.err
    assert run("requeue-task", str(first)).out.endswith(": queued\n")
    fresh = run("requeue-task", str(second))  # queued, no try spent: already so
    assert fresh.code == 0 and f"task {second} is queued" in fresh.err
    run("cancel-task", str(second))
    assert run("cancel-task", str(first)).code == 0
    assert run("requeue-task", "999999").err == "error: there is no task 999999\n"


# ================================================================ workers
def test_worker_actions_by_name_and_id(run: Run, api: FarmClient) -> None:
    name = unique("node")
    worker = register(api, name)
    wid = next(w["id"] for w in api.workers() if w["name"] == name)
    table = run("workers").out
    row = next(line for line in table.splitlines() if name in line)
    assert wid[:8] in row
    result = run("disable", name)
    assert result.code == 0 and result.out == f"worker {name}: disabled (idle)\n"
    again = run("disable", name)  # disabled already: exit 0, saying so
    assert again.code == 0 and again.out == result.out
    assert again.err == f"worker {name} is disabled already (already so: nothing to do)\n"
    assert "(disabled)" in next(line for line in run("workers").out.splitlines() if name in line)
    assert run("enable", wid[:8]).out == f"worker {name}: enabled (idle)\n"
    assert run("enable", wid).code == 0  # enabled already
    online = run("remove-worker", name, "--yes")
    assert online.code == 2 and "only an offline worker can be removed" in online.err
    worker.sign_off()  # leaves: offline
    assert run("remove-worker", wid, "--yes").out == f"worker {name} removed\n"
    gone = run("disable", name)
    assert gone.code == 2 and gone.err.startswith(f"error: no worker '{name}'")


def test_disable_now_hands_the_task_back(run: Run, api: FarmClient) -> None:
    name = unique("busy")
    job_id = submit_sleep(run, unique("held"), "--priority", "100")
    worker = register(api, name)
    task = worker.next_task(wait=0)
    assert task is not None and task.job_id == job_id
    result = run("disable", name, "--now")
    assert result.out == f"worker {name}: disabled (idle)\n"
    assert worker.control(task.task_id, wait=0)[0] == "stop"
    assert api.job(job_id)["task_counts"]["queued"] == 3
    run("cancel", str(job_id))


def test_ambiguous_worker_name(run: Run, api: FarmClient) -> None:
    name = unique("twin")
    register(api, name)
    register(api, name)
    result = run("disable", name)
    assert result.code == 2 and "2 workers are called" in result.err and "give an id" in result.err
