"""The content-addressed file store: ask what is missing, upload, download."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from coordinator.core.protocol import API_PREFIX
from coordinator.server.api.common import read_json
from coordinator.server.errors import BadRequest, NotFound
from coordinator.server.filestore import check_sha256
from coordinator.server.keys import FARM
from coordinator.server.services.jobs import MAX_FILES_PER_JOB

routes = web.RouteTableDef()


@routes.post(f"{API_PREFIX}/files/missing")
async def missing(request: web.Request) -> web.Response:
    """Which of these contents the coordinator lacks: a submitter uploads only those."""
    body = await read_json(request)
    if not isinstance(body, Mapping) or not isinstance(body.get("hashes"), list):
        raise BadRequest('send {"hashes": ["<sha256>", ...]}')
    if len(body["hashes"]) > MAX_FILES_PER_JOB:
        raise BadRequest(f"ask about at most {MAX_FILES_PER_JOB} hashes at a time")
    hashes = [check_sha256(h) for h in body["hashes"]]
    return web.json_response({"missing": request.app[FARM].jobs.missing_blobs(hashes)})


@routes.put(f"{API_PREFIX}/files/{{sha256}}")
async def upload(request: web.Request) -> web.Response:
    sha = check_sha256(request.match_info["sha256"])
    size = await request.app[FARM].files.put_blob(sha, request.content.iter_chunked(1 << 20))
    return web.json_response({"sha256": sha, "size": size}, status=201)


@routes.get(f"{API_PREFIX}/files/{{sha256}}")
async def download(request: web.Request) -> web.FileResponse:
    sha = check_sha256(request.match_info["sha256"])
    path = request.app[FARM].files.blob_path(sha)
    if not path.is_file():
        raise NotFound(f"no file with hash {sha} on this coordinator")
    return web.FileResponse(path)
