"""Live updates as server-sent events, for the dashboard and the add-on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from coordinator.core.protocol import API_PREFIX
from coordinator.server.hub import CLOSED
from coordinator.server.keys import HUB

routes = web.RouteTableDef()

KEEPALIVE = 15.0


@routes.get(f"{API_PREFIX}/events")
async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    try:
        await response.write(b": connected\n\n")
        with request.app[HUB].subscribe() as queue:
            await _relay(queue, response)
    except ConnectionResetError:
        pass  # the reader went away (a closed tab): not an error worth a traceback
    return response


async def _relay(queue: asyncio.Queue[dict[str, Any]], response: web.StreamResponse) -> None:
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), KEEPALIVE)
        except TimeoutError:
            await response.write(b": keepalive\n\n")
            continue
        data = json.dumps(event, separators=(",", ":"))
        await response.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
        if event is CLOSED:  # the coordinator is stopping
            return
