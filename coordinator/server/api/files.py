"""The content-addressed file store: ask what is missing, upload, download."""

from __future__ import annotations

from aiohttp import web

from coordinator.core.protocol import API_PREFIX
from coordinator.server.api.common import read_json
from coordinator.server.errors import NotFound
from coordinator.server.filestore import check_sha256
from coordinator.server.keys import FARM

routes = web.RouteTableDef()


@routes.post(f"{API_PREFIX}/files/missing")
async def missing(request: web.Request) -> web.Response:
    return web.json_response({"missing": request.app[FARM].missing_blobs(await read_json(request))})


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
