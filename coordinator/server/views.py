"""The one place that writes each shape the API sends: rows of the store in,
the wire models of `coordinator.core.models` out (mypy holds each function
to its model, and the API tests hold the answers to the generated document).

A job is shown with what a person can do with it and what holds it up, so
its view reads its task counts, its blocklist and the online workers too;
those queries live here with the shape they feed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from coordinator.core import models
from coordinator.core.protocol import JobStatus, TaskStatus, WorkerStatus
from coordinator.server import job_types, pools, scheduler, states
from coordinator.server.job_types.schema import JSON
from coordinator.server.store import Store, loads


# ------------------------------------------------------------------ jobs
def jobs_json(store: Store, rows: Sequence[Any]) -> list[models.Job]:
    """Jobs as the API lists them, with what a person can do and what holds them up."""
    ids = [r["id"] for r in rows]
    summaries, blocklists = _task_summary(store, ids), job_blocklists(store, ids)
    waiting = any(r["status"] in (JobStatus.QUEUED, JobStatus.ACTIVE) for r in rows)
    online = _online_workers(store) if waiting else []
    out = []
    for row in rows:
        summary, blocked = summaries.get(row["id"], {}), blocklists.get(row["id"], [])
        job = _job_json(row, summary, blocked, online)
        job["eta_seconds"] = _job_eta(store, row, summary, blocked, online)
        out.append(job)
    return out


def job_json(store: Store, row: Any, *, tasks: Sequence[Any] | None = None) -> models.JobDetail:
    """One job: as listed, with its tasks when given and its job type's report."""
    out: models.JobDetail = {
        **jobs_json(store, [row])[0],
        "frame_seconds": _frame_seconds(store, row),
    }
    if tasks is not None:
        out["tasks"] = [task_json(t, current=t["generation"] == row["generation"]) for t in tasks]
    report = _job_report(store, row)
    if report is not None:
        out["report"] = report
    return out


def _job_json(
    row: Any, summary: JSON, blocked: list[models.BlocklistEntry], online: list[Any]
) -> models.Job:
    counts, total = summary.get("counts", {}), summary.get("total", 0)
    actions = states.job_actions(row["status"], counts, blocklisted=bool(blocked))
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
        "origin": row["origin"],
        "requires_tags": loads(row["requires_tags"]) or [],
        "needs": cast("models.JobNeeds", loads(row["needs"]) or {}),
        "deliver": bool(row["deliver"]),
        "max_attempts": row["max_attempts"],
        "generation": row["generation"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "task_counts": counts,
        "progress": round(summary.get("done", 0.0) / total, 4) if total else 1.0,
        "eta_seconds": None,
        "blocklist": blocked,
        "warning": _no_worker_warning(row, counts, online, {b["worker_id"] for b in blocked}),
        "actions": cast("list[models.JobAction]", actions),
    }


# How many of a job's finished tasks its ETA takes the median of: a bounded read,
# so a job of 100,000 tasks costs what one of 200 does.
ETA_SAMPLE = 101

# The finished tasks the ETA measures, latest in the job's order first: the
# tasks_runnable index read backwards, stopping after ETA_SAMPLE rows.
_ETA_DURATIONS = """
SELECT completed_at - claimed_at AS took FROM tasks
WHERE job_id = ? AND status = 'completed' AND generation = ? AND claimed_at IS NOT NULL
ORDER BY priority, idx DESC
LIMIT ?
"""


def _job_eta(
    store: Store,
    job: Any,
    summary: JSON,
    blocked: list[models.BlocklistEntry],
    online: list[Any],
) -> float | None:
    """The job's `eta_seconds` (see models.Job): two bounded queries, only for a
    queued or active job that has finished a task and that some worker can run.
    Workers resting outside their working hours count only when no other can run
    it: then the wait until the first wakes comes first."""
    counts = summary.get("counts", {})
    if job["status"] not in (JobStatus.QUEUED, JobStatus.ACTIVE):
        return None
    if not counts.get(TaskStatus.COMPLETED):
        return None
    unable = {b["worker_id"] for b in blocked}
    able = [w for w in able_workers(job, online) if w["id"] not in unable]
    now, asleep = time.time(), 0.0
    workers = sum(1 for w in able if w["status"] != WorkerStatus.RESTING)
    if not workers and able:  # only resting ones: from when the first wakes
        workers = len(able)
        asleep = max(0.0, min(w["resting_until"] or now for w in able) - now)
    if not workers:
        return None
    took = [
        r["took"]
        for r in store.all(_ETA_DURATIONS, job["id"], job["generation"], ETA_SAMPLE)
        if r["took"] is not None and r["took"] >= 0
    ]
    if not took:  # finished before schema 6 measured tasks
        return None
    running = store.all(
        "SELECT progress, claimed_at FROM tasks WHERE job_id = ? AND status = 'active'"
        " AND generation = ?",
        job["id"],
        job["generation"],
    )
    return asleep + estimate_eta(
        statistics.median(took),
        queued=counts.get(TaskStatus.QUEUED, 0),
        running=[(r["progress"], r["claimed_at"]) for r in running],
        workers=workers,
        now=now,
    )


def estimate_eta(
    median: float,
    *,
    queued: int,
    running: Sequence[tuple[float, float | None]],
    workers: int,
    now: float,
) -> float:
    """Seconds until the work left is done: each queued task takes `median`; a running
    one (progress, claimed_at) has left what its progress or its time so far says is
    left, whichever says less; `workers` take a task each at a time."""
    left = float(queued)
    for progress, claimed_at in running:
        elapsed = 0.0 if claimed_at is None or median <= 0 else (now - claimed_at) / median
        left += 1.0 - min(1.0, max(progress, elapsed))
    tasks = queued + len(running)
    if tasks == 0:
        return 0.0
    return round(median * left / max(1, min(workers, tasks)), 1)


# The finished tasks the median frame time reads: the latest ETA_SAMPLE, as the ETA's.
_FRAME_TIMES = """
SELECT last_frame_saved_s - blender_ready_s AS took, frames FROM tasks
WHERE job_id = ? AND status = 'completed' AND generation = ?
ORDER BY priority, idx DESC
LIMIT ?
"""


def _frame_seconds(store: Store, job: Any) -> float | None:
    """The job's `frame_seconds` (see models.JobDetail): one bounded query; tasks
    that measured no render (sleep, merge, before schema 6) are left out."""
    each = []
    for r in store.all(_FRAME_TIMES, job["id"], job["generation"], ETA_SAMPLE):
        frames = len(loads(r["frames"]) or [])
        if r["took"] is not None and r["took"] >= 0 and frames:
            each.append(r["took"] / frames)
    return round(statistics.median(each), 3) if each else None


def _job_report(store: Store, row: Any) -> JSON | None:
    """The job type's own summary (progressive: samples reached per frame)."""
    job_type = job_types.REGISTRY.get(row["type"])
    if job_type is None or job_type.report_fn is None:
        return None
    tasks = store.all(
        "SELECT kind, status, frames, payload FROM tasks WHERE job_id = ? AND generation = ?",
        row["id"],
        row["generation"],
    )
    return job_type.report_fn(
        [
            {
                "kind": t["kind"],
                "status": t["status"],
                "frames": loads(t["frames"]),
                "payload": loads(t["payload"]),
            }
            for t in tasks
        ]
    )


def job_blocklists(store: Store, job_ids: list[int]) -> dict[int, list[models.BlocklistEntry]]:
    """Per job, the workers that failed enough of its tasks to get no more of them."""
    if not job_ids:
        return {}
    marks = ",".join("?" * len(job_ids))
    rows = store.all(
        "SELECT f.job_id, f.worker_id, count(*) AS n, w.name FROM task_failures f"
        " LEFT JOIN workers w ON w.id = f.worker_id"
        f" WHERE f.blamed = 1 AND f.job_id IN ({marks})"
        " GROUP BY f.job_id, f.worker_id HAVING n >= ? ORDER BY w.name, f.worker_id",
        *job_ids,
        scheduler.BLOCKLIST_THRESHOLD,
    )
    out: dict[int, list[models.BlocklistEntry]] = {}
    for r in rows:
        out.setdefault(r["job_id"], []).append(
            {"worker_id": r["worker_id"], "name": r["name"] or "", "failures": r["n"]}
        )
    return out


def _online_workers(store: Store) -> list[Any]:
    return store.all(
        "SELECT id, status, resting_until, blender, blender_version, disabled, tags, devices,"
        " capabilities FROM workers WHERE status != 'offline'"
    )


def _task_summary(store: Store, job_ids: list[int]) -> dict[int, JSON]:
    """Per job, its current tasks counted by status, and how much of them is done."""
    if not job_ids:
        return {}
    marks = ",".join("?" * len(job_ids))
    rows = store.all(
        f"SELECT job_id, status, count(*) AS n, sum(progress) AS p FROM tasks"
        f" WHERE job_id IN ({marks})"
        " AND generation = (SELECT generation FROM jobs WHERE jobs.id = tasks.job_id)"
        " GROUP BY job_id, status",
        *job_ids,
    )
    out: dict[int, JSON] = {}
    for r in rows:
        entry = out.setdefault(r["job_id"], {"counts": {}, "done": 0.0, "total": 0})
        entry["counts"][r["status"]] = r["n"]
        entry["total"] += r["n"]
        entry["done"] += r["n"] if r["status"] == TaskStatus.COMPLETED else (r["p"] or 0.0)
    return out


def _no_worker_warning(
    job: Any, counts: Mapping[str, int], online: list[Any], blocked: set[str]
) -> str:
    """Why a job with queued work may wait for ever, or "" when a worker can take it
    (or when it is paused: then that is why).

    Such a job is not failed: the right worker may come online any moment. The
    warning is worked out when the job is read, so it is never stale. Workers
    resting outside their working hours take nothing now: when only they could
    run the job, the warning says how many and until when.
    """
    if job["status"] == JobStatus.PAUSED and counts.get("queued"):
        return (
            "the job is paused: its queued tasks start when it is resumed (lanfarm resume"
            f" {job['id']}, or Resume in the add-on or the dashboard)"
        )
    if job["status"] not in (JobStatus.QUEUED, JobStatus.ACTIVE) or not counts.get("queued"):
        return ""
    why = _why_none_can(job, online, blocked)  # even once the resting ones wake
    if why:
        return why
    awake = [w for w in online if w["status"] != WorkerStatus.RESTING]
    if not _why_none_can(job, awake, blocked):
        return ""
    resting = resting_able(job, online, blocked)
    first = min(w["resting_until"] or 0 for w in resting)
    many = len(resting) > 1
    return (
        f"{len(resting)} worker{'s' if many else ''} able to run it"
        f" {'are' if many else 'is'} resting until"
        f" {time.strftime('%H:%M', time.localtime(first))} (working hours); the job"
        f" starts when {'the first wakes' if many else 'it wakes'}"
    )


def resting_able(job: Any, online: list[Any], blocked: set[str]) -> list[Any]:
    """The resting workers that could run the job once their working hours begin."""
    return [
        w
        for w in able_workers(job, online)
        if w["status"] == WorkerStatus.RESTING and w["id"] not in blocked
    ]


def _why_none_can(job: Any, online: list[Any], blocked: set[str]) -> str:
    """Why none of these workers can take the job's work ("" when one can)."""
    if not online:
        return (
            "no worker is online; start one (lanfarm-worker on a farm machine, or the"
            " add-on's Start Worker) to render this job"
        )
    enabled = [w for w in online if not w["disabled"]]
    if not enabled:
        return "every online worker is disabled; enable one to render this job"
    able = [w for w in enabled if w["blender"] >= job["min_blender"]]
    if not able:
        need = f"{job['min_blender'] // 1000}.{job['min_blender'] % 1000}"
        have = ", ".join(sorted({w["blender_version"] for w in enabled}))
        return (
            f"no online worker has Blender {need} or newer (they have {have}); start a"
            " worker with a newer Blender to render this job"
        )
    required = pools.row_requirements(job)
    missing = pools.unmet(required, [pools.row_offers(w) for w in able])
    if missing:
        return (
            f"{missing}; start a worker with what the job requires (worker --tag for a"
            " tag), or tag one (lanfarm workers tag WORKER TAGS)"
        )
    if all(w["id"] in blocked for w in able_workers(job, online)):
        return (
            "every worker able to run it is blocklisted for this job after failing its"
            " tasks; fix the job, then clear the blocklist"
        )
    return ""


def able_workers(job: Any, online: list[Any]) -> list[Any]:
    """The online workers that may run the job: enabled, a new enough Blender, and
    offering what it requires (pools.py); the scheduler's own conditions."""
    required = pools.row_requirements(job)
    return [
        w
        for w in online
        if not w["disabled"]
        and w["blender"] >= job["min_blender"]
        and (not required or pools.meets(required, pools.row_offers(w)))
    ]


def regenerated_json(
    job: models.JobDetail, *, tasks: int, kept: int, stopped: int
) -> models.RegeneratedJob:
    """A regenerated job, with how many tasks it now has, kept and stopped."""
    return {**job, "regenerated": {"tasks": tasks, "kept": kept, "stopped": stopped}}


def job_page_json(jobs: list[models.Job], *, total: int, limit: int, offset: int) -> models.JobPage:
    """A page of a job list, saying where it sits in the whole."""
    return {"jobs": jobs, "total": total, "limit": limit, "offset": offset}


def task_page_json(
    tasks: list[models.Task], *, total: int, limit: int, offset: int
) -> models.TaskPage:
    """A page of a job's tasks, saying where it sits in the whole."""
    return {"tasks": tasks, "total": total, "limit": limit, "offset": offset}


# ----------------------------------------------------------------- tasks
def task_json(row: Any, *, current: bool = True) -> models.Task:
    """A task as lists show it; `current`: of its job's current generation."""
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
        "interruptions": row["interruptions"],
        "worker_id": row["worker_id"],
        "progress": row["progress"],
        "activity": row["activity"],
        "generation": row["generation"],
        "updated_at": row["updated_at"],
        "claimed_at": row["claimed_at"],
        "completed_at": row["completed_at"],
        "actions": cast(
            "list[models.TaskAction]", states.task_actions(row["status"], current=current)
        ),
        "stages": _stages(row),
    }


def task_detail_json(row: Any, *, current: bool, failures: Sequence[Any]) -> models.TaskDetail:
    """One task with what it runs and each failed attempt."""
    return {
        **task_json(row, current=current),
        "payload": loads(row["payload"]),
        "failures": [
            {
                "worker_id": f["worker_id"],
                "reason": f["reason"],
                "blamed": bool(f["blamed"]),
                "at": f["at"],
            }
            for f in failures
        ],
    }


# (stage, its column): every task in a list is shown with its stages, 100,000 in a
# job's full view, so the column names are made once.
_STAGE_COLUMNS = tuple(
    (stage, f"{stage}_s") for stage in sorted(models.TaskStages.__optional_keys__)
)


def _stages(row: Any) -> models.TaskStages:
    """The stages the task's latest attempt reported; those it did not are left out."""
    stages: models.TaskStages = {}
    for stage, column in _STAGE_COLUMNS:
        if row[column] is not None:
            stages[stage] = row[column]  # type: ignore[literal-required]
    return stages


# --------------------------------------------------------------- workers
def worker_json(row: Any, task: Any) -> models.Worker:
    """A worker, with the task it runs (None when it runs none)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "host": row["host"],
        "status": row["status"],
        "resting_until": row["resting_until"] if row["status"] == WorkerStatus.RESTING else None,
        "blender_version": row["blender_version"],
        "devices": loads(row["devices"]),
        "tags": loads(row["tags"]),
        "capabilities": cast("models.WorkerCapabilities", loads(row["capabilities"]) or {}),
        "disabled": bool(row["disabled"]),
        "last_seen": row["last_seen"],
        "actions": cast(
            "list[models.WorkerAction]",
            states.worker_actions(row["status"], disabled=bool(row["disabled"])),
        ),
        "task": None
        if task is None
        else {"id": task["id"], "job_id": task["job_id"], "name": task["name"]},
    }


def credentials_json(worker_id: str, secret: str, lease_seconds: float) -> models.WorkerCredentials:
    """What a newly registered worker is told once: its id and its own secret."""
    return {"worker_id": worker_id, "secret": secret, "lease_seconds": lease_seconds}


# --------------------------------------------------------------- outputs
def output_json(row: Any) -> models.Output:
    return {
        "name": row["name"],
        "frame": row["frame"],
        "sha256": row["sha256"],
        "size": row["size"],
        "task_id": row["task_id"],
        "delivered_path": row["delivered_path"],
        "delivery_note": row["delivery_note"],
        "intermediate": bool(row["intermediate"]),
        "created_at": row["created_at"],
    }
