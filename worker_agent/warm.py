"""The worker's warm Blender: one process kept open between the tasks of a job.

Starting Blender and reading the .blend costs one to tens of seconds a task;
a job's next task on this worker usually wants the same scene. So the agent
keeps the Blender of its last task running (in_blender/serve.py, reading task
lines on stdin) and hands it the next task when that task has the same key:
the same job, Blender, .blend file (path and content) and script policy.
Anything else gets a fresh process, and the old one is ended first: one warm
Blender per worker at a time, because a production scene's memory is the
worker's scarcest resource and two of them may not fit.

A warm process is ended, and the next task gets a fresh one, when its task
failed or was stopped (a crash, a hang, a cancel: its state is not trusted),
after `max_tasks` tasks, and when its resident memory passed `max_rss_mb`
after a task. A warm process that does not acknowledge a task within
`accept_seconds` (it stopped answering while idle) is killed and the task is
given to a fresh one, so it costs nothing.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from worker_agent import events as ev
from worker_agent.blender import LineCallback, RenderProcess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmKey:
    """What a task's Blender must match for a warm process to take it."""

    job_id: int  # a job's tasks share the scene and the settings
    blender: str  # the executable
    blend: str  # the .blend's path on this worker
    blend_sha: str  # its content (a re-submitted file is another scene)
    allow_scripts: bool  # the script policy it was opened with


@dataclass(frozen=True)
class WarmLimits:
    """When a warm Blender is replaced by a fresh one."""

    max_tasks: int = 100  # tasks one process serves; 1 = a fresh Blender per task
    max_rss_mb: int | None = None  # resident memory after a task that ends it (Linux)
    accept_seconds: float = 10.0  # a warm process must acknowledge a task this fast
    standby: bool = True  # keep an empty Blender booted for the next task that needs a fresh one
    silence_seconds: float = 600.0  # a task's Blender silent and idle this long is hung


class Served:
    """One Blender running serve.py: output lines go to the current task's handler."""

    def __init__(
        self, key: WarmKey | None, command: list[str], cwd: Path, on_line: LineCallback | None
    ) -> None:
        self.key = key  # None: a standby, no file opened yet
        self.tasks = 0  # tasks handed to it
        self.accepted = threading.Event()  # it acknowledged the current task
        self.finished = threading.Event()  # the current task's last event came, or EOF
        self.succeeded = False  # the current task ended with `done`
        self._handler: LineCallback | None = on_line  # the current task's (its start-up's)
        self.process = RenderProcess(
            command, on_line=self._on_line, cwd=cwd, stdin=True, on_end=self.finished.set
        )

    def _on_line(self, line: str, event: ev.RunnerEvent | None) -> None:
        if isinstance(event, ev.Accepted):
            self.accepted.set()
        handler = self._handler
        if handler is not None:
            handler(line, event)
        else:
            log.debug("blender %d (between tasks): %s", self.process.pid, line)
        if isinstance(event, ev.Done | ev.RunnerError):
            self.succeeded = isinstance(event, ev.Done)
            self.finished.set()

    def hand_lines(self, on_line: LineCallback) -> None:
        """From now on its lines go to on_line (the next task's)."""
        self._handler = on_line

    def hand(self, kind: str, task_json: Path) -> None:
        """Give it a task; OSError when it has gone (its stdin is closed)."""
        self.accepted.clear()
        if self.alive():  # a dead one keeps `finished` (its EOF) set
            self.finished.clear()
        self.succeeded = False
        self.tasks += 1
        self.process.send(json.dumps({"kind": kind, "task": str(task_json)}))

    def detach(self) -> None:
        self._handler = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def end(self, grace: float = 3.0) -> None:
        """Let it quit (end of input), killing it if it does not within grace."""
        self.detach()
        self.process.close_input()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.cancel()


class BlenderSlot:
    """The one Blender this worker keeps warm, its standby, and the rules for keeping them.

    The standby is an empty Blender, booted while nothing needs it, that the next
    task needing a fresh Blender gets (it then only reads the file): the start of
    Blender itself, a second or more, leaves the cold path. It holds no scene, so
    it costs the memory of an empty Blender (about 230 MB for 3.4).
    """

    def __init__(self, limits: WarmLimits, standby_command: Callable[[], list[str]]) -> None:
        self.limits = limits
        self.served: Served | None = None  # warm, or running the current task
        self.standby: Served | None = None  # booted, no file yet
        self.started = 0  # Blender processes that took a first task (tests, logs)
        self._standby_command = standby_command  # argv of a Blender without a file
        self._ending: list[threading.Thread] = []  # processes quitting in the background

    def take(
        self, key: WarmKey, command: Callable[[], list[str]], cwd: Path, on_line: LineCallback
    ) -> tuple[Served, bool]:
        """A Blender for a task with key: the warm one, or a fresh one. -> (it, fresh)"""
        served = self.served
        if served is not None and (served.key != key or not served.alive()):
            self.discard("the next task needs another scene" if served.alive() else "it ended")
            served = None
        if served is not None:
            served.hand_lines(on_line)
            return served, False
        standby, self.standby = self.standby, None
        if standby is not None and standby.alive():
            log.info("Blender %d (standby) takes the task", standby.process.pid)
            standby.key = key
            standby.hand_lines(on_line)
            self.served = standby
        else:
            self.served = Served(key, command(), cwd, on_line)
        self.started += 1
        if self.limits.max_tasks <= 1:
            # This Blender ends with its task: the next one boots while it renders.
            self.boot_standby(cwd)
        return self.served, True

    def boot_standby(self, cwd: Path) -> None:
        """Start the standby Blender, unless there is one (called between tasks)."""
        if not self.limits.standby or (self.standby is not None and self.standby.alive()):
            return
        try:
            self.standby = Served(None, self._standby_command(), cwd, None)
        except OSError as ex:
            log.warning("could not start a standby Blender: %s", ex)

    def release(self, served: Served, *, keep: bool) -> None:
        """After a task: keep it warm for the next one, or end it."""
        served.detach()
        if self.served is not served:
            return
        reason = self._why_not_keep(served) if keep else "its task did not end cleanly"
        if reason is not None:
            self.discard(reason)

    def _why_not_keep(self, served: Served) -> str | None:
        if not served.alive():
            return "it ended"
        if served.tasks >= self.limits.max_tasks:
            return f"it served {served.tasks} task(s), the limit"
        limit = self.limits.max_rss_mb
        rss = served.process.rss_bytes() if limit is not None else None
        if limit is not None and rss is not None and rss > limit * 1024 * 1024:
            return f"its memory grew to {rss / 1024 / 1024:.0f} MB (limit {limit} MB)"
        return None

    def discard(self, reason: str) -> None:
        """End the warm Blender, if any, in the background (the task's report
        must not wait for Blender to quit)."""
        served, self.served = self.served, None
        if served is None:
            return
        log.info("ending Blender %d: %s", served.process.pid, reason)
        self._end(served)

    def _end(self, served: Served) -> None:
        thread = threading.Thread(target=served.end, name="blender-end", daemon=True)
        thread.start()
        self._ending = [t for t in self._ending if t.is_alive()] + [thread]

    def close(self) -> None:
        """End the warm Blender and wait until every process has gone (agent exit)."""
        self.discard("the worker is leaving")
        standby, self.standby = self.standby, None
        if standby is not None:
            self._end(standby)
        for thread in self._ending:
            thread.join()
        self._ending = []
