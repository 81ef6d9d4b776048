"""Waiting on a real coordinator: `--wait` says why nothing runs and keeps
waiting, `--timeout`, `wait`, `job --follow`, `log --follow`, Ctrl+C, the
client-side estimate, and a failure's reason in full. Its own coordinator (one
per module), so no other test's worker is online when none should be."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from coordinator.cli import waiting
from coordinator.client.http import FarmClient
from coordinator.core.protocol import Assignment
from tests.cli.conftest import Run, connect_args, submit_sleep, unique
from tests.cli.fakes import FakeWorker, complete
from tests.support.coordinator_process import REPO, CoordinatorProcess, environment
from tests.support.waiting import wait_for

LONG_REASON = "Blender ran out of GPU memory while building the BVH of 'Forêt_géante' " * 2


# ================================================================= pure
def test_the_estimate_needs_movement_and_time() -> None:
    estimate = waiting.Estimate()
    estimate.add(0.0, now=100.0)
    estimate.add(0.0, now=104.0)
    assert estimate.seconds_left() is None  # nothing moved yet
    estimate.add(0.1, now=104.5)
    assert estimate.seconds_left() is None  # too soon after the start to say
    estimate.add(0.25, now=110.0)
    assert estimate.seconds_left() == pytest.approx(30.0)  # 0.25 in 10 s: 0.75 in 30 s
    assert estimate.text() == ", about 30 s left (estimate)"
    estimate.add(0.05, now=111.0)  # requeued: measured again from here
    assert estimate.seconds_left() is None
    assert waiting.duration(600) == "10 min" and waiting.duration(4 * 3600) == "4.0 h"


def test_new_text_of_a_growing_log() -> None:
    assert waiting.new_text("a\nb\n", "a\nb\nc\n") == "c\n"
    shown = "".join(f"line {i}\n" for i in range(1000))
    grown = shown + "line 1000\n"
    assert waiting.new_text(shown, grown[-5000:]) == "line 1000\n"  # only a tail came back
    lost = waiting.new_text(shown, "".join(f"new {i}\n" for i in range(10)))
    assert lost.startswith("\n[... part of the log went by") and lost.endswith("new 9\n")


# ======================================================= with a farm
def test_wait_without_a_worker_says_so_and_times_out(run: Run) -> None:
    job_id = submit_sleep(run, unique("lonely"))
    started = time.monotonic()
    result = run("wait", str(job_id), "--timeout", "2")
    assert 1.5 < time.monotonic() - started < 10
    assert result.code == 5, result.err
    assert f"job {job_id} waits: no worker is online" in result.err
    assert "still waiting (Ctrl+C to stop)" in result.err
    assert result.err.rstrip().endswith(
        f"gave up waiting after --timeout 2 s; job {job_id} is queued and goes on"
        f" (lanfarm wait {job_id} to wait again)"
    )
    again = run("submit", "--type", "sleep", "--set", "seconds=0", "--wait", "--timeout", "1")
    assert again.code == 5 and "no worker is online" in again.err
    for job in (job_id, int(again.out.split()[0])):
        run("cancel", str(job))


def test_wait_and_job_follow_until_a_worker_completes(farm: CoordinatorProcess, run: Run) -> None:
    name = unique("late")
    job_id = submit_sleep(run, name, "--set", "task_count=2", "--priority", "100")
    worker = FakeWorker(farm, name, sign_off=True)
    worker.start(complete, tasks=2)
    result = run("wait", str(job_id), "--timeout", "30")
    worker.join()
    assert result.code == 0, result.err
    assert f"job {job_id} completed" in result.err
    followed = run("job", str(job_id), "--follow")
    assert followed.code == 0 and "status:     completed" in followed.out


def slow_progress(worker: FarmClient, task: Assignment) -> None:
    """A task that takes about three seconds and says how far it is."""
    for step in range(1, 4):
        time.sleep(1.0)
        worker.update_task(task.task_id, progress=step / 4, log=f"step {step} of {task.task_id}\n")
    worker.complete_task(task.task_id)


def test_wait_shows_an_estimate_once_the_job_moves(farm: CoordinatorProcess, run: Run) -> None:
    name = unique("eta")
    job_id = submit_sleep(run, name, "--set", "task_count=3", "--priority", "100")
    worker = FakeWorker(farm, name, sign_off=True)
    worker.start(slow_progress, tasks=3)
    result = run("wait", str(job_id), "--timeout", "30")
    worker.join()
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if " left" in line]
    assert lines, result.err  # printed at the second and third task's end
    assert all("/3 tasks" in line and ", about " in line for line in lines)
    # once a task has finished, the coordinator's ETA (measured task times), not ours
    measured = [line for line in lines if "1/3 tasks" in line or "2/3 tasks" in line]
    assert measured and not any("(estimate)" in line for line in measured), result.err


def test_log_follow_prints_each_line_once_until_the_task_ends(
    farm: CoordinatorProcess, run: Run, api: FarmClient
) -> None:
    name = unique("follow")
    job_id = submit_sleep(run, name, "--set", "task_count=1", "--priority", "100")
    task_id = api.job(job_id)["tasks"][0]["id"]
    worker = FakeWorker(farm, name, sign_off=True)
    worker.start(slow_progress, tasks=1)
    wait_for(lambda: api.task(task_id)["status"] == "active", what="the task to start")
    result = run("log", str(task_id), "--follow")
    worker.join()
    assert result.code == 0, result.err
    for step in (1, 2, 3):
        assert result.out.count(f"step {step} of {task_id}\n") == 1, result.out


@pytest.mark.parametrize(
    "command",
    [("wait", "{job}"), ("job", "{job}", "--follow"), ("log", "{task}", "--follow")],
    ids=["wait", "job-follow", "log-follow"],
)
def test_ctrl_c_stops_watching_not_the_job(
    farm: CoordinatorProcess, run: Run, api: FarmClient, command: tuple[str, ...]
) -> None:
    job_id = submit_sleep(run, unique("ctrl-c"))
    task_id = api.job(job_id)["tasks"][0]["id"]
    argv = [arg.format(job=job_id, task=task_id) for arg in command]
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordinator", *connect_args(farm), *argv],
        cwd=REPO,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = proc.stderr
    assert stderr is not None
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(iter(lambda: stderr.read(1), "")))
    reader.start()
    try:
        if command[0] == "log":  # prints nothing until the log has lines
            time.sleep(2.0)
        else:  # watching: its first status line is out (on a busy machine, seconds)
            wait_for(lambda: "tasks" in "".join(said), timeout=30, what="the first status line")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        stderr.close()
    err = "".join(said)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    if command[0] != "log":
        assert f"stopped watching; job {job_id} goes on (lanfarm wait {job_id}" in err
    assert api.job(job_id)["status"] == "queued"
    run("cancel", str(job_id))


def fail_long(worker: FarmClient, task: Assignment) -> None:
    worker.fail_task(task.task_id, reason=LONG_REASON, log="CUDA error: out of memory\n")


def test_a_failure_says_why_in_full(farm: CoordinatorProcess, run: Run) -> None:
    """One worker, three tries: after its failure nobody else can try, and the
    task's last activity says so; --wait and job show it whole, not clipped."""
    name = unique("why")
    worker = FakeWorker(farm, name, sign_off=True)
    worker.start(fail_long, tasks=1)
    result = run(
        *("submit", "--type", "sleep", "--name", name, "--priority", "100"),
        *("--set", "task_count=1", "--wait", "--timeout", "30"),
    )
    worker.join()
    assert result.code == 1, result.err
    reason = f"{LONG_REASON} (and no other worker is left to try it)"
    assert reason in result.err
    job_id = result.out.strip()
    detail = run("job", job_id)
    assert detail.code == 0
    assert "  why:\n" in detail.out and reason in detail.out
