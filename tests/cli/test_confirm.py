"""`delete` and `remove-worker` never destroy without a yes: run as real
processes without a terminal (stdin /dev/null, or `echo n |`), they refuse and
say to pass --yes; --yes does it. (At a terminal they ask: test_cli.py.)"""

from __future__ import annotations

import pytest

from coordinator.client.http import FarmClient
from tests.cli.conftest import Run, connect_args, run_process, submit_sleep, unique
from tests.support.coordinator_process import CoordinatorProcess


@pytest.mark.parametrize("stdin", [None, "n\n", "y\n"], ids=["devnull", "echo-n", "echo-y"])
def test_delete_without_a_terminal_needs_yes(
    farm: CoordinatorProcess, run: Run, api: FarmClient, stdin: str | None
) -> None:
    job_id = submit_sleep(run, unique("keep"))
    result = run_process(*connect_args(farm), "delete", str(job_id), stdin=stdin)
    assert result.code == 2, result
    assert result.err == (
        f"error: refusing to delete job {job_id} without a terminal to ask for a yes;"
        f" pass --yes to delete job {job_id} without asking\n"
    )
    assert api.job(job_id)["id"] == job_id  # still there
    result = run_process(*connect_args(farm), "delete", str(job_id), "--yes", stdin=stdin)
    assert (result.code, result.out) == (0, f"job {job_id} deleted\n"), result.err


def test_remove_worker_without_a_terminal_needs_yes(
    farm: CoordinatorProcess, api: FarmClient
) -> None:
    name = unique("gone")
    creds = api.register_worker(name=name, host="test", blender_version="4.2.0", devices=["CPU"])
    worker = FarmClient(api.url, token=creds.secret)
    worker.sign_off()
    worker.session.close()
    result = run_process(*connect_args(farm), "remove-worker", name, stdin="n\n")
    assert result.code == 2 and "pass --yes to remove worker" in result.err, result
    assert name in [w["name"] for w in api.workers()]
    result = run_process(*connect_args(farm), "remove-worker", name, "--yes")
    assert (result.code, result.out) == (0, f"worker {name} removed\n"), result.err
    assert name not in [w["name"] for w in api.workers()]
