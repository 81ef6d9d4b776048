"""The one shape of every JSON body the coordinator's HTTP API takes or gives.

The server's OpenAPI document is generated from these TypedDicts
(`coordinator.server.openapi`), and the API tests check every response they
receive against that document, so a field added here and not sent (or sent
and not added here) fails a test. Clients may import them for type checks:
standard library only, as the add-on shares Blender's site-packages.

How to read a field: `Annotated[type, "what it means", Limits(...)]`. The
string is the field's description in the document; `Limits` adds the JSON
Schema keywords its type cannot say. `NotRequired` marks a field that may be
absent (a request's optional field, or a response field sent only in some
answers, as the description says). `X | None` is a field that is always
there and may be null.

No `from __future__ import annotations` in this module: with postponed
annotations Python 3.11 cannot see `NotRequired` inside the strings, and
`__required_keys__`, which the document's `required` lists come from,
would claim every field.
"""

import enum
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NewType, NotRequired, TypedDict

from coordinator.core.protocol import JobStatus, TaskStatus, WorkerStatus


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


@dataclass(frozen=True)
class Limits:
    """JSON Schema keywords of a field beyond its type (the document shows them)."""

    minimum: float | None = None  # smallest number allowed
    maximum: float | None = None  # largest number allowed
    max_length: int | None = None  # most characters a text may have
    pattern: str | None = None  # a regular expression the whole text matches
    default: object = UNSET  # what the server uses when a request leaves it out
    example: object = UNSET  # a typical value, for readers of the document


# --------------------------------------------------------------- shared types
Id = Annotated[int, Limits(minimum=1)]
Sha256 = Annotated[str, Limits(pattern="^[0-9a-f]{64}$")]
Timestamp = Annotated[float, Limits(minimum=0)]  # seconds since 1970 (Unix time)
Fraction = Annotated[float, Limits(minimum=0, maximum=1)]
Seconds = Annotated[float, Limits(minimum=0, maximum=30 * 86400)]
_STAGE = "seconds after the worker got the task (by its own clock) when "
_WARM = "the job its warm Blender holds: its next task first unless a higher priority waits"
# A job type's settings, as validated by it: the document's JobSettings
# component is generated from the job types' own schemas.
JobSettings = NewType("JobSettings", dict[str, Any])

JobAction = Literal[
    "cancel",
    "pause",
    "resume",
    "requeue",
    "requeue-all",
    "regenerate",
    "priority",
    "clear-blocklist",
    "delete",
]
TaskAction = Literal["requeue", "cancel"]
WorkerAction = Literal["disable", "disable-now", "enable", "remove"]


class Error(TypedDict):
    """Every refusal (4xx) and internal error: what is wrong and what to do."""

    error: Annotated[str, "what is wrong and what to do about it"]
    field: NotRequired[Annotated[str, "the request field at fault, when one is"]]


class NoFields(TypedDict):
    """An action that takes no fields: the body is empty or `{}`; anything else is refused."""


# ---------------------------------------------------------------------- meta
class Health(TypedDict):
    """Whether the coordinator is up (public: the add-on's list of farms asks it)."""

    status: Annotated[Literal["ok"], "always ok: an answer at all means it is up"]
    name: Annotated[str, "the farm's name, as advertised on the LAN"]
    workers: Annotated[int, "workers online (idle or busy)", Limits(minimum=0)]
    workers_by_status: Annotated[
        dict[WorkerStatus, int], "how many registered workers have each status"
    ]


class Version(TypedDict):
    """Which API and coordinator this is (public)."""

    api: Annotated[str, "the API version, as in the /api/v<N> prefix", Limits(example="1")]
    coordinator: Annotated[str, "the coordinator's release"]
    name: Annotated[str, "the farm's name"]


class SettingInfo(TypedDict):
    """One setting of a job type, as forms (add-on, dashboard, CLI) draw it."""

    name: Annotated[str, "its key in the job's settings"]
    type: Annotated[Literal["int", "float", "str", "bool", "choice"], "the kind of value"]
    label: Annotated[str, "what a form shows"]
    description: Annotated[str, "a tooltip: what it does, in an artist's words"]
    required: Annotated[bool, "a job must give it"]
    default: NotRequired[Annotated[Any, "used when a job leaves it out; null means unset"]]
    minimum: NotRequired[Annotated[float, "smallest value (int and float settings)"]]
    maximum: NotRequired[Annotated[float, "largest value (int and float settings)"]]
    choices: NotRequired[Annotated[list[str], "the values a choice setting takes"]]


class JobTypeInfo(TypedDict):
    """A job type: what its jobs do and the settings they take."""

    name: Annotated[str, "its id, the `type` of a job", Limits(example="blender-render")]
    label: Annotated[str, "for menus"]
    description: Annotated[str, "one or two sentences for artists"]
    needs_blend: Annotated[bool, "its jobs must come with a .blend (`blend` and `files`)"]
    settings: Annotated[list[SettingInfo], "its settings, in form order"]


class JobTypeList(TypedDict):
    """The job type catalogue."""

    job_types: Annotated[list[JobTypeInfo], "every job type this coordinator runs"]


# ---------------------------------------------------------------------- jobs
class BlocklistEntry(TypedDict):
    """A worker that failed too many of a job's tasks to be given more of them."""

    worker_id: Annotated[str, "the worker's id"]
    name: Annotated[str, "the worker's name (empty once the worker was removed)"]
    failures: Annotated[int, "its failed attempts on the job", Limits(minimum=1)]


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
    attempts: Annotated[int, "tries so far, this one included", Limits(minimum=0)]
    worker_id: Annotated[str | None, "the worker that has it, or had it last"]
    progress: Annotated[Fraction, "how far its current attempt got"]
    activity: Annotated[str, "what it is doing now, as its worker last said"]
    generation: Annotated[int, "the job generation it belongs to", Limits(minimum=1)]
    updated_at: Annotated[Timestamp, "when it last changed"]
    actions: Annotated[
        list[TaskAction],
        "the actions a person can take on it now (none on an earlier generation's task)",
    ]


class TaskFailure(TypedDict):
    """One failed attempt of a task."""

    worker_id: Annotated[str, "the worker it failed on"]
    reason: Annotated[str, "what went wrong, as the worker or the coordinator said"]
    blamed: Annotated[
        bool,
        "whether it counts against the worker: not when the worker vanished mid-task"
        " or a person cleared the job's blocklist",
    ]
    at: Annotated[Timestamp, "when it failed"]


class TaskStages(TypedDict):
    """Where a task's time went, as its worker measured it (sent again: replaced)."""

    blender_ready: NotRequired[Annotated[Seconds, _STAGE + "Blender had the scene loaded"]]
    first_sample: NotRequired[Annotated[Seconds, _STAGE + "the first sample was rendered"]]
    last_frame_saved: NotRequired[Annotated[Seconds, _STAGE + "the last frame was written"]]
    uploaded: NotRequired[Annotated[Seconds, _STAGE + "the last output was uploaded"]]


class TaskDetail(Task):
    """One task with what it runs and how its attempts failed."""

    payload: Annotated[dict[str, Any], "what the worker needs to run it (its kind's own fields)"]
    failures: Annotated[list[TaskFailure], "its failed attempts, oldest first"]
    claimed_at: Annotated[Timestamp | None, "when its latest attempt was claimed (null: never)"]
    completed_at: Annotated[Timestamp | None, "when it completed (null: not completed)"]
    stages: Annotated[TaskStages, "the stages its latest attempt's worker reported reaching"]


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
    deliver: Annotated[
        bool, "finished frames are written into the output folder on the coordinator's machine"
    ]
    max_attempts: Annotated[int, "tries each task gets before it fails", Limits(minimum=1)]
    generation: Annotated[int, "1, plus one for each regenerate; tasks carry theirs"]
    created_at: Annotated[Timestamp, "when it was submitted"]
    updated_at: Annotated[Timestamp, "when it last changed status or priority"]
    task_counts: Annotated[dict[TaskStatus, int], "its current tasks by status"]
    progress: Annotated[Fraction, "its current tasks' work done (1 for a job without tasks)"]
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


# --------------------------------------------------------------------- files
class MissingRequest(TypedDict):
    """Hashes of the files a job will use."""

    hashes: Annotated[list[Sha256], "sha256 of each file"]


class MissingAnswer(TypedDict):
    """The files to upload before submitting."""

    missing: Annotated[list[Sha256], "the asked hashes the coordinator does not have, sorted"]


class StoredFile(TypedDict):
    """An uploaded file, now in the coordinator's store."""

    sha256: Annotated[Sha256, "its content hash"]
    size: Annotated[int, "bytes", Limits(minimum=0)]


# ------------------------------------------------------------------- workers
class WorkerTask(TypedDict):
    """The task a worker runs."""

    id: Annotated[Id, "the task's id"]
    job_id: Annotated[Id, "its job"]
    name: Annotated[str, "the task's name"]


class Worker(TypedDict):
    """A registered worker as people see it."""

    id: Annotated[str, "the worker's id"]
    name: Annotated[str, "its name (the machine's, unless its agent was given one)"]
    host: Annotated[str, "its host name or address, as it said"]
    status: Annotated[WorkerStatus, "idle, busy or offline"]
    disabled: Annotated[bool, "takes no new tasks"]
    blender_version: Annotated[str, "its Blender"]
    devices: Annotated[list[str], "render devices it offers, e.g. CPU, CUDA"]
    tags: Annotated[list[str], "labels its agent was started with"]
    last_seen: Annotated[Timestamp, "when it was last heard from"]
    task: Annotated[WorkerTask | None, "the task it runs, if any"]
    actions: Annotated[list[WorkerAction], "the actions a person can take on it now"]


class WorkerList(TypedDict):
    """Every registered worker."""

    workers: Annotated[list[Worker], "by name"]


class WorkerRegistration(TypedDict):
    """A worker agent introducing itself with the farm token."""

    name: Annotated[str, "its name", Limits(max_length=200)]
    blender_version: Annotated[str, "its Blender's version", Limits(max_length=32, example="4.2.3")]
    host: NotRequired[Annotated[str, "its host name or address", Limits(max_length=255)]]
    devices: NotRequired[Annotated[list[str], "render devices it offers (at most 64)"]]
    tags: NotRequired[Annotated[list[str], "labels (at most 64)"]]


class WorkerCredentials(TypedDict):
    """What a worker needs to take part: send the secret on every /worker/ request."""

    worker_id: Annotated[str, "its id"]
    secret: Annotated[str, "its own bearer token; shown only once"]
    lease_seconds: Annotated[float, "report at least this often or lose the task you hold"]


class DisableRequest(TypedDict):
    """When a disabled worker stops working."""

    now: NotRequired[
        Annotated[
            bool,
            "hand its task back to the queue at once (not counted as a failure)"
            " instead of letting it finish",
            Limits(default=False),
        ]
    ]


class Removed(TypedDict):
    """A worker is forgotten."""

    removed: Annotated[Literal[True], "always true"]


# ----------------------------------------------------------- worker protocol
class Assignment(TypedDict):
    """A task handed to a worker."""

    # coordinator.core.protocol.Assignment.to_json() writes it; from_json() reads it.

    task_id: Annotated[Id, "the task"]
    job_id: Annotated[Id, "its job"]
    job_name: Annotated[str, "its job's name, for log lines"]
    kind: Annotated[str, "what to run: render, merge, sleep, ..."]
    payload: Annotated[dict[str, Any], "the kind's own fields"]
    attempt: Annotated[int, "1 for the first try", Limits(minimum=1)]
    lease_seconds: Annotated[float, "report at least this often or lose the task"]
    blend: Annotated[str | None, "the job's main .blend, relative to its file tree"]
    files: Annotated[dict[str, Sha256], "project path -> sha256 of the job's files to download"]
    inputs: Annotated[
        dict[str, Sha256],
        "output name -> sha256 of what the tasks it depends on produced (their"
        " completed attempts); download each from /worker/tasks/{task_id}/inputs/{name}",
    ]


class TaskUpdate(TypedDict):
    """A worker's report on the task it holds; it also renews the lease."""

    progress: NotRequired[Annotated[Fraction, "how far the task got"]]
    activity: NotRequired[Annotated[str, "what it does now", Limits(max_length=500)]]
    log: NotRequired[Annotated[str, "log text to append (at most 256 KiB a report)"]]
    stages: NotRequired[Annotated[TaskStages, "stages reached since the last report"]]


class UpdateAnswer(TypedDict):
    """Go on (a task that must stop gets 409, or `stop` from its control poll)."""

    action: Annotated[Literal["continue"], "always continue"]


class Control(TypedDict):
    """Whether the worker must stop its task."""

    action: Annotated[Literal["continue", "stop"], "stop: abandon the task now"]
    reason: NotRequired[Annotated[str, "why it must stop; only with stop"]]


class ClaimRequest(TypedDict):
    """A worker asking for work (the body may also be empty)."""

    warm_job: NotRequired[Annotated[Id | None, _WARM]]


class CompleteRequest(TypedDict):
    """A finished task; optionally asking for the next one in the same round trip."""

    next: NotRequired[
        Annotated[bool, "also claim the next task when one is runnable", Limits(default=False)]
    ]
    warm_job: NotRequired[Annotated[Id | None, _WARM + " (with next=true)"]]


class CompleteAnswer(TypedDict):
    """The completion is recorded (a repeated completion too)."""

    ok: Annotated[Literal[True], "always true"]
    next: NotRequired[
        Annotated[
            Assignment | None,
            "only with next=true: the next task, or null when none is runnable now"
            " (then long-poll /worker/task)",
        ]
    ]


class FailRequest(TypedDict):
    """A task the worker could not finish."""

    reason: Annotated[str, "what went wrong (the first 2000 characters are kept)"]
    log: NotRequired[Annotated[str, "log text to append"]]


class FailAnswer(TypedDict):
    """What became of the failed task."""

    task_status: Annotated[
        TaskStatus, "queued: it will be tried again; failed: it ran out of attempts"
    ]


class Ok(TypedDict):
    """Done."""

    ok: Annotated[Literal[True], "always true"]


# -------------------------------------------------------------------- events
class Event(TypedDict):
    """One server-sent event's `data:`; its `event:` line repeats the type."""

    type: Annotated[
        Literal[
            "job",
            "job-deleted",
            "task",
            "worker",
            "worker-removed",
            "output",
            "resync",
            "shutdown",
        ],
        "what changed; resync: events were dropped, reload what you show;"
        " shutdown: the coordinator stops",
    ]
    id: NotRequired[Annotated[int | str, "the job's, task's (numbers) or worker's (text) id"]]
    job_id: NotRequired[Annotated[Id, "the job of a task or output"]]
    status: NotRequired[Annotated[WorkerStatus, "a worker's new status"]]
    progress: NotRequired[Annotated[Fraction | None, "a task's new progress, if it changed"]]
    activity: NotRequired[Annotated[str | None, "a task's new activity, if it changed"]]
    log: NotRequired[Annotated[bool, "a task's log has new text"]]
    name: NotRequired[Annotated[str, "an output's file name"]]
    frame: NotRequired[Annotated[int | None, "an output's frame"]]
