"""The aiohttp application: one factory, typed keys, one error layer.

Routes live one module per resource in `coordinator.server.api`; background work
(lease sweeping, zeroconf) is started and stopped through `cleanup_ctx`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from coordinator.core.datadirs import make_private_dir
from coordinator.core.protocol import API_PREFIX
from coordinator.server.advertiser import advertise
from coordinator.server.config import AppConfig
from coordinator.server.errors import FarmError, Unauthorized
from coordinator.server.farm import Farm
from coordinator.server.filestore import FileStore
from coordinator.server.guard import GUARD, ConnectionGuard
from coordinator.server.hub import Hub
from coordinator.server.keys import ADVERTISER, CONFIG, FARM, HUB, WORKER, WORKER_SECRET
from coordinator.server.states import InvalidTransition
from coordinator.server.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


PUBLIC_PATHS = frozenset({f"{API_PREFIX}/health", f"{API_PREFIX}/version", f"{API_PREFIX}/proof"})
# What a farm token or a worker secret may hold (token_urlsafe's alphabet and
# other printable ASCII): anything else in the header is malformed, not a key.
TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
MAX_TOKEN_LENGTH = 512


def json_error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal becomes JSON with a message; nothing a client sends makes a 500."""
    try:
        return await handler(request)
    except FarmError as ex:
        extra = {"field": ex.field} if ex.field else {}
        return json_error(ex.status, ex.message, **extra)
    except InvalidTransition as ex:
        return json_error(409, str(ex))
    except web.HTTPException as ex:
        if ex.status < 400 or not request.path.startswith(API_PREFIX):
            raise
        reason = ex.text if ex.text and not ex.text.startswith(str(ex.status)) else ex.reason
        return json_error(ex.status, f"{reason}: {request.method} {request.path}")
    except ConnectionResetError as ex:
        # The client went away mid-request (a worker's connection dropped during an
        # upload): nobody is left to answer, and the upload's temp file is gone.
        # One line instead of aiohttp's traceback; the client retries.
        log.warning("%s %s: connection lost mid-request (%s)", request.method, request.path, ex)
        return json_error(400, "the connection was lost before the request was complete")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return json_error(500, "internal error in the coordinator; see its log")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith(API_PREFIX) or path in PUBLIC_PATHS:
        return await handler(request)
    token = bearer_token(request)
    farm = request.app[FARM]
    if path.startswith(f"{API_PREFIX}/worker/"):
        request[WORKER] = farm.workers.authenticate(token)
        request[WORKER_SECRET] = token
    elif (
        request.method == "GET"
        and path.startswith(f"{API_PREFIX}/files/")
        and not is_farm_token(farm, token)
    ):
        request[WORKER] = farm.workers.authenticate(token)  # workers download job files
    elif not is_farm_token(farm, token):
        raise Unauthorized(
            "wrong farm token; copy it from the coordinator's start-up message"
            " or its data folder (token.txt)"
        )
    return await handler(request)


def bearer_token(request: web.Request) -> str:
    """The header's token; a malformed header is a 401 like a missing one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing farm token: send the header 'Authorization: Bearer <token>'")
    if len(token) > MAX_TOKEN_LENGTH or not TOKEN_CHARS.issuperset(token):
        raise Unauthorized(
            "malformed Authorization header: the token must be printable ASCII without"
            " spaces, as `serve` prints it"
        )
    return token


def is_farm_token(farm: Farm, token: str) -> bool:
    return hmac.compare_digest(token.encode(), farm.config.token.encode())


# A sweep this much later than due means the coordinator did not run meanwhile.
STALL_SECONDS = 2.0


async def _farm_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG].farm
    make_private_dir(config.data_dir)
    store = Store(config.data_dir / "farm.sqlite3")
    files = FileStore(config.data_dir, max_upload=config.max_upload)
    app[FARM] = Farm(config, store, files, app[HUB])
    yield
    store.close()


async def _sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    # Retried deliveries run beside the sweep, one pass at a time: copies to a
    # slow or dead network folder must not hold up lease expiry.
    deliveries: list[asyncio.Task[None]] = []
    farm = app[FARM]

    async def retry_deliveries() -> None:
        try:
            await farm.deliveries.retry()
        except Exception:
            log.exception("retrying deliveries failed")

    async def loop() -> None:
        interval = app[CONFIG].sweep_interval
        # Leases kept running while the coordinator was down: its workers get one
        # lease from now to be heard from before their tasks go to someone else.
        farm.sweeps.extend_leases("the coordinator started")
        try:
            await farm.deliveries.clean_partial()
        except Exception:
            log.exception("cleaning half-copied outputs failed")
        last = time.time()
        while True:
            await asyncio.sleep(interval)
            try:
                stalled = time.time() - last - interval
                if stalled > STALL_SECONDS:
                    farm.sweeps.extend_leases(
                        f"the coordinator was stalled for {stalled:.1f} s (paused, suspended"
                        " or blocked)"
                    )
                farm.sweeps.sweep()
                if not deliveries or deliveries[-1].done():
                    deliveries[:] = [asyncio.create_task(retry_deliveries(), name="deliveries")]
                advertiser = app.get(ADVERTISER)
                if advertiser is not None:
                    await advertiser.update(workers=farm.workers.online())
            except Exception:
                log.exception("sweep failed")
            last = time.time()

    task = asyncio.create_task(loop(), name="lease-sweeper")
    yield
    for running in [task, *deliveries]:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def _zeroconf_ctx(app: web.Application) -> AsyncIterator[None]:
    """Advertise the farm on the LAN; the sweeper keeps the worker count fresh."""
    config = app[CONFIG]
    if not config.advertise:
        yield
        return
    advertiser = await advertise(
        name=config.farm.name,
        port=config.port,
        interfaces=config.zeroconf_interfaces,
        workers=app[FARM].workers.online(),
        # A hint of where to knock, as the rest of TXT: clients trust only the proof.
        properties={"tls": "1", "fp": config.fingerprint} if config.fingerprint else None,
    )
    app[ADVERTISER] = advertiser
    yield
    await advertiser.close()


async def _end_event_streams(app: web.Application) -> None:
    app[HUB].close()


def create_app(config: AppConfig) -> web.Application:
    from coordinator.server.api import ROUTE_MODULES

    guard = ConnectionGuard(config.limits)
    app = web.Application(
        middlewares=[guard.middleware, error_middleware, auth_middleware],
        client_max_size=16 << 20,
    )
    app[CONFIG] = config
    app[GUARD] = guard
    app[HUB] = Hub()
    app.cleanup_ctx.extend([guard.sweeping, _farm_ctx, _sweeper_ctx, _zeroconf_ctx])
    app.on_shutdown.append(_end_event_streams)
    for module in ROUTE_MODULES:
        app.add_routes(module.routes)
    return app
