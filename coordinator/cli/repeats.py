"""Actions repeated: one rule for every command that changes a job, task or worker.

An action whose result already holds (pause a paused job, resume one that is
not paused but queued or rendering, cancel a canceled one, requeue when
nothing is left to requeue, enable an enabled worker, ...) is done: exit 0,
the object's state on stdout as usual, and on stderr what the coordinator
said. An action the object's state forbids (resume a canceled job, cancel a
completed one) is refused: exit 2 with the coordinator's reason. A script may
then repeat any action safely, and still hears of one that cannot be done.

The coordinator answers a few repeats itself (pause, cancel, priority: 200);
the others it refuses with a 409, and the `*_already` functions look at the
object to tell which of the two it was.
"""

from __future__ import annotations

from collections.abc import Callable

from coordinator.cli.common import JSON, note
from coordinator.client.http import ConflictError, FarmClient

RUNNING = ("queued", "active")


def done_or_already(call: Callable[[], JSON], already: Callable[[], JSON | None]) -> JSON:
    """call()'s answer; on a 409, the object as it is when the result already holds
    (with the coordinator's words on stderr), else the 409 itself."""
    try:
        return call()
    except ConflictError as ex:
        current = already()
        if current is None:
            raise
        note(f"{ex.message} (already so: nothing to do)")
        return current


def job_already(
    client: FarmClient, job_id: int, action: str, *, all_tasks: bool = False, worker: str = ""
) -> JSON | None:
    """The job when `action` would change nothing; None when its state forbids it."""
    job: JSON = client.job(job_id, tasks=False)
    counts = job.get("task_counts") or {}
    retry = counts.get("failed", 0) + counts.get("canceled", 0)
    holds = {
        "pause": job["status"] == "paused",
        "resume": job["status"] in RUNNING,
        "cancel": job["status"] == "canceled",
        "requeue": not (retry + counts.get("completed", 0) if all_tasks else retry),
        "clear-blocklist": not any(
            not worker or b["worker_id"] == worker for b in job.get("blocklist") or []
        ),
    }
    return job if holds.get(action) else None


def task_already(client: FarmClient, task_id: int, action: str) -> JSON | None:
    """The task when `action` would change nothing: canceled already, or queued
    afresh (no try spent) already."""
    task: JSON = client.task(task_id)
    if action == "cancel-task" and task["status"] == "canceled":
        return task
    if action == "requeue-task" and task["status"] == "queued" and not task["attempts"]:
        return task
    return None


def worker_already(worker: JSON, action: str, *, now: bool = False) -> JSON | None:
    """The worker when `action` would change nothing (`--now` on a disabled worker
    still stops its task)."""
    if action == "enable" and not worker["disabled"]:
        return worker
    if action == "disable" and worker["disabled"] and not (now and worker["status"] == "busy"):
        return worker
    return None
