"""Health, version, the coordinator's proof, the OpenAPI document and the job types."""

from __future__ import annotations

import re

from aiohttp import web

from coordinator.core import trust
from coordinator.core.protocol import API_PREFIX, API_VERSION
from coordinator.server import job_types
from coordinator.server.api.common import read_object
from coordinator.server.errors import BadRequest, Unauthorized
from coordinator.server.keys import CONFIG, FARM
from coordinator.server.openapi import openapi_document

routes = web.RouteTableDef()


@routes.get(f"{API_PREFIX}/health")
async def health(request: web.Request) -> web.Response:
    """Public: is the coordinator up, and how many workers it has (for the add-on's list)."""
    farm = request.app[FARM]
    counts = farm.workers.counts()
    answer: dict[str, object] = {
        "status": "ok",
        "name": farm.config.name,
        "workers": sum(n for s, n in counts.items() if s != "offline"),
        "workers_by_status": counts,
    }
    fingerprint = request.app[CONFIG].fingerprint
    if fingerprint:
        answer["fingerprint"] = fingerprint
    return web.json_response(answer)


@routes.post(f"{API_PREFIX}/proof")
async def prove(request: web.Request) -> web.Response:
    """Public: the answer to a client's nonce that only the holder of its key can
    give, bound to this coordinator's certificate (coordinator.core.trust)."""
    body = await read_object(request, allowed=("nonce", "key_id"))
    nonce, wanted = body.get("nonce"), body.get("key_id")
    if not isinstance(nonce, str) or not re.fullmatch(trust.NONCE_PATTERN, nonce):
        raise BadRequest("nonce must be 64 lower-case hex digits", field="nonce")
    if not isinstance(wanted, str) or not re.fullmatch(trust.KEY_ID_PATTERN, wanted):
        raise BadRequest("key_id must be 32 lower-case hex digits", field="key_id")
    key = _key_for(request, wanted)
    fingerprint = request.app[CONFIG].fingerprint
    return web.json_response(
        {"fingerprint": fingerprint, "proof": trust.proof(key, nonce, fingerprint)}
    )


def _key_for(request: web.Request, wanted: str) -> str:
    """The farm token's key, or the worker's whose key has that id."""
    farm = request.app[FARM]
    farm_key = trust.proof_key(farm.config.token)
    if trust.key_id(farm_key) == wanted:
        return farm_key
    for row in farm.ctx.store.all("SELECT secret_hash FROM workers"):
        if trust.key_id(row["secret_hash"]) == wanted:
            return str(row["secret_hash"])
    raise Unauthorized(
        "this coordinator knows no such farm token or worker: check the token, or register"
        " the worker again"
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
