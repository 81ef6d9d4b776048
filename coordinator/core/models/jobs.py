"""Jobs and their tasks and outputs, as an artist submits, reads and steers them.

No `from __future__ import annotations` here: Python 3.11 would not see
`NotRequired` inside postponed annotations (see the package's docstring).
"""

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from coordinator.core.models.common import (
    _STAGE,
    Fraction,
    Id,
    JobAction,
    JobSettings,
    Limits,
    Seconds,
    Sha256,
    TaskAction,
    Timestamp,
)
from coordinator.core.protocol import JobStatus, TaskStatus


class JobNeeds(TypedDict):
    """What a job needs of a worker besides tags, as the worker reported it can do."""

    engine: NotRequired[
        Annotated[str, "a render engine its Blender has, e.g. CYCLES, BLENDER_EEVEE"]
    ]
    device: NotRequired[
        Annotated[str, "a render device it has, e.g. CUDA, OPTIX; GPU for any GPU; CPU"]
    ]
    memory_mb: NotRequired[
        Annotated[
            int,
            "memory it must have, MiB; a worker reporting at least 90% of it qualifies"
            " (an OS counts a little less than the machine has)",
            Limits(minimum=1, maximum=2**30),
        ]
    ]
    os: NotRequired[Annotated[str, "its operating system: linux, windows or darwin (macOS)"]]


class BlocklistEntry(TypedDict):
    """A worker that failed too many of a job's tasks to be given more of them."""

    worker_id: Annotated[str, "the worker's id"]
    name: Annotated[str, "the worker's name (empty once the worker was removed)"]
    failures: Annotated[int, "its failed attempts on the job", Limits(minimum=1)]


class TaskStages(TypedDict):
    """Where a task's time went, as its worker measured it (sent again: replaced)."""

    blender_ready: NotRequired[Annotated[Seconds, _STAGE + "Blender had the scene loaded"]]
    first_sample: NotRequired[Annotated[Seconds, _STAGE + "the first sample was rendered"]]
    last_frame_saved: NotRequired[Annotated[Seconds, _STAGE + "the last frame was written"]]
    uploaded: NotRequired[Annotated[Seconds, _STAGE + "the last output was uploaded"]]


class Task(TypedDict):
    """A task as lists show it: one chunk of a job's work."""

    id: Annotated[Id, "the task's id"]
    job_id: Annotated[Id, "its job"]
    index: Annotated[int, "its place in the job's compiled order", Limits(minimum=0)]
    name: Annotated[str, "human readable, e.g. 'frames 1-2'"]
    kind: Annotated[str, "what the worker runs: render, merge, sleep, ..."]
    status: Annotated[TaskStatus, "where it is in its life"]
    priority: Annotated[int, "within its job: higher runs first"]
    frames: Annotated[list[int], "the frames it produces (empty for frameless work)"]
    attempts: Annotated[
        int,
        "attempts so far, this one included; those its worker's interruption ended"
        " (interruptions) spend none of the job's max_attempts",
        Limits(minimum=0),
    ]
    interruptions: Annotated[
        int,
        "attempts ended by an interruption of the worker (killed or restarted, lease"
        " lost, signed off): no try spent, but at 5 the task fails",
        Limits(minimum=0),
    ]
    worker_id: Annotated[str | None, "the worker that has it, or had it last"]
    progress: Annotated[Fraction, "how far its current attempt got"]
    activity: Annotated[str, "what it is doing now, as its worker last said"]
    generation: Annotated[int, "the job generation it belongs to", Limits(minimum=1)]
    updated_at: Annotated[Timestamp, "when it last changed"]
    claimed_at: Annotated[Timestamp | None, "when its latest attempt was claimed (null: never)"]
    completed_at: Annotated[Timestamp | None, "when it completed (null: not completed)"]
    actions: Annotated[
        list[TaskAction],
        "the actions a person can take on it now (none on an earlier generation's task)",
    ]
    stages: Annotated[
        TaskStages,
        "the stages its latest attempt's worker reported reaching; last_frame_saved minus"
        " blender_ready, over its frames, is the time Blender took to render a frame",
    ]


class TaskFailure(TypedDict):
    """One failed attempt of a task, or one interruption of its worker (not blamed)."""

    worker_id: Annotated[str, "the worker it failed on"]
    reason: Annotated[str, "what went wrong, as the worker or the coordinator said"]
    blamed: Annotated[
        bool,
        "whether it counts against the worker: not when the worker vanished mid-task,"
        " said the failure was the job's own (job_fault) or a person cleared the job's"
        " blocklist",
    ]
    at: Annotated[Timestamp, "when it failed"]


class TaskDetail(Task):
    """One task with what it runs and how its attempts failed."""

    payload: Annotated[dict[str, Any], "what the worker needs to run it (its kind's own fields)"]
    failures: Annotated[list[TaskFailure], "its failed attempts, oldest first"]


class Job(TypedDict):
    """A job as lists show it."""

    id: Annotated[Id, "the job's id"]
    name: Annotated[str, "what its submitter called it"]
    type: Annotated[str, "its job type (GET /job-types)"]
    priority: Annotated[int, "higher runs first", Limits(minimum=0, maximum=100)]
    status: Annotated[JobStatus, "where it is in its life"]
    status_reason: Annotated[
        str, "why it has this status when a person or the farm said so; empty otherwise"
    ]
    settings: Annotated[JobSettings, "its job type's settings, with defaults filled in"]
    blend: Annotated[str | None, "the main .blend's project path (null for types that need none)"]
    blender_version: Annotated[
        str | None, "the Blender that saved the .blend; workers need this major.minor or newer"
    ]
    submitter: Annotated[str, "who submitted it (free text, may be empty)"]
    origin: Annotated[
        str,
        "where it came from, as its submitter tagged it (the add-on: one tag per farm"
        " and .blend file); empty when not given",
    ]
    requires_tags: Annotated[
        list[str], "tags a worker must have (all of them) to get its tasks: its pools"
    ]
    needs: Annotated[
        JobNeeds,
        "what a worker must offer to get its tasks: an engine, a device, memory, an OS"
        " ({} for none)",
    ]
    deliver: Annotated[
        bool, "finished frames are written into the output folder on the coordinator's machine"
    ]
    max_attempts: Annotated[int, "tries each task gets before it fails", Limits(minimum=1)]
    generation: Annotated[int, "1, plus one for each regenerate; tasks carry theirs"]
    created_at: Annotated[Timestamp, "when it was submitted"]
    updated_at: Annotated[Timestamp, "when it last changed status or priority"]
    task_counts: Annotated[dict[TaskStatus, int], "its current tasks by status"]
    progress: Annotated[Fraction, "its current tasks' work done (1 for a job without tasks)"]
    eta_seconds: Annotated[
        float | None,
        "estimated seconds until it finishes: the median time its finished tasks took"
        " (claim to completion, over up to 101 of them) times the work left (queued tasks,"
        " plus what its running ones have left by their progress or time so far), divided"
        " by the online workers able to run it (at most one task each, as if it had them"
        " to itself); null while none of its tasks has finished, when no worker can run"
        " it, or when it is not queued or active",
    ]
    warning: Annotated[
        str,
        "why no worker can take its queued work right now (e.g. no online worker has"
        " a new enough Blender); empty when none",
    ]
    blocklist: Annotated[
        list[BlocklistEntry], "workers that failed too many of its tasks to get more"
    ]
    actions: Annotated[list[JobAction], "the actions a person can take on it now"]


class JobDetail(Job):
    """One job, as its own endpoints answer: with its report and, when asked, its tasks."""

    frame_seconds: Annotated[
        float | None,
        "the median time Blender took to render one frame, over up to 101 of its finished"
        " tasks, the last in the job's order (tasks are handed out in that order, so"
        " about the latest); each: from the scene loaded to its last frame saved, divided"
        " by its frames, start-up and uploads left out (a progressive job's task renders"
        " one sample chunk of a frame); null until a finished task has reported both"
        " stages",
    ]
    report: NotRequired[
        Annotated[
            dict[str, Any],
            "the job type's own progress summary, for types that have one;"
            " blender-render-progressive: {samples, frame_samples: {frame: samples"
            " reached}, frames_finished}",
        ]
    ]
    tasks: NotRequired[
        Annotated[
            list[Task],
            "its tasks in order; only from GET /jobs/{job_id} without tasks=0"
            " (tasks=all adds earlier generations')",
        ]
    ]


class Regenerated(TypedDict):
    """What a regenerate did to a job's tasks."""

    tasks: Annotated[int, "tasks the new generation has", Limits(minimum=0)]
    kept: Annotated[int, "of those, born completed: finished before and unchanged"]
    stopped: Annotated[int, "queued or running tasks of the old generation it canceled"]


class RegeneratedJob(JobDetail):
    """The answer to a regenerate: the job and what became of its tasks."""

    regenerated: Annotated[Regenerated, "what the regenerate did"]


class JobPage(TypedDict):
    """A page of jobs that match a filter."""

    jobs: Annotated[list[Job], "this page, in the asked order"]
    total: Annotated[int, "jobs that match, on every page", Limits(minimum=0)]
    limit: Annotated[int, "the page size used"]
    offset: Annotated[int, "where this page starts"]


class TaskPage(TypedDict):
    """A page of a job's tasks, in the job's order."""

    tasks: Annotated[list[Task], "this page"]
    total: Annotated[int, "tasks that match, on every page", Limits(minimum=0)]
    limit: Annotated[int, "the page size used"]
    offset: Annotated[int, "where this page starts"]


class JobSubmission(TypedDict):
    """A new job. Upload its files first (POST /files/missing, PUT /files/{sha256})."""

    name: Annotated[str, "what to call it", Limits(max_length=200)]
    type: Annotated[str, "a job type from GET /job-types", Limits(max_length=100)]
    priority: NotRequired[
        Annotated[int, "higher runs first", Limits(minimum=0, maximum=100, default=50)]
    ]
    settings: NotRequired[Annotated[JobSettings, "the job type's settings"]]
    files: NotRequired[
        Annotated[dict[str, Sha256], "project path -> sha256 of every file the job uses"]
    ]
    blend: NotRequired[
        Annotated[str | None, "the main .blend's project path", Limits(max_length=4096)]
    ]
    blender_version: NotRequired[
        Annotated[
            str | None, "the Blender that saved the .blend", Limits(max_length=32, example="4.2")
        ]
    ]
    submitter: NotRequired[Annotated[str, "who submits it", Limits(max_length=200, default="")]]
    origin: NotRequired[
        Annotated[
            str,
            "a tag of where it comes from, to list that place's jobs later (GET /jobs?origin=)",
            Limits(max_length=64, default=""),
        ]
    ]
    deliver: NotRequired[
        Annotated[
            bool,
            "write finished frames into the output folder on the coordinator's machine",
            Limits(default=True),
        ]
    ]
    max_attempts: NotRequired[
        Annotated[
            int, "tries each task gets before it fails", Limits(minimum=1, maximum=20, default=3)
        ]
    ]
    requires_tags: NotRequired[
        Annotated[
            list[str],
            "only workers with all these tags get its tasks (at most 32, each 1-64 letters,"
            " digits, '_', '.' or '-')",
        ]
    ]
    needs: NotRequired[Annotated[JobNeeds, "what a worker must offer to get its tasks"]]
    paused: NotRequired[
        Annotated[
            bool, "submit it paused: no task starts until it is resumed", Limits(default=False)
        ]
    ]


class RequeueRequest(TypedDict):
    """Which of a job's tasks to queue again."""

    which: NotRequired[
        Annotated[
            Literal["failed", "all"],
            "failed: its failed and canceled tasks; all: finished ones too",
            Limits(default="failed"),
        ]
    ]


class RegenerateRequest(TypedDict):
    """Settings to change before the job's tasks are compiled again."""

    settings: NotRequired[
        Annotated[
            dict[str, Any],
            "settings to change (null resets one to its default); the others stay as they are",
        ]
    ]
    keep_completed: NotRequired[
        Annotated[bool, "false renders every frame again", Limits(default=True)]
    ]


class PriorityRequest(TypedDict):
    """A job's new priority."""

    priority: Annotated[int, "higher runs first", Limits(minimum=0, maximum=100)]


class ClearBlocklistRequest(TypedDict):
    """Whom to forgive; everyone blocklisted when left out."""

    worker_id: NotRequired[Annotated[str, "only this worker"]]


class Deleted(TypedDict):
    """A job is gone."""

    deleted: Annotated[Literal[True], "always true"]


class Output(TypedDict):
    """A file a task rendered, stored on the coordinator."""

    name: Annotated[str, "the file name as Blender wrote it"]
    frame: Annotated[int | None, "the frame it shows (null when the worker did not say)"]
    sha256: Annotated[Sha256, "its content hash"]
    size: Annotated[int, "bytes", Limits(minimum=0)]
    task_id: Annotated[Id, "the task that made it"]
    delivered_path: Annotated[
        str | None, "where it was written on the coordinator's machine, if it was"
    ]
    delivery_note: Annotated[str, "why it was not delivered, or what delivering it did"]
    intermediate: Annotated[
        bool,
        "feeds other tasks of the job (a progressive chunk); kept on the farm, never delivered",
    ]
    created_at: Annotated[Timestamp, "when it was uploaded"]


class OutputList(TypedDict):
    """A job's rendered files."""

    outputs: Annotated[list[Output], "by frame, then name"]
