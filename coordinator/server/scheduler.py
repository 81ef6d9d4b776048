"""Which task a worker gets next, the atomic claim, and lease expiry.

Order: the highest-priority job first (the oldest among equals), and within
a job its tasks by their own priority, then their order. Affinity bends that
order only where nothing of higher priority waits: a worker that has a job
warm (its Blender still holds the scene) gets that job's next task when the
job's priority equals the one the order picked and its next task's priority
is at least as high; a worker keeping Blender open then renders a job's
frames one after another instead of paying the start-up on every task.

Pools: a job that requires tags or capabilities (pools.py) goes only to a
worker that offers them all; the check runs on the runnable jobs the query
below already returns, so it adds no query to a claim.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from coordinator.core.protocol import JobStatus, TaskStatus
from coordinator.server import pools
from coordinator.server.store import Store

# A worker that failed this many tasks of one job gets no more of that job.
BLOCKLIST_THRESHOLD = 3

# Jobs a worker may take work from, best first: runnable status, a Blender
# at least as new as the one that saved the file, highest priority, then the
# oldest job. (What each requires of its workers is matched in Python: pools.py.)
_JOBS = """
SELECT id, priority, generation, requires_tags, needs FROM jobs
WHERE status IN ('queued', 'active') AND min_blender <= :blender
  AND (SELECT count(*) FROM task_failures f
       WHERE f.job_id = jobs.id AND f.worker_id = :worker AND f.blamed = 1) < :blocklist
ORDER BY priority DESC, id
"""

# The first runnable task of one job: queued, every dependency completed, and
# not one this worker already failed. Uses the tasks_runnable index, so it
# stops at the first hit even in a job of 100,000 tasks. (Only the current
# generation has queued tasks; saying so lets the index give the order.)
_TASK = """
SELECT id, priority FROM tasks t
WHERE t.job_id = :job AND t.status = 'queued' AND t.generation = :generation
  AND (t.has_deps = 0 OR NOT EXISTS (
        SELECT 1 FROM task_deps d JOIN tasks dt ON dt.id = d.depends_on
        WHERE d.task_id = t.id AND dt.status != 'completed'))
  AND NOT EXISTS (
        SELECT 1 FROM task_failures f
        WHERE f.task_id = t.id AND f.worker_id = :worker AND f.blamed = 1)
ORDER BY t.priority DESC, t.idx
LIMIT 1
"""


@dataclass(frozen=True)
class Claimed:
    task_id: int
    job_id: int


def claim(
    store: Store,
    *,
    worker_id: str,
    blender: int,
    lease_seconds: float,
    warm_job: int | None = None,
    offers: frozenset[str] = frozenset(),
) -> Claimed | None:
    """Lease the best runnable task to a worker, or None when there is none.

    warm_job: the job the worker has warm, preferred as the module says.
    offers: the worker's tags and capabilities (pools.row_offers); a job that
    requires more is not this worker's.
    The UPDATE only succeeds while the task is still queued, so two claims
    can never get the same task; losing that race just means trying the next.
    """
    with store.tx():
        for job, row in _choices(store, worker_id, blender, warm_job, offers):
            if _lease(store.db, row["id"], worker_id, lease_seconds):
                return Claimed(task_id=row["id"], job_id=job["id"])
    return None


def upcoming(
    store: Store,
    *,
    worker_id: str,
    blender: int,
    warm_job: int | None = None,
    offers: frozenset[str] = frozenset(),
) -> int | None:
    """The job whose task `claim` would lease to this worker now, without leasing
    anything: what a worker busy with a task will most likely get next, so that
    it can fetch that job's files ahead of time. Read only; the same statements
    (and plans) as a claim."""
    for job, _row in _choices(store, worker_id, blender, warm_job, offers):
        return int(job["id"])
    return None


def _choices(
    store: Store, worker_id: str, blender: int, warm_job: int | None, offers: frozenset[str]
) -> Iterator[tuple[Any, Any]]:
    """(job, task) in the order a claim tries them: for each runnable job this
    worker may take, its first task, or the warm job's when it is as urgent."""
    params = {"worker": worker_id, "blender": blender, "blocklist": BLOCKLIST_THRESHOLD}
    jobs = [j for j in store.db.execute(_JOBS, params).fetchall() if _fits(j, offers)]
    for job in jobs:
        row = _first_task(store, job, worker_id)
        if row is None:
            continue
        if warm_job is not None and warm_job != job["id"]:
            yield _prefer_warm(store, jobs, warm_job, worker_id, job, row)
        else:
            yield job, row


def _prefer_warm(
    store: Store, jobs: list[Any], warm_job: int, worker_id: str, job: Any, task: Any
) -> tuple[Any, Any]:
    """The warm job's next task instead of `task` (of `job`, the order's pick) when
    that leaves nothing of higher priority waiting; else the pick unchanged.

    The warm job counts only when it is among `jobs`, the ones this worker may
    take work from (runnable, new enough Blender, not blocklisted).
    """
    warm = next((j for j in jobs if j["id"] == warm_job), None)
    if warm is None or warm["priority"] != job["priority"]:
        return job, task
    row = _first_task(store, warm, worker_id)
    if row is None or row["priority"] < task["priority"]:
        return job, task
    return warm, row


def _fits(job: Any, offers: frozenset[str]) -> bool:
    """Does the worker offer what the job requires? (Most jobs require nothing.)"""
    if job["requires_tags"] == "[]" and job["needs"] == "{}":
        return True
    return pools.meets(pools.row_requirements(job), offers)


def _first_task(store: Store, job: Any, worker_id: str) -> Any:
    params = {"job": job["id"], "generation": job["generation"], "worker": worker_id}
    return store.db.execute(_TASK, params).fetchone()


def _lease(db: sqlite3.Connection, task_id: int, worker_id: str, lease_seconds: float) -> bool:
    now = time.time()
    cursor = db.execute(
        "UPDATE tasks SET status = ?, worker_id = ?, attempts = attempts + 1,"
        " lease_expires = ?, progress = 0, activity = 'starting', updated_at = ?,"
        " claimed_at = ?, completed_at = NULL, blender_ready_s = NULL, first_sample_s = NULL,"
        " last_frame_saved_s = NULL, uploaded_s = NULL"
        " WHERE id = ? AND status = ?",
        (TaskStatus.ACTIVE, worker_id, now + lease_seconds, now, now, task_id, TaskStatus.QUEUED),
    )
    if cursor.rowcount != 1:
        return False
    db.execute(
        "UPDATE jobs SET status = ?, updated_at = ? WHERE id = (SELECT job_id FROM tasks"
        " WHERE id = ?) AND status = ?",
        (JobStatus.ACTIVE, now, task_id, JobStatus.QUEUED),
    )
    return True


def expired_leases(store: Store, now: float) -> list[tuple[int, str]]:
    """(task id, worker id) of active tasks whose worker stopped reporting."""
    rows = store.all(
        "SELECT id, worker_id FROM tasks WHERE status = 'active' AND lease_expires < ?", now
    )
    return [(r["id"], r["worker_id"]) for r in rows]
