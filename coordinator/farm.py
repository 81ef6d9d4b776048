"""The farm's operations: everything the API does, as plain methods.

Each method validates, changes the store inside one transaction (status
changes checked against `states`), then tells the hub who should wake up.
The HTTP layer only parses requests and serialises results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator import job_types, scheduler, states
from coordinator.errors import BadRequest, Conflict, NotFound, Unauthorized
from coordinator.filestore import (
    Delivery,
    FileStore,
    check_output_name,
    check_relpath,
    check_sha256,
    deliver,
    output_folder,
)
from coordinator.hub import Hub
from coordinator.job_types.schema import JSON, Setting, SettingsError, validate
from coordinator.protocol import (
    Assignment,
    JobStatus,
    TaskStatus,
    WorkerStatus,
    parse_blender_version,
)
from coordinator.store import Store, dumps, loads

log = logging.getLogger(__name__)

MAX_LOG_CHUNK = 256 * 1024
# last_seen is written at most this often per worker (seconds)
LAST_SEEN_RESOLUTION = 1.0
# An idle worker is heard from at least once per task long-poll (at most this long).
IDLE_POLL_MAX = 60.0
MAX_FILES_PER_JOB = 100_000


@dataclass(frozen=True)
class FarmConfig:
    data_dir: Path  # SQLite file, blobs, outputs, logs
    name: str  # shown in discovery and the dashboard
    token: str  # the farm token
    lease_seconds: float = 60.0  # a worker silent this long loses its task
    max_upload: int = 64 << 30  # bytes per uploaded file


_STATUSES_PRESENT = "SELECT " + ", ".join(
    f"EXISTS (SELECT 1 FROM tasks WHERE job_id = ?1 AND status = '{status}')"
    for status in TaskStatus
)


def _version_number(text: str) -> int:
    major, minor = parse_blender_version(text)
    return major * 1000 + minor


def _check_version(text: str) -> str:
    major, minor = parse_blender_version(text)
    # Stored as major*1000+minor in an SQLite integer: "99999999999999999999.1"
    # used to overflow it (a 500), and "4.2000" would rank above 5.0.
    if not (0 <= major <= 999 and 0 <= minor <= 999):
        raise ValueError(f"not a Blender version: {text!r} (expected e.g. '4.2' or '3.4.1')")
    return text


JOB_BODY = (
    Setting("name", "str", "Name", required=True, max_length=200),
    Setting("type", "str", "Job type", required=True, max_length=100),
    Setting("priority", "int", "Priority", default=50, minimum=0, maximum=100),
    Setting("blend", "str", "Main .blend", default=None, max_length=4096),
    Setting(
        "blender_version",
        "str",
        "Blender version",
        default=None,
        max_length=32,
        check=_check_version,
    ),
    Setting("submitter", "str", "Submitter", default="", max_length=200),
    Setting("deliver", "bool", "Deliver", default=True),
    Setting("max_attempts", "int", "Attempts", default=3, minimum=1, maximum=20),
)

WORKER_BODY = (
    Setting("name", "str", "Name", required=True, max_length=200),
    Setting("host", "str", "Host", default="", max_length=255),
    Setting(
        "blender_version",
        "str",
        "Blender version",
        required=True,
        max_length=32,
        check=_check_version,
    ),
)


def _validate_body(schema: tuple[Setting, ...], body: Any, *, extra: Iterable[str] = ()) -> JSON:
    """Validate a request body: plain fields by schema, `extra` ones left to the caller."""
    if not isinstance(body, Mapping):
        raise BadRequest("the request body must be a JSON object")
    extra = set(extra)
    plain = {k: v for k, v in body.items() if k not in extra}
    try:
        out = validate(schema, plain)
    except SettingsError as ex:
        # every bad field is named (validate() collects them all), so rename each
        raise BadRequest(str(ex).replace("setting '", "field '"), field=ex.field) from ex
    out.update({k: body[k] for k in extra if k in body})
    return out


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Farm:
    def __init__(self, config: FarmConfig, store: Store, files: FileStore, hub: Hub) -> None:
        self.config = config
        self.store = store
        self.files = files
        self.hub = hub
        # task id -> the "=== attempt N on worker W ===" line not yet in its log
        self._log_headers: dict[int, str] = {}

    # ================================================================ workers
    def register_worker(self, body: Any) -> JSON:
        data = _validate_body(WORKER_BODY, body, extra=("devices", "tags"))
        devices = _string_list(data.get("devices", []), "devices")
        tags = _string_list(data.get("tags", []), "tags")
        worker_id, secret, now = str(uuid.uuid4()), secrets.token_urlsafe(32), time.time()
        with self.store.tx():
            self.store.run(
                "INSERT INTO workers (id, name, host, secret_hash, status, blender_version,"
                " blender, devices, tags, last_seen, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                worker_id,
                data["name"],
                data["host"],
                _hash_secret(secret),
                WorkerStatus.IDLE,
                data["blender_version"],
                _version_number(data["blender_version"]),
                dumps(devices),
                dumps(tags),
                now,
                now,
            )
        log.info(
            "worker registered: %s (%s, Blender %s)",
            data["name"],
            worker_id,
            data["blender_version"],
        )
        self.hub.publish("worker", id=worker_id)
        return {
            "worker_id": worker_id,
            "secret": secret,
            "lease_seconds": self.config.lease_seconds,
        }

    def authenticate_worker(self, secret: str) -> JSON:
        row = self.store.one("SELECT * FROM workers WHERE secret_hash = ?", _hash_secret(secret))
        if row is None:
            raise Unauthorized("unknown worker credentials; register the worker again")
        now = time.time()
        if row["status"] == WorkerStatus.OFFLINE:
            holds = self.store.one(
                "SELECT 1 FROM tasks WHERE worker_id = ? AND status = 'active'", row["id"]
            )
            self._set_worker_status(row["id"], WorkerStatus.BUSY if holds else WorkerStatus.IDLE)
        if now - row["last_seen"] > LAST_SEEN_RESOLUTION:  # spare a write per request
            self.store.run("UPDATE workers SET last_seen = ? WHERE id = ?", now, row["id"])
        return dict(row)

    def list_workers(self) -> list[JSON]:
        rows = self.store.all("SELECT * FROM workers ORDER BY name, id")
        current = {
            r["worker_id"]: r
            for r in self.store.all(
                "SELECT id, job_id, name, worker_id FROM tasks WHERE status = 'active'"
            )
        }
        return [self._worker_json(r, current.get(r["id"])) for r in rows]

    def _worker_json(self, row: Any, task: Any) -> JSON:
        return {
            "id": row["id"],
            "name": row["name"],
            "host": row["host"],
            "status": row["status"],
            "blender_version": row["blender_version"],
            "devices": loads(row["devices"]),
            "tags": loads(row["tags"]),
            "disabled": bool(row["disabled"]),
            "last_seen": row["last_seen"],
            "task": None
            if task is None
            else {"id": task["id"], "job_id": task["job_id"], "name": task["name"]},
        }

    def worker_counts(self) -> dict[str, int]:
        rows = self.store.all("SELECT status, count(*) AS n FROM workers GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def sign_off(self, worker: JSON) -> None:
        """A worker leaving on purpose hands its task back at once."""
        for row in self.store.all(
            "SELECT id FROM tasks WHERE worker_id = ? AND status = 'active'", worker["id"]
        ):
            self._requeue_lost(row["id"], worker["id"], "the worker shut down", count=False)
        self._set_worker_status(worker["id"], WorkerStatus.OFFLINE)

    def _set_worker_status(self, worker_id: str, status: WorkerStatus) -> None:
        row = self.store.one("SELECT status FROM workers WHERE id = ?", worker_id)
        if row is None or row["status"] == status:
            return
        states.check(states.WORKER_TRANSITIONS, "worker", row["status"], status)
        self.store.run("UPDATE workers SET status = ? WHERE id = ?", status, worker_id)
        self.hub.publish("worker", id=worker_id, status=status)

    # =================================================================== jobs
    def submit_job(self, body: Any) -> JSON:
        data = _validate_body(JOB_BODY, body, extra=("settings", "files"))
        try:
            # get() raises SettingsError for an unknown type; it used to escape
            # this try and become a 500
            job_type = job_types.get(data["type"])
            settings = job_type.validate(data.get("settings", {}))
            tasks = job_type.compile(settings)
        except SettingsError as ex:
            raise BadRequest(str(ex), field=ex.field) from ex
        except ValueError as ex:  # a check deeper in compile()
            raise BadRequest(f"settings: {ex}") from ex
        files = self._check_files(data.get("files", {}))
        blend = data["blend"]
        if job_type.needs_blend:
            if not blend:
                raise BadRequest(
                    f"a {job_type.name} job needs 'blend': the main .blend's project"
                    " path, uploaded in 'files'",
                    field="blend",
                )
            if check_relpath(blend) not in files:
                raise BadRequest(f"'blend' {blend!r} is not one of the job's files", field="blend")
        version = data["blender_version"]
        now = time.time()
        with self.store.tx():
            job_id = self.store.run(
                "INSERT INTO jobs (name, type, priority, status, settings, files, blend,"
                " blender_version, min_blender, submitter, deliver, max_attempts, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                data["name"],
                job_type.name,
                data["priority"],
                JobStatus.QUEUED,
                dumps(settings),
                dumps(files),
                blend,
                version,
                _version_number(version) if version else 0,
                data["submitter"],
                int(data["deliver"]),
                data["max_attempts"],
                now,
                now,
            ).lastrowid
            assert job_id is not None
            self._insert_tasks(job_id, tasks, generation=1)
        log.info(
            "job %d submitted: %r (%s, %d tasks)", job_id, data["name"], job_type.name, len(tasks)
        )
        self.hub.notify_work()
        self.hub.publish("job", id=job_id)
        return self.get_job(job_id, with_tasks=False)

    def _check_files(self, files: Any) -> dict[str, str]:
        if not isinstance(files, Mapping):
            raise BadRequest("'files' must be an object of project path -> sha256", field="files")
        if len(files) > MAX_FILES_PER_JOB:
            raise BadRequest(
                f"a job may reference at most {MAX_FILES_PER_JOB} files", field="files"
            )
        out = {check_relpath(path): check_sha256(sha) for path, sha in files.items()}
        missing = sorted({sha for sha in out.values() if not self.files.has_blob(sha)})
        if missing:
            raise Conflict(
                f"{len(missing)} file(s) are not uploaded yet; upload them first"
                f" (PUT /api/v1/files/<sha256>): {', '.join(missing[:5])}",
                field="files",
            )
        return out

    def _insert_tasks(self, job_id: int, tasks: list[Any], *, generation: int) -> None:
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

    def _job_row(self, job_id: int) -> Any:
        row = self.store.one("SELECT * FROM jobs WHERE id = ?", job_id)
        if row is None:
            raise NotFound(f"there is no job {job_id}")
        return row

    def get_job(self, job_id: int, *, with_tasks: bool = True) -> JSON:
        row = self._job_row(job_id)
        out = self._job_json(row, self._task_summary([job_id]).get(job_id, {}))
        if with_tasks:
            out["tasks"] = [
                self._task_json(t)
                for t in self.store.all("SELECT * FROM tasks WHERE job_id = ? ORDER BY idx", job_id)
            ]
        return out

    def _task_summary(self, job_ids: list[int]) -> dict[int, JSON]:
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = self.store.all(
            f"SELECT job_id, status, count(*) AS n, sum(progress) AS p FROM tasks"
            f" WHERE job_id IN ({marks}) GROUP BY job_id, status",
            *job_ids,
        )
        out: dict[int, JSON] = {}
        for r in rows:
            entry = out.setdefault(r["job_id"], {"counts": {}, "done": 0.0, "total": 0})
            entry["counts"][r["status"]] = r["n"]
            entry["total"] += r["n"]
            entry["done"] += r["n"] if r["status"] == TaskStatus.COMPLETED else (r["p"] or 0.0)
        return out

    def _job_json(self, row: Any, summary: JSON) -> JSON:
        total = summary.get("total", 0)
        return {
            "id": row["id"],
            "name": row["name"],
            "type": row["type"],
            "priority": row["priority"],
            "status": row["status"],
            "status_reason": row["status_reason"],
            "settings": loads(row["settings"]),
            "blend": row["blend"],
            "blender_version": row["blender_version"],
            "submitter": row["submitter"],
            "deliver": bool(row["deliver"]),
            "max_attempts": row["max_attempts"],
            "generation": row["generation"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "task_counts": summary.get("counts", {}),
            "progress": round(summary.get("done", 0.0) / total, 4) if total else 1.0,
        }

    def list_jobs(self, query: Mapping[str, str]) -> JSON:
        where, args = _job_filters(query)
        sort = _job_sort(query.get("sort", "-created"))
        limit = _int_param(query, "limit", 50, 1, 500)
        offset = _int_param(query, "offset", 0, 0, 10**9)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        total = self.store.one(f"SELECT count(*) FROM jobs{clause}", *args)
        rows = self.store.all(
            f"SELECT * FROM jobs{clause} ORDER BY {sort} LIMIT ? OFFSET ?", *args, limit, offset
        )
        summaries = self._task_summary([r["id"] for r in rows])
        return {
            "jobs": [self._job_json(r, summaries.get(r["id"], {})) for r in rows],
            "total": total[0] if total else 0,
            "limit": limit,
            "offset": offset,
        }

    # ----------------------------------------------------------- job actions
    def cancel_job(self, job_id: int) -> JSON:
        row = self._job_row(job_id)
        with self.store.tx():
            self._set_job_status(row, JobStatus.CANCELED, "canceled by a person")
            stopped = self._set_tasks(
                job_id, (TaskStatus.QUEUED, TaskStatus.ACTIVE), TaskStatus.CANCELED
            )
        self._after_tasks_changed(job_id, stopped)
        return self.get_job(job_id, with_tasks=False)

    def pause_job(self, job_id: int) -> JSON:
        row = self._job_row(job_id)
        with self.store.tx():
            self._set_job_status(row, JobStatus.PAUSED, "paused by a person")
        self.hub.publish("job", id=job_id)
        return self.get_job(job_id, with_tasks=False)

    def resume_job(self, job_id: int) -> JSON:
        row = self._job_row(job_id)
        if row["status"] != JobStatus.PAUSED:
            raise Conflict(f"job {job_id} is {row['status']}, not paused; nothing to resume")
        with self.store.tx():
            self.store.run(
                "UPDATE jobs SET status = ?, status_reason = '' WHERE id = ?",
                JobStatus.QUEUED,
                job_id,
            )
            self._refresh_job(job_id)
        self.hub.notify_work()
        self.hub.publish("job", id=job_id)
        return self.get_job(job_id, with_tasks=False)

    def requeue_job(self, job_id: int, *, which: str = "failed") -> JSON:
        """Queue tasks again: 'failed' (failed and canceled ones) or 'all'."""
        row = self._job_row(job_id)
        if which not in ("failed", "all"):
            raise BadRequest(f"'which' must be 'failed' or 'all', not {which!r}", field="which")
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
                r[0]
                for r in self.store.all(
                    f"SELECT id FROM tasks WHERE job_id = ? AND status IN ({marks})",
                    job_id,
                    *statuses,
                )
            ]
            if not ids:
                raise Conflict(f"job {job_id} has no {which} tasks to requeue")
            self.store.db.executemany(
                "UPDATE tasks SET status = 'queued', attempts = 0, worker_id = NULL,"
                " lease_expires = NULL, progress = 0, activity = '' WHERE id = ?",
                [(i,) for i in ids],
            )
            self.store.db.executemany(
                "DELETE FROM task_failures WHERE task_id = ?", [(i,) for i in ids]
            )
            if row["status"] != JobStatus.PAUSED:
                self._set_job_status(row, JobStatus.QUEUED, "")
            self._refresh_job(job_id)
        self.hub.notify_work()
        self.hub.publish("job", id=job_id)
        return self.get_job(job_id, with_tasks=False)

    def delete_job(self, job_id: int) -> None:
        self._job_row(job_id)
        active = [
            r[0]
            for r in self.store.all(
                "SELECT id FROM tasks WHERE job_id = ? AND status = 'active'", job_id
            )
        ]
        workers = [
            r[0]
            for r in self.store.all(
                "SELECT DISTINCT worker_id FROM tasks WHERE job_id = ? AND status = 'active'",
                job_id,
            )
        ]
        with self.store.tx():
            self.store.run("DELETE FROM jobs WHERE id = ?", job_id)
            for worker_id in workers:
                self._set_worker_status(worker_id, WorkerStatus.IDLE)
        self.files.remove_job(job_id)
        for task_id in active:
            self.hub.notify_task(task_id)
        log.info("job %d deleted", job_id)
        self.hub.publish("job-deleted", id=job_id)

    def _set_job_status(self, row: Any, status: JobStatus, reason: str) -> None:
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

    def _set_tasks(self, job_id: int, old: tuple[str, ...], new: TaskStatus) -> list[int]:
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
                self._set_worker_status(r["worker_id"], WorkerStatus.IDLE)
        return [r["id"] for r in rows if r["status"] == TaskStatus.ACTIVE]

    def _after_tasks_changed(self, job_id: int, stopped: list[int]) -> None:
        for task_id in stopped:
            self.hub.notify_task(task_id)
        self.hub.publish("job", id=job_id)

    def _refresh_job(self, job_id: int) -> None:
        """Move the job to the status its tasks imply (inside the caller's transaction)."""
        row = self._job_row(job_id)
        # Which statuses occur, not how often: one index probe each, so the
        # cost does not grow with the job's size.
        found = self.store.one(_STATUSES_PRESENT, job_id)
        present = {status: 1 for status, hit in zip(TaskStatus, found or (), strict=True) if hit}
        wanted = states.job_status_from_counts(JobStatus(row["status"]), present)
        if wanted == row["status"]:
            return
        reason = ""
        if wanted == JobStatus.FAILED:
            failed = self.store.one(
                "SELECT t.name, f.reason FROM tasks t LEFT JOIN task_failures f ON f.task_id = t.id"
                " WHERE t.job_id = ? AND t.status = 'failed' ORDER BY f.at DESC LIMIT 1",
                job_id,
            )
            if failed is not None:
                reason = f"task '{failed['name']}' failed: {failed['reason'] or 'no reason given'}"
        self._set_job_status(row, wanted, reason)
        log.info("job %d is %s%s", job_id, wanted, f" ({reason})" if reason else "")

    # ================================================================== tasks
    def _task_row(self, task_id: int) -> Any:
        row = self.store.one("SELECT * FROM tasks WHERE id = ?", task_id)
        if row is None:
            raise NotFound(f"there is no task {task_id}")
        return row

    def _task_json(self, row: Any) -> JSON:
        return {
            "id": row["id"],
            "job_id": row["job_id"],
            "index": row["idx"],
            "name": row["name"],
            "kind": row["kind"],
            "status": row["status"],
            "priority": row["priority"],
            "frames": loads(row["frames"]),
            "attempts": row["attempts"],
            "worker_id": row["worker_id"],
            "progress": row["progress"],
            "activity": row["activity"],
            "generation": row["generation"],
            "updated_at": row["updated_at"],
        }

    def get_task(self, task_id: int) -> JSON:
        row = self._task_row(task_id)
        out = self._task_json(row)
        out["payload"] = loads(row["payload"])
        out["failures"] = [
            dict(r)
            for r in self.store.all(
                "SELECT worker_id, reason, blamed, at FROM task_failures WHERE task_id = ?"
                " ORDER BY at",
                task_id,
            )
        ]
        return out

    def task_log(self, task_id: int, *, tail: int) -> str:
        row = self._task_row(task_id)
        path = self.files.log_path(row["job_id"], task_id)
        if not path.is_file():
            return ""
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - tail))
            return f.read().decode("utf-8", "replace")

    def _append_log(self, job_id: int, task_id: int, text: str) -> None:
        text = self._log_headers.pop(task_id, "") + text
        path = self.files.log_path(job_id, task_id)
        try:
            f = path.open("a", encoding="utf-8", errors="replace")
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = path.open("a", encoding="utf-8", errors="replace")
        with f:
            f.write(text)

    # ----------------------------------------------------- the worker's side
    def abandon_held_tasks(self, worker: JSON) -> None:
        """A worker asking for work holds nothing: whatever it held was lost in a restart."""
        for row in self.store.all(
            "SELECT id FROM tasks WHERE worker_id = ? AND status = 'active'", worker["id"]
        ):
            self._requeue_lost(
                row["id"], worker["id"], "the worker restarted and dropped it", count=True
            )

    def claim_task(self, worker: JSON) -> Assignment | None:
        if worker["disabled"]:
            return None
        claimed = scheduler.claim(
            self.store,
            worker_id=worker["id"],
            blender=worker["blender"],
            lease_seconds=self.config.lease_seconds,
        )
        if claimed is None:
            self._set_worker_status(worker["id"], WorkerStatus.IDLE)
            return None
        self._set_worker_status(worker["id"], WorkerStatus.BUSY)
        task, job = self._task_row(claimed.task_id), self._job_row(claimed.job_id)
        # Written with the task's first log text: most tasks that never log
        # (sleep) then cost no file I/O at all.
        self._log_headers[task["id"]] = (
            f"\n=== attempt {task['attempts']} on worker {worker['name']}"
            f" ({worker['id']}) at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n"
        )
        log.info(
            "task %d (%s of job %d) -> worker %s",
            task["id"],
            task["name"],
            job["id"],
            worker["name"],
        )
        self.hub.publish("task", id=task["id"], job_id=job["id"])
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
        )

    def _held_task(self, worker: JSON, task_id: int) -> Any:
        """The task if this worker still holds its lease; Conflict tells it to stop."""
        row = self.store.one("SELECT * FROM tasks WHERE id = ?", task_id)
        if row is None:
            raise Conflict(f"task {task_id} no longer exists (its job was deleted); stop it")
        if row["worker_id"] != worker["id"] or row["status"] != TaskStatus.ACTIVE:
            raise Conflict(
                f"task {task_id} is not (or no longer) assigned to this worker"
                f" ({_held_by_whom(row)}); stop it and ask for new work"
            )
        return row

    def update_task(self, worker: JSON, task_id: int, body: Any) -> None:
        if not isinstance(body, Mapping):
            raise BadRequest("the request body must be a JSON object")
        unknown = set(body) - {"progress", "activity", "log"}
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        progress, activity, text = body.get("progress"), body.get("activity"), body.get("log")
        if progress is not None and (
            isinstance(progress, bool)
            or not isinstance(progress, int | float)
            or not 0 <= progress <= 1
        ):
            raise BadRequest("'progress' must be a number from 0 to 1", field="progress")
        if activity is not None and (not isinstance(activity, str) or len(activity) > 500):
            raise BadRequest("'activity' must be text of at most 500 characters", field="activity")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_LOG_CHUNK):
            raise BadRequest(
                f"'log' must be text of at most {MAX_LOG_CHUNK} characters", field="log"
            )
        row = self._held_task(worker, task_id)
        now = time.time()
        self.store.run(
            "UPDATE tasks SET lease_expires = ?, updated_at = ?, progress = coalesce(?, progress),"
            " activity = coalesce(?, activity) WHERE id = ?",
            now + self.config.lease_seconds,
            now,
            progress,
            activity,
            task_id,
        )
        if text:
            self._append_log(row["job_id"], task_id, text)
        if progress is not None or activity is not None:
            self.hub.publish(
                "task", id=task_id, job_id=row["job_id"], progress=progress, activity=activity
            )

    def renew_lease(self, worker: JSON, task_id: int) -> None:
        self._held_task(worker, task_id)
        self.store.run(
            "UPDATE tasks SET lease_expires = ? WHERE id = ?",
            time.time() + self.config.lease_seconds,
            task_id,
        )

    def task_should_stop(self, worker: JSON, task_id: int) -> str | None:
        """Why the worker must stop this task, or None if it should go on."""
        row = self.store.one("SELECT status, worker_id FROM tasks WHERE id = ?", task_id)
        if row is None:
            return "the job was deleted"
        if row["worker_id"] != worker["id"] or row["status"] != TaskStatus.ACTIVE:
            return f"the task is {_held_by_whom(row)}"
        job = self.store.one(
            "SELECT status FROM jobs WHERE id = (SELECT job_id FROM tasks WHERE id = ?)", task_id
        )
        if job is not None and job["status"] == JobStatus.CANCELED:
            return "the job was canceled"
        return None

    def complete_task(self, worker: JSON, task_id: int) -> None:
        row = self._held_task(worker, task_id)
        with self.store.tx():
            self._set_task_status(row, TaskStatus.COMPLETED)
            self.store.run(
                "UPDATE tasks SET progress = 1, activity = 'done', worker_id = ? WHERE id = ?",
                worker["id"],
                task_id,
            )
            self._set_worker_status(worker["id"], WorkerStatus.IDLE)
            self._refresh_job(row["job_id"])
        self._log_headers.pop(task_id, None)
        log.info("task %d completed by %s", task_id, worker["name"])
        self.hub.notify_task(task_id)  # ends the worker's control long-poll
        self.hub.notify_work()
        self.hub.publish("task", id=task_id, job_id=row["job_id"])
        self.hub.publish("job", id=row["job_id"])

    def fail_task(self, worker: JSON, task_id: int, body: Any) -> JSON:
        if not isinstance(body, Mapping) or not isinstance(body.get("reason"), str):
            raise BadRequest('send {"reason": "what went wrong"} (and optionally "log")')
        # Refuse what update_task refuses too, rather than dropping it silently.
        unknown = set(body) - {"reason", "log"}
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        if body.get("log") is not None and not isinstance(body["log"], str):
            raise BadRequest("'log' must be text", field="log")
        reason = body["reason"][:2000] or "no reason given"
        text = body.get("log")
        row = self._held_task(worker, task_id)
        if isinstance(text, str) and text:
            self._append_log(row["job_id"], task_id, text[:MAX_LOG_CHUNK])
        status = self._record_failure(row, worker["id"], reason)
        self._set_worker_status(worker["id"], WorkerStatus.IDLE)
        log.info("task %d failed on %s: %s -> %s", task_id, worker["name"], reason, status)
        return {"task_status": status}

    def _workers_left_for(self, task: Any, job: Any) -> int:
        """Online, enabled workers able to open the job's file that never failed the task."""
        row = self.store.one(
            "SELECT count(*) FROM workers w WHERE w.status != 'offline' AND w.disabled = 0"
            " AND w.blender >= ? AND NOT EXISTS (SELECT 1 FROM task_failures f"
            " WHERE f.task_id = ? AND f.worker_id = w.id AND f.blamed = 1)",
            job["min_blender"],
            task["id"],
        )
        return int(row[0]) if row else 0

    def _record_failure(
        self, row: Any, worker_id: str, reason: str, *, count: bool = True, blame: bool = True
    ) -> str:
        """Take a task back from a worker: queued again, or failed when out of attempts.

        count: the attempt counts towards max_attempts. blame: the worker ran it and it
        failed there, so that worker won't get it again (a vanished worker is not blamed:
        it may come back healthy).
        """
        job = self._job_row(row["job_id"])
        with self.store.tx():
            if count:
                self.store.run(
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
                self.store.run(
                    "UPDATE tasks SET attempts = max(0, attempts - 1) WHERE id = ?", row["id"]
                )
            out_of_attempts = count and row["attempts"] >= job["max_attempts"]
            if blame and not out_of_attempts and not self._workers_left_for(row, job):
                # Retrying elsewhere is the rule, but every worker that could run it
                # already failed it: say so instead of waiting forever.
                out_of_attempts = True
                reason = f"{reason} (and no other worker is left to try it)"
            new = TaskStatus.FAILED if out_of_attempts else TaskStatus.QUEUED
            self._set_task_status(row, new)
            self.store.run(
                "UPDATE tasks SET worker_id = NULL, lease_expires = NULL,"
                " activity = ? WHERE id = ?",
                reason[:500],
                row["id"],
            )
            self._refresh_job(row["job_id"])
        self.hub.notify_task(row["id"])
        self.hub.notify_work()
        self.hub.publish("task", id=row["id"], job_id=row["job_id"])
        self.hub.publish("job", id=row["job_id"])
        return new

    def _requeue_lost(self, task_id: int, worker_id: str, reason: str, *, count: bool) -> None:
        row = self.store.one("SELECT * FROM tasks WHERE id = ?", task_id)
        if row is None or row["status"] != TaskStatus.ACTIVE or row["worker_id"] != worker_id:
            return
        self._append_log(row["job_id"], task_id, f"\n=== {reason} ===\n")
        # Lost, not failed: the worker vanished or left, so it is not blamed.
        self._record_failure(row, worker_id, reason, count=count, blame=False)

    def _set_task_status(self, row: Any, status: TaskStatus) -> None:
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

    # ---------------------------------------------------------------- outputs
    async def put_output(
        self,
        worker: JSON,
        task_id: int,
        name: str,
        *,
        frame: int | None,
        sha: str | None,
        chunks: AsyncIterator[bytes],
    ) -> JSON:
        check_output_name(name)
        if sha is not None:
            check_sha256(sha)
        row = self._held_task(worker, task_id)
        job_id = row["job_id"]
        tmp, actual, size = await self.files.receive_output(name, chunks, sha=sha)
        try:
            # The lease may have gone, or the job been deleted, while the bytes came
            # in: check again before the file lands (it used to replace the stored
            # output first, leaving a file the outputs table did not describe).
            self._held_task(worker, task_id)
            self.files.commit_output(tmp, job_id, name)
        finally:
            tmp.unlink(missing_ok=True)
        now = time.time()
        with self.store.tx():
            self.store.run(
                "INSERT INTO outputs (job_id, task_id, name, frame, sha256, size, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, name) DO UPDATE SET"
                " task_id = excluded.task_id, frame = excluded.frame, sha256 = excluded.sha256,"
                " size = excluded.size, delivered_path = NULL, delivery_note = '',"
                " created_at = excluded.created_at",
                job_id,
                task_id,
                name,
                frame,
                actual,
                size,
                now,
            )
            self.store.run(
                "UPDATE tasks SET lease_expires = ? WHERE id = ?",
                now + self.config.lease_seconds,
                task_id,
            )
        out = self.deliver_output(job_id, name)
        self.hub.publish("output", job_id=job_id, name=name, frame=frame)
        return out

    def deliver_output(self, job_id: int, name: str) -> JSON:
        job = self._job_row(job_id)
        row = self.store.one("SELECT * FROM outputs WHERE job_id = ? AND name = ?", job_id, name)
        if row is None:
            raise NotFound(f"job {job_id} has no output named {name!r}")
        if not job["deliver"]:
            return self._output_json(row)
        settings = loads(job["settings"]) or {}
        pattern = settings.get("output")
        if not pattern:
            return self._output_json(row)
        folder = output_folder(str(pattern))
        if folder is None:
            result = Delivery(
                None, f"{pattern!r} is not a folder on this machine; fetch the output from the farm"
            )
        else:
            result = deliver(
                self.files.output_path(job_id, name),
                row["sha256"],
                folder / name,
                overwrite=bool(settings.get("overwrite", True)),
            )
        self.store.run(
            "UPDATE outputs SET delivered_path = ?, delivery_note = ? WHERE id = ?",
            result.path,
            result.note,
            row["id"],
        )
        # Log trouble once: the sweep retries failed deliveries every few
        # seconds, and used to append the same line to the log each time.
        noteworthy = result.path is None or result.note.startswith("replaced")
        if noteworthy and result.note != row["delivery_note"]:
            self._append_log(job_id, row["task_id"], f"\n=== output {name}: {result.note} ===\n")
        return self._output_json(self.store.one("SELECT * FROM outputs WHERE id = ?", row["id"]))

    def list_outputs(self, job_id: int) -> list[JSON]:
        self._job_row(job_id)
        return [
            self._output_json(r)
            for r in self.store.all(
                "SELECT * FROM outputs WHERE job_id = ? ORDER BY frame, name", job_id
            )
        ]

    def output_file(self, job_id: int, name: str) -> Path:
        self._job_row(job_id)
        if (
            self.store.one(
                "SELECT 1 FROM outputs WHERE job_id = ? AND name = ?",
                job_id,
                check_output_name(name),
            )
            is None
        ):
            raise NotFound(f"job {job_id} has no output named {name!r}")
        return self.files.output_path(job_id, name)

    def _output_json(self, row: Any) -> JSON:
        return {
            "name": row["name"],
            "frame": row["frame"],
            "sha256": row["sha256"],
            "size": row["size"],
            "task_id": row["task_id"],
            "delivered_path": row["delivered_path"],
            "delivery_note": row["delivery_note"],
            "created_at": row["created_at"],
        }

    # ============================================================ background
    def sweep(self, now: float | None = None) -> None:
        """Expire leases of silent workers, mark them offline, retry failed deliveries."""
        now = time.time() if now is None else now
        for task_id, worker_id in scheduler.expired_leases(self.store, now):
            log.warning("task %d: worker %s stopped reporting; requeueing", task_id, worker_id)
            self._requeue_lost(
                task_id,
                worker_id,
                f"worker {worker_id} stopped responding (lease expired)",
                count=True,
            )
        for row in self.store.all(
            "SELECT id FROM workers WHERE status != 'offline' AND last_seen < ?",
            now - self.config.lease_seconds - IDLE_POLL_MAX,
        ):
            log.warning("worker %s went offline", row["id"])
            self._set_worker_status(row["id"], WorkerStatus.OFFLINE)
        for row in self.store.all(
            "SELECT o.job_id, o.name FROM outputs o JOIN jobs j ON j.id = o.job_id"
            " WHERE o.delivered_path IS NULL AND j.deliver = 1"
            " AND o.delivery_note LIKE 'could not write%' AND o.created_at < ?",
            now - 5,
        ):
            self.deliver_output(row["job_id"], row["name"])

    def missing_blobs(self, body: Any) -> list[str]:
        if not isinstance(body, Mapping) or not isinstance(body.get("hashes"), list):
            raise BadRequest('send {"hashes": ["<sha256>", ...]}')
        hashes = body["hashes"]
        if len(hashes) > MAX_FILES_PER_JOB:
            raise BadRequest(f"ask about at most {MAX_FILES_PER_JOB} hashes at a time")
        return sorted({check_sha256(h) for h in hashes if not self.files.has_blob(check_sha256(h))})


def _held_by_whom(task: Any) -> str:
    """For refusals: "queued", or "active on another worker" rather than a bare
    "active", which read as if the asking worker still held it."""
    if task["status"] == TaskStatus.ACTIVE:
        return "active on another worker"
    return str(task["status"])


# ---------------------------------------------------------------- filters
_GLOB_CHARS = set("*?[")
_SORTS = {
    "created": "created_at",
    "updated": "updated_at",
    "priority": "priority",
    "name": "name",
    "status": "status",
    "id": "id",
}
_JOB_FILTERS = ("status", "type", "name", "submitter", "after", "before", "sort", "limit", "offset")


def _int_param(query: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    text = query.get(key)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"'{key}' must be a whole number, not {text!r}", field=key) from None
    if not lo <= value <= hi:
        raise BadRequest(f"'{key}' must be between {lo} and {hi}", field=key)
    return value


def _time_param(text: str, key: str) -> float:
    # "nan", "inf" and dates timestamp() cannot convert ("0001-01-01" raises
    # ValueError, some OverflowError) used to be a 500 or to match nothing.
    problem = BadRequest(
        f"'{key}' must be a date like 2026-11-29 or 2026-11-29T14:00,"
        f" or seconds since 1970; got {text!r}",
        field=key,
    )
    try:
        value = float(text)
    except ValueError:
        try:
            from datetime import datetime

            value = datetime.fromisoformat(text).timestamp()
        except (ValueError, OverflowError, OSError):
            raise problem from None
    if not math.isfinite(value):
        raise problem
    return value


def _job_filters(query: Mapping[str, str]) -> tuple[list[str], list[Any]]:
    unknown = set(query) - set(_JOB_FILTERS)
    if unknown:
        raise BadRequest(
            f"unknown filter(s) {', '.join(sorted(unknown))}; use {', '.join(_JOB_FILTERS)}"
        )
    where: list[str] = []
    args: list[Any] = []
    if query.get("status"):
        wanted = [s.strip() for s in query["status"].split(",") if s.strip()]
        bad = [s for s in wanted if s not in set(JobStatus)]
        if bad:
            raise BadRequest(
                f"unknown status {', '.join(bad)}; use {', '.join(JobStatus)}", field="status"
            )
        where.append(f"status IN ({','.join('?' * len(wanted))})")
        args += wanted
    if query.get("type"):
        types = [t.strip() for t in query["type"].split(",") if t.strip()]
        where.append(f"type IN ({','.join('?' * len(types))})")
        args += types
    for key in ("name", "submitter"):
        text = query.get(key)
        if not text:
            continue
        if _GLOB_CHARS & set(text):
            where.append(f"{key} GLOB ?")
            args.append(text)
        else:
            where.append(f"instr(lower({key}), lower(?)) > 0")
            args.append(text)
    if query.get("after"):
        where.append("created_at >= ?")
        args.append(_time_param(query["after"], "after"))
    if query.get("before"):
        where.append("created_at < ?")
        args.append(_time_param(query["before"], "before"))
    return where, args


def _job_sort(text: str) -> str:
    descending = text.startswith("-")
    key = text.lstrip("-")
    if key not in _SORTS:
        raise BadRequest(
            f"cannot sort by {key!r}; use one of {', '.join(_SORTS)} (prefix - for descending)",
            field="sort",
        )
    return f"{_SORTS[key]} {'DESC' if descending else 'ASC'}, id {'DESC' if descending else 'ASC'}"


def _string_list(value: Any, field: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and len(v) <= 200 for v in value)
        or len(value) > 64
    ):
        raise BadRequest(f"'{field}' must be a list of at most 64 short strings", field=field)
    return list(value)
