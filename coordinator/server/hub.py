"""Wake-ups inside the coordinator: long-polls and live event streams.

Everything here runs on the event loop; the farm calls the notify methods
after it commits a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 1000
CLOSED: dict[str, Any] = {"type": "shutdown"}  # the last event of every stream
# Replaces what a reader too slow to keep up missed: reload, then follow again.
RESYNC: dict[str, Any] = {"type": "resync"}


class Hub:
    def __init__(self) -> None:
        self._work_waiters: set[asyncio.Future[None]] = set()
        self._task_waiters: dict[int, set[asyncio.Future[None]]] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    # --- idle workers waiting for a task ------------------------------
    def notify_work(self) -> None:
        """New runnable work may exist: wake every idle worker's long-poll."""
        waiters, self._work_waiters = self._work_waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for_work(self, timeout: float) -> bool:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._work_waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._work_waiters.discard(fut)

    # --- busy workers waiting to hear that their task changed ---------
    def notify_task(self, task_id: int) -> None:
        for fut in self._task_waiters.pop(task_id, set()):
            if not fut.done():
                fut.set_result(None)

    async def wait_for_task_change(self, task_id: int, timeout: float) -> bool:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task_waiters.setdefault(task_id, set()).add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._task_waiters.get(task_id)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del self._task_waiters[task_id]

    # --- live updates for dashboards and the add-on -------------------
    def publish(self, kind: str, **data: Any) -> None:
        event = {"type": kind, **data}
        for queue in self._subscribers:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A reader EVENT_QUEUE_SIZE events behind: rather than lose some
                # silently, drop its backlog and tell it to reload what it shows.
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(RESYNC)
                queue.put_nowait(event)
                log.info("an event stream fell %d events behind; told it to resync", queue.maxsize)

    def close(self) -> None:
        """The coordinator is stopping: end every event stream now. An open
        dashboard used to hold a stop up for two minutes (aiohttp waits for
        running handlers, then waits again after cancelling them)."""
        for queue in self._subscribers:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(CLOSED)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
