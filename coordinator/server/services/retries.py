"""A task taken back from its worker: queued again for another, or failed when
it is out of attempts or out of workers to try.

Three services take tasks back (a worker failing one, a worker leaving or
being removed, the sweep finding a lease expired), and they must agree on
what counts as an attempt and whom to blame, so this is one place.

The failure policy, in one place:
- a task that fails on a worker spends one of the job's `max_attempts`, and
  that worker gets it no more; a worker that failed BLOCKLIST_THRESHOLD of a
  job's tasks gets none of that job (scheduler.py);
- a task fails for good when out of attempts, or when no able worker that has
  not failed it is left, or at once when its worker says the failure is the
  job's own (job_fault: files the project lacks, a payload that cannot run),
  which every worker would meet: that worker is not blamed;
- an interruption of the worker (its agent killed or restarted and the lease
  lost, the worker asking for work again while holding it, signing off mid-task)
  is not the task's fault and spends no attempt; but a task interrupted
  MAX_INTERRUPTIONS times fails, saying so (it may be what brings its workers
  down, e.g. by running a machine out of memory);
- a person disabling or removing a worker costs the task nothing at all.
"""

from __future__ import annotations

import time
from typing import Any

from coordinator.core.protocol import TaskStatus
from coordinator.server import pools, scheduler
from coordinator.server.services.context import FarmContext

# Interruptions of its workers a task may see before it fails (see the module).
MAX_INTERRUPTIONS = 5
# Ends the reason of a task failed at once as the job's own fault (`final`).
NOT_RETRIED = "not retried: every worker would meet the same"
# A task's activity (its row on the dashboard) holds at most this much of a reason.
ACTIVITY_CHARS = 500


def clip(text: str, limit: int) -> str:
    """`text` within `limit` characters, its head and tail kept with " … " between:
    a worker's reason says what to fix first and how its Blender ended last."""
    if len(text) <= limit:
        return text
    if limit < 30:
        return text[:limit]
    tail = limit // 3
    return f"{text[: limit - tail - 3]} … {text[len(text) - tail :]}"


def record_failure(
    ctx: FarmContext,
    row: Any,
    worker_id: str,
    reason: str,
    *,
    count: bool = True,
    blame: bool = True,
    interrupted: bool = False,
    final: bool = False,
) -> TaskStatus:
    """Take a task back from a worker: queued again, or failed when out of attempts.

    count: the attempt counts towards max_attempts. blame: the worker ran it and it
    failed there, so that worker won't get it again (a vanished worker is not blamed:
    it may come back healthy). interrupted: the worker was interrupted (not blamed,
    no attempt spent), counted towards MAX_INTERRUPTIONS instead. final: fails now,
    attempts left or not (a failure every worker would meet).

    The farm's own words (not retried, no worker left, interrupted too often) end
    the reason after the worker's, and stay whole when the activity is cut.
    """
    store = ctx.store
    job = ctx.job_row(row["job_id"])
    capped, ending = False, ""
    with store.tx():
        if interrupted:
            count = blame = False
            capped, ending = _interrupted(ctx, row, worker_id, reason)
        elif count:
            if final:
                ending = f"; {NOT_RETRIED}"
            store.run(
                "INSERT INTO task_failures (task_id, job_id, worker_id, reason, blamed, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row["id"],
                row["job_id"],
                worker_id,
                reason + ending,
                int(blame),
                time.time(),
            )
        else:  # not the task's fault: this attempt does not count
            store.run("UPDATE tasks SET attempts = max(0, attempts - 1) WHERE id = ?", row["id"])
        spent = row["attempts"] - row["interruptions"]
        out_of_attempts = capped or (count and (final or spent >= job["max_attempts"]))
        if blame and not out_of_attempts and not _workers_left_for(ctx, row, job):
            # Retrying elsewhere is the rule, but every worker that could run it
            # already failed it: say so instead of waiting forever.
            out_of_attempts = True
            ending += " (and no other worker is left to try it)"
        new = TaskStatus.FAILED if out_of_attempts else TaskStatus.QUEUED
        ctx.set_task_status(row, new)
        store.run(
            "UPDATE tasks SET worker_id = NULL, lease_expires = NULL, activity = ? WHERE id = ?",
            clip(reason, ACTIVITY_CHARS - len(ending)) + ending,
            row["id"],
        )
        ctx.refresh_job(row["job_id"])
    ctx.hub.notify_task(row["id"])
    ctx.hub.notify_work()
    ctx.hub.publish("task", id=row["id"], job_id=row["job_id"])
    ctx.hub.publish("job", id=row["job_id"])
    return new


def _interrupted(ctx: FarmContext, row: Any, worker_id: str, reason: str) -> tuple[bool, str]:
    """Count an interruption instead of an attempt (inside the caller's transaction);
    (whether the task reached MAX_INTERRUPTIONS, what the farm adds to the reason)."""
    done = row["interruptions"] + 1
    capped = done >= MAX_INTERRUPTIONS
    ending = ""
    if capped:
        ending = (
            f"; its workers were interrupted {done} times while running it, the"
            f" most a task may be (each time not its fault, but {MAX_INTERRUPTIONS} in a row"
            " suggest the task brings its workers down: check their memory and logs, then"
            " requeue it)"
        )
    # The attempt keeps its number (what it uploaded must never count for the next
    # one); the tries a task has spent are its attempts less its interruptions.
    ctx.store.run("UPDATE tasks SET interruptions = ? WHERE id = ?", done, row["id"])
    ctx.store.run(
        "INSERT INTO task_failures (task_id, job_id, worker_id, reason, blamed, at)"
        " VALUES (?, ?, ?, ?, 0, ?)",
        row["id"],
        row["job_id"],
        worker_id,
        reason + ending if capped else f"interrupted ({done} of {MAX_INTERRUPTIONS}): {reason}",
        time.time(),
    )
    return capped, ending


def requeue_lost(
    ctx: FarmContext,
    task_id: int,
    worker_id: str,
    reason: str,
    *,
    count: bool = False,
    interrupted: bool = False,
) -> None:
    """The worker no longer runs the task (it vanished, left, or was disabled or
    removed): queue it again, unless someone else took it meanwhile.

    interrupted: the worker's own interruption (see the module): no attempt spent,
    one interruption counted; else a person's doing, which costs nothing unless
    `count`."""
    row = ctx.store.one("SELECT * FROM tasks WHERE id = ?", task_id)
    if row is None or row["status"] != TaskStatus.ACTIVE or row["worker_id"] != worker_id:
        return
    ctx.append_log(row["job_id"], task_id, f"\n=== {reason} ===\n")
    # Lost, not failed: the worker vanished or left, so it is not blamed.
    record_failure(ctx, row, worker_id, reason, count=count, blame=False, interrupted=interrupted)


def requeue_held_by(
    ctx: FarmContext, worker_id: str, reason: str, *, interrupted: bool = False
) -> None:
    """Queue again every task the worker runs (no attempt spent; see requeue_lost)."""
    for row in ctx.store.all(
        "SELECT id FROM tasks WHERE worker_id = ? AND status = 'active'", worker_id
    ):
        requeue_lost(ctx, row["id"], worker_id, reason, interrupted=interrupted)


def _workers_left_for(ctx: FarmContext, task: Any, job: Any) -> int:
    """Online, enabled workers able to open the job's file that never failed the task,
    are not blocklisted for the job and offer what it requires (the scheduler's own
    conditions)."""
    required = pools.row_requirements(job)
    what = "w.tags, w.devices, w.capabilities" if required else "count(*)"
    rows = ctx.store.all(
        f"SELECT {what} FROM workers w WHERE w.status != 'offline' AND w.disabled = 0"
        " AND w.blender >= ? AND NOT EXISTS (SELECT 1 FROM task_failures f"
        " WHERE f.task_id = ? AND f.worker_id = w.id AND f.blamed = 1)"
        " AND (SELECT count(*) FROM task_failures f WHERE f.job_id = ?"
        " AND f.worker_id = w.id AND f.blamed = 1) < ?",
        job["min_blender"],
        task["id"],
        job["id"],
        scheduler.BLOCKLIST_THRESHOLD,
    )
    if required:
        return sum(1 for w in rows if pools.meets(required, pools.row_offers(w)))
    return int(rows[0][0]) if rows else 0
