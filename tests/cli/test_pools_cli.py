"""The CLI's side of pools: submit --paused, --require-tag, --need, and
`workers tag`, against a real coordinator process."""

from __future__ import annotations

import json
import time

from coordinator.client.http import FarmClient
from tests.cli.conftest import Run, submit_sleep, unique


def test_submit_paused_with_requirements(run: Run, api: FarmClient) -> None:
    name = unique("pool")
    job_id = submit_sleep(
        run, name, "--paused", "--require-tag", "gpu,fast", "--need", "device=gpu"
    )
    job = api.job(job_id, tasks=False)
    assert job["status"] == "paused"
    assert job["requires_tags"] == ["gpu", "fast"]
    assert job["needs"] == {"device": "GPU"}
    # A wait on it says why nothing starts, and how to start it
    waited = run("wait", str(job_id), "--timeout", "1.5")
    assert waited.code == 5, waited.err
    assert f"job {job_id} waits: the job is paused: its queued tasks start when it is" in waited.err
    assert f"(lanfarm resume {job_id}, or Resume" in waited.err
    api.cancel_job(job_id)


def test_bad_requirements_are_refused_before_anything_is_sent(run: Run) -> None:
    bad_tag = run("submit", "--type", "sleep", "--require-tag", "no good")
    assert bad_tag.code == 2 and "'no good' is not a tag" in bad_tag.err, bad_tag.err
    bad_need = run("submit", "--type", "sleep", "--need", "colour=red")
    assert bad_need.code == 2 and "expected engine=NAME, device=NAME" in bad_need.err
    bad_size = run("submit", "--type", "sleep", "--need", "memory=16")
    assert bad_size.code == 2 and "'16' is not a size; write it like 16G" in bad_size.err
    assert "Traceback" not in bad_need.err + bad_size.err


def test_memory_and_os_needs_wait_with_a_warning_naming_them(run: Run, api: FarmClient) -> None:
    name = unique("big")
    api.register_worker(
        name=unique("small"),
        host="h",
        blender_version="4.2.0",
        devices=["CPU"],
        capabilities={"memory_mb": 8192, "os": "linux"},
    )
    job_id = submit_sleep(run, name, "--need", "memory=4096G", "--need", "os=linux")
    job = api.job(job_id, tasks=False)
    assert job["needs"] == {"memory_mb": 4096 * 1024, "os": "linux"}
    listed = run("jobs", "--name", name)
    assert f"job {job_id}: no online worker with 4096 GiB memory" in listed.err, listed.err
    shown = run("job", str(job_id))
    assert "4096 GiB memory" in shown.out + shown.err, shown.out
    api.cancel_job(job_id)


def test_workers_tag(run: Run, api: FarmClient) -> None:
    name = unique("box")
    api.register_worker(
        name=name,
        host="h",
        blender_version="4.2.0",
        devices=["CPU"],
        capabilities={"memory_mb": 15872, "os": "linux"},
    )
    tagged = run("workers", "tag", name, "gpu,fast")
    assert tagged.code == 0, tagged.err
    assert tagged.out.strip() == f"worker {name}: tags gpu, fast"
    listed = run("workers")
    row = next(line for line in listed.out.splitlines() if line.startswith(name))
    assert "gpu,fast" in row
    assert " 15.5 GiB " in row and " linux " in row, row
    cleared = run("workers", "tag", name, "")
    assert cleared.code == 0 and "tags (none)" in cleared.out
    assert run("workers", "tag", name).code == 2  # no TAGS: usage
    assert run("workers", "tag", "nobody-here", "gpu").code != 0


def test_a_resting_worker_is_listed_resting_until_when(run: Run, api: FarmClient) -> None:
    name = unique("desk")
    creds = api.register_worker(name=name, host="h", blender_version="4.2.0", devices=["CPU"])
    until = time.time() + 3600
    FarmClient(api.url, token=creds.secret).rest(until)
    listed = run("workers")
    row = next(line for line in listed.out.splitlines() if line.startswith(name))
    assert f" resting until {time.strftime('%H:%M', time.localtime(until))} " in row, row
    as_json = run("workers", "--json")
    (worker,) = (w for w in json.loads(as_json.out) if w["name"] == name)
    assert worker["status"] == "resting" and worker["resting_until"] == until
