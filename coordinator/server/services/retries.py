"""A task taken back from its worker: queued again for another, or failed when
it is out of attempts or out of workers to try.

Three services take tasks back (a worker failing one, a worker leaving or
being removed, the sweep finding a lease expired), and they must agree on
what counts as an attempt and whom to blame, so this is one place.
"""

from __future__ import annotations

import time
from typing import Any

from coordinator.core.protocol import TaskStatus
from coordinator.server import scheduler
from coordinator.server.services.context import FarmContext


def record_failure(
    ctx: FarmContext,
    row: Any,
    worker_id: str,
    reason: str,
    *,
    count: bool = True,
    blame: bool = True,
) -> TaskStatus:
    """Take a task back from a worker: queued again, or failed when out of attempts.

    count: the attempt counts towards max_attempts. blame: the worker ran it and it
    failed there, so that worker won't get it again (a vanished worker is not blamed:
    it may come back healthy).
    """
    store = ctx.store
    job = ctx.job_row(row["job_id"])
    with store.tx():
        if count:
            store.run(
                "INSERT INTO task_failures (task_id, job_id, worker_id, reason, blamed, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row["id"],
                row["job_id"],
                worker_id,
                reason,
                int(blame),
                time.time(),
            )
        else:  # not the task's fault: this attempt does not count
            store.run("UPDATE tasks SET attempts = max(0, attempts - 1) WHERE id = ?", row["id"])
        out_of_attempts = count and row["attempts"] >= job["max_attempts"]
        if blame and not out_of_attempts and not _workers_left_for(ctx, row, job):
            # Retrying elsewhere is the rule, but every worker that could run it
            # already failed it: say so instead of waiting forever.
            out_of_attempts = True
            reason = f"{reason} (and no other worker is left to try it)"
        new = TaskStatus.FAILED if out_of_attempts else TaskStatus.QUEUED
        ctx.set_task_status(row, new)
        store.run(
            "UPDATE tasks SET worker_id = NULL, lease_expires = NULL, activity = ? WHERE id = ?",
            reason[:500],
            row["id"],
        )
        ctx.refresh_job(row["job_id"])
    ctx.hub.notify_task(row["id"])
    ctx.hub.notify_work()
    ctx.hub.publish("task", id=row["id"], job_id=row["job_id"])
    ctx.hub.publish("job", id=row["job_id"])
    return new


def requeue_lost(
    ctx: FarmContext, task_id: int, worker_id: str, reason: str, *, count: bool
) -> None:
    """The worker no longer runs the task (it vanished, left, or was disabled or
    removed): queue it again, unless someone else took it meanwhile."""
    row = ctx.store.one("SELECT * FROM tasks WHERE id = ?", task_id)
    if row is None or row["status"] != TaskStatus.ACTIVE or row["worker_id"] != worker_id:
        return
    ctx.append_log(row["job_id"], task_id, f"\n=== {reason} ===\n")
    # Lost, not failed: the worker vanished or left, so it is not blamed.
    record_failure(ctx, row, worker_id, reason, count=count, blame=False)


def requeue_held_by(ctx: FarmContext, worker_id: str, reason: str, *, count: bool) -> None:
    """Queue again every task the worker runs (not counted against it)."""
    for row in ctx.store.all(
        "SELECT id FROM tasks WHERE worker_id = ? AND status = 'active'", worker_id
    ):
        requeue_lost(ctx, row["id"], worker_id, reason, count=count)


def _workers_left_for(ctx: FarmContext, task: Any, job: Any) -> int:
    """Online, enabled workers able to open the job's file that never failed the task
    and are not blocklisted for the job (the scheduler's own conditions)."""
    row = ctx.store.one(
        "SELECT count(*) FROM workers w WHERE w.status != 'offline' AND w.disabled = 0"
        " AND w.blender >= ? AND NOT EXISTS (SELECT 1 FROM task_failures f"
        " WHERE f.task_id = ? AND f.worker_id = w.id AND f.blamed = 1)"
        " AND (SELECT count(*) FROM task_failures f WHERE f.job_id = ?"
        " AND f.worker_id = w.id AND f.blamed = 1) < ?",
        job["min_blender"],
        task["id"],
        job["id"],
        scheduler.BLOCKLIST_THRESHOLD,
    )
    return int(row[0]) if row else 0
