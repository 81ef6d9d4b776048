"""The CLI's side of pools: submit --paused, --require-tag, --need, and
`workers tag`, against a real coordinator process."""

from __future__ import annotations

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
    api.cancel_job(job_id)


def test_bad_requirements_are_refused_before_anything_is_sent(run: Run) -> None:
    bad_tag = run("submit", "--type", "sleep", "--require-tag", "no good")
    assert bad_tag.code == 2 and "'no good' is not a tag" in bad_tag.err, bad_tag.err
    bad_need = run("submit", "--type", "sleep", "--need", "colour=red")
    assert bad_need.code == 2 and "expected engine=NAME or device=NAME" in bad_need.err


def test_workers_tag(run: Run, api: FarmClient) -> None:
    name = unique("box")
    api.register_worker(name=name, host="h", blender_version="4.2.0", devices=["CPU"])
    tagged = run("workers", "tag", name, "gpu,fast")
    assert tagged.code == 0, tagged.err
    assert tagged.out.strip() == f"worker {name}: tags gpu, fast"
    listed = run("workers")
    row = next(line for line in listed.out.splitlines() if line.startswith(name))
    assert "gpu,fast" in row
    cleared = run("workers", "tag", name, "")
    assert cleared.code == 0 and "tags (none)" in cleared.out
    assert run("workers", "tag", name).code == 2  # no TAGS: usage
    assert run("workers", "tag", "nobody-here", "gpu").code != 0
