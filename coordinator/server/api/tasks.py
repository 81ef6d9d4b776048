"""Tasks as people see them: details, logs, and a person's actions on one task."""

from __future__ import annotations

from aiohttp import web

from coordinator.core.protocol import API_PREFIX
from coordinator.server.api.common import int_param, query_int, read_object
from coordinator.server.keys import FARM

routes = web.RouteTableDef()


@routes.get(f"{API_PREFIX}/tasks/{{task_id}}")
async def get_task(request: web.Request) -> web.Response:
    return web.json_response(request.app[FARM].tasks.get(int_param(request, "task_id")))


@routes.get(f"{API_PREFIX}/tasks/{{task_id}}/log")
async def task_log(request: web.Request) -> web.Response:
    tail = query_int(request.query, "tail", 64 * 1024, 1, 16 << 20)
    text = request.app[FARM].tasks.read_log(int_param(request, "task_id"), tail=tail)
    return web.Response(text=text, content_type="text/plain")


@routes.post(f"{API_PREFIX}/tasks/{{task_id}}/requeue")
async def requeue(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields
    return web.json_response(request.app[FARM].tasks.requeue(int_param(request, "task_id")))


@routes.post(f"{API_PREFIX}/tasks/{{task_id}}/cancel")
async def cancel(request: web.Request) -> web.Response:
    await read_object(request)  # takes no fields
    return web.json_response(request.app[FARM].tasks.cancel(int_param(request, "task_id")))
