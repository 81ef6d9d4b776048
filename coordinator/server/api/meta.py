"""Health, version, the OpenAPI document and the job type catalogue."""

from __future__ import annotations

from aiohttp import web

from coordinator.core.protocol import API_PREFIX, API_VERSION
from coordinator.server import job_types
from coordinator.server.keys import CONFIG, FARM
from coordinator.server.openapi import openapi_document

routes = web.RouteTableDef()


@routes.get(f"{API_PREFIX}/health")
async def health(request: web.Request) -> web.Response:
    """Public: is the coordinator up, and how many workers it has (for the add-on's list)."""
    farm = request.app[FARM]
    counts = farm.workers.counts()
    return web.json_response(
        {
            "status": "ok",
            "name": farm.config.name,
            "workers": sum(n for s, n in counts.items() if s != "offline"),
            "workers_by_status": counts,
        }
    )


@routes.get(f"{API_PREFIX}/version")
async def version(request: web.Request) -> web.Response:
    from coordinator import __version__

    return web.json_response(
        {
            "api": API_VERSION,
            "coordinator": __version__,
            "name": request.app[CONFIG].farm.name,
        }
    )


@routes.get(f"{API_PREFIX}/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


@routes.get(f"{API_PREFIX}/job-types")
async def list_job_types(request: web.Request) -> web.Response:
    return web.json_response({"job_types": job_types.describe_all()})
