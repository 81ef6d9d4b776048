"""Jobs: submit, read (one, a filtered page, a page of its tasks), and a
person's actions on a job (cancel, pause, resume, requeue, priority,
clear the blocklist, delete).

The arguments are typed and already checked for shape by the API; what is
checked here needs the farm: the job type's settings, the files uploaded,
the transitions the job's status allows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from coordinator.core import models
from coordinator.core.protocol import JobStatus, TaskSpec, TaskStatus, WorkerStatus
from coordinator.server import job_types, views
from coordinator.server.errors import BadRequest, Conflict
from coordinator.server.filestore import check_relpath
from coordinator.server.job_types import JobType
from coordinator.server.job_types.schema import JSON, SettingsError
from coordinator.server.services.context import Service, version_number
from coordinator.server.store import dumps

log = logging.getLogger(__name__)

MAX_FILES_PER_JOB = 100_000

JobSort = Literal["created", "updated", "priority", "name", "status", "id"]
# what a job list may be sorted by -> its column
SORT_COLUMNS: Mapping[JobSort, str] = {
    "created": "created_at",
    "updated": "updated_at",
    "priority": "priority",
    "name": "name",
    "status": "status",
    "id": "id",
}
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class NewJob:
    """A job to create, its fields checked for shape by the API."""

    name: str  # shown to people
    type: str  # a job type's name (job_types.REGISTRY)
    settings: Mapping[str, Any]  # as sent: the job type validates them
    files: Mapping[str, str]  # checked project path -> sha256 of its uploaded content
    priority: int = 50  # 0-100, higher first
    blend: str | None = None  # the main .blend's project path, one of `files`
    blender_version: str | None = None  # the version that saved it: workers need as new
    submitter: str = ""  # who sent it, for people
    origin: str = ""  # the submitter's own tag for where it came from (one .blend)
    deliver: bool = True  # copy outputs into the output folder on this machine
    max_attempts: int = 3  # tries per task before it fails
    requires_tags: tuple[str, ...] = ()  # only workers with all these tags (pools.py)
    needs: Mapping[str, str | int] = field(default_factory=dict)  # engine, device... (tags.NEEDS)
    paused: bool = False  # submitted paused: nothing starts until resumed


@dataclass(frozen=True)
class JobQuery:
    """Which jobs a list shows; every filter given must match."""

    statuses: tuple[JobStatus, ...] = ()  # any of these; () for any status
    types: tuple[str, ...] = ()  # any of these job types; () for any
    name: str = ""  # part of the name, or a glob with * ? [ ] (any case)
    submitter: str = ""  # part of the submitter, or a glob (any case)
    origin: str = ""  # exactly this origin; "" for any
    after: float | None = None  # created at or after (seconds since 1970)
    before: float | None = None  # created before
    sort: JobSort = "created"
    descending: bool = True
    limit: int = 50  # jobs per page
    offset: int = 0  # jobs skipped before the page


@dataclass(frozen=True)
class TaskQuery:
    """Which of a job's tasks a page shows, in the job's order."""

    statuses: tuple[TaskStatus, ...] = ()  # any of these; () for any status
    all_generations: bool = False  # also tasks a regenerate replaced
    limit: int = 100  # tasks per page
    offset: int = 0  # tasks skipped before the page


def compile_job(
    type_name: str, settings: Mapping[str, Any]
) -> tuple[JobType, JSON, list[TaskSpec]]:
    """The job type, its validated settings and the tasks they compile to;
    anything wrong with them is a 400 that names the setting."""
    try:
        job_type = job_types.get(type_name)
        valid = job_type.validate(dict(settings))
        return job_type, valid, job_type.compile(valid)
    except SettingsError as ex:
        raise BadRequest(str(ex), field=ex.field) from ex
    except ValueError as ex:  # a check deeper in compile()
        raise BadRequest(f"settings: {ex}") from ex


class JobService(Service):
    def submit(self, new: NewJob) -> models.JobDetail:
        job_type, settings, tasks = compile_job(new.type, new.settings)
        self._check_uploaded(new.files)
        if job_type.needs_blend:
            if not new.blend:
                raise BadRequest(
                    f"a {job_type.name} job needs 'blend': the main .blend's project"
                    " path, uploaded in 'files'",
                    field="blend",
                )
            if check_relpath(new.blend) not in new.files:
                raise BadRequest(
                    f"'blend' {new.blend!r} is not one of the job's files", field="blend"
                )
        version, now = new.blender_version, time.time()
        with self.store.tx():
            job_id = self.store.run(
                "INSERT INTO jobs (name, type, priority, status, settings, files, blend,"
                " blender_version, min_blender, submitter, origin, deliver, max_attempts,"
                " requires_tags, needs, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                new.name,
                job_type.name,
                new.priority,
                JobStatus.PAUSED if new.paused else JobStatus.QUEUED,
                dumps(settings),
                dumps(dict(new.files)),
                new.blend,
                version,
                version_number(version) if version else 0,
                new.submitter,
                new.origin,
                int(new.deliver),
                new.max_attempts,
                dumps(list(new.requires_tags)),
                dumps(dict(new.needs)),
                now,
                now,
            ).lastrowid
            assert job_id is not None
            self.ctx.insert_tasks(job_id, tasks, generation=1)
        log.info("job %d submitted: %r (%s, %d tasks)", job_id, new.name, job_type.name, len(tasks))
        self.hub.notify_work()
        self.hub.publish("job", id=job_id)
        return self._view(job_id)

    def _check_uploaded(self, files: Mapping[str, str]) -> None:
        missing = self.missing_blobs(files.values())
        if missing:
            raise Conflict(
                f"{len(missing)} file(s) are not uploaded yet; upload them first"
                f" (PUT /api/v1/files/<sha256>): {', '.join(missing[:5])}",
                field="files",
            )

    def missing_blobs(self, hashes: Iterable[str]) -> list[str]:
        """Which of these contents the farm lacks, for a submitter to upload first."""
        return sorted({sha for sha in hashes if not self.files.has_blob(sha)})

    # ---------------------------------------------------------------- reading
    def get(
        self, job_id: int, *, with_tasks: bool = True, all_generations: bool = False
    ) -> models.JobDetail:
        row = self.ctx.job_row(job_id)
        if not with_tasks:
            return views.job_json(self.store, row)
        # Tasks of earlier generations (replaced by a regenerate) stay as the
        # job's history, with their logs; they are listed only when asked for.
        where, args = ("", ()) if all_generations else (" AND generation = ?", (row["generation"],))
        tasks = self.store.all(
            f"SELECT * FROM tasks WHERE job_id = ?{where} ORDER BY generation, idx", job_id, *args
        )
        return views.job_json(self.store, row, tasks=tasks)

    def _view(self, job_id: int) -> models.JobDetail:
        return views.job_json(self.store, self.ctx.job_row(job_id))

    def find(self, query: JobQuery) -> models.JobPage:
        """A page of the jobs that match, with how many match in all."""
        where, args = _job_filters(query)
        way = "DESC" if query.descending else "ASC"
        order = f"{SORT_COLUMNS[query.sort]} {way}, id {way}"
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        total = self.store.one(f"SELECT count(*) FROM jobs{clause}", *args)
        rows = self.store.all(
            f"SELECT * FROM jobs{clause} ORDER BY {order} LIMIT ? OFFSET ?",
            *args,
            query.limit,
            query.offset,
        )
        return views.job_page_json(
            views.jobs_json(self.store, rows),
            total=total[0] if total else 0,
            limit=query.limit,
            offset=query.offset,
        )

    def tasks(self, job_id: int, query: TaskQuery) -> models.TaskPage:
        """A page of the job's tasks in their order, optionally of some statuses only:
        a 100,000-task job is not sent whole to show 100 rows."""
        row = self.ctx.job_row(job_id)
        where, args = ["job_id = ?"], list[Any]([job_id])
        if not query.all_generations:
            where.append("generation = ?")
            args.append(row["generation"])
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            args.extend(s.value for s in query.statuses)
        clause = " AND ".join(where)
        total = self.store.one(f"SELECT count(*) FROM tasks WHERE {clause}", *args)
        rows = self.store.all(
            f"SELECT * FROM tasks WHERE {clause} ORDER BY generation, idx LIMIT ? OFFSET ?",
            *args,
            query.limit,
            query.offset,
        )
        current = row["generation"]
        return views.task_page_json(
            [views.task_json(t, current=t["generation"] == current) for t in rows],
            total=total[0] if total else 0,
            limit=query.limit,
            offset=query.offset,
        )

    # ---------------------------------------------------- a person's actions
    def cancel(self, job_id: int) -> models.JobDetail:
        row = self.ctx.job_row(job_id)
        with self.store.tx():
            self.ctx.set_job_status(row, JobStatus.CANCELED, "canceled by a person")
            stopped = self.ctx.set_tasks_status(
                job_id, (TaskStatus.QUEUED, TaskStatus.ACTIVE), TaskStatus.CANCELED
            )
        self.ctx.tasks_stopped(job_id, stopped)
        return self._view(job_id)

    def pause(self, job_id: int) -> models.JobDetail:
        row = self.ctx.job_row(job_id)
        with self.store.tx():
            self.ctx.set_job_status(row, JobStatus.PAUSED, "paused by a person")
        self.hub.publish("job", id=job_id)
        return self._view(job_id)

    def resume(self, job_id: int) -> models.JobDetail:
        row = self.ctx.job_row(job_id)
        if row["status"] != JobStatus.PAUSED:
            raise Conflict(f"job {job_id} is {row['status']}, not paused; nothing to resume")
        with self.store.tx():
            self.store.run(
                "UPDATE jobs SET status = ?, status_reason = '' WHERE id = ?",
                JobStatus.QUEUED,
                job_id,
            )
            self.ctx.refresh_job(job_id)
        self.hub.notify_work()
        self.hub.publish("job", id=job_id)
        return self._view(job_id)

    def requeue(
        self, job_id: int, *, which: Literal["failed", "all"] = "failed"
    ) -> models.JobDetail:
        """Queue tasks again: 'failed' (failed and canceled ones) or 'all'."""
        row = self.ctx.job_row(job_id)
        if row["status"] == JobStatus.ACTIVE and which == "all":
            raise Conflict(
                f"job {job_id} is rendering; cancel or pause it before requeueing all of its tasks"
            )
        statuses = [TaskStatus.FAILED, TaskStatus.CANCELED]
        if which == "all":
            statuses.append(TaskStatus.COMPLETED)
        with self.store.tx():
            marks = ",".join("?" * len(statuses))
            ids = [
                (r[0],)
                for r in self.store.all(
                    f"SELECT id FROM tasks WHERE job_id = ? AND generation = ?"
                    f" AND status IN ({marks})",
                    job_id,
                    row["generation"],
                    *statuses,
                )
            ]
            if not ids:
                kinds = "failed or canceled" if which == "failed" else "finished"
                raise Conflict(f"job {job_id} has no {kinds} tasks to requeue")
            self.store.db.executemany(
                "UPDATE tasks SET status = 'queued', attempts = 0, interruptions = 0,"
                " worker_id = NULL, lease_expires = NULL, progress = 0, activity = '' WHERE id = ?",
                ids,
            )
            self.store.db.executemany("DELETE FROM task_failures WHERE task_id = ?", ids)
            if row["status"] != JobStatus.PAUSED:
                self.ctx.set_job_status(row, JobStatus.QUEUED, "")
            self.ctx.refresh_job(job_id)
        self.hub.notify_work()
        self.hub.publish("job", id=job_id)
        return self._view(job_id)

    def delete(self, job_id: int) -> None:
        """Forget the job with its tasks, files and outputs; its running tasks stop."""
        self.ctx.job_row(job_id)
        active = self.store.all(
            "SELECT id, worker_id FROM tasks WHERE job_id = ? AND status = 'active'", job_id
        )
        tasks = [r[0] for r in self.store.all("SELECT id FROM tasks WHERE job_id = ?", job_id)]
        with self.store.tx():
            self.store.run("DELETE FROM jobs WHERE id = ?", job_id)
            for worker_id in dict.fromkeys(r["worker_id"] for r in active):
                self.ctx.set_worker_status(worker_id, WorkerStatus.IDLE)
        self.files.remove_job(job_id)
        for task_id in tasks:
            self.ctx.log_headers.pop(task_id, None)
        for r in active:
            self.hub.notify_task(r["id"])
        log.info("job %d deleted", job_id)
        self.hub.publish("job-deleted", id=job_id)

    def set_priority(self, job_id: int, priority: int) -> models.JobDetail:
        row = self.ctx.job_row(job_id)
        self.ctx.check_job_action(row, "priority")
        self.store.run(
            "UPDATE jobs SET priority = ?, updated_at = ? WHERE id = ?",
            priority,
            time.time(),
            job_id,
        )
        log.info("job %d priority %d -> %d", job_id, row["priority"], priority)
        self.hub.notify_work()  # the order of work changed
        self.hub.publish("job", id=job_id)
        return self._view(job_id)

    def clear_blocklist(self, job_id: int, *, worker_id: str | None = None) -> models.JobDetail:
        """Forgive workers their failures on this job, so that they get its tasks again.

        The failures stay in each task's history, no longer held against the worker.
        """
        row = self.ctx.job_row(job_id)
        self.ctx.check_job_action(row, "clear-blocklist")
        blocked = views.job_blocklists(self.store, [job_id]).get(job_id, [])
        listed = [b["worker_id"] for b in blocked]
        if worker_id is not None:
            if worker_id not in listed:
                raise Conflict(f"worker {worker_id} is not blocklisted for job {job_id}")
            listed = [worker_id]
        if not listed:
            raise Conflict(f"job {job_id} has no blocklisted workers; nothing to clear")
        with self.store.tx():
            self.store.db.executemany(
                "UPDATE task_failures SET blamed = 0 WHERE job_id = ? AND worker_id = ?",
                [(job_id, w) for w in listed],
            )
        log.info("job %d: blocklist cleared for %s", job_id, ", ".join(listed))
        self.hub.notify_work()
        self.hub.publish("job", id=job_id)
        return self._view(job_id)


def _job_filters(query: JobQuery) -> tuple[list[str], list[Any]]:
    """The WHERE terms (and their arguments) of a job list's filters."""
    where: list[str] = []
    args: list[Any] = []
    if query.statuses:
        where.append(f"status IN ({','.join('?' * len(query.statuses))})")
        args += [s.value for s in query.statuses]
    if query.types:
        where.append(f"type IN ({','.join('?' * len(query.types))})")
        args += query.types
    for column, text in (("name", query.name), ("submitter", query.submitter)):
        if not text:
            continue
        if _GLOB_CHARS & set(text):
            # Case-insensitive like the substring match (ASCII letters, as
            # SQLite's lower()): "shot_*" finds "Shot_010" too.
            where.append(f"lower({column}) GLOB lower(?)")
        else:
            where.append(f"instr(lower({column}), lower(?)) > 0")
        args.append(text)
    if query.origin:
        where.append("origin = ?")
        args.append(query.origin)
    if query.after is not None:
        where.append("created_at >= ?")
        args.append(query.after)
    if query.before is not None:
        where.append("created_at < ?")
        args.append(query.before)
    return where, args
