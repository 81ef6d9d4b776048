"""Jobs: submit, list with filters, inspect, and a person's actions on them."""

from __future__ import annotations

from aiohttp import web

from coordinator.core.protocol import API_PREFIX
from coordinator.server.api.common import int_param, read_json, read_object
from coordinator.server.errors import BadRequest
from coordinator.server.keys import FARM

routes = web.RouteTableDef()


@routes.post(f"{API_PREFIX}/jobs")
async def submit(request: web.Request) -> web.Response:
    job = request.app[FARM].submit_job(await read_json(request))
    return web.json_response(job, status=201)


@routes.get(f"{API_PREFIX}/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    # "?status=a&status=b" means the same as "?status=a,b"; reading only the
    # first of repeated parameters used to drop the rest silently.
    query = {key: ",".join(request.query.getall(key)) for key in request.query}
    return web.json_response(request.app[FARM].list_jobs(query))


@routes.get(f"{API_PREFIX}/jobs/{{job_id}}")
async def get_job(request: web.Request) -> web.Response:
    tasks = request.query.get("tasks", "1")
    job = request.app[FARM].get_job(
        int_param(request, "job_id"),
        with_tasks=tasks not in ("0", "false", "no"),
        all_generations=tasks == "all",  # earlier generations too (before a regenerate)
    )
    return web.json_response(job)


@routes.get(f"{API_PREFIX}/jobs/{{job_id}}/tasks")
async def list_job_tasks(request: web.Request) -> web.Response:
    query = {key: ",".join(request.query.getall(key)) for key in request.query}
    return web.json_response(request.app[FARM].list_tasks(int_param(request, "job_id"), query))


@routes.delete(f"{API_PREFIX}/jobs/{{job_id}}")
async def delete_job(request: web.Request) -> web.Response:
    request.app[FARM].delete_job(int_param(request, "job_id"))
    return web.json_response({"deleted": True})


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/cancel")
async def cancel(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields; refuse garbage rather than ignore it
    return web.json_response(request.app[FARM].cancel_job(int_param(request, "job_id")))


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/pause")
async def pause(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields; refuse garbage rather than ignore it
    return web.json_response(request.app[FARM].pause_job(int_param(request, "job_id")))


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/resume")
async def resume(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields; refuse garbage rather than ignore it
    return web.json_response(request.app[FARM].resume_job(int_param(request, "job_id")))


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/requeue")
async def requeue(request: web.Request) -> web.Response:
    which = (await read_object(request, allowed=("which",))).get("which", "failed")
    if not isinstance(which, str):
        raise BadRequest(f"'which' must be 'failed' or 'all', not {which!r}", field="which")
    return web.json_response(
        request.app[FARM].requeue_job(int_param(request, "job_id"), which=which)
    )


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/regenerate")
async def regenerate(request: web.Request) -> web.Response:
    body = await read_object(request, allowed=("settings", "keep_completed"))
    job = request.app[FARM].regenerate_job(
        int_param(request, "job_id"),
        settings=body.get("settings"),
        keep_completed=body.get("keep_completed", True),
    )
    return web.json_response(job)


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/priority")
async def priority(request: web.Request) -> web.Response:
    body = await read_object(request, allowed=("priority",))
    if "priority" not in body:
        raise BadRequest('send {"priority": 0-100}', field="priority")
    job = request.app[FARM].set_job_priority(int_param(request, "job_id"), body["priority"])
    return web.json_response(job)


@routes.post(f"{API_PREFIX}/jobs/{{job_id}}/clear-blocklist")
async def clear_blocklist(request: web.Request) -> web.Response:
    body = await read_object(request, allowed=("worker_id",))
    job = request.app[FARM].clear_blocklist(
        int_param(request, "job_id"), worker_id=body.get("worker_id")
    )
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
