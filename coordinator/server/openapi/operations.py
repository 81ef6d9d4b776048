"""Every operation of the HTTP API as one row of data: method, path, summary,
the models it takes and gives, its parameters and the statuses it may answer.

A new route gets a row here (tests/server/test_openapi.py fails until it
has one). `document.py` turns the rows into the OpenAPI paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coordinator.core import models as m
from coordinator.server.openapi.schemas import JSON

FARM, WORKER = "farmToken", "workerSecret"


@dataclass(frozen=True)
class Param:
    name: str  # as in the path template or the query string
    where: str  # "path" or "query"
    schema: JSON  # JSON Schema of its value
    description: str  # what it means, with its default when it has one
    checked: bool = True  # a bad value is refused with 400 (not merely not found)


@dataclass(frozen=True)
class Media:
    """A body that is not a JSON model: a file, a log text, an event stream."""

    content_type: str  # e.g. application/octet-stream
    schema: JSON  # JSON Schema of the body as a whole
    # More keys of the OpenAPI media type object; a model there becomes its schema.
    extra: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Op:
    method: str  # lower case, as OpenAPI writes it
    path: str  # after the /api/v1 prefix
    summary: str  # one or two sentences: what it does and what to know
    tag: str  # its group in the reference
    answer: Any  # the success body: a model, a Media, or None (no body)
    status: int = 200  # the success status
    body: Any = None  # the request body: a model, a Media, or None
    params: tuple[Param, ...] = ()
    # Refusals beyond 400 (any op that reads input) and 401 (any op with auth).
    errors: tuple[int, ...] = ()
    # Statuses whose meaning here is more specific than the usual one (a 204
    # without a body, or a refusal's own reason).
    said: tuple[tuple[int, str], ...] = ()
    auth: str | None = FARM  # the security scheme, None for public


def _path(name: str, schema: JSON, description: str, *, checked: bool = True) -> Param:
    return Param(name, "path", schema, description, checked)


def _query(name: str, schema: JSON, description: str) -> Param:
    return Param(name, "query", schema, description)


_ID = {"type": "integer", "minimum": 1}
_TEXT = {"type": "string"}
JOB_ID = _path("job_id", _ID, "the job's id")
TASK_ID = _path("task_id", _ID, "the task's id")
WORKER_ID = _path("worker_id", _TEXT, "the worker's id", checked=False)  # any text: 404
SHA256 = _path("sha256", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "64 lowercase hex digits")
FILE = Media("application/octet-stream", {"type": "string", "format": "binary"})
# A rendered file, with the media type its name implies (image/png, image/x-exr...).
RENDERED = Media("*/*", {"type": "string", "format": "binary"})
TEXT = Media("text/plain", {"type": "string"})
PREVIEW = Media("video/webm", {"type": "string", "format": "binary"})
EVENTS = Media(
    "text/event-stream",
    {"type": "string"},
    # OpenAPI 3.1 has no schema for the items of a stream: the data of each event.
    extra=(("x-event-data", m.Event),),
)
OPENAPI = Media("application/json", {"type": "object", "description": "an OpenAPI 3.1 document"})

_ACTION = (404, 409)
_JOB_ACTIONS = tuple(
    Op("post", f"/jobs/{{job_id}}/{name}", text, "jobs", m.JobDetail, body=m.NoFields,
       params=(JOB_ID,), errors=_ACTION)
    for name, text in (
        ("cancel", "Cancel a job; running tasks are told to stop"),
        ("pause", "Pause a job; running tasks finish, no new ones start"),
        ("resume", "Resume a paused job"),
    )
)  # fmt: skip
JOB_FILTERS = (
    _query("status", _TEXT, "comma-separated job statuses"),
    _query("type", _TEXT, "comma-separated job types"),
    _query("name", _TEXT, "contains this text, or matches a glob with * ? [...]; any case"),
    _query("submitter", _TEXT, "like name: text or a glob, any case"),
    _query("origin", _TEXT, "exactly this origin tag (the one the job was submitted with)"),
    _query("after", _TEXT, "submitted at/after: ISO date or epoch seconds"),
    _query("before", _TEXT, "submitted before: ISO date or epoch seconds"),
    _query(
        "sort",
        _TEXT,
        "created|updated|priority|name|status|id, prefix - for descending (default -created)",
    ),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (default 50)"),
    _query("offset", {"type": "integer", "minimum": 0}, "page start (default 0)"),
)
TASK_FILTERS = (
    _query("status", _TEXT, "comma-separated task statuses"),
    _query(
        "generation",
        {"type": "string", "enum": ["current", "all"]},
        "all: earlier generations' tasks too (default current)",
    ),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size (default 100)"),
    _query("offset", {"type": "integer", "minimum": 0}, "page start (default 0)"),
)

META = (
    Op("get", "/health", "Is the coordinator up; its name and worker count", "meta",
       m.Health, auth=None),
    Op("get", "/version", "API and coordinator version", "meta", m.Version, auth=None),
    Op("post", "/proof", "Prove the coordinator holds the client's key, for its certificate,"
       " before the client sends it anything secret", "meta", m.Proof, body=m.ProofRequest,
       auth=None, errors=(401, 408),
       said=((401, "it knows no such key: wrong farm token, or a forgotten worker"),
             (400, "bad input, or no Content-Length (chunked); the connection is closed"),
             (408, "the body did not arrive whole within 5 seconds; the connection is closed"),
             (413, "the body is over 1024 bytes; refused before reading it, and closed"))),
    Op("get", "/openapi.json", "This document", "meta", OPENAPI, said=((200, "OpenAPI 3.1"),)),
    Op("get", "/job-types", "Job types and their settings", "meta", m.JobTypeList),
)  # fmt: skip

JOBS = (
    Op("post", "/jobs", "Submit a job (upload its files first)", "jobs", m.JobDetail,
       status=201, body=m.JobSubmission, errors=(409,),
       said=((409, "some of its files are not uploaded yet; the message lists them"),)),
    Op("get", "/jobs", "List jobs, filtered and paged", "jobs", m.JobPage, params=JOB_FILTERS),
    Op("get", "/jobs/{job_id}", "A job with its tasks", "jobs", m.JobDetail, params=(
        JOB_ID,
        _query("tasks", {"type": "string", "enum": ["1", "0", "all"]},
               "0 leaves tasks out; all lists earlier generations' tasks too (default 1)"),
    ), errors=(404,)),
    Op("delete", "/jobs/{job_id}", "Delete a job, its tasks, logs and stored outputs"
       " (frames already delivered stay)", "jobs", m.Deleted, params=(JOB_ID,), errors=(404,)),
    Op("get", "/jobs/{job_id}/tasks", "A page of a job's tasks in their order, optionally of"
       " some statuses only (for big jobs: GET /jobs/{job_id}?tasks=0 plus pages of this)",
       "jobs", m.TaskPage, params=(JOB_ID, *TASK_FILTERS), errors=(404,)),
    *_JOB_ACTIONS,
    Op("post", "/jobs/{job_id}/requeue", "Queue a job's failed and canceled tasks again"
       " (which=failed) or all of them", "jobs", m.JobDetail, body=m.RequeueRequest,
       params=(JOB_ID,), errors=_ACTION),
    Op("post", "/jobs/{job_id}/regenerate", "Compile the job's tasks again from its settings,"
       " with some changed; the job keeps its id, files and history, running tasks are"
       " stopped, and finished frames the new tasks would render the same way are kept",
       "jobs", m.RegeneratedJob, body=m.RegenerateRequest, params=(JOB_ID,), errors=(404,)),
    Op("post", "/jobs/{job_id}/priority", "Change a job's priority (higher runs first)", "jobs",
       m.JobDetail, body=m.PriorityRequest, params=(JOB_ID,), errors=(404,)),
    Op("post", "/jobs/{job_id}/clear-blocklist", "Forgive blocklisted workers (all, or one)"
       " their failures on this job so that they get its tasks again", "jobs", m.JobDetail,
       body=m.ClearBlocklistRequest, params=(JOB_ID,), errors=_ACTION),
    Op("get", "/jobs/{job_id}/outputs", "Rendered files of a job (not intermediate ones that"
       " only feed its other tasks)", "jobs", m.OutputList, params=(JOB_ID,), errors=(404,)),
    Op("get", "/jobs/{job_id}/outputs/{name}", "Download one rendered file", "jobs", RENDERED,
       params=(JOB_ID, _path("name", _TEXT, "the file name")), errors=(404,)),
    Op("get", "/jobs/{job_id}/preview", "The job's preview video: a small WebM (VP9, at most"
       " 640 pixels wide, no sound) a worker made of the finished frames of an image-sequence"
       " job; never delivered into the output folder", "jobs", PREVIEW, params=(JOB_ID,),
       errors=(404,), said=((404, "no such job, or no preview (yet): one is made after the"
                                 " frames of an image-sequence job"),)),
)  # fmt: skip

TASKS = (
    Op("get", "/tasks/{task_id}", "A task with its payload and failures", "tasks",
       m.TaskDetail, params=(TASK_ID,), errors=(404,)),
    Op("get", "/tasks/{task_id}/log", "The end of a task's log", "tasks", TEXT, params=(
        TASK_ID,
        _query("tail", {"type": "integer", "minimum": 1}, "bytes from the end (default 65536)"),
    ), errors=(404,)),
    Op("post", "/tasks/{task_id}/requeue", "Run one task again from scratch (a worker running"
       " it is told to stop); its attempts and failures are forgiven", "tasks", m.TaskDetail,
       body=m.NoFields, params=(TASK_ID,), errors=_ACTION),
    Op("post", "/tasks/{task_id}/cancel", "Stop one task for good (a worker running it is told"
       " to stop); the job goes on with its other tasks", "tasks", m.TaskDetail,
       body=m.NoFields, params=(TASK_ID,), errors=_ACTION),
)  # fmt: skip

FILES = (
    Op("post", "/files/missing", "Which of these hashes the coordinator lacks", "files",
       m.MissingAnswer, body=m.MissingRequest),
    Op("put", "/files/{sha256}", "Upload a file; its content must hash to the URL's sha256",
       "files", m.StoredFile, status=201, body=FILE, params=(SHA256,), errors=(507,)),
    Op("get", "/files/{sha256}", "Download a stored file (farm token or a worker's secret)",
       "files", FILE, params=(SHA256,), errors=(404,)),
)  # fmt: skip

WORKERS = (
    Op("post", "/workers", "Register a worker; returns its id and secret", "workers",
       m.WorkerCredentials, status=201, body=m.WorkerRegistration),
    Op("get", "/workers", "List workers", "workers", m.WorkerList),
    Op("get", "/workers/{worker_id}", "One worker", "workers", m.Worker,
       params=(WORKER_ID,), errors=(404,)),
    Op("delete", "/workers/{worker_id}", "Forget an offline worker (an online one is refused:"
       " its agent would register again)", "workers", m.Removed, params=(WORKER_ID,),
       errors=_ACTION),
    Op("post", "/workers/{worker_id}/disable", "Give the worker no new tasks; its task"
       " finishes first, or with now=true goes back to the queue at once (not counted as a"
       " failure)", "workers", m.Worker, body=m.DisableRequest, params=(WORKER_ID,),
       errors=_ACTION),
    Op("post", "/workers/{worker_id}/enable", "Let a disabled worker take tasks again",
       "workers", m.Worker, body=m.NoFields, params=(WORKER_ID,), errors=_ACTION),
    Op("put", "/workers/{worker_id}/tags", "Replace the worker's tags (its pools): jobs that"
       " require them may go to it", "workers", m.Worker, body=m.WorkerTags,
       params=(WORKER_ID,), errors=(404,)),
)  # fmt: skip

EVENTS_OPS = (
    Op("get", "/events", "Live updates as server-sent events (job, job-deleted, task, worker,"
       " worker-removed, output), each `data:` an Event; `resync` when the reader fell too"
       " far behind and events were dropped (reload what you show), `shutdown` when the"
       " coordinator stops. Read it with the Authorization header (fetch() and a stream"
       " reader in a browser)", "events", EVENTS),
)  # fmt: skip

_HELD = ((409, "the worker does not hold the task (any more): stop it"),)
PROTOCOL = (
    Op("post", "/worker/task", "Long-poll for a task: answers as soon as one is runnable; 204"
       " after `wait` s", "worker protocol", m.Assignment, body=m.ClaimRequest, params=(
        _query("wait", {"type": "number", "minimum": 0, "maximum": 60},
               "seconds to wait (default 20)"),
    ), said=((204, "no task within the wait"),), auth=WORKER),
    Op("get", "/worker/upcoming", "The job this worker would most likely get next (what a"
       " claim would give it now; nothing is claimed) and its files, for fetching them while"
       " its task renders", "worker protocol", m.Upcoming, params=(
        _query("warm_job", {"type": "integer", "minimum": 1},
               "the job its task is of: answered without files when it is that job"),
    ), auth=WORKER),
    Op("post", "/worker/tasks/{task_id}/update", "Progress, activity and log text; renews the"
       " lease", "worker protocol", m.UpdateAnswer, body=m.TaskUpdate, params=(TASK_ID,),
       errors=(409,), said=_HELD, auth=WORKER),
    Op("get", "/worker/tasks/{task_id}/control", "Long-poll: {action: stop} as soon as the"
       " task must stop; renews the lease", "worker protocol", m.Control, params=(
        TASK_ID,
        _query("wait", {"type": "number", "minimum": 0, "maximum": 60},
               "seconds (default 10, at most half a lease)"),
    ), auth=WORKER),
    Op("put", "/worker/tasks/{task_id}/outputs/{name}", "Upload a rendered file (streamed;"
       " checked against sha256 when given)", "worker protocol", m.Output, status=201,
       body=FILE, params=(
        TASK_ID,
        _path("name", _TEXT, "file name as written"),
        _query("frame", {"type": "integer"}, "the frame it shows"),
        _query("sha256", {"type": "string", "pattern": "^[0-9a-f]{64}$"},
               "expected content hash"),
    ), errors=(404, 409, 507), said=_HELD, auth=WORKER),
    Op("get", "/worker/tasks/{task_id}/inputs/{name}", "Download an input of the held task: an"
       " output of a task it depends on, as listed in its assignment's inputs",
       "worker protocol", RENDERED, params=(TASK_ID, _path("name", _TEXT, "the input's name")),
       errors=(404, 409), said=((404, "not one of the task's inputs"), *_HELD), auth=WORKER),
    Op("post", "/worker/tasks/{task_id}/complete", "The task finished and its outputs are"
       " uploaded; with next=true the answer also carries the worker's next assignment when"
       " one is runnable now (null otherwise: then long-poll /worker/task)", "worker protocol",
       m.CompleteAnswer, body=m.CompleteRequest, params=(TASK_ID,), errors=(409,), said=_HELD,
       auth=WORKER),
    Op("post", "/worker/tasks/{task_id}/fail", "The task failed; it is retried elsewhere until"
       " out of attempts, or fails at once when the worker says the failure is the job's own"
       " (job_fault)", "worker protocol", m.FailAnswer, body=m.FailRequest,
       params=(TASK_ID,), errors=(409,), said=_HELD, auth=WORKER),
    Op("post", "/worker/sign-off", "The worker is leaving: its task goes back to the queue",
       "worker protocol", m.Ok, body=m.NoFields, auth=WORKER),
    Op("post", "/worker/report", "What the worker can do now (its agent says so each time it"
       " starts with saved credentials): its Blender, devices and capabilities replace what"
       " it reported before", "worker protocol", m.Ok, body=m.WorkerReport, auth=WORKER),
    Op("post", "/worker/rest", "The worker is outside its working hours until `until`: it"
       " shows as resting, takes no task and keeps none (a held task goes back to the queue"
       " without spending a try); sent again every 30 s while it rests, and ended by its next"
       " request for work", "worker protocol", m.Ok, body=m.RestRequest, auth=WORKER),
)  # fmt: skip

OPERATIONS: tuple[Op, ...] = (*META, *JOBS, *TASKS, *FILES, *WORKERS, *EVENTS_OPS, *PROTOCOL)
