"""A job's preview video: the small WebM a worker made of its finished frames.

It is an intermediate output of the job's `preview` task (job_types/preview.py),
kept on the farm and never delivered, so it has its own route rather than a
place among the job's outputs.
"""

from __future__ import annotations

from aiohttp import web

from coordinator.core.protocol import API_PREFIX
from coordinator.server.api.common import int_param
from coordinator.server.errors import NotFound
from coordinator.server.job_types.preview import PREVIEW_NAME
from coordinator.server.keys import FARM

routes = web.RouteTableDef()


@routes.get(f"{API_PREFIX}/jobs/{{job_id}}/preview")
async def get_preview(request: web.Request) -> web.FileResponse:
    job_id = int_param(request, "job_id")
    deliveries = request.app[FARM].deliveries
    deliveries.ctx.job_row(job_id)  # an unknown job says so, not "no preview"
    try:
        path = deliveries.output_file(job_id, PREVIEW_NAME)
    except NotFound:
        raise NotFound(
            f"job {job_id} has no preview video: one is made after the frames of an"
            " image-sequence job are finished"
        ) from None
    return web.FileResponse(path, headers={"Content-Type": "video/webm"})
