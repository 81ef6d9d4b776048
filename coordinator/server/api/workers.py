"""Workers: registration and listing (farm token), and the worker protocol
under /worker/ (each worker's own secret)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web

from coordinator.core.frames import MAX_FRAME, MIN_FRAME
from coordinator.core.protocol import API_PREFIX, WorkerStatus
from coordinator.server.api.common import (
    check_blender_version,
    int_param,
    query_float,
    read_json,
    read_object,
    validate_body,
)
from coordinator.server.errors import BadRequest
from coordinator.server.farm import Farm
from coordinator.server.job_types.schema import Setting
from coordinator.server.keys import FARM, HUB, WORKER, WORKER_SECRET
from coordinator.server.pools import check_tags
from coordinator.server.services.tasks import MAX_LOG_CHUNK, STAGES, TaskReport
from coordinator.server.services.workers import NewWorker

routes = web.RouteTableDef()

MAX_POLL = 60.0
MAX_STAGE_SECONDS = 30 * 86400  # as models.Seconds says

WORKER_BODY = (
    Setting("name", "str", "Name", required=True, max_length=200),
    Setting("host", "str", "Host", default="", max_length=255),
    Setting(
        "blender_version",
        "str",
        "Blender version",
        required=True,
        max_length=32,
        check=check_blender_version,
    ),
)


@routes.post(f"{API_PREFIX}/workers")
async def register(request: web.Request) -> web.Response:
    new = parse_new_worker(await read_json(request))
    return web.json_response(request.app[FARM].workers.register(new), status=201)


def parse_new_worker(body: object) -> NewWorker:
    data = validate_body(WORKER_BODY, body, extra=("devices", "tags", "capabilities"))
    return NewWorker(
        name=data["name"],
        host=data["host"],
        blender_version=data["blender_version"],
        devices=_string_list(data.get("devices", []), "devices"),
        tags=tuple(_tags(data.get("tags", []))),
        capabilities=_capabilities(data.get("capabilities", {})),
    )


def _tags(value: object) -> list[str]:
    try:
        return check_tags(value, "tags")
    except ValueError as ex:
        raise BadRequest(str(ex), field="tags") from ex


def _capabilities(value: object) -> dict[str, object]:
    """What a worker says it can do: engines (names), memory_mb, os; untrusted, so
    only these, each checked for shape."""
    if not isinstance(value, Mapping):
        raise BadRequest("'capabilities' must be an object", field="capabilities")
    unknown = sorted(set(value) - {"engines", "memory_mb", "os"})
    if unknown:
        raise BadRequest(
            f"'capabilities': unknown {unknown[0]!r}; known: engines, memory_mb, os",
            field="capabilities",
        )
    out: dict[str, object] = {}
    if "engines" in value:
        out["engines"] = list(_string_list(value["engines"], "capabilities.engines"))
    memory = value.get("memory_mb")
    if memory is not None:
        if isinstance(memory, bool) or not isinstance(memory, int) or not 0 <= memory < 2**40:
            raise BadRequest(
                "'capabilities.memory_mb' must be a whole number of MiB",
                field="capabilities",
            )
        out["memory_mb"] = memory
    system = value.get("os")
    if system is not None:
        if not isinstance(system, str) or len(system) > 64:
            raise BadRequest("'capabilities.os' must be a short text", field="capabilities")
        out["os"] = system
    return out


@routes.put(f"{API_PREFIX}/workers/{{worker_id}}/tags")
async def set_tags(request: web.Request) -> web.Response:
    """Replace the worker's tags (its pools)."""
    body = await read_object(request, allowed=("tags",))
    if "tags" not in body:
        raise BadRequest('send {"tags": [...]}: the worker\'s new tags', field="tags")
    return web.json_response(
        request.app[FARM].workers.set_tags(request.match_info["worker_id"], _tags(body["tags"]))
    )


def _string_list(value: object, field: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and len(v) <= 200 for v in value)
        or len(value) > 64
    ):
        raise BadRequest(f"'{field}' must be a list of at most 64 short strings", field=field)
    return tuple(value)


@routes.get(f"{API_PREFIX}/workers")
async def list_workers(request: web.Request) -> web.Response:
    return web.json_response({"workers": request.app[FARM].workers.all()})


@routes.get(f"{API_PREFIX}/workers/{{worker_id}}")
async def get_worker(request: web.Request) -> web.Response:
    return web.json_response(request.app[FARM].workers.get(request.match_info["worker_id"]))


@routes.post(f"{API_PREFIX}/workers/{{worker_id}}/disable")
async def disable(request: web.Request) -> web.Response:
    """No new tasks for the worker: its task finishes first, or with now=true goes
    back to the queue at once."""
    now = (await read_object(request, allowed=("now",))).get("now", False)
    if not isinstance(now, bool):
        raise BadRequest("'now' must be true or false", field="now")
    return web.json_response(
        request.app[FARM].workers.disable(request.match_info["worker_id"], now=now)
    )


@routes.post(f"{API_PREFIX}/workers/{{worker_id}}/enable")
async def enable(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields
    return web.json_response(request.app[FARM].workers.enable(request.match_info["worker_id"]))


@routes.delete(f"{API_PREFIX}/workers/{{worker_id}}")
async def remove(request: web.Request) -> web.Response:
    request.app[FARM].workers.remove(request.match_info["worker_id"])
    return web.json_response({"removed": True})


@routes.post(f"{API_PREFIX}/worker/task")
async def next_task(request: web.Request) -> web.Response:
    """Long-poll for work: answers at once when a task is runnable, else waits
    up to `wait` seconds for one to appear (204 when none did)."""
    farm, hub, worker = request.app[FARM], request.app[HUB], request[WORKER]
    warm_job = parse_warm_job(await read_object(request, allowed=("warm_job",)))
    deadline = time.monotonic() + query_float(request, "wait", 20.0, 0.0, MAX_POLL)
    worker = farm.workers.wake(worker)
    farm.tasks.abandon_held(worker)
    while True:
        assignment = farm.tasks.claim(worker, warm_job=warm_job)
        if assignment is not None:
            return web.json_response(assignment.to_json())
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return web.Response(status=204)
        await hub.wait_for_work(remaining)
        if _poll_abandoned(request, farm, worker["id"]):
            return web.Response(status=204)
        worker = farm.workers.authenticate(request[WORKER_SECRET])


@routes.get(f"{API_PREFIX}/worker/upcoming")
async def upcoming(request: web.Request) -> web.Response:
    """The job the worker would most likely get next, and its files (a hint for
    fetching them ahead of time; nothing is claimed)."""
    text = request.query.get("warm_job")
    try:
        warm = int(text) if text not in (None, "") else None
    except ValueError:
        raise BadRequest(f"'warm_job' must be a job id, not {text!r}", field="warm_job") from None
    warm_job = parse_warm_job({"warm_job": warm})
    return web.json_response(request.app[FARM].tasks.upcoming(request[WORKER], warm_job=warm_job))


def parse_warm_job(body: Mapping[str, object]) -> int | None:
    """The job the worker has warm (its Blender holds the scene), if it said one."""
    value = body.get("warm_job")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(
            "'warm_job' must be a job id (a whole number from 1) or null", field="warm_job"
        )
    return value


def _poll_abandoned(request: web.Request, farm: Farm, worker_id: str) -> bool:
    """Whether nobody waits for this long-poll's answer any more: the worker hung up,
    or signed off meanwhile (a worker interrupted mid-poll signs off and exits).
    A task claimed for it would be answered to nobody and sit on its lease."""
    transport = request.transport
    if transport is None or transport.is_closing():
        return True
    return farm.workers.get(worker_id)["status"] == WorkerStatus.OFFLINE


@routes.post(f"{API_PREFIX}/worker/tasks/{{task_id}}/update")
async def update(request: web.Request) -> web.Response:
    report = parse_task_report(await read_json(request))
    request.app[FARM].tasks.update(request[WORKER], int_param(request, "task_id"), report)
    return web.json_response({"action": "continue"})


def parse_task_report(body: object) -> TaskReport:
    if not isinstance(body, Mapping):
        raise BadRequest("the request body must be a JSON object")
    unknown = set(body) - {"progress", "activity", "log", "stages"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    progress, activity, text = body.get("progress"), body.get("activity"), body.get("log")
    stages = parse_stages(body.get("stages"))
    if progress is not None and (
        isinstance(progress, bool)
        or not isinstance(progress, int | float)
        or not 0 <= progress <= 1
    ):
        raise BadRequest("'progress' must be a number from 0 to 1", field="progress")
    if activity is not None and (not isinstance(activity, str) or len(activity) > 500):
        raise BadRequest("'activity' must be text of at most 500 characters", field="activity")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_LOG_CHUNK):
        raise BadRequest(f"'log' must be text of at most {MAX_LOG_CHUNK} characters", field="log")
    return TaskReport(progress=progress, activity=activity, log=text, stages=stages)


def parse_stages(value: object) -> dict[str, float]:
    """The stages a report says the task reached: stage -> seconds after the worker
    got the task (models.TaskStages)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadRequest("'stages' must be an object of stage -> seconds", field="stages")
    unknown = set(value) - set(STAGES)
    if unknown:
        raise BadRequest(
            f"unknown stage(s): {', '.join(sorted(map(str, unknown)))}; the stages are"
            f" {', '.join(STAGES)}",
            field="stages",
        )
    for stage, seconds in value.items():
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 <= seconds <= MAX_STAGE_SECONDS
        ):
            raise BadRequest(
                f"stage '{stage}' must be a number of seconds from 0 to {MAX_STAGE_SECONDS}",
                field="stages",
            )
    return {str(stage): float(seconds) for stage, seconds in value.items()}


@routes.get(f"{API_PREFIX}/worker/tasks/{{task_id}}/control")
async def control(request: web.Request) -> web.Response:
    """Long-poll that returns as soon as the worker must stop its task.

    It doubles as the lease heartbeat: a worker keeps one open while it renders.
    """
    farm, hub, worker = request.app[FARM], request.app[HUB], request[WORKER]
    task_id = int_param(request, "task_id")
    # The poll renews the lease only when it starts: never let it outlast half a lease.
    wait = min(query_float(request, "wait", 10.0, 0.0, MAX_POLL), farm.config.lease_seconds / 2)
    reason = farm.tasks.should_stop(worker, task_id)
    if reason is None:
        farm.tasks.renew_lease(worker, task_id)
        await hub.wait_for_task_change(task_id, wait)
        reason = farm.tasks.should_stop(worker, task_id)
    if reason is None:
        return web.json_response({"action": "continue"})
    return web.json_response({"action": "stop", "reason": reason})


@routes.put(f"{API_PREFIX}/worker/tasks/{{task_id}}/outputs/{{name:[^/]+}}")
async def upload_output(request: web.Request) -> web.Response:
    frame_text = request.query.get("frame")
    try:
        frame = int(frame_text) if frame_text not in (None, "") else None
    except ValueError:
        raise BadRequest(f"'frame' must be a whole number, not {frame_text!r}") from None
    # A frame beyond SQLite's integer range used to be a 500; Blender's own
    # limits are the sensible ones.
    if frame is not None and not MIN_FRAME <= frame <= MAX_FRAME:
        raise BadRequest(
            f"'frame' {frame} is out of range; Blender frames go from {MIN_FRAME} to {MAX_FRAME}",
            field="frame",
        )
    out = await request.app[FARM].deliveries.put_output(
        request[WORKER],
        int_param(request, "task_id"),
        request.match_info["name"],
        frame=frame,
        sha=request.query.get("sha256"),
        chunks=request.content.iter_chunked(1 << 20),
    )
    return web.json_response(out, status=201)


@routes.get(f"{API_PREFIX}/worker/tasks/{{task_id}}/inputs/{{name:[^/]+}}")
async def download_input(request: web.Request) -> web.FileResponse:
    """An output of a task this one depends on (a merge's chunks); only while the
    worker holds the task, and only the names its assignment lists in `inputs`."""
    path = request.app[FARM].tasks.input_file(
        request[WORKER], int_param(request, "task_id"), request.match_info["name"]
    )
    return web.FileResponse(path)


@routes.post(f"{API_PREFIX}/worker/tasks/{{task_id}}/complete")
async def complete(request: web.Request) -> web.Response:
    """Completes the task; with {"next": true} also claims the worker's next task
    at once when one is runnable (one round trip less per task; no waiting).

    Safe to retry: completing a task this worker already completed is a no-op,
    and the next task is then the one it was already handed."""
    body = await read_object(request, allowed=("next", "warm_job"))
    want_next = body.get("next", False)
    if not isinstance(want_next, bool):
        raise BadRequest("'next' must be true or false", field="next")
    warm_job = parse_warm_job(body)
    farm, worker, task_id = request.app[FARM], request[WORKER], int_param(request, "task_id")
    if not want_next:
        farm.tasks.complete(worker, task_id)
        return web.json_response({"ok": True})
    assignment = farm.tasks.complete_then_claim(worker, task_id, warm_job=warm_job)
    return web.json_response(
        {"ok": True, "next": None if assignment is None else assignment.to_json()}
    )


@routes.post(f"{API_PREFIX}/worker/tasks/{{task_id}}/fail")
async def fail(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, Mapping) or not isinstance(body.get("reason"), str):
        raise BadRequest('send {"reason": "what went wrong"} (and optionally "log")')
    # Refuse what an update refuses too, rather than dropping it silently.
    unknown = set(body) - {"reason", "log", "job_fault"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    text = body.get("log")
    if text is not None and not isinstance(text, str):
        raise BadRequest("'log' must be text", field="log")
    job_fault = body.get("job_fault", False)
    if not isinstance(job_fault, bool):
        raise BadRequest("'job_fault' must be true or false", field="job_fault")
    status = request.app[FARM].tasks.fail(
        request[WORKER],
        int_param(request, "task_id"),
        reason=body["reason"],
        log_text=text,
        job_fault=job_fault,
    )
    return web.json_response({"task_status": status})


@routes.post(f"{API_PREFIX}/worker/report")
async def report(request: web.Request) -> web.Response:
    """What the worker can do now (models.WorkerReport), checked as at registration."""
    body = await read_json(request)
    data = validate_body(WORKER_BODY[2:], body, extra=("devices", "capabilities"))
    request.app[FARM].workers.report(
        request[WORKER],
        blender_version=data["blender_version"],
        devices=_string_list(data.get("devices", []), "devices"),
        capabilities=_capabilities(data.get("capabilities", {})),
    )
    return web.json_response({"ok": True})


@routes.post(f"{API_PREFIX}/worker/rest")
async def rest(request: web.Request) -> web.Response:
    """Outside its working hours until `until`: resting, no task (models.RestRequest)."""
    until = (await read_object(request, allowed=("until",))).get("until")
    if isinstance(until, bool) or not isinstance(until, int | float) or not 0 <= until < 2**40:
        raise BadRequest('send {"until": when its working hours begin (Unix time)}', field="until")
    request.app[FARM].workers.rest(request[WORKER], float(until))
    return web.json_response({"ok": True})


@routes.post(f"{API_PREFIX}/worker/sign-off")
async def sign_off(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields
    request.app[FARM].workers.sign_off(request[WORKER])
    return web.json_response({"ok": True})
