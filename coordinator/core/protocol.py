"""What crosses the wire between coordinator, workers, CLI and add-on.

No server internals here: the worker agent and the add-on import this module,
so it must stay free of aiohttp and sqlite.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "1"
API_PREFIX = "/api/v1"
# The farm's own DNS-SD service type (a service name is at most 15 characters).
SERVICE_TYPE = "_lanrenderfarm._tcp.local."
DEFAULT_PORT = 8765

# One structured line per runner event starts with this marker; everything
# else Blender prints is plain log.
RUNNER_EVENT_PREFIX = "@@FARM@@ "


class JobStatus(enum.StrEnum):
    QUEUED = "queued"  # no task has started yet
    ACTIVE = "active"  # at least one task started, some remain
    PAUSED = "paused"  # queued tasks are held back; running ones finish
    COMPLETED = "completed"  # every task completed
    FAILED = "failed"  # a task ran out of attempts, or no worker can run it
    CANCELED = "canceled"  # stopped by a person; running tasks were told to stop


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker (and for its dependencies)
    ACTIVE = "active"  # leased by a worker
    COMPLETED = "completed"
    FAILED = "failed"  # out of attempts
    CANCELED = "canceled"


class WorkerStatus(enum.StrEnum):
    IDLE = "idle"  # online, no task
    BUSY = "busy"  # online, holds a task
    OFFLINE = "offline"  # not heard from within the lease timeout
    RESTING = "resting"  # online, outside its working hours: no tasks until resting_until


TERMINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
TERMINAL_TASK_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED})


@dataclass(frozen=True)
class TaskSpec:
    """One task as a job type compiles it, before it gets an id."""

    name: str  # human readable, e.g. "frames 1-2"
    kind: str  # "render", "merge", "sleep", ...
    payload: dict[str, Any]  # what the worker needs to run it, JSON-able
    priority: int = 0  # within a job: higher runs first
    depends_on: tuple[int, ...] = ()  # indexes into the same compiled list
    frames: tuple[int, ...] = ()  # frames this task produces (for progress/regenerate)


@dataclass(frozen=True)
class Assignment:
    """What a worker receives when it claims a task."""

    task_id: int  # the task's id
    job_id: int  # its job
    job_name: str  # for log lines
    kind: str  # TaskSpec.kind
    payload: dict[str, Any]  # TaskSpec.payload
    attempt: int  # 1 for the first try
    lease_seconds: float  # report at least this often or lose the task
    blend: str | None = None  # the job's main .blend, relative to its file tree
    files: dict[str, str] = field(default_factory=dict)  # relpath -> sha256 to download
    # Output name -> sha256 of what the tasks it depends on produced (their completed
    # attempts), fetched from /worker/tasks/{id}/inputs/{name}: a merge's chunks.
    inputs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "job_id": self.job_id,
            "job_name": self.job_name,
            "kind": self.kind,
            "payload": self.payload,
            "attempt": self.attempt,
            "lease_seconds": self.lease_seconds,
            "blend": self.blend,
            "files": self.files,
            "inputs": self.inputs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Assignment:
        return cls(
            task_id=int(data["task_id"]),
            job_id=int(data["job_id"]),
            job_name=str(data["job_name"]),
            kind=str(data["kind"]),
            payload=dict(data["payload"]),
            attempt=int(data["attempt"]),
            lease_seconds=float(data["lease_seconds"]),
            blend=data.get("blend"),
            files=dict(data.get("files") or {}),
            inputs=dict(data.get("inputs") or {}),  # absent from older coordinators
        )


def parse_blender_version(text: str) -> tuple[int, int]:
    """'3.4.1' or '5.0' -> (3, 4). Raises ValueError with the bad text."""
    parts = text.strip().split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (ValueError, IndexError) as ex:
        raise ValueError(
            f"not a Blender version: {text!r} (expected e.g. '4.2' or '3.4.1')"
        ) from ex
