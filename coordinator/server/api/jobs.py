"""Jobs: submit, list with filters, inspect, and a person's actions on them.

Each handler turns the request into the job service's typed arguments (the
parse_* functions below), calls one service method and returns its JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from aiohttp import web

from coordinator.core.protocol import API_PREFIX, JobStatus, TaskStatus
from coordinator.server.api.common import (
    check_blender_version,
    int_param,
    joined_query,
    query_int,
    read_json,
    read_object,
    validate_body,
)
from coordinator.server.errors import BadRequest
from coordinator.server.filestore import check_relpath, check_sha256
from coordinator.server.job_types.schema import Setting
from coordinator.server.keys import FARM
from coordinator.server.pools import check_needs, check_tags
from coordinator.server.services.jobs import (
    MAX_FILES_PER_JOB,
    SORT_COLUMNS,
    JobQuery,
    JobSort,
    NewJob,
    TaskQuery,
)

routes = web.RouteTableDef()

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
    Setting("origin", "str", "Origin", default="", max_length=64),
    Setting("deliver", "bool", "Deliver", default=True),
    Setting("max_attempts", "int", "Attempts", default=3, minimum=1, maximum=20),
    Setting("paused", "bool", "Paused", default=False),
)
JOB_FILTERS = (
    "status",
    "type",
    "name",
    "submitter",
    "origin",
    "after",
    "before",
    "sort",
    "limit",
    "offset",
)
JOBS_PAGE, JOBS_PAGE_MAX = 50, 500
TASKS_PAGE, TASKS_PAGE_MAX = 100, 1000
MAX_OFFSET = 10**9


@routes.post(f"{API_PREFIX}/jobs")
async def submit(request: web.Request) -> web.Response:
    job = request.app[FARM].jobs.submit(parse_new_job(await read_json(request)))
    return web.json_response(job, status=201)


@routes.get(f"{API_PREFIX}/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    return web.json_response(request.app[FARM].jobs.find(parse_job_query(joined_query(request))))


@routes.get(f"{API_PREFIX}/jobs/{{job_id}}")
async def get_job(request: web.Request) -> web.Response:
    tasks = request.query.get("tasks", "1")
    job = request.app[FARM].jobs.get(
        int_param(request, "job_id"),
        with_tasks=tasks not in ("0", "false", "no"),
        all_generations=tasks == "all",  # earlier generations too (before a regenerate)
    )
    return web.json_response(job)


@routes.get(f"{API_PREFIX}/jobs/{{job_id}}/tasks")
async def list_job_tasks(request: web.Request) -> web.Response:
    job_id = int_param(request, "job_id")
    query = parse_task_query(joined_query(request))
    return web.json_response(request.app[FARM].jobs.tasks(job_id, query))


@routes.delete(f"{API_PREFIX}/jobs/{{job_id}}")
async def delete_job(request: web.Request) -> web.Response:
    request.app[FARM].jobs.delete(int_param(request, "job_id"))
    return web.json_response({"deleted": True})


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/cancel")
async def cancel(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields; refuse garbage rather than ignore it
    return web.json_response(request.app[FARM].jobs.cancel(int_param(request, "job_id")))


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/pause")
async def pause(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields; refuse garbage rather than ignore it
    return web.json_response(request.app[FARM].jobs.pause(int_param(request, "job_id")))


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/resume")
async def resume(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields; refuse garbage rather than ignore it
    return web.json_response(request.app[FARM].jobs.resume(int_param(request, "job_id")))


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/requeue")
async def requeue(request: web.Request) -> web.Response:
    which = (await read_object(request, allowed=("which",))).get("which", "failed")
    if which not in ("failed", "all"):
        raise BadRequest(f"'which' must be 'failed' or 'all', not {which!r}", field="which")
    job = request.app[FARM].jobs.requeue(int_param(request, "job_id"), which=which)
    return web.json_response(job)


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/regenerate")
async def regenerate(request: web.Request) -> web.Response:
    body = await read_object(request, allowed=("settings", "keep_completed"))
    settings = body.get("settings")
    settings = {} if settings is None else settings
    if not isinstance(settings, Mapping):
        raise BadRequest("'settings' must be an object of the settings to change", field="settings")
    keep_completed = body.get("keep_completed", True)
    if not isinstance(keep_completed, bool):
        raise BadRequest("'keep_completed' must be true or false", field="keep_completed")
    job = request.app[FARM].regenerator.regenerate(
        int_param(request, "job_id"), settings=settings, keep_completed=keep_completed
    )
    return web.json_response(job)


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/priority")
async def priority(request: web.Request) -> web.Response:
    body = await read_object(request, allowed=("priority",))
    if "priority" not in body:
        raise BadRequest('send {"priority": 0-100}', field="priority")
    value = body["priority"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise BadRequest("'priority' must be a whole number from 0 to 100", field="priority")
    return web.json_response(
        request.app[FARM].jobs.set_priority(int_param(request, "job_id"), value)
    )


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/clear-blocklist")
async def clear_blocklist(request: web.Request) -> web.Response:
    worker_id = (await read_object(request, allowed=("worker_id",))).get("worker_id")
    if worker_id is not None and not isinstance(worker_id, str):
        raise BadRequest("'worker_id' must be a worker's id", field="worker_id")
    job = request.app[FARM].jobs.clear_blocklist(int_param(request, "job_id"), worker_id=worker_id)
    return web.json_response(job)


@routes.get(f"{API_PREFIX}/jobs/{{job_id}}/outputs")
async def list_outputs(request: web.Request) -> web.Response:
    outputs = request.app[FARM].deliveries.outputs(int_param(request, "job_id"))
    return web.json_response({"outputs": outputs})


@routes.get(f"{API_PREFIX}/jobs/{{job_id}}/outputs/{{name:[^/]+}}")
async def get_output(request: web.Request) -> web.FileResponse:
    path = request.app[FARM].deliveries.output_file(
        int_param(request, "job_id"), request.match_info["name"]
    )
    return web.FileResponse(path)


# ------------------------------------------------------------------ parsing
def parse_new_job(body: object) -> NewJob:
    data = validate_body(JOB_BODY, body, extra=("settings", "files", "requires_tags", "needs"))
    try:
        requires_tags = check_tags(data.get("requires_tags", []), "requires_tags")
        needs = check_needs(data.get("needs", {}))
    except ValueError as ex:
        field = "needs" if "needs" in str(ex) else "requires_tags"
        raise BadRequest(str(ex), field=field) from ex
    settings = data.get("settings", {})
    if not isinstance(settings, Mapping):
        raise BadRequest(
            "setting 'settings': expected an object of setting names to values", field="settings"
        )
    return NewJob(
        name=data["name"],
        type=data["type"],
        settings=settings,
        files=_job_files(data.get("files", {})),
        priority=data["priority"],
        blend=data["blend"],
        blender_version=data["blender_version"],
        submitter=data["submitter"],
        origin=data["origin"],
        deliver=data["deliver"],
        max_attempts=data["max_attempts"],
        requires_tags=tuple(requires_tags),
        needs=needs,
        paused=data["paused"],
    )


def _job_files(files: object) -> dict[str, str]:
    """project path -> sha256, each path one that stays inside the project."""
    if not isinstance(files, Mapping):
        raise BadRequest("'files' must be an object of project path -> sha256", field="files")
    if len(files) > MAX_FILES_PER_JOB:
        raise BadRequest(f"a job may reference at most {MAX_FILES_PER_JOB} files", field="files")
    return {check_relpath(path): check_sha256(sha) for path, sha in files.items()}


def parse_job_query(query: Mapping[str, str]) -> JobQuery:
    unknown = set(query) - set(JOB_FILTERS)
    if unknown:
        raise BadRequest(
            f"unknown filter(s) {', '.join(sorted(unknown))}; use {', '.join(JOB_FILTERS)}"
        )
    statuses = _listed(query, "status")
    bad = [s for s in statuses if s not in set(JobStatus)]
    if bad:
        raise BadRequest(
            f"unknown status {', '.join(bad)}; use {', '.join(JobStatus)}", field="status"
        )
    after, before = query.get("after"), query.get("before")
    after_time = _query_time(after, "after") if after else None
    before_time = _query_time(before, "before") if before else None
    sort, descending = _job_sort(query.get("sort", "-created"))
    return JobQuery(
        statuses=tuple(JobStatus(s) for s in statuses),
        types=_listed(query, "type"),
        name=query.get("name", ""),
        submitter=query.get("submitter", ""),
        origin=query.get("origin", ""),
        after=after_time,
        before=before_time,
        sort=sort,
        descending=descending,
        limit=query_int(query, "limit", JOBS_PAGE, 1, JOBS_PAGE_MAX),
        offset=query_int(query, "offset", 0, 0, MAX_OFFSET),
    )


def parse_task_query(query: Mapping[str, str]) -> TaskQuery:
    generations = query.get("generation", "current")
    if generations not in ("current", "all"):
        raise BadRequest("'generation' must be 'current' or 'all'", field="generation")
    statuses = sorted({s for s in query.get("status", "").split(",") if s})
    unknown = sorted(set(statuses) - {s.value for s in TaskStatus})
    if unknown:
        known = ", ".join(s.value for s in TaskStatus)
        raise BadRequest(f"unknown task status {unknown[0]!r}; use {known}", field="status")
    return TaskQuery(
        statuses=tuple(TaskStatus(s) for s in statuses),
        all_generations=generations == "all",
        limit=query_int(query, "limit", TASKS_PAGE, 1, TASKS_PAGE_MAX),
        offset=query_int(query, "offset", 0, 0, MAX_OFFSET),
    )


def _listed(query: Mapping[str, str], key: str) -> tuple[str, ...]:
    """A comma-separated filter's values, each once, in order."""
    return tuple(sorted({v.strip() for v in query.get(key, "").split(",") if v.strip()}))


def _job_sort(text: str) -> tuple[JobSort, bool]:
    """(key, descending) of "created" or "-created"."""
    key = text.lstrip("-")
    for known in SORT_COLUMNS:
        if key == known:
            return known, text.startswith("-")
    raise BadRequest(
        f"cannot sort by {key!r}; use one of {', '.join(SORT_COLUMNS)} (prefix - for descending)",
        field="sort",
    )


def _query_time(text: str, key: str) -> float:
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
            value = datetime.fromisoformat(text).timestamp()
        except (ValueError, OverflowError, OSError):
            raise problem from None
    if not math.isfinite(value):
        raise problem
    return value
