"""The CLI as a script uses it (issue 16, "Scripting friction"): --json on every
command that prints, one exit-code rule for repeated actions, `log --tail` in
lines, `job --tasks` checked before printing, `jobs --sort priority` highest
first with PRIORITY and SUBMITTER columns, the dashboard's status names, and
no traceback for bad input without a terminal. A real coordinator process."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coordinator.cli.main import build_parser
from coordinator.client.http import FarmClient
from coordinator.core.protocol import JobStatus, TaskStatus, WorkerStatus
from tests.cli.conftest import Result, Run, connect_args, run_process, submit_sleep, unique
from tests.cli.test_cli import fake_blend
from tests.support.coordinator_process import REPO, CoordinatorProcess

# Commands that print no result: serve runs a farm, openapi-docs writes a file.
NO_RESULT = {"serve", "openapi-docs"}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_that_prints_takes_json() -> None:
    missing = [
        name
        for name, sub in subcommands().items()
        if name not in NO_RESULT and "--json" not in sub._option_string_actions
    ]
    assert missing == []


def _ok(result: Result) -> dict[str, object]:
    assert result.code == 0, result.err
    loaded: dict[str, object] = json.loads(result.out)
    return loaded


def test_repeated_actions_follow_one_rule(run: Run, api: FarmClient) -> None:
    """Done, or already so: exit 0 (saying so on stderr); forbidden by the state: 2."""
    job_id = submit_sleep(run, unique("again"), "--paused", "--set", "task_count=2")
    job = str(job_id)
    assert _ok(run("pause", job, "--json"))["status"] == "paused"  # already paused
    assert _ok(run("resume", job, "--json"))["status"] == "queued"
    again = run("resume", job)
    assert again.code == 0 and "already so" in again.err, again
    assert again.out.strip().endswith(": queued")
    for action in (("requeue", job), ("requeue", job, "--all"), ("clear-blocklist", job)):
        nothing = run(*action)
        assert nothing.code == 0 and "already so" in nothing.err, (action, nothing)
    task = str(api.tasks(job_id)["tasks"][0]["id"])
    for action in ("cancel-task", "requeue-task"):
        first, second = run(action, task, "--json"), run(action, task, "--json")
        assert _ok(first)["status"] == _ok(second)["status"], (action, first, second)
        assert "already so" in second.err
    assert _ok(run("cancel", job, "--json"))["status"] == "canceled"
    assert _ok(run("cancel", job, "--json"))["status"] == "canceled"
    for action in ("resume", "pause"):  # a canceled job cannot: refused
        refused = run(action, job)
        assert refused.code == 2 and refused.out == "" and "canceled" in refused.err
    name = unique("w")
    api.register_worker(name=name, host="h", blender_version="4.2.0", devices=["CPU"])
    for action in ("disable", "disable", "enable", "enable"):
        worker = _ok(run(action, name, "--json"))
        assert worker["disabled"] is (action == "disable")
    assert _ok(run("priority", job, "70", "--json"))["priority"] == 70
    assert _ok(run("priority", job, "70", "--json"))["priority"] == 70


def test_log_tail_counts_lines_and_keeps_them_whole(run: Run, api: FarmClient) -> None:
    job_id = submit_sleep(run, unique("log"), "--priority", "100", "--set", "task_count=1")
    creds = api.register_worker(name=unique("w"), host="h", blender_version="4.2.0", devices=[])
    worker = FarmClient(api.url, token=creds.secret)
    task = worker.next_task(wait=0)
    assert task is not None and task.job_id == job_id
    lines = [f"line {n:05d} " + "x" * (n % 300) for n in range(3000)]  # about 500 kB
    for start in range(0, len(lines), 500):
        worker.update_task(task.task_id, log="".join(f"{x}\n" for x in lines[start : start + 500]))
    three = run("log", str(task.task_id), "--tail", "3")
    assert three.code == 0 and three.out.splitlines() == lines[-3:], three.out[-300:]
    many = run("log", str(task.task_id), "--tail", "2500", "--json")
    assert _ok(many) == {"task_id": task.task_id, "lines": lines[-2500:]}
    default = run("log", str(task.task_id)).out.splitlines()
    assert default == lines[-500:]
    worker.complete_task(task.task_id)


def test_job_tasks_refuses_an_unknown_status_before_printing(run: Run) -> None:
    job_id = submit_sleep(run, unique("tasks"), "--paused")
    result = run("job", str(job_id), "--tasks", "done")
    assert result.code == 2 and result.out == ""
    assert "--tasks: unknown task status 'done'; use queued, active, completed" in result.err
    shown = run("job", str(job_id), "--tasks", "queued")
    assert shown.code == 0 and "TASK" in shown.out
    run("cancel", str(job_id))


def test_jobs_sort_priority_is_highest_first_with_its_columns(run: Run) -> None:
    prefix = unique("prio")
    ids = {
        p: submit_sleep(run, f"{prefix}_{p}", "--paused", "--priority", str(p))
        for p in (10, 90, 50)
    }
    table = run("jobs", "--name", f"{prefix}_*", "--sort", "priority")
    header, *rows = table.out.splitlines()
    assert header.split()[:2] == ["ID", "NAME"] and "PRIORITY" in header and "SUBMITTER" in header
    assert [int(r.split()[0]) for r in rows] == [ids[90], ids[50], ids[10]]
    at = header.index("PRIORITY")
    assert [r[at:].split()[0] for r in rows] == ["90", "50", "10"]
    low_first = run("jobs", "--name", f"{prefix}_*", "--sort", "-priority", "--json")
    assert [j["priority"] for j in json.loads(low_first.out)["jobs"]] == [10, 50, 90]
    for job_id in ids.values():
        run("cancel", str(job_id))


def test_status_names_are_the_dashboards() -> None:
    """The dashboard's label of each status is the status the API and the CLI print,
    capitalized (the add-on capitalizes it too): 'Active', never 'Rendering'."""
    dom = (REPO / "coordinator" / "server" / "dashboard" / "dom.js").read_text()
    block = dom[dom.index("STATUS_LABELS = {") : dom.index("};", dom.index("STATUS_LABELS"))]
    labels = dict(re.findall(r"^\s*(\w+): \"([^\"]+)\"", block, re.MULTILINE))
    statuses = {s.value for e in (JobStatus, TaskStatus, WorkerStatus) for s in e}
    assert set(labels) == statuses
    assert {name: label.lower() for name, label in labels.items()} == {s: s for s in statuses}


BAD_INPUT = [
    ("job", "abc"),
    ("job", "999999"),
    ("job", "1", "--tasks", "done"),
    ("jobs", "--status", "bogus"),
    ("jobs", "--sort", "sideways"),
    ("jobs", "--after", "yesterday"),
    ("log", "0"),
    ("log", "999999"),
    ("log", "1", "--tail", "many"),
    ("wait", "999999", "--timeout", "1"),
    ("wait", "1", "--timeout", "-3"),
    ("submit", "/no/such/shot.blend"),
    ("submit", "--type", "no-such-type"),
    ("submit", "--type", "sleep", "--set", "task_count=many"),
    ("submit", "--type", "sleep", "--need", "memory=lots"),
    ("submit", "--type", "sleep", "--priority", "500"),
    ("regenerate", "999999", "--frames", "1-2"),
    ("priority", "999999", "50"),
    ("priority", "1", "high"),
    ("clear-blocklist", "999999"),
    ("requeue-task", "999999"),
    ("cancel-task", "x"),
    ("cancel", "999999"),
    ("pause", "0"),
    ("resume", "999999"),
    ("requeue", "999999", "--all"),
    ("delete", "999999"),
    ("delete",),
    ("disable", "nobody-here"),
    ("enable", "nobody-here"),
    ("remove-worker", "nobody-here"),
    ("workers", "tag", "nobody-here", "not a tag"),
    ("workers", "nobody-here"),
    ("pull", "999999", "--into", "{tmp}"),
    ("job-types", "--bogus"),
    ("farms", "--timeout", "zero"),
    ("openapi-docs", "--out", "/dev/null/api.md"),
    ("serve", "--port", "70000"),
    ("no-such-command",),
    ("jobs", "--zeroconf-interface", "notanip"),
]


def test_bad_input_without_a_terminal_is_one_error_never_a_traceback(
    farm: CoordinatorProcess, tmp_path: Path
) -> None:
    def attempt(argv: tuple[str, ...]) -> tuple[tuple[str, ...], Result]:
        args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
        return argv, run_process(*connect_args(farm), *args, timeout=60)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, BAD_INPUT))
    for argv, result in results:
        assert "Traceback" not in result.err + result.out, (argv, result.err[-2000:])
        assert result.code in (1, 2, 3, 4, 5), (argv, result)
        assert "error" in result.err, (argv, result.err)


@pytest.mark.parametrize("command", sorted(set(subcommands()) - NO_RESULT - {"submit", "wait"}))
def test_json_without_a_terminal_is_json_or_one_error(
    command: str, farm: CoordinatorProcess
) -> None:
    """Each command's --json, run as a script runs it: the answer parses, or the
    command says in one line why there is none."""
    needs = {"tag": ("workers", "tag", "nobody-here", "gpu")}
    argv = (
        {
            "job-types": ("job-types",),
            "jobs": ("jobs",),
            "workers": ("workers",),
            "farms": ("farms", "--timeout", "0.5"),
        }.get(command)
        or needs.get(command)
        or (command, "999999")
    )
    result = run_process(*connect_args(farm), *argv, "--json", timeout=60)
    assert "Traceback" not in result.err
    if result.code == 0:
        json.loads(result.out)
    else:
        assert (result.out == "" and result.err.startswith("error")) or "error:" in result.err


def test_submit_wait_and_pull_print_json_for_scripts(run: Run, tmp_path: Path) -> None:
    submitted = run("submit", "--type", "sleep", "--name", unique("js"), "--paused", "--json")
    job = _ok(submitted)
    assert job["status"] == "paused" and isinstance(job["id"], int)
    waited = run("wait", str(job["id"]), "--timeout", "0.5", "--json")
    assert waited.code == 5 and json.loads(waited.out)["id"] == job["id"]
    pulled = run("pull", str(job["id"]), "--into", str(tmp_path), "--json")
    assert _ok(pulled) == {"into": str(tmp_path), "pulled": [], "already_there": 0, "skipped": []}
    run("cancel", str(job["id"]))


def test_submit_dry_run_checks_everything_and_sends_nothing(
    run: Run, api: FarmClient, farm: CoordinatorProcess, tmp_path: Path
) -> None:
    def stored() -> int:
        return sum(1 for p in (farm.data_dir / "files").rglob("*") if p.is_file())

    before, files = api.jobs(limit=1)["total"], stored()
    checked = run("submit", "--type", "sleep", "--set", "task_count=3", "--dry-run")
    assert checked.code == 0 and checked.out.startswith("would submit "), checked
    assert "nothing was uploaded or submitted" in checked.err
    bad = run("submit", "--type", "sleep", "--set", "task_count=many", "--dry-run")
    assert bad.code == 2 and "task_count" in bad.err
    blend = fake_blend(tmp_path / "shot.blend")
    out = str(tmp_path / "f_####")
    shown = run("submit", str(blend), "--frames", "1-2", "--output", out, "--dry-run", "--json")
    body = _ok(shown)
    assert body["blend"] == "shot.blend" and body["files"] == {"shot.blend": str(blend)}
    assert run("submit", "--type", "sleep", "--dry-run", "--wait").code == 2
    assert api.jobs(limit=1)["total"] == before and stored() == files


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--zeroconf-interface", "notanip"), "--zeroconf-interface 'notanip' is not an IP"),
        (("--tag", "no good", "--token", "x" * 24), "'no good' is not a tag"),
        (("--threads", "0"), "--threads must be 1 or more"),
        (("--device", "FOO"), "invalid choice: 'FOO'"),
    ],
)
def test_the_worker_command_refuses_bad_input_in_one_line(argv: tuple[str, ...], says: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "worker_agent", *argv],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "python -m" not in proc.stderr  # usage names the installed lanfarm-worker
