"""Health, version, the coordinator's proof, the OpenAPI document and the job types."""

from __future__ import annotations

import asyncio
import hmac
import re
import weakref

from aiohttp import web

from coordinator.core import trust
from coordinator.core.protocol import API_PREFIX, API_VERSION
from coordinator.server import job_types
from coordinator.server.api.common import read_object
from coordinator.server.errors import BadRequest, Unauthorized
from coordinator.server.farm import Farm
from coordinator.server.keys import CONFIG, FARM
from coordinator.server.openapi import openapi_document

routes = web.RouteTableDef()

MAX_PROOF_BODY = 1024  # bytes: {nonce, key_id} is about 130
PROOF_BODY_SECONDS = 5.0  # to receive a proof question's body whole


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
async def prove(request: web.Request) -> web.StreamResponse:
    """Public: the answer to a client's nonce that only the holder of its key can
    give, bound to this coordinator's certificate (coordinator.core.trust)."""
    refusal = await _read_small_body(request)
    if refusal is not None:
        return refusal
    body = await read_object(request, allowed=("nonce", "key_id"))
    nonce, wanted = body.get("nonce"), body.get("key_id")
    if not isinstance(nonce, str) or not re.fullmatch(trust.NONCE_PATTERN, nonce):
        raise BadRequest("nonce must be 64 lower-case hex digits", field="nonce")
    if not isinstance(wanted, str) or not re.fullmatch(trust.KEY_ID_PATTERN, wanted):
        raise BadRequest("key_id must be 32 lower-case hex digits", field="key_id")
    key = await _key_for(request, wanted)
    fingerprint = request.app[CONFIG].fingerprint
    return web.json_response(
        {"fingerprint": fingerprint, "proof": trust.proof(key, nonce, fingerprint)}
    )


async def _read_small_body(request: web.Request) -> web.StreamResponse | None:
    """Read the question whole within PROOF_BODY_SECONDS, or refuse it and close
    the connection: anyone may ask, so nobody may hold a connection by sending
    a large body, or a small one slowly. None: the body is read."""
    length = request.content_length
    if length is None or "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return await _refuse(
            request,
            400,
            "a proof question needs a Content-Length header (no chunked body):"
            " send the JSON object {nonce, key_id} in one piece",
        )
    if length > MAX_PROOF_BODY:
        return await _refuse(
            request,
            413,
            f"a proof question is at most {MAX_PROOF_BODY} bytes ({length} announced):"
            " send only the JSON object {nonce, key_id}",
        )
    try:
        await asyncio.wait_for(request.read(), PROOF_BODY_SECONDS)
    except TimeoutError:
        return await _refuse(
            request,
            408,
            f"the proof question did not arrive whole within {PROOF_BODY_SECONDS:g} seconds:"
            " send it in one piece",
        )
    return None


async def _refuse(request: web.Request, status: int, message: str) -> web.StreamResponse:
    """Answer with the error, then close at once (no lingering over the unread body)."""
    response = web.json_response({"error": message}, status=status)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()
    return response


class _WorkerKeys:
    """The workers' keys by key id, rebuilt only when the workers change (one
    aggregate query per proof instead of reading and hashing every row)."""

    def __init__(self) -> None:
        self.version: tuple[object, ...] | None = None
        self.by_id: dict[str, str] = {}

    def get(self, farm: Farm, wanted: str) -> str | None:
        store = farm.ctx.store
        row = store.one("SELECT count(*) AS n, max(created_at) AS newest FROM workers")
        version = (row["n"], row["newest"]) if row is not None else None
        if version != self.version:
            rows = store.all("SELECT secret_hash FROM workers")
            self.by_id = {trust.key_id(str(r["secret_hash"])): str(r["secret_hash"]) for r in rows}
            self.version = version
        return self.by_id.get(wanted)


_worker_keys: weakref.WeakKeyDictionary[Farm, _WorkerKeys] = weakref.WeakKeyDictionary()


async def _key_for(request: web.Request, wanted: str) -> str:
    """The farm token's key, or the worker's whose key has that id."""
    farm = request.app[FARM]
    # slow (PBKDF2) the first time only, so off the event loop
    farm_key = await asyncio.to_thread(trust.proof_key, farm.config.token)
    if hmac.compare_digest(trust.key_id(farm_key), wanted):
        return farm_key
    key = _worker_keys.setdefault(farm, _WorkerKeys()).get(farm, wanted)
    if key is not None:
        return key
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
