"""The farm's operations: everything the API does, as plain methods.

Each method validates, changes the store inside one transaction (status
changes checked against `states`), then tells the hub who should wake up.
The HTTP layer only parses requests and serialises results.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.core.protocol import (
    JobStatus,
    TaskSpec,
    TaskStatus,
    WorkerStatus,
    parse_blender_version,
)
from coordinator.server import job_types, views
from coordinator.server.config import FarmConfig
from coordinator.server.errors import BadRequest, Conflict
from coordinator.server.filestore import (
    FileStore,
    check_relpath,
    check_sha256,
)
from coordinator.server.hub import Hub
from coordinator.server.job_types.schema import JSON, Setting, SettingsError, validate
from coordinator.server.services.context import FarmContext, version_number
from coordinator.server.services.deliveries import DeliveryService, redeliver
from coordinator.server.services.sweeps import SweepService
from coordinator.server.services.tasks import TaskService
from coordinator.server.services.workers import WorkerService
from coordinator.server.store import Store, dumps, loads

log = logging.getLogger(__name__)

MAX_FILES_PER_JOB = 100_000


@dataclass
class _Finished:
    """What a job's current tasks finished, for a regenerate to keep."""

    frames: dict[int, set[str]] = field(default_factory=dict)  # frame -> signatures that made it
    tasks: dict[tuple[str, tuple[int, ...]], int] = field(default_factory=dict)  # -> task id


def validate_body(schema: tuple[Setting, ...], body: Any, *, extra: Iterable[str] = ()) -> JSON:
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


def check_blender_version(text: str) -> str:
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
        check=check_blender_version,
    ),
    Setting("submitter", "str", "Submitter", default="", max_length=200),
    Setting("deliver", "bool", "Deliver", default=True),
    Setting("max_attempts", "int", "Attempts", default=3, minimum=1, maximum=20),
)


class Farm:
    def __init__(self, config: FarmConfig, store: Store, files: FileStore, hub: Hub) -> None:
        self.ctx = FarmContext(config, store, files, hub)
        self.sweeps = SweepService(self.ctx)
        self.deliveries = DeliveryService(self.ctx)
        self.workers = WorkerService(self.ctx)
        self.tasks = TaskService(self.ctx)
        self.config, self.store, self.files, self.hub = config, store, files, hub

    # ================================================================ workers

    # =================================================================== jobs
    def submit_job(self, body: Any) -> JSON:
        data = validate_body(JOB_BODY, body, extra=("settings", "files"))
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
                version_number(version) if version else 0,
                data["submitter"],
                int(data["deliver"]),
                data["max_attempts"],
                now,
                now,
            ).lastrowid
            assert job_id is not None
            self.ctx.insert_tasks(job_id, tasks, generation=1)
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

    def get_job(
        self, job_id: int, *, with_tasks: bool = True, all_generations: bool = False
    ) -> JSON:
        row = self.ctx.job_row(job_id)
        tasks = None
        if with_tasks:
            # Tasks of earlier generations (replaced by a regenerate) stay as the
            # job's history, with their logs; they are listed only when asked for.
            where, args = (
                ("", ()) if all_generations else (" AND generation = ?", (row["generation"],))
            )
            tasks = self.store.all(
                f"SELECT * FROM tasks WHERE job_id = ?{where} ORDER BY generation, idx",
                job_id,
                *args,
            )
        return views.job_json(self.store, row, tasks=tasks)

    def list_tasks(self, job_id: int, query: Mapping[str, str]) -> JSON:
        """A page of the job's tasks in their order, optionally of some statuses only:
        a 100,000-task job is not sent whole to show 100 rows."""
        row = self.ctx.job_row(job_id)
        where, args = ["job_id = ?"], list[Any]([job_id])
        generations = query.get("generation", "current")
        if generations == "current":
            where.append("generation = ?")
            args.append(row["generation"])
        elif generations != "all":
            raise BadRequest("'generation' must be 'current' or 'all'", field="generation")
        statuses = sorted({s for s in query.get("status", "").split(",") if s})
        unknown = sorted(set(statuses) - {s.value for s in TaskStatus})
        if unknown:
            known = ", ".join(s.value for s in TaskStatus)
            raise BadRequest(f"unknown task status {unknown[0]!r}; use {known}", field="status")
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        limit = _int_param(query, "limit", 100, 1, 1000)
        offset = _int_param(query, "offset", 0, 0, 10**9)
        clause = " AND ".join(where)
        total = self.store.one(f"SELECT count(*) FROM tasks WHERE {clause}", *args)
        rows = self.store.all(
            f"SELECT * FROM tasks WHERE {clause} ORDER BY generation, idx LIMIT ? OFFSET ?",
            *args,
            limit,
            offset,
        )
        current = row["generation"]
        return {
            "tasks": [views.task_json(t, current=t["generation"] == current) for t in rows],
            "total": total[0] if total else 0,
            "limit": limit,
            "offset": offset,
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
        return {
            "jobs": views.jobs_json(self.store, rows),
            "total": total[0] if total else 0,
            "limit": limit,
            "offset": offset,
        }

    # ----------------------------------------------------------- job actions
    def cancel_job(self, job_id: int) -> JSON:
        row = self.ctx.job_row(job_id)
        with self.store.tx():
            self.ctx.set_job_status(row, JobStatus.CANCELED, "canceled by a person")
            stopped = self.ctx.set_tasks_status(
                job_id, (TaskStatus.QUEUED, TaskStatus.ACTIVE), TaskStatus.CANCELED
            )
        self.ctx.tasks_stopped(job_id, stopped)
        return self.get_job(job_id, with_tasks=False)

    def pause_job(self, job_id: int) -> JSON:
        row = self.ctx.job_row(job_id)
        with self.store.tx():
            self.ctx.set_job_status(row, JobStatus.PAUSED, "paused by a person")
        self.hub.publish("job", id=job_id)
        return self.get_job(job_id, with_tasks=False)

    def resume_job(self, job_id: int) -> JSON:
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
        return self.get_job(job_id, with_tasks=False)

    def requeue_job(self, job_id: int, *, which: str = "failed") -> JSON:
        """Queue tasks again: 'failed' (failed and canceled ones) or 'all'."""
        row = self.ctx.job_row(job_id)
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
                    f"SELECT id FROM tasks WHERE job_id = ? AND generation = ?"
                    f" AND status IN ({marks})",
                    job_id,
                    row["generation"],
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
                self.ctx.set_job_status(row, JobStatus.QUEUED, "")
            self.ctx.refresh_job(job_id)
        self.hub.notify_work()
        self.hub.publish("job", id=job_id)
        return self.get_job(job_id, with_tasks=False)

    def delete_job(self, job_id: int) -> None:
        self.ctx.job_row(job_id)
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
        tasks = [r[0] for r in self.store.all("SELECT id FROM tasks WHERE job_id = ?", job_id)]
        with self.store.tx():
            self.store.run("DELETE FROM jobs WHERE id = ?", job_id)
            for worker_id in workers:
                self.ctx.set_worker_status(worker_id, WorkerStatus.IDLE)
        self.files.remove_job(job_id)
        for task_id in tasks:
            self.ctx.log_headers.pop(task_id, None)
        for task_id in active:
            self.hub.notify_task(task_id)
        log.info("job %d deleted", job_id)
        self.hub.publish("job-deleted", id=job_id)

    # ------------------------------------------- regenerate, priority, blocklist
    def regenerate_job(
        self, job_id: int, *, settings: Any = None, keep_completed: Any = True
    ) -> JSON:
        """Compile the job's tasks again from its settings, with `settings` changed.

        The job keeps its id, files, outputs and earlier tasks (an older
        generation, logs included). A new task whose frames the current tasks
        all finished, with the same payload apart from the frames, is kept as
        completed unless keep_completed is false. Running tasks are stopped:
        their workers get 409 on every report and "stop" from the control poll.
        """
        changes = {} if settings is None else settings
        if not isinstance(changes, Mapping):
            raise BadRequest(
                "'settings' must be an object of the settings to change", field="settings"
            )
        if not isinstance(keep_completed, bool):
            raise BadRequest("'keep_completed' must be true or false", field="keep_completed")
        row = self.ctx.job_row(job_id)
        self.ctx.check_job_action(row, "regenerate")
        old = loads(row["settings"]) or {}
        new, tasks = _recompile(row["type"], {**old, **changes})
        done = self._finished_work(job_id, row["generation"]) if keep_completed else _Finished()
        generation = row["generation"] + 1
        with self.store.tx():
            stopped = self.ctx.set_tasks_status(
                job_id, (TaskStatus.QUEUED, TaskStatus.ACTIVE), TaskStatus.CANCELED
            )
            self.store.run(
                "UPDATE jobs SET settings = ?, generation = ? WHERE id = ?",
                dumps(new),
                generation,
                job_id,
            )
            self.ctx.insert_tasks(job_id, tasks, generation=generation)
            kept = self._keep_finished(job_id, generation, tasks, done)
            held = row["status"] == JobStatus.PAUSED  # a person's pause holds
            self.ctx.set_job_status(row, JobStatus.PAUSED if held else JobStatus.QUEUED, "")
            self.ctx.refresh_job(job_id)
            note = (
                f"regenerated as generation {generation} ({_describe_changes(old, new)});"
                f" {len(kept)} of {len(tasks)} tasks kept"
            )
            self.store.run("UPDATE jobs SET status_reason = ? WHERE id = ?", note, job_id)
        log.info("job %d %s", job_id, note)
        if kept and row["deliver"] and new.get("output") != old.get("output"):
            # finished frames follow the output to its new folder
            redeliver(self.store, job_id, {f for frames in kept.values() for f in frames})
        self.ctx.tasks_stopped(job_id, stopped)
        self.hub.notify_work()
        out = self.get_job(job_id, with_tasks=False)
        out["regenerated"] = {"tasks": len(tasks), "kept": len(kept), "stopped": len(stopped)}
        return out

    def _finished_work(self, job_id: int, generation: int) -> _Finished:
        """What the tasks of this generation finished, for a regenerate to keep: only
        frames that no unfinished task of the generation still has to produce."""
        done = _Finished()
        unfinished: set[int] = set()
        for r in self.store.all(
            "SELECT id, kind, payload, frames, status FROM tasks"
            " WHERE job_id = ? AND generation = ? AND frames != '[]'",  # framed tasks only
            job_id,
            generation,
        ):
            frames = tuple(loads(r["frames"]) or ())
            if r["status"] != TaskStatus.COMPLETED:
                unfinished.update(frames)
                continue
            signature = _render_signature(r["kind"], loads(r["payload"]) or {})
            done.tasks[(signature, frames)] = r["id"]
            for frame in frames:
                done.frames.setdefault(frame, set()).add(signature)
        for frame in unfinished:
            done.frames.pop(frame, None)
        return done

    def _keep_finished(
        self, job_id: int, generation: int, tasks: list[TaskSpec], done: _Finished
    ) -> dict[int, tuple[int, ...]]:
        """Mark the new tasks whose frames are all finished as completed.

        They are born completed in the transaction that inserts them, so no
        worker ever sees them queued (a creation, not a queued -> completed
        move). Returns their ids and frames.
        """
        if not done.frames:
            return {}
        ids = {
            r["idx"]: r["id"]
            for r in self.store.all(
                "SELECT id, idx FROM tasks WHERE job_id = ? AND generation = ?", job_id, generation
            )
        }
        kept: dict[int, tuple[int, ...]] = {}
        same: list[tuple[int, int]] = []  # (new id, the old task that did exactly this)
        for idx, spec in enumerate(tasks):
            signature = _render_signature(spec.kind, spec.payload)
            if spec.frames and all(signature in done.frames.get(f, ()) for f in spec.frames):
                kept[ids[idx]] = spec.frames
                old = done.tasks.get((signature, tuple(spec.frames)))
                if old is not None:
                    same.append((ids[idx], old))
        self.store.db.executemany(
            "UPDATE tasks SET status = 'completed', progress = 1, activity = ? WHERE id = ?",
            [(f"kept: finished before generation {generation}", task_id) for task_id in kept],
        )
        # An unchanged task's outputs now belong to its successor (tasks that
        # depend on it find them there); other outputs stay with the old task.
        self.store.db.executemany("UPDATE outputs SET task_id = ? WHERE task_id = ?", same)
        return kept

    def set_job_priority(self, job_id: int, priority: Any) -> JSON:
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
            raise BadRequest("'priority' must be a whole number from 0 to 100", field="priority")
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
        return self.get_job(job_id, with_tasks=False)

    def clear_blocklist(self, job_id: int, *, worker_id: Any = None) -> JSON:
        """Forgive workers their failures on this job, so that they get its tasks again.

        The failures stay in each task's history, no longer held against the worker.
        """
        if worker_id is not None and not isinstance(worker_id, str):
            raise BadRequest("'worker_id' must be a worker's id", field="worker_id")
        row = self.ctx.job_row(job_id)
        self.ctx.check_job_action(row, "clear-blocklist")
        listed = [
            b["worker_id"] for b in views.job_blocklists(self.store, [job_id]).get(job_id, [])
        ]
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
        return self.get_job(job_id, with_tasks=False)

    # ------------------------------------------------- a person's task actions

    # ----------------------------------------------- a person's worker actions

    # ================================================================== tasks

    # ----------------------------------------------------- the worker's side

    # ---------------------------------------------------------------- outputs

    # ============================================================ background

    def missing_blobs(self, body: Any) -> list[str]:
        if not isinstance(body, Mapping) or not isinstance(body.get("hashes"), list):
            raise BadRequest('send {"hashes": ["<sha256>", ...]}')
        hashes = body["hashes"]
        if len(hashes) > MAX_FILES_PER_JOB:
            raise BadRequest(f"ask about at most {MAX_FILES_PER_JOB} hashes at a time")
        return sorted({check_sha256(h) for h in hashes if not self.files.has_blob(check_sha256(h))})


# ------------------------------------------------------- a person's actions
def _recompile(type_name: str, settings: Mapping[str, Any]) -> tuple[JSON, list[TaskSpec]]:
    try:
        job_type = job_types.get(type_name)
        valid = job_type.validate(dict(settings))
        return valid, job_type.compile(valid)
    except SettingsError as ex:
        raise BadRequest(str(ex), field=ex.field) from ex
    except ValueError as ex:  # a check deeper in compile()
        raise BadRequest(f"settings: {ex}") from ex


def _render_signature(kind: str, payload: Mapping[str, Any]) -> str:
    """What a task renders apart from which frames: a finished frame is only kept
    by a regenerate when the new task would render it the same way."""
    return dumps([kind, {k: v for k, v in payload.items() if k != "frames"}])


def _describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    def short(value: Any) -> str:
        return _clip(json.dumps(value, ensure_ascii=False), 40)

    changed = [
        f"{key} {short(old.get(key))} → {short(new.get(key))}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    return ", ".join(changed) or "same settings"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


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
        wanted = sorted({s.strip() for s in query["status"].split(",") if s.strip()})
        bad = [s for s in wanted if s not in set(JobStatus)]
        if bad:
            raise BadRequest(
                f"unknown status {', '.join(bad)}; use {', '.join(JobStatus)}", field="status"
            )
        where.append(f"status IN ({','.join('?' * len(wanted))})")
        args += wanted
    if query.get("type"):
        types = sorted({t.strip() for t in query["type"].split(",") if t.strip()})
        where.append(f"type IN ({','.join('?' * len(types))})")
        args += types
    for key in ("name", "submitter"):
        text = query.get(key)
        if not text:
            continue
        if _GLOB_CHARS & set(text):
            # Case-insensitive like the substring match (ASCII letters, as
            # SQLite's lower()): "shot_*" finds "Shot_010" too.
            where.append(f"lower({key}) GLOB lower(?)")
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
