"""The runner's half of the line protocol: one ``@@FARM@@ {json}`` line per event.

The agent's half is worker_agent/events.py. Standard library only.
"""

from __future__ import annotations

import json
import threading
from typing import Any, TextIO

# Must equal coordinator.core.protocol.RUNNER_EVENT_PREFIX (a test checks); copied
# because code run inside Blender may not import the coordinator.
PREFIX = "@@FARM@@ "


def format_event(event: str, **fields: Any) -> str:
    """One event line, without the newline."""
    payload = json.dumps({"event": event, **fields}, ensure_ascii=False, separators=(",", ":"))
    return PREFIX + payload


class Emitter:
    """Prints events to a text stream, flushed, one whole line at a time (any thread)."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        self.write(format_event(event, **fields))

    def error(self, ex: Exception) -> None:
        """The error event for a task that failed with ex; ``job_fault`` only when the
        failure is the job's own (render_task.JobFault), so every other error line
        stays as it was."""
        fault = {"job_fault": True} if getattr(ex, "job_fault", False) else {}
        self.emit("error", message=str(ex), **fault)

    def write(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
