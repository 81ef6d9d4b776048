"""What every service of the farm shares: the store, the file store, the hub and
the config, and the few steps they all must take the same way.

Every status change goes through `states`' transition tables here, so no
service can move a job, task or worker along an edge the tables lack. Methods
that say "inside the caller's transaction" write without committing: the
caller holds `store.tx()`, so a change and its side effects land together.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from coordinator.core.protocol import (
    JobStatus,
    TaskSpec,
    TaskStatus,
    WorkerStatus,
    parse_blender_version,
)
from coordinator.server import states
from coordinator.server.config import FarmConfig
from coordinator.server.errors import Conflict, NotFound
from coordinator.server.filestore import FileStore
from coordinator.server.hub import Hub
from coordinator.server.store import Store

log = logging.getLogger(__name__)

# Which task statuses occur in one generation of a job, one index probe each,
# so that working out a job's status does not cost more on a bigger job.
_STATUSES_PRESENT = "SELECT " + ", ".join(
    f"EXISTS (SELECT 1 FROM tasks WHERE job_id = ?1 AND status = '{status}' AND generation = ?2)"
    for status in TaskStatus
)


def version_number(text: str) -> int:
    """A Blender version as the store compares it: major*1000+minor."""
    major, minor = parse_blender_version(text)
    return major * 1000 + minor


@dataclass
class FarmContext:
    """One per coordinator; each service holds it and nothing else of the others."""

    config: FarmConfig  # lease length, farm token, data folder
    store: Store  # the farm's one SQLite database
    files: FileStore  # blobs, stored outputs and task logs
    hub: Hub  # wakes long-polls and feeds the event streams
    # when this coordinator started: half-copied files older than this are leftovers
    started_at: float = field(default_factory=time.time)
    # task id -> the "=== attempt N on worker W ===" line not yet in its log
    log_headers: dict[int, str] = field(default_factory=dict)

    # ------------------------------------------------------------ lookups
    def job_row(self, job_id: int) -> Any:
        row = self.store.one("SELECT * FROM jobs WHERE id = ?", job_id)
        if row is None:
            raise NotFound(f"there is no job {job_id}")
        return row

    def task_row(self, task_id: int) -> Any:
        row = self.store.one("SELECT * FROM tasks WHERE id = ?", task_id)
        if row is None:
            raise NotFound(f"there is no task {task_id}")
        return row

    def worker_row(self, worker_id: str) -> Any:
        row = self.store.one("SELECT * FROM workers WHERE id = ?", worker_id)
        if row is None:
            raise NotFound(f"there is no worker {worker_id}")
        return row

    def is_current(self, task: Any) -> bool:
        """Is the task part of its job's current generation (not replaced by a regenerate)?"""
        job = self.store.one("SELECT generation FROM jobs WHERE id = ?", task["job_id"])
        return job is not None and job["generation"] == task["generation"]

    def held_task(self, worker: Any, task_id: int, *, row: Any = None) -> Any:
        """The task if this worker still holds its lease; Conflict tells it to stop."""
        if row is None:
            row = self.store.one("SELECT * FROM tasks WHERE id = ?", task_id)
        if row is None:
            raise Conflict(f"task {task_id} no longer exists (its job was deleted); stop it")
        if row["worker_id"] != worker["id"] or row["status"] != TaskStatus.ACTIVE:
            if not self.is_current(row):
                raise Conflict(
                    f"task {task_id} was replaced when job {row['job_id']} was regenerated;"
                    " stop it and ask for new work"
                )
            raise Conflict(
                f"task {task_id} is not (or no longer) assigned to this worker"
                f" ({held_by_whom(row)}); stop it and ask for new work"
            )
        return row

    def check_job_action(self, row: Any, action: str) -> None:
        if row["status"] not in states.JOB_ACTIONS[action]:
            raise Conflict(f"job {row['id']} is {row['status']}; {action} does not apply")

    # ----------------------------------------- status changes, by the tables
    def set_worker_status(self, worker_id: str, status: WorkerStatus) -> None:
        row = self.store.one("SELECT status FROM workers WHERE id = ?", worker_id)
        if row is None or row["status"] == status:
            return
        states.check(states.WORKER_TRANSITIONS, "worker", row["status"], status)
        self.store.run("UPDATE workers SET status = ? WHERE id = ?", status, worker_id)
        self.hub.publish("worker", id=worker_id, status=status)

    def set_job_status(self, row: Any, status: JobStatus, reason: str) -> None:
        try:
            states.check(states.JOB_TRANSITIONS, f"job {row['id']}", row["status"], status)
        except states.InvalidTransition as ex:
            raise Conflict(str(ex)) from ex
        self.store.run(
            "UPDATE jobs SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
            status,
            reason,
            time.time(),
            row["id"],
        )

    def set_task_status(self, row: Any, status: TaskStatus) -> None:
        try:
            states.check(states.TASK_TRANSITIONS, f"task {row['id']}", row["status"], status)
        except states.InvalidTransition as ex:
            raise Conflict(str(ex)) from ex
        self.store.run(
            "UPDATE tasks SET status = ?, updated_at = ? WHERE id = ?",
            status,
            time.time(),
            row["id"],
        )

    def set_tasks_status(self, job_id: int, old: tuple[str, ...], new: TaskStatus) -> list[int]:
        """Move every task of the job in one of the `old` statuses to `new`, freeing
        the workers of active ones (inside the caller's transaction). Returns the
        ids of the tasks that were running, whose workers must hear "stop"."""
        marks = ",".join("?" * len(old))
        rows = self.store.all(
            f"SELECT id, worker_id, status FROM tasks WHERE job_id = ? AND status IN ({marks})",
            job_id,
            *old,
        )
        self.store.db.executemany(
            "UPDATE tasks SET status = ?, lease_expires = NULL, updated_at = ? WHERE id = ?",
            [(new, time.time(), r["id"]) for r in rows],
        )
        for r in rows:
            if r["status"] == TaskStatus.ACTIVE and r["worker_id"]:
                self.set_worker_status(r["worker_id"], WorkerStatus.IDLE)
        return [r["id"] for r in rows if r["status"] == TaskStatus.ACTIVE]

    def refresh_job(self, job_id: int) -> None:
        """Move the job to the status its tasks imply (inside the caller's transaction)."""
        row = self.job_row(job_id)
        # Which statuses occur, not how often: one index probe each, so the
        # cost does not grow with the job's size.
        found = self.store.one(_STATUSES_PRESENT, job_id, row["generation"])
        present = {status: 1 for status, hit in zip(TaskStatus, found or (), strict=True) if hit}
        wanted = states.job_status_from_counts(JobStatus(row["status"]), present)
        if wanted == row["status"]:
            return
        reason = ""
        if wanted == JobStatus.FAILED:
            failed = self.store.one(
                "SELECT t.name, f.reason FROM tasks t LEFT JOIN task_failures f ON f.task_id = t.id"
                " WHERE t.job_id = ? AND t.status = 'failed' AND t.generation = ?"
                " ORDER BY f.at DESC LIMIT 1",
                job_id,
                row["generation"],
            )
            if failed is not None:
                reason = f"task '{failed['name']}' failed: {failed['reason'] or 'no reason given'}"
        elif wanted == JobStatus.CANCELED:
            reason = "every task that was left was canceled"
        self.set_job_status(row, wanted, reason)
        log.info("job %d is %s%s", job_id, wanted, f" ({reason})" if reason else "")

    # ------------------------------------------------------ tasks and logs
    def insert_tasks(self, job_id: int, tasks: list[TaskSpec], *, generation: int) -> None:
        """Insert a compiled job's tasks (inside the caller's transaction).

        One executemany and one reused JSON encoder (the same output as
        store.dumps): a row-by-row insert held the event loop for seconds on a
        100,000-task job.
        """
        if not tasks:
            return
        now = time.time()
        encode = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
        self.store.db.executemany(
            "INSERT INTO tasks (job_id, idx, name, kind, payload, frames, priority, status,"
            " generation, has_deps, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    job_id,
                    idx,
                    spec.name,
                    spec.kind,
                    encode(spec.payload),
                    encode(list(spec.frames)),
                    spec.priority,
                    TaskStatus.QUEUED,
                    generation,
                    int(bool(spec.depends_on)),
                    now,
                )
                for idx, spec in enumerate(tasks)
            ),
        )
        # Ids are consecutive: one writer, inside one transaction, AUTOINCREMENT.
        last = self.store.one("SELECT last_insert_rowid()")
        assert last is not None
        first = int(last[0]) - len(tasks) + 1
        deps = [
            (first + idx, first + dep) for idx, spec in enumerate(tasks) for dep in spec.depends_on
        ]
        if deps:
            self.store.db.executemany(
                "INSERT INTO task_deps (task_id, depends_on) VALUES (?, ?)", deps
            )

    def append_log(self, job_id: int, task_id: int, text: str) -> None:
        """Add to a task's log, after the attempt's header if it is not written yet."""
        text = self.log_headers.pop(task_id, "") + text
        path = self.files.log_path(job_id, task_id)
        try:
            f = path.open("a", encoding="utf-8", errors="replace")
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = path.open("a", encoding="utf-8", errors="replace")
        with f:
            f.write(text)

    def tasks_stopped(self, job_id: int, stopped: list[int]) -> None:
        """After a job's tasks were stopped: their workers hear "stop", viewers the change."""
        for task_id in stopped:
            self.hub.notify_task(task_id)
        self.hub.publish("job", id=job_id)


def held_by_whom(task: Any) -> str:
    """For refusals: "queued", or "active on another worker" rather than a bare
    "active", which read as if the asking worker still held it."""
    if task["status"] == TaskStatus.ACTIVE:
        return "active on another worker"
    return str(task["status"])


class Service:
    """A service over the shared context: `self.store` and the others are the
    context's own, named for short."""

    def __init__(self, ctx: FarmContext) -> None:
        self.ctx = ctx
        self.config, self.store, self.files, self.hub = ctx.config, ctx.store, ctx.files, ctx.hub
