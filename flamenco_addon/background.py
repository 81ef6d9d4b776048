"""The messages of a submission's one progress channel. No `bpy` here.

The submission runs in the add-on's helper process (service.py), never in a
thread inside Blender. There a `Channel` collects its progress (the helper
forwards each message over the pipe) and carries the cancel switch that the
work checks between steps and while bytes go out. Inside Blender the same
message types are rebuilt from the pipe and drained by a modal timer
operator (or a plain loop in `blender -b`).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any


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
    """The work's messages and its cancel switch."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.cancel = threading.Event()

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


class ProgressPrinter:
    """Progress on stdout for scripts: one line per stage, and per 10% of the upload."""

    def __init__(self) -> None:
        self.last = ""

    def __call__(self, msg: MsgProgress) -> None:
        key = msg.stage if msg.stage != "upload" else f"upload{int(msg.fraction * 10)}"
        if key != self.last:
            self.last = key
            print(f"farm: {msg.fraction:4.0%} {msg.text}", flush=True)
