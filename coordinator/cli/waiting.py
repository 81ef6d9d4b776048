"""Waiting for a job and following it: `submit --wait`, `wait JOB_ID`,
`job --follow` and `log --follow`.

A wait says why nothing runs (the coordinator's own warning: no worker
online, none with a new enough Blender...) and keeps waiting, since the right
worker may join any moment; `--timeout` bounds it for scripts. Ctrl+C stops
the watching, never the job, and says how to watch again.

The time left is the coordinator's ETA (`eta_seconds`: measured task times,
the work left and the able workers); until it has one (no task finished yet),
an estimate made here from the job's progress over the time we watched it,
labelled as one.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from coordinator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    JSON,
    Commands,
    Connection,
    StatusLine,
    bar,
    note,
    positive_int,
    task_counts,
)
from coordinator.client.http import FarmClient, Unreachable
from coordinator.core.protocol import TERMINAL_JOB_STATUSES, TERMINAL_TASK_STATUSES, JobStatus

log = logging.getLogger(__name__)

WAIT_POLL = 1.0  # seconds between polls of a job or a log
WAIT_OUTAGE = 60.0  # how long a wait rides out an unreachable coordinator
LOG_TAIL = 4000  # bytes of a failed task's log that a failure shows
LOG_FOLLOW_TAIL = 256 * 1024  # bytes of a log fetched per poll by log --follow
LOG_TAIL_LINES = 500  # lines `log` shows unless --tail says
LOG_MAX_FETCH = 16 << 20  # the most bytes of a log the coordinator sends at once
LOG_LINE_GUESS = 256  # bytes per line a first fetch allows for
LOG_ANCHOR = 2048  # characters of what was shown that locate the new text
ESTIMATE_AFTER = 5.0  # seconds of watching before the first estimate
MAX_FAILED_SHOWN = 3  # failed tasks whose reason a failure spells out


def register(commands: Commands) -> None:
    p = commands.add(
        "wait",
        cmd_wait,
        "show a job's progress until it ends: exit 0 completed, 1 failed or canceled,"
        " 5 when --timeout ran out first",
    )
    p.add_argument("job_id", type=positive_int, metavar="ID")
    add_timeout_option(p)
    p.add_argument(
        "--json", action="store_true", help="then print the job as it ended (or as it was)"
    )


def add_timeout_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help="give up waiting after this long (exit 5); the job goes on",
    )


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {text}")
    return value


def cmd_wait(args: argparse.Namespace, conn: Connection) -> int:
    return wait_for_job(conn.client(), args.job_id, timeout=args.timeout, as_json=args.json)


# ============================================================= estimate
@dataclass
class Estimate:
    """Time left from the progress seen so far: (1 - progress) / rate, the rate
    measured from the first moment we saw the job move. None until it has moved."""

    start: tuple[float, float] | None = None  # (monotonic time, progress) when first seen
    history: list[tuple[float, float]] = field(default_factory=list)

    def add(self, progress: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.start is None or (self.history and progress < self.history[-1][1]):
            self.start = (now, progress)  # first seen, or went back (requeued, regenerated)
        self.history.append((now, progress))

    def seconds_left(self) -> float | None:
        if self.start is None or not self.history:
            return None
        (t0, p0), (t1, p1) = self.start, self.history[-1]
        if t1 - t0 < ESTIMATE_AFTER or p1 <= p0 or p1 >= 1.0:
            return None
        return (1.0 - p1) * (t1 - t0) / (p1 - p0)

    def text(self, eta: float | None = None) -> str:
        """The time left as the status line says it: the coordinator's `eta`
        when it has one, else this estimate."""
        if eta is not None:
            return f", about {duration(eta)} left"
        left = self.seconds_left()
        return "" if left is None else f", about {duration(left)} left (estimate)"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


# ================================================================= wait
def wait_for_job(
    client: FarmClient,
    job_id: int,
    *,
    timeout: float | None = None,
    poll: float = WAIT_POLL,
    as_json: bool = False,
) -> int:
    """Show progress until the job ends: 0 when it completed, 1 when it failed or
    was canceled, EXIT_TIMEOUT when `timeout` ran out first. `as_json`: then the
    job as it ended (or was) on stdout, for scripts."""
    line = StatusLine(sys.stderr)
    try:
        job = watch(client, job_id, line, timeout=timeout, poll=poll)
    except KeyboardInterrupt:
        line.close()
        note(f"stopped watching; job {job_id} goes on (lanfarm wait {job_id} to watch again)")
        raise
    line.close()
    if as_json:
        print(json.dumps(job, indent=2), flush=True)
    if job["status"] not in TERMINAL_JOB_STATUSES:
        note(
            f"gave up waiting after --timeout {timeout:g} s; job {job_id} is {job['status']}"
            f" and goes on (lanfarm wait {job_id} to wait again)"
        )
        return EXIT_TIMEOUT
    if job["status"] == JobStatus.COMPLETED:
        note(f"job {job_id} completed")
        return EXIT_OK
    explain_failure(client, job)
    return EXIT_FAILED


def watch(
    client: FarmClient,
    job_id: int,
    line: StatusLine,
    *,
    timeout: float | None = None,
    poll: float = WAIT_POLL,
    on_change: Callable[[JSON], None] | None = None,
) -> JSON:
    """Poll the job until it ends or `timeout` runs out; returns its last state.

    The coordinator's warning (why nothing runs) is printed whenever it
    changes, on a line of its own, so it also reaches a log file.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    estimate = Estimate()
    last: tuple[str, int] | None = None
    warned = ""
    while True:
        job = poll_job(client, job_id)
        estimate.add(job["progress"])
        done, total = task_counts(job)
        state = (job["status"], done)
        if job.get("warning", "") != warned:
            warned = job.get("warning") or ""
            if warned:
                line.interrupt(f"job {job_id} waits: {warned}; still waiting (Ctrl+C to stop)")
        line.show(
            f"job {job_id} {bar(job['progress'])} {done}/{total} tasks {job['status']}"
            + estimate.text(job.get("eta_seconds")),
            important=state != last,
        )
        if on_change is not None and state != last:
            on_change(job)
        last = state
        if job["status"] in TERMINAL_JOB_STATUSES:
            return job
        left = math.inf if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return job
        time.sleep(min(poll, left))


def poll_job(client: FarmClient, job_id: int) -> JSON:
    """The job, riding out a coordinator that restarts for up to WAIT_OUTAGE seconds."""
    deadline = time.monotonic() + WAIT_OUTAGE
    while True:
        try:
            return client.job(job_id, tasks=False)
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(WAIT_POLL)


# ============================================================== failure
def failure_reasons(client: FarmClient, job: JSON) -> list[str]:
    """Each failed task's last activity in full: the coordinator puts the whole
    story there ("... (and no other worker is left to try it)"), which a
    table clips."""
    failed = client.tasks(job["id"], status="failed", limit=MAX_FAILED_SHOWN)
    lines = [
        f"task {t['id']} ({t['name']}): {t.get('activity') or 'failed'}" for t in failed["tasks"]
    ]
    if failed["total"] > len(lines):
        lines.append(f"... and {failed['total'] - len(lines)} more failed tasks")
    return lines


def explain_failure(client: FarmClient, job: JSON) -> None:
    note(f"job {job['id']} {job['status']}: {job.get('status_reason') or 'no reason given'}")
    if job["status"] != JobStatus.FAILED:
        return
    for reason in failure_reasons(client, job):
        note(f"  {reason}")
    failed = client.tasks(job["id"], status="failed", limit=1)["tasks"]
    if not failed:
        return
    task = failed[0]
    text = client.task_log(task["id"], tail=LOG_TAIL).rstrip()
    note(f"--- end of the log of task {task['id']} ({task['name']}) ---")
    note(text or "(the log is empty)")
    note(f"--- full log: lanfarm log {task['id']}")


# ============================================================ log follow
def last_lines(client: FarmClient, task_id: int, lines: int) -> list[str]:
    """The log's last `lines` lines, whole: fetched by bytes (what the coordinator
    serves), more when that held fewer lines, and the first, cut, line dropped."""
    size = min(LOG_MAX_FETCH, max(LOG_FOLLOW_TAIL // 4, lines * LOG_LINE_GUESS))
    while True:
        text = client.task_log(task_id, tail=size)
        whole = len(text.encode()) < size  # the log is shorter than asked: all of it
        found = text.splitlines()
        if not whole and found:
            found = found[1:]  # begins mid-line
        if whole or len(found) >= lines or size >= LOG_MAX_FETCH:
            return found[-lines:]
        size = min(LOG_MAX_FETCH, size * 4)


def follow_log(client: FarmClient, task_id: int, *, tail: int, poll: float = WAIT_POLL) -> int:
    """Print the log's last `tail` lines, then what is added, until the task has ended."""
    shown: str | None = None  # the log's end as last fetched
    while True:
        ended = client.task(task_id)["status"] in TERMINAL_TASK_STATUSES
        text = client.task_log(task_id, tail=LOG_FOLLOW_TAIL)
        if shown is None:
            new = "".join(f"{line}\n" for line in last_lines(client, task_id, tail))
            if text and not text.endswith("\n"):
                new = new[:-1]  # the last line goes on in what is added
        else:
            new = new_text(shown, text)
        shown = text
        if new:
            sys.stdout.write(new)
            sys.stdout.flush()
        if ended:
            if shown and not shown.endswith("\n"):
                sys.stdout.write("\n")
            return EXIT_OK
        time.sleep(poll)


def new_text(shown: str, text: str) -> str:
    """What `text` (the log's end now) has beyond `shown` (its end before).

    The log only grows, so the last characters shown appear in the new tail,
    and what follows them is new. When they do not (more than a tail was
    written between two polls), everything fetched is new, after a mark.
    """
    if text.startswith(shown):
        return text[len(shown) :]
    anchor = shown[-LOG_ANCHOR:]
    at = text.rfind(anchor)
    if at >= 0:
        return text[at + len(anchor) :]
    return "\n[... part of the log went by between two looks ...]\n" + text
