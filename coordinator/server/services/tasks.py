"""Tasks: the worker's side of the protocol (claim, report, renew, complete,
fail) and a person's side (details, log, requeue, cancel).

A worker acts only on a task it holds: every report checks the lease first,
and a refusal (409) tells the worker to stop. Losing a claim race is not an
error: the claim simply finds nothing.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coordinator.core import models
from coordinator.core.protocol import Assignment, JobStatus, TaskStatus, WorkerStatus
from coordinator.server import pools, scheduler, states, views
from coordinator.server.errors import BadRequest, Conflict, NotFound
from coordinator.server.filestore import check_output_name
from coordinator.server.job_types.outputs import expected_outputs
from coordinator.server.job_types.schema import JSON
from coordinator.server.services.context import Service, held_by_whom
from coordinator.server.services.retries import record_failure, requeue_lost
from coordinator.server.store import loads

log = logging.getLogger(__name__)

# The most log text one report may carry (characters).
MAX_LOG_CHUNK = 256 * 1024


# The stages a worker reports (models.TaskStages), as the task log names them;
# each is stored in the column <stage>_s, seconds after the worker got the task.
STAGES = {
    "blender_ready": "Blender ready",
    "first_sample": "first sample",
    "last_frame_saved": "last frame saved",
    "uploaded": "uploaded",
}

_REPORT = (
    "UPDATE tasks SET lease_expires = ?, updated_at = ?, progress = coalesce(?, progress),"
    " activity = coalesce(?, activity), "
    + ", ".join(f"{stage}_s = coalesce(?, {stage}_s)" for stage in STAGES)
    + " WHERE id = ?"
)


@dataclass(frozen=True)
class TaskReport:
    """What the worker of a running task reports; None leaves a field as it was."""

    progress: float | None = None  # how much of the task is done, 0 to 1
    activity: str | None = None  # what it is doing now, for people
    log: str | None = None  # more of the task's log, appended
    stages: Mapping[str, float] = field(default_factory=dict)  # STAGES reached: seconds


def _reported_stages(row: Any) -> bool:
    return any(row[f"{stage}_s"] is not None for stage in STAGES)


def timings_line(row: Any, ended_at: float, outcome: str) -> str:
    """The task log's account of where an attempt's time went, for people reading it."""
    claimed = row["claimed_at"]
    if claimed is None:  # claimed before schema 6
        return ""
    steps = [
        f"{label} +{row[f'{stage}_s']:.2f} s"
        for stage, label in STAGES.items()
        if row[f"{stage}_s"] is not None
    ]
    steps.append(f"{outcome} +{ended_at - claimed:.2f} s")
    when = time.strftime("%H:%M:%S", time.localtime(claimed))
    return f"\n=== attempt {row['attempts']}: claimed at {when}, " + ", ".join(steps) + " ===\n"


# Sizes of the files of the jobs most recently asked about (upcoming()).
_SIZES: OrderedDict[tuple[int, int, int], dict[str, int]] = OrderedDict()
_SIZES_KEPT = 32


class TaskService(Service):
    # ----------------------------------------------------- the worker's side
    def abandon_held(self, worker: JSON) -> None:
        """A worker asking for work holds nothing: whatever it held was lost in a restart,
        or handed to it in a reply it never got. No attempt is spent; one it had started
        counts as an interruption (see retries)."""
        for row in self.store.all(
            "SELECT id, progress, activity FROM tasks WHERE worker_id = ? AND status = 'active'",
            worker["id"],
        ):
            started = row["progress"] > 0 or row["activity"] != "starting"
            requeue_lost(
                self.ctx,
                row["id"],
                worker["id"],
                "the worker restarted and dropped it",
                interrupted=started,
            )

    def claim(self, worker: JSON, *, warm_job: int | None = None) -> Assignment | None:
        """The worker's next task, or None; warm_job: the job whose scene its Blender
        still holds, preferred among equals (see scheduler)."""
        if worker["disabled"]:
            return None
        with self.store.tx():  # one commit for the claim and its bookkeeping
            claimed = scheduler.claim(
                self.store,
                worker_id=worker["id"],
                blender=worker["blender"],
                lease_seconds=self.config.lease_seconds,
                warm_job=warm_job,
                offers=pools.row_offers(worker),
            )
            if claimed is None:
                self.ctx.set_worker_status(worker["id"], WorkerStatus.IDLE)
                return None
            self.ctx.set_worker_status(worker["id"], WorkerStatus.BUSY)
            task, job = self.ctx.task_row(claimed.task_id), self.ctx.job_row(claimed.job_id)
            if task["attempts"] > 1:
                # What an earlier attempt uploaded no longer counts as this task's output.
                self.store.run("UPDATE outputs SET attempt = NULL WHERE task_id = ?", task["id"])
        # Written with the task's first log text: most tasks that never log
        # (sleep) then cost no file I/O at all.
        self.ctx.log_headers[task["id"]] = (
            f"\n=== attempt {task['attempts']} on worker {worker['name']}"
            f" ({worker['id']}) at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n"
        )
        log.debug(  # completions and failures are logged at INFO; this is per claim
            "task %d (%s of job %d) -> worker %s",
            task["id"],
            task["name"],
            job["id"],
            worker["name"],
        )
        self.hub.publish("task", id=task["id"], job_id=job["id"])
        return self._assignment(task, job)

    def held_assignment(self, worker: JSON) -> Assignment | None:
        """The task this worker holds, as it was handed out: a worker whose reply
        got lost asks again and gets the same task, not a second one."""
        task = self.store.one(
            "SELECT * FROM tasks WHERE worker_id = ? AND status = 'active' ORDER BY id LIMIT 1",
            worker["id"],
        )
        return None if task is None else self._assignment(task, self.ctx.job_row(task["job_id"]))

    def upcoming(self, worker: JSON, *, warm_job: int | None = None) -> JSON:
        """The job this worker would most likely get next (what a claim would give it
        now, leasing nothing), for it to fetch that job's files while it renders. Its
        files and their sizes come only when it is not warm_job (whose files the
        worker has); nothing is written, so a worker may ask while it holds a task."""
        if worker["disabled"]:
            return {"job_id": None}
        job_id = scheduler.upcoming(
            self.store,
            worker_id=worker["id"],
            blender=worker["blender"],
            warm_job=warm_job,
            offers=pools.row_offers(worker),
        )
        if job_id is None or job_id == warm_job:
            return {"job_id": job_id}
        job = self.ctx.job_row(job_id)
        files: dict[str, str] = loads(job["files"]) or {}
        return {
            "job_id": job_id,
            "blend": job["blend"],
            "files": files,
            "sizes": self._sizes(job_id, job["files"], files),
        }

    def _sizes(self, job_id: int, text: str, files: dict[str, str]) -> dict[str, int]:
        """The stored size of each of a job's files; a job's file list never changes,
        so the stat() calls are paid once per job (any worker may ask in a loop)."""
        key = (id(self.files), job_id, hash(text))
        if (known := _SIZES.get(key)) is not None:
            _SIZES.move_to_end(key)
            return known
        sizes = {}
        for sha in set(files.values()):
            try:
                sizes[sha] = self.files.blob_path(sha).stat().st_size
            except OSError:  # not stored (yet): the worker skips it
                continue
        if len(sizes) == len(set(files.values())):  # all there: it will not change
            _SIZES[key] = sizes
            while len(_SIZES) > _SIZES_KEPT:
                _SIZES.popitem(last=False)
        return sizes

    def _assignment(self, task: Any, job: Any) -> Assignment:
        return Assignment(
            task_id=task["id"],
            job_id=job["id"],
            job_name=job["name"],
            kind=task["kind"],
            payload=loads(task["payload"]),
            attempt=task["attempts"],
            lease_seconds=self.config.lease_seconds,
            blend=job["blend"],
            files=loads(job["files"]) or {},
            inputs=self._task_inputs(task["id"]) if task["has_deps"] else {},
        )

    def _task_inputs(self, task_id: int) -> dict[str, str]:
        """name -> sha256 of what the tasks this one depends on produced.

        Only the completed attempt of each dependency counts: claiming a task
        voids what its earlier attempts uploaded (attempt NULL), so a merge never
        mixes in a chunk of a failed attempt. (A regenerate that keeps a finished
        task moves its outputs to the successor, attempt and all.)
        """
        rows = self.store.all(
            "SELECT o.name, o.sha256 FROM task_deps d JOIN tasks t ON t.id = d.depends_on"
            " JOIN outputs o ON o.task_id = t.id AND o.attempt IS NOT NULL"
            " WHERE d.task_id = ? AND t.status = 'completed' ORDER BY o.name",
            task_id,
        )
        return {r["name"]: r["sha256"] for r in rows}

    def input_file(self, worker: JSON, task_id: int, name: str) -> Path:
        """An input of a task the worker holds (see _task_inputs), for it to download."""
        row = self.ctx.held_task(worker, task_id)
        if check_output_name(name) not in self._task_inputs(task_id):
            raise NotFound(
                f"{name!r} is not an input of task {task_id}: only the outputs of the"
                " tasks it depends on are"
            )
        return self.files.output_path(row["job_id"], name)

    def update(self, worker: JSON, task_id: int, report: TaskReport) -> None:
        """A running task's report; each one renews the lease."""
        progress, activity, log_text = report.progress, report.activity, report.log
        row = self.ctx.held_task(worker, task_id)
        now = time.time()
        self.store.run(
            _REPORT,
            now + self.config.lease_seconds,
            now,
            progress,
            activity,
            *(report.stages.get(stage) for stage in STAGES),
            task_id,
        )
        if log_text:
            self.ctx.append_log(row["job_id"], task_id, log_text)
        if progress is not None or activity is not None or log_text:
            # log=True: new log text, for dashboards that show its tail live
            self.hub.publish(
                "task",
                id=task_id,
                job_id=row["job_id"],
                progress=progress,
                activity=activity,
                log=bool(log_text),
            )

    def renew_lease(self, worker: JSON, task_id: int) -> None:
        self.ctx.held_task(worker, task_id)
        self.store.run(
            "UPDATE tasks SET lease_expires = ? WHERE id = ?",
            time.time() + self.config.lease_seconds,
            task_id,
        )

    def should_stop(self, worker: JSON, task_id: int) -> str | None:
        """Why the worker must stop this task, or None if it should go on."""
        row = self.store.one(
            "SELECT status, worker_id, job_id, generation FROM tasks WHERE id = ?", task_id
        )
        if row is None:
            return "the job was deleted"
        if row["worker_id"] != worker["id"] or row["status"] != TaskStatus.ACTIVE:
            if not self.ctx.is_current(row):
                return "the job was regenerated; this task is no longer part of it"
            return f"the task is {held_by_whom(row)}"
        job = self.store.one(
            "SELECT status FROM jobs WHERE id = (SELECT job_id FROM tasks WHERE id = ?)", task_id
        )
        if job is not None and job["status"] == JobStatus.CANCELED:
            return "the job was canceled"
        return None

    def complete_then_claim(
        self, worker: JSON, task_id: int, *, warm_job: int | None = None
    ) -> Assignment | None:
        """complete(), then the worker's next task (the one it holds, else a claim):
        one transaction, so one commit a task where two were half the database's
        cost on this path (docs/performance.md). A claim that fails undoes the
        completion too; the worker's retry completes it again."""
        with self.store.tx():
            self.complete(worker, task_id)
            return self.held_assignment(worker) or self.claim(worker, warm_job=warm_job)

    def complete(self, worker: JSON, task_id: int) -> None:
        found = self.store.one("SELECT * FROM tasks WHERE id = ?", task_id)
        if (
            found is not None
            and found["status"] == TaskStatus.COMPLETED
            and (found["worker_id"] == worker["id"])
        ):
            return  # a retry of a completion whose reply was lost: already done
        row = self.ctx.held_task(worker, task_id, row=found)
        self._check_outputs_arrived(row)
        now = time.time()
        with self.store.tx():
            self.ctx.set_task_status(row, TaskStatus.COMPLETED)
            self.store.run(
                "UPDATE tasks SET progress = 1, activity = 'done', worker_id = ?, completed_at = ?"
                " WHERE id = ?",
                worker["id"],
                now,
                task_id,
            )
            self.ctx.set_worker_status(worker["id"], WorkerStatus.IDLE)
            self.ctx.refresh_job(row["job_id"])
        # A task that neither logged nor reported a stage keeps no log file (most
        # sleep tasks): its timings are in its JSON, and the file would cost I/O.
        line = timings_line(row, now, "completed")
        if line and (task_id not in self.ctx.log_headers or _reported_stages(row)):
            self.ctx.append_log(row["job_id"], task_id, line)
        self.ctx.log_headers.pop(task_id, None)
        log.info("task %d completed by %s", task_id, worker["name"])
        self.hub.notify_task(task_id)  # ends the worker's control long-poll
        self.hub.notify_work()
        self.hub.publish("task", id=task_id, job_id=row["job_id"])
        self.hub.publish("job", id=row["job_id"])

    def _check_outputs_arrived(self, row: Any) -> None:
        """A task is done when each file it produces is here, from this attempt
        (claiming voids what earlier attempts uploaded). Tasks that produce none
        (sleep) cost no query."""
        expected = expected_outputs(row["kind"], row["payload"])
        if not expected.files:
            return
        present = {
            r["name"]
            for r in self.store.all(
                "SELECT name FROM outputs WHERE task_id = ? AND attempt = ?",
                row["id"],
                row["attempts"],
            )
        }
        missing = expected.first_missing(present)
        if missing is not None:
            raise BadRequest(
                f"task {row['id']} ({row['name']}) is not done: {missing} has not been"
                f" uploaded; upload each of its {len(expected.files)} files, then complete it"
            )

    def fail(
        self,
        worker: JSON,
        task_id: int,
        *,
        reason: str,
        log_text: str | None = None,
        job_fault: bool = False,
    ) -> TaskStatus:
        """The worker could not do the task: it is retried elsewhere, or fails for
        good when out of attempts. Returns the task's status now.

        job_fault: the worker says every worker would meet the same (the job's own
        files or payload), so the task fails now and the worker is not blamed. Only
        the worker holding the task may say so (held_task), and it could fail the
        task anyway: the flag saves retries, it grants nothing new.
        """
        reason = reason[:2000] or "no reason given"
        row = self.ctx.held_task(worker, task_id)
        text = (log_text or "")[:MAX_LOG_CHUNK] + timings_line(row, time.time(), "failed")
        if text:
            self.ctx.append_log(row["job_id"], task_id, text)
        status = record_failure(
            self.ctx, row, worker["id"], reason, blame=not job_fault, final=job_fault
        )
        self.ctx.set_worker_status(worker["id"], WorkerStatus.IDLE)
        log.info("task %d failed on %s: %s -> %s", task_id, worker["name"], reason, status)
        return status

    # ------------------------------------------------- a person's side
    def get(self, task_id: int) -> models.TaskDetail:
        row = self.ctx.task_row(task_id)
        failures = self.store.all(
            "SELECT worker_id, reason, blamed, at FROM task_failures WHERE task_id = ? ORDER BY at",
            task_id,
        )
        return views.task_detail_json(row, current=self.ctx.is_current(row), failures=failures)

    def read_log(self, task_id: int, *, tail: int) -> str:
        row = self.ctx.task_row(task_id)
        path = self.files.log_path(row["job_id"], task_id)
        if not path.is_file():
            return ""
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - tail))
            return f.read().decode("utf-8", "replace")

    def requeue(self, task_id: int) -> models.TaskDetail:
        """Run one task again from scratch (stopping it first when a worker has it):
        a fresh count of attempts, its failures forgiven."""
        row, job = self._person_task(task_id, "requeue")
        with self.store.tx():
            self.ctx.set_task_status(row, TaskStatus.QUEUED)
            self.store.run(
                "UPDATE tasks SET attempts = 0, interruptions = 0, worker_id = NULL,"
                " lease_expires = NULL,"
                " progress = 0, activity = 'requeued by a person' WHERE id = ?",
                task_id,
            )
            self.store.run("DELETE FROM task_failures WHERE task_id = ?", task_id)
            self._reopen_for_task(row, job)
        self.ctx.append_log(job["id"], task_id, "\n=== requeued by a person ===\n")
        log.info("task %d requeued by a person", task_id)
        return self._after_task_action(row)

    def cancel(self, task_id: int) -> models.TaskDetail:
        """Stop one task for good; its job goes on with the others."""
        row, job = self._person_task(task_id, "cancel")
        with self.store.tx():
            self.ctx.set_task_status(row, TaskStatus.CANCELED)
            self.store.run(
                "UPDATE tasks SET lease_expires = NULL, activity = 'canceled by a person'"
                " WHERE id = ?",
                task_id,
            )
            self._reopen_for_task(row, job)
        log.info("task %d canceled by a person", task_id)
        return self._after_task_action(row)

    def _person_task(self, task_id: int, action: str) -> tuple[Any, Any]:
        row = self.ctx.task_row(task_id)
        job = self.ctx.job_row(row["job_id"])
        if row["generation"] != job["generation"]:
            raise Conflict(
                f"task {task_id} belongs to an earlier generation of job {job['id']}"
                " (the job was regenerated); act on its current tasks"
            )
        if row["status"] not in states.TASK_ACTIONS[action]:
            which = ", ".join(sorted(states.TASK_ACTIONS[action]))
            raise Conflict(
                f"task {task_id} is {row['status']}; {action} applies to a task that is {which}"
            )
        return row, job

    def _reopen_for_task(self, row: Any, job: Any) -> None:
        """After a task action (inside its transaction): free the worker, and let a
        finished job move again, as its tasks now say."""
        if row["status"] == TaskStatus.ACTIVE and row["worker_id"]:
            self.ctx.set_worker_status(row["worker_id"], WorkerStatus.IDLE)
        if job["status"] in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
            self.ctx.set_job_status(job, JobStatus.QUEUED, "")
        self.ctx.refresh_job(job["id"])

    def _after_task_action(self, row: Any) -> models.TaskDetail:
        self.hub.notify_task(row["id"])  # a worker running it hears "stop" at once
        self.hub.notify_work()
        self.hub.publish("task", id=row["id"], job_id=row["job_id"])
        self.hub.publish("job", id=row["job_id"])
        return self.get(row["id"])
