"""One progress channel from a worker thread to Blender's UI. No `bpy` here.

The thread never touches bpy: it posts small frozen messages to a queue,
which a modal timer operator (or a plain loop, in `blender -b`) drains within
a time budget. Cancelling sets an Event the thread checks between steps and
while bytes go out.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .packing import Cancelled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MsgProgress:
    stage: str  # "prepare", "hash", "upload", "submit"
    fraction: float  # 0..1 of the whole submission
    text: str  # what the status bar says


@dataclass(frozen=True)
class MsgDone:
    result: Any  # what the work function returned (the job, for a submission)
    text: str  # for self.report


@dataclass(frozen=True)
class MsgError:
    text: str  # already in an artist's words


@dataclass(frozen=True)
class MsgCancelled:
    text: str = "Submission cancelled; nothing was sent to the farm"


Message = MsgProgress | MsgDone | MsgError | MsgCancelled


class Channel:
    """A worker thread's messages and its cancel switch."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None

    def post(self, msg: Message) -> None:
        self.queue.put(msg)

    def progress(self, stage: str, fraction: float, text: str) -> None:
        self.post(MsgProgress(stage, max(0.0, min(1.0, fraction)), text))

    def drain(self, budget: float = 0.02) -> list[Message]:
        """Messages waiting now, reading for at most `budget` seconds."""
        out: list[Message] = []
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def begin(self) -> None:
        """Start a deferred thread (once)."""
        if self.thread is not None and self.thread.ident is None:
            self.thread.start()


def start(
    work: Callable[[Channel], Any],
    describe: Callable[[Exception], str],
    *,
    done_text: Callable[[Any], str],
    name: str = "farm-submit",
    deferred: bool = False,
) -> Channel:
    """Run work(channel) in a daemon thread; its end becomes one final message.
    deferred: the thread is made but started later, with channel.begin()."""
    channel = Channel()

    def body() -> None:
        try:
            result = work(channel)
        except Exception as ex:
            if channel.cancel.is_set() or isinstance(ex, Cancelled):
                channel.post(MsgCancelled())
            else:
                log.debug("background work failed", exc_info=True)
                channel.post(MsgError(describe(ex)))
            return
        channel.post(MsgDone(result, done_text(result)))

    channel.thread = threading.Thread(target=body, name=name, daemon=True)
    if not deferred:
        channel.thread.start()
    return channel


def wait(channel: Channel, on_message: Callable[[Message], None], *, poll: float = 0.1) -> Message:
    """Blocking drain for scripts and `blender -b`: returns the final message."""
    while True:
        for msg in channel.drain(budget=poll):
            on_message(msg)
            if not isinstance(msg, MsgProgress):
                return msg
        if not channel.running and channel.queue.empty():
            return MsgError("the background work ended without a word")
        time.sleep(poll)
