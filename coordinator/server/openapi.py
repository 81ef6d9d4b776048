"""The OpenAPI 3.1 document the coordinator serves at /api/v1/openapi.json.

Written by hand, next to the code it describes; `tests/test_openapi.py`
checks that it lists exactly the routes the app serves, and the API
reference in docs/ is generated from it (`python -m coordinator openapi-docs`).
"""

from __future__ import annotations

from typing import Any

from coordinator.core.protocol import API_PREFIX, API_VERSION, JobStatus, TaskStatus, WorkerStatus
from coordinator.server.states import JOB_ACTIONS, TASK_ACTIONS

JSON = dict[str, Any]

_ERROR = {"$ref": "#/components/schemas/Error"}
_ID = {"type": "integer", "minimum": 1}


def _param(
    name: str, where: str, schema: JSON, description: str, *, required: bool = False
) -> JSON:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


def _body(schema: JSON, *, content_type: str = "application/json") -> JSON:
    return {"required": True, "content": {content_type: {"schema": schema}}}


def _ok(
    description: str,
    schema: JSON | None = None,
    *,
    status: str = "200",
    content_type: str = "application/json",
) -> JSON:
    response: JSON = {"description": description}
    if schema is not None:
        response["content"] = {content_type: {"schema": schema}}
    errors = {
        code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        for code, text in (
            ("400", "bad input, the message says what"),
            ("401", "missing or wrong token"),
        )
    }
    return {status: response, **errors}


def _op(
    summary: str,
    responses: JSON,
    *,
    tag: str,
    params: list[JSON] | None = None,
    body: JSON | None = None,
    security: str | None = "farmToken",
) -> JSON:
    op: JSON = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    op["security"] = [{security: []}] if security else []
    return op


_JOB_ID = _param("job_id", "path", _ID, "the job's id")
_TASK_ID = _param("task_id", "path", _ID, "the task's id")
_WORKER_ID = _param("worker_id", "path", {"type": "string"}, "the worker's id")
_JOB = {"$ref": "#/components/schemas/Job"}


def _refusable(responses: JSON) -> JSON:
    """Responses of an action that may not apply: 404 and 409 with the reason."""
    errors = {
        code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        for code, text in (
            ("404", "no such job, task or worker"),
            ("409", "the action does not apply in its current state; the message says why"),
        )
    }
    return {**responses, **errors}


def _fields(properties: JSON, *, required: tuple[str, ...] = ()) -> JSON:
    schema: JSON = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


_SHA = _param(
    "sha256",
    "path",
    {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "the file's sha256, 64 lowercase hex digits",
)
_OBJ = {"type": "object"}

_SCHEMAS: JSON = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what is wrong and what to do"},
            "field": {"type": "string", "description": "the offending field, when one is"},
        },
    },
    "JobSubmission": {
        "type": "object",
        "required": ["name", "type"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "type": {"type": "string", "description": "a job type from GET /job-types"},
            "priority": {"type": "integer", "minimum": 0, "maximum": 100, "default": 50},
            "settings": {"type": "object", "description": "the job type's settings"},
            "files": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "project path -> sha256 of every file the job uses",
            },
            "blend": {"type": "string", "description": "the main .blend's project path"},
            "blender_version": {"type": "string", "description": "Blender that saved the file"},
            "submitter": {"type": "string", "maxLength": 200},
            "deliver": {
                "type": "boolean",
                "default": True,
                "description": "write finished frames into the output folder on the"
                " coordinator's machine",
            },
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20, "default": 3},
        },
    },
    "Job": {
        "type": "object",
        "properties": {
            "id": _ID,
            "name": {"type": "string"},
            "type": {"type": "string"},
            "priority": {"type": "integer"},
            "status": {"type": "string", "enum": list(JobStatus)},
            "status_reason": {"type": "string"},
            "settings": _OBJ,
            "task_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "report": {
                "type": "object",
                "description": "the job type's own progress summary, when it has one;"
                " blender-render-progressive: {samples, frame_samples: {frame: samples"
                " reached}, frames_finished}",
            },
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "generation": {
                "type": "integer",
                "description": "1, plus one for each regenerate; tasks carry theirs",
            },
            "warning": {
                "type": "string",
                "description": "why no worker can take its queued work right now"
                " (e.g. no online worker has a new enough Blender); empty when none",
            },
            "blocklist": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/BlocklistEntry"},
                "description": "workers that failed too many of its tasks to get more",
            },
            "actions": {
                "type": "array",
                "items": {"type": "string", "enum": list(JOB_ACTIONS)},
                "description": "the actions a person can take on it now",
            },
            "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
            "regenerated": {
                "type": "object",
                "description": "only in the answer to regenerate: tasks, kept, stopped",
            },
        },
    },
    "BlocklistEntry": {
        "type": "object",
        "properties": {
            "worker_id": {"type": "string"},
            "name": {"type": "string"},
            "failures": {"type": "integer", "description": "its failed attempts on the job"},
        },
    },
    "JobPage": {
        "type": "object",
        "properties": {
            "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "TaskPage": {
        "type": "object",
        "properties": {
            "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
            "total": {"type": "integer", "description": "tasks that match, on every page"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "Task": {
        "type": "object",
        "properties": {
            "id": _ID,
            "job_id": _ID,
            "name": {"type": "string"},
            "kind": {"type": "string"},
            "status": {"type": "string", "enum": list(TaskStatus)},
            "frames": {"type": "array", "items": {"type": "integer"}},
            "attempts": {"type": "integer"},
            "worker_id": {"type": ["string", "null"]},
            "progress": {"type": "number"},
            "activity": {"type": "string"},
            "generation": {"type": "integer", "description": "the job generation it belongs to"},
            "actions": {
                "type": "array",
                "items": {"type": "string", "enum": list(TASK_ACTIONS)},
                "description": "the actions a person can take on it now (none on an"
                " earlier generation's task)",
            },
        },
    },
    "Worker": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "host": {"type": "string"},
            "status": {"type": "string", "enum": list(WorkerStatus)},
            "disabled": {"type": "boolean", "description": "takes no new tasks"},
            "blender_version": {"type": "string"},
            "devices": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "last_seen": {"type": "number", "description": "seconds since 1970"},
            "task": {
                "type": ["object", "null"],
                "description": "the task it runs: id, job_id, name",
            },
            "actions": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": ["disable", "disable-now", "enable", "remove"],
                },
                "description": "the actions a person can take on it now",
            },
        },
    },
    "WorkerRegistration": {
        "type": "object",
        "required": ["name", "blender_version"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "host": {"type": "string"},
            "blender_version": {"type": "string", "example": "4.2.3"},
            "devices": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Assignment": {
        "type": "object",
        "properties": {
            "task_id": _ID,
            "job_id": _ID,
            "job_name": {"type": "string"},
            "kind": {"type": "string"},
            "payload": _OBJ,
            "attempt": {"type": "integer"},
            "lease_seconds": {"type": "number"},
            "blend": {"type": ["string", "null"]},
            "files": {"type": "object", "additionalProperties": {"type": "string"}},
            "inputs": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "output name -> sha256 of what the tasks it depends on"
                " produced (their completed attempts); download each from"
                " /worker/tasks/{task_id}/inputs/{name}",
            },
        },
    },
    "Output": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "frame": {"type": ["integer", "null"]},
            "sha256": {"type": "string"},
            "size": {"type": "integer"},
            "delivered_path": {"type": ["string", "null"]},
            "delivery_note": {"type": "string"},
            "intermediate": {
                "type": "boolean",
                "description": "feeds other tasks of the job (a progressive chunk); kept on"
                " the farm, never delivered",
            },
        },
    },
}


def _paths() -> JSON:
    p = API_PREFIX
    job_filters = [
        _param("status", "query", {"type": "string"}, "comma-separated statuses"),
        _param("type", "query", {"type": "string"}, "comma-separated job types"),
        _param(
            "name",
            "query",
            {"type": "string"},
            "contains this text, or matches a glob with * ? [...]; either way ignoring case",
        ),
        _param("submitter", "query", {"type": "string"}, "like name: text or a glob, any case"),
        _param("after", "query", {"type": "string"}, "submitted at/after: ISO date or epoch"),
        _param("before", "query", {"type": "string"}, "submitted before: ISO date or epoch"),
        _param(
            "sort",
            "query",
            {"type": "string"},
            "created|updated|priority|name|status|id, prefix - for descending (default -created)",
        ),
        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}, "page size"),
        _param("offset", "query", {"type": "integer", "minimum": 0}, "page start"),
    ]
    job_action = {
        name: {
            "post": _op(
                text,
                _refusable(_ok("the job after the action", _JOB)),
                tag="jobs",
                params=[_JOB_ID],
            )
        }
        for name, text in (
            ("cancel", "Cancel a job; running tasks are told to stop"),
            ("pause", "Pause a job; running tasks finish, no new ones start"),
            ("resume", "Resume a paused job"),
        )
    }
    return {
        f"{p}/health": {
            "get": _op(
                "Is the coordinator up; its name and worker count",
                _ok("ok", _OBJ),
                tag="meta",
                security=None,
            )
        },
        f"{p}/version": {
            "get": _op(
                "API and coordinator version", _ok("versions", _OBJ), tag="meta", security=None
            )
        },
        f"{p}/openapi.json": {"get": _op("This document", _ok("OpenAPI 3.1", _OBJ), tag="meta")},
        f"{p}/job-types": {
            "get": _op(
                "Job types and their settings schemas", _ok("the catalogue", _OBJ), tag="meta"
            )
        },
        f"{p}/jobs": {
            "post": _op(
                "Submit a job",
                _ok("the new job", {"$ref": "#/components/schemas/Job"}, status="201"),
                tag="jobs",
                body=_body({"$ref": "#/components/schemas/JobSubmission"}),
            ),
            "get": _op(
                "List jobs, filtered and paged",
                _ok("a page of jobs", {"$ref": "#/components/schemas/JobPage"}),
                tag="jobs",
                params=job_filters,
            ),
        },
        f"{p}/jobs/{{job_id}}": {
            "get": _op(
                "A job with its tasks",
                _ok("the job", {"$ref": "#/components/schemas/Job"}),
                tag="jobs",
                params=[
                    _JOB_ID,
                    _param(
                        "tasks",
                        "query",
                        {"type": "string", "enum": ["1", "0", "all"]},
                        "0 leaves tasks out; all lists earlier generations' tasks too",
                    ),
                ],
            ),
            "delete": _op(
                "Delete a job, its tasks, logs and stored outputs (frames already delivered stay)",
                _refusable(_ok("deleted", _OBJ)),
                tag="jobs",
                params=[_JOB_ID],
            ),
        },
        f"{p}/jobs/{{job_id}}/tasks": {
            "get": _op(
                "A page of a job's tasks in their order, optionally of some statuses only"
                " (for big jobs: GET /jobs/{id}?tasks=0 plus pages of this)",
                _refusable(_ok("a page of tasks", {"$ref": "#/components/schemas/TaskPage"})),
                tag="jobs",
                params=[
                    _JOB_ID,
                    _param("status", "query", {"type": "string"}, "comma-separated task statuses"),
                    _param(
                        "generation",
                        "query",
                        {"type": "string", "enum": ["current", "all"]},
                        "all: earlier generations' tasks too (default current)",
                    ),
                    _param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "page size (default 100)",
                    ),
                    _param("offset", "query", {"type": "integer", "minimum": 0}, "page start"),
                ],
            )
        },
        **{f"{p}/jobs/{{job_id}}/{name}": ops for name, ops in job_action.items()},
        f"{p}/jobs/{{job_id}}/requeue": {
            "post": _op(
                "Queue a job's failed and canceled tasks again (which=failed) or all of them",
                _refusable(_ok("the job", _JOB)),
                tag="jobs",
                params=[_JOB_ID],
                body=_body(
                    {
                        "type": "object",
                        "properties": {"which": {"type": "string", "enum": ["failed", "all"]}},
                    }
                ),
            )
        },
        f"{p}/jobs/{{job_id}}/regenerate": {
            "post": _op(
                "Compile the job's tasks again from its settings, with some changed; the"
                " job keeps its id, files and history, running tasks are stopped, and"
                " finished frames the new tasks would render the same way are kept",
                _refusable(_ok("the job, with a regenerated summary", _JOB)),
                tag="jobs",
                params=[_JOB_ID],
                body=_fields(
                    {
                        "settings": {
                            "type": "object",
                            "description": "settings to change (null resets one to its"
                            " default); the others stay as they are",
                        },
                        "keep_completed": {
                            "type": "boolean",
                            "default": True,
                            "description": "false renders every frame again",
                        },
                    }
                ),
            )
        },
        f"{p}/jobs/{{job_id}}/priority": {
            "post": _op(
                "Change a job's priority (higher runs first)",
                _refusable(_ok("the job", _JOB)),
                tag="jobs",
                params=[_JOB_ID],
                body=_fields(
                    {"priority": {"type": "integer", "minimum": 0, "maximum": 100}},
                    required=("priority",),
                ),
            )
        },
        f"{p}/jobs/{{job_id}}/clear-blocklist": {
            "post": _op(
                "Forgive blocklisted workers (all, or one) their failures on this job so"
                " that they get its tasks again",
                _refusable(_ok("the job", _JOB)),
                tag="jobs",
                params=[_JOB_ID],
                body=_fields({"worker_id": {"type": "string", "description": "only this one"}}),
            )
        },
        f"{p}/jobs/{{job_id}}/outputs": {
            "get": _op(
                "Rendered files of a job (not intermediate ones that only feed its other tasks)",
                _ok(
                    "outputs",
                    {
                        "type": "object",
                        "properties": {
                            "outputs": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Output"},
                            }
                        },
                    },
                ),
                tag="jobs",
                params=[_JOB_ID],
            )
        },
        f"{p}/jobs/{{job_id}}/outputs/{{name}}": {
            "get": _op(
                "Download one rendered file",
                _ok(
                    "the file",
                    {"type": "string", "format": "binary"},
                    content_type="application/octet-stream",
                ),
                tag="jobs",
                params=[_JOB_ID, _param("name", "path", {"type": "string"}, "the file name")],
            )
        },
        f"{p}/tasks/{{task_id}}": {
            "get": _op(
                "A task with its payload and failures",
                _ok("the task", _OBJ),
                tag="tasks",
                params=[_TASK_ID],
            )
        },
        f"{p}/tasks/{{task_id}}/log": {
            "get": _op(
                "The end of a task's log",
                _ok("log text", {"type": "string"}, content_type="text/plain"),
                tag="tasks",
                params=[
                    _TASK_ID,
                    _param(
                        "tail", "query", {"type": "integer"}, "bytes from the end (default 65536)"
                    ),
                ],
            )
        },
        f"{p}/tasks/{{task_id}}/requeue": {
            "post": _op(
                "Run one task again from scratch (a worker running it is told to stop);"
                " its attempts and failures are forgiven",
                _refusable(_ok("the task", {"$ref": "#/components/schemas/Task"})),
                tag="tasks",
                params=[_TASK_ID],
            )
        },
        f"{p}/tasks/{{task_id}}/cancel": {
            "post": _op(
                "Stop one task for good (a worker running it is told to stop); the job"
                " goes on with its other tasks",
                _refusable(_ok("the task", {"$ref": "#/components/schemas/Task"})),
                tag="tasks",
                params=[_TASK_ID],
            )
        },
        f"{p}/files/missing": {
            "post": _op(
                "Which of these hashes the coordinator lacks",
                _ok(
                    "the missing hashes",
                    {
                        "type": "object",
                        "properties": {"missing": {"type": "array", "items": {"type": "string"}}},
                    },
                ),
                tag="files",
                body=_body(
                    {
                        "type": "object",
                        "required": ["hashes"],
                        "properties": {"hashes": {"type": "array", "items": {"type": "string"}}},
                    }
                ),
            )
        },
        f"{p}/files/{{sha256}}": {
            "put": _op(
                "Upload a file; its content must hash to the URL's sha256",
                _ok("stored", _OBJ, status="201"),
                tag="files",
                params=[_SHA],
                body=_body(
                    {"type": "string", "format": "binary"}, content_type="application/octet-stream"
                ),
            ),
            "get": _op(
                "Download a stored file (farm token or a worker's secret)",
                _ok(
                    "the file",
                    {"type": "string", "format": "binary"},
                    content_type="application/octet-stream",
                ),
                tag="files",
                params=[_SHA],
            ),
        },
        f"{p}/workers": {
            "post": _op(
                "Register a worker; returns its id and secret",
                _ok("credentials", _OBJ, status="201"),
                tag="workers",
                body=_body({"$ref": "#/components/schemas/WorkerRegistration"}),
            ),
            "get": _op(
                "List workers",
                _ok(
                    "workers",
                    {
                        "type": "object",
                        "properties": {
                            "workers": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Worker"},
                            }
                        },
                    },
                ),
                tag="workers",
            ),
        },
        f"{p}/workers/{{worker_id}}": {
            "get": _op(
                "One worker",
                _refusable(_ok("the worker", {"$ref": "#/components/schemas/Worker"})),
                tag="workers",
                params=[_WORKER_ID],
            ),
            "delete": _op(
                "Forget an offline worker (an online one is refused: its agent would"
                " register again)",
                _refusable(_ok("removed", _OBJ)),
                tag="workers",
                params=[_WORKER_ID],
            ),
        },
        f"{p}/workers/{{worker_id}}/disable": {
            "post": _op(
                "Give the worker no new tasks; its task finishes first, or with now=true"
                " goes back to the queue at once (not counted as a failure)",
                _refusable(_ok("the worker", {"$ref": "#/components/schemas/Worker"})),
                tag="workers",
                params=[_WORKER_ID],
                body=_fields({"now": {"type": "boolean", "default": False}}),
            )
        },
        f"{p}/workers/{{worker_id}}/enable": {
            "post": _op(
                "Let a disabled worker take tasks again",
                _refusable(_ok("the worker", {"$ref": "#/components/schemas/Worker"})),
                tag="workers",
                params=[_WORKER_ID],
            )
        },
        f"{p}/events": {
            "get": _op(
                "Live updates as server-sent events (job, job-deleted, task, worker,"
                " worker-removed, output), each `data:` a JSON object with its `type` and"
                " ids; `resync` when the reader fell too far behind and events were dropped"
                " (reload what you show), `shutdown` when the coordinator stops. Read it"
                " with the Authorization header (fetch() and a stream reader in a browser)",
                _ok("an event stream", {"type": "string"}, content_type="text/event-stream"),
                tag="events",
            )
        },
        f"{p}/worker/task": {
            "post": _op(
                "Long-poll for a task: answers as soon as one is runnable; 204 after `wait` s",
                {
                    **_ok("an assignment", {"$ref": "#/components/schemas/Assignment"}),
                    "204": {"description": "no task within the wait"},
                },
                tag="worker protocol",
                params=[
                    _param(
                        "wait",
                        "query",
                        {"type": "number", "minimum": 0, "maximum": 60},
                        "seconds to wait (default 20)",
                    )
                ],
                security="workerSecret",
            )
        },
        f"{p}/worker/tasks/{{task_id}}/update": {
            "post": _op(
                "Progress, activity and log text; 409 when the lease is lost",
                _ok("continue", _OBJ),
                tag="worker protocol",
                params=[_TASK_ID],
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "progress": {"type": "number", "minimum": 0, "maximum": 1},
                            "activity": {"type": "string"},
                            "log": {"type": "string"},
                        },
                    }
                ),
                security="workerSecret",
            )
        },
        f"{p}/worker/tasks/{{task_id}}/control": {
            "get": _op(
                "Long-poll: {action: stop} as soon as the task must stop; renews the lease",
                _ok("continue or stop", _OBJ),
                tag="worker protocol",
                params=[
                    _TASK_ID,
                    _param("wait", "query", {"type": "number"}, "seconds (default 10)"),
                ],
                security="workerSecret",
            )
        },
        f"{p}/worker/tasks/{{task_id}}/outputs/{{name}}": {
            "put": _op(
                "Upload a rendered file (streamed; checked against sha256 when given)",
                _ok("the stored output", {"$ref": "#/components/schemas/Output"}, status="201"),
                tag="worker protocol",
                params=[
                    _TASK_ID,
                    _param("name", "path", {"type": "string"}, "file name as written"),
                    _param("frame", "query", {"type": "integer"}, "the frame it shows"),
                    _param("sha256", "query", {"type": "string"}, "expected content hash"),
                ],
                body=_body(
                    {"type": "string", "format": "binary"}, content_type="application/octet-stream"
                ),
                security="workerSecret",
            )
        },
        f"{p}/worker/tasks/{{task_id}}/inputs/{{name}}": {
            "get": _op(
                "Download an input of the held task: an output of a task it depends on,"
                " as listed in its assignment's inputs",
                {
                    **_ok(
                        "the file",
                        {"type": "string", "format": "binary"},
                        content_type="application/octet-stream",
                    ),
                    "404": {
                        "description": "not one of the task's inputs",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                    "409": {
                        "description": "the worker no longer holds the task",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                },
                tag="worker protocol",
                params=[_TASK_ID, _param("name", "path", {"type": "string"}, "the input's name")],
                security="workerSecret",
            )
        },
        f"{p}/worker/tasks/{{task_id}}/complete": {
            "post": _op(
                "The task finished and its outputs are uploaded; with next=true the"
                " answer also carries the worker's next assignment when one is runnable"
                " now (null otherwise: then long-poll /worker/task)",
                _ok("ok, and the next assignment when asked for", _OBJ),
                tag="worker protocol",
                params=[_TASK_ID],
                body={
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"next": {"type": "boolean"}},
                            }
                        }
                    },
                },
                security="workerSecret",
            )
        },
        f"{p}/worker/tasks/{{task_id}}/fail": {
            "post": _op(
                "The task failed; it is retried elsewhere until out of attempts",
                _ok("what became of the task", _OBJ),
                tag="worker protocol",
                params=[_TASK_ID],
                body=_body(
                    {
                        "type": "object",
                        "required": ["reason"],
                        "properties": {"reason": {"type": "string"}, "log": {"type": "string"}},
                    }
                ),
                security="workerSecret",
            )
        },
        f"{p}/worker/sign-off": {
            "post": _op(
                "The worker is leaving: its task goes back to the queue",
                _ok("ok", _OBJ),
                tag="worker protocol",
                security="workerSecret",
            )
        },
    }


def openapi_document() -> JSON:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LAN render farm coordinator",
            "version": API_VERSION,
            "description": "Jobs, tasks, workers and files of a Blender render farm.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "farmToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the farm token (token.txt in the data dir)",
                },
                "workerSecret": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the secret a worker got at registration",
                },
            },
        },
    }
