"""Sends each file Blender saved to the coordinator while Blender renders the next.

An upload runs on its own thread with its own FarmClient (a requests session
is not shared between threads), so a slow network delays the task's end, not
its render.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from coordinator.client.http import ConflictError, FarmClient, FarmClientError

log = logging.getLogger(__name__)


class UploadOwner(Protocol):
    """What an Uploader needs from the task run it uploads for."""

    def log_line(self, line: str) -> None:
        """Add a line to the task's log on the coordinator."""

    def stop(self, reason: str) -> None:
        """The task is no longer ours: stop working on it."""

    def patiently(self, call: Callable[[], object]) -> None:
        """Run call, retrying while the coordinator is unreachable."""


class Uploader:
    """Uploads frames on its own thread, in the order Blender saved them."""

    def __init__(self, client: FarmClient, task_id: int, owner: UploadOwner) -> None:
        self.client = FarmClient(client.url, token=client.token)  # this thread's own
        self.task_id = task_id  # the task the files are outputs of
        self.owner = owner
        self.queue: queue.Queue[tuple[Path, int] | None] = queue.Queue()
        self.failed: list[str] = []  # "name (why)" of each file that did not arrive
        self.thread = threading.Thread(target=self._loop, name="uploader", daemon=True)
        self.thread.start()

    def put(self, path: Path, frame: int) -> None:
        self.queue.put((path, frame))

    def close(self) -> list[str]:
        """Wait until everything put is sent (or failed); returns what failed."""
        self.queue.put(None)
        self.thread.join()
        return self.failed

    def _loop(self) -> None:
        while (item := self.queue.get()) is not None:
            path, frame = item
            try:
                self._upload(path, frame)
            except ConflictError as ex:  # the task was taken away: stop rendering it
                self.owner.stop(ex.message)
            except (FarmClientError, OSError) as ex:
                self.failed.append(f"{path.name} ({ex})")
                self.owner.log_line(f"[agent] upload of {path.name} failed: {ex}")

    def _upload(self, path: Path, frame: int) -> None:
        self.owner.patiently(
            lambda: self.client.upload_output(self.task_id, path, name=path.name, frame=frame)
        )
        self.owner.log_line(f"[agent] uploaded {path.name}")
