"""One assigned task, from claim to its last report.

A TaskRun owns what one task needs while it runs: a control long-poll that
stops it within about a second of a cancel, the log and progress it sends,
the Blender process its kind starts (kinds.py), with an uploader beside it,
and the last word to the farm: complete, fail with a reason, or hand back.
Whatever goes wrong costs this task, never the worker.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from coordinator.client.http import (
    AuthError,
    ConflictError,
    FarmClient,
    FarmClientError,
    NotFoundError,
    Unreachable,
)
from coordinator.core.protocol import RUNNER_EVENT_PREFIX, Assignment
from worker_agent import events as ev
from worker_agent.blender import CRASH_PREFIX, LineCallback, RenderProcess, build_serve_command
from worker_agent.uploads import Uploader
from worker_agent.warm import BlenderSlot, Served, WarmKey

if TYPE_CHECKING:
    from worker_agent.agent import Agent

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40  # lines sent with a failure
CONTROL_WAIT = 10.0  # seconds per control long-poll (also the lease heartbeat)

Kind = Callable[["TaskRun"], None]  # does one kind of task; raises TaskFailure
EventHandler = Callable[[ev.RunnerEvent | None], None]


class TaskFailure(Exception):
    """The task could not be done here; the message is the reason the farm shows.

    job_fault: the job's own doing (a file its project lacks, a payload that cannot
    be run), which every worker would meet alike: the farm fails the task at once
    instead of trying it on other workers, and does not hold it against this one.
    """

    def __init__(self, reason: str, *, job_fault: bool = False) -> None:
        super().__init__(reason)
        self.job_fault = job_fault


class TaskRun:
    """Everything about running one assigned task."""

    def __init__(self, agent: Agent, client: FarmClient, assignment: Assignment) -> None:
        self.agent = agent
        self.config = agent.config
        self.client = client  # registered as this worker
        self.task = assignment
        self.stop_reason: str | None = None  # why the farm or the worker stopped it
        self.stopped = threading.Event()  # set once the task's work must end
        self.process: RenderProcess | None = None  # the Blender running now
        self.next_assignment: Assignment | None = None  # chained onto the completion
        self._log_lock = threading.Lock()  # guards the fields below (reader/uploader threads)
        self._log_pending: list[str] = []  # log text not sent yet
        self._tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)  # for the failure report
        self._progress: float | None = None  # 0..1, the latest
        self._activity: str | None = None  # one line saying what it does, not sent yet
        self._errors: list[ev.RunnerError] = []  # the runner's error events
        self.began = time.monotonic()  # when this worker got the task (stages count from it)
        self._stages: dict[str, float] = {}  # stages reached, not sent yet
        self._stages_seen: set[str] = set()  # every stage reached

    # ----------------------------------------------------------- lifecycle
    def execute(self, work: Kind | None) -> None:
        """Do the task with work (None: a kind this worker does not know) and report it."""
        watcher = threading.Thread(target=self._watch_control, name="task-control", daemon=True)
        watcher.start()
        try:
            if work is None:
                raise TaskFailure(
                    f"this worker does not know task kind {self.task.kind!r}; upgrade it"
                )
            work(self)
            self._conclude()
        except TaskFailure as ex:
            self._fail(str(ex), job_fault=ex.job_fault)
        except ConflictError as ex:
            log.info("task %d taken away: %s", self.task.task_id, ex.message)
        except AuthError as ex:  # the farm forgot this worker: the loop registers again
            log.warning("task %d dropped: %s", self.task.task_id, ex.message)
        except FarmClientError as ex:  # refused otherwise: let the lease hand it on
            log.warning("task %d abandoned: the coordinator said %s", self.task.task_id, ex.message)
        except Exception as ex:  # a bug here must cost one task, not the worker
            log.exception("task %d: internal error", self.task.task_id)
            with contextlib.suppress(FarmClientError):
                self._fail(f"the worker hit an internal error: {type(ex).__name__}: {ex}")
        finally:
            self.stopped.set()
            # The coordinator ends the control long-poll when the task ends; a
            # watcher stuck on a slow network is a daemon and may not hold us up.
            watcher.join(timeout=2.0)

    def _conclude(self) -> None:
        if self.stopped.is_set():
            self._abandon()
            return
        self.flush()
        more = self.agent.wants_more()

        def call() -> None:
            self.next_assignment = self.client.complete_task(
                self.task.task_id, claim_next=more, warm_job=self.agent.warm_job if more else None
            )

        self.patiently(call)
        log.info("task %d completed", self.task.task_id)

    def stop(self, reason: str) -> None:
        """Stop the task's work now (cancel from the farm, or a hard shutdown)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stopped.set()
        process = self.process
        if process is not None:
            process.cancel()

    def _abandon(self) -> None:
        log.info("task %d stopped: %s", self.task.task_id, self.stop_reason or "stopped")
        if self.agent.aborting.is_set():
            # The worker is leaving mid-task: hand it back (does not count as a failure).
            self.agent.sign_off(self.client)

    def _fail(self, reason: str, *, job_fault: bool = False) -> None:
        whose = " (the job's own fault)" if job_fault else ""
        log.warning("task %d failed%s: %s", self.task.task_id, whose, reason)
        self.flush()
        tail = "\n".join(self._tail)
        text = f"\n--- last lines ---\n{tail}\n" if tail else ""
        with contextlib.suppress(ConflictError):
            self.patiently(
                lambda: self.client.fail_task(
                    self.task.task_id, reason=reason, log=text, job_fault=job_fault
                )
            )

    def patiently(self, call: Callable[[], object]) -> None:
        """Retry a report while the coordinator is away, so it is not lost.

        Gives up only when the worker is aborting; a coordinator that comes
        back after the lease ran out answers 409, which the caller handles.
        """
        delay = 0.5
        while True:
            try:
                call()
                return
            except Unreachable as ex:
                if self.agent.aborting.is_set():
                    raise
                log.warning("coordinator unreachable (%s); retrying in %g s", ex.message, delay)
                self.agent.aborting.wait(delay)
                delay = min(delay * 2, 10.0)

    def _watch_control(self) -> None:
        """Long-poll the coordinator; stop the task the moment it says so."""
        control = FarmClient(self.client.url, token=self.client.token)
        # Each poll renews the lease, so poll well within it.
        wait = min(CONTROL_WAIT, max(0.5, self.task.lease_seconds / 3))
        while not self.stopped.is_set():
            try:
                action, reason = control.control(self.task.task_id, wait=wait)
            except (ConflictError, NotFoundError, AuthError) as ex:
                action, reason = "stop", ex.message
            except FarmClientError as ex:  # coordinator away: keep rendering, try again
                log.debug("control poll failed: %s", ex.message)
                self.stopped.wait(1.0)
                continue
            if action == "stop":
                self.stop(reason or "stopped by the farm")
                return

    # ------------------------------------------------------------- reports
    def log_line(self, line: str) -> None:
        with self._log_lock:
            self._log_pending.append(line + "\n")
            self._tail.append(line)

    def report(self, *, progress: float | None = None, activity: str | None = None) -> None:
        """Note progress and activity; the next flush sends them."""
        with self._log_lock:
            if progress is not None:
                self._progress = max(0.0, min(1.0, progress))
            if activity is not None:
                self._activity = activity

    def flush(self) -> None:
        """Send the log text, progress and activity gathered since the last flush."""
        with self._log_lock:
            text, self._log_pending = "".join(self._log_pending), []
            progress, activity = self._progress, self._activity
            stages, self._stages = self._stages, {}
            self._activity = None
        if not text and progress is None and activity is None and not stages:
            return
        try:
            self.client.update_task(
                self.task.task_id,
                progress=progress,
                activity=activity,
                log=text[-250_000:] or None,
                stages=stages or None,
            )
        except ConflictError as ex:
            self.stop(ex.message)
        except Unreachable:
            with self._log_lock:  # keep it for the next try
                self._log_pending.insert(0, text)
                self._stages = {**stages, **self._stages}

    def last_words(self) -> str:
        """Why Blender stopped, for a failure reason: the runner's last error, else
        Blender's last line (not the agent's own notes or a crash backtrace)."""
        if self._errors:
            return self._errors[-1].message
        said = [t for t in self._tail if not t.startswith(("[agent]", CRASH_PREFIX))]
        return said[-1] if said else "no output"

    def job_fault_said(self) -> bool:
        """Whether the runner's last error says the failure is the job's own."""
        return bool(self._errors) and self._errors[-1].job_fault

    # ------------------------------------------------------------- Blender
    def run_script(
        self, kind: str, task_json: Path, blend: Path, on_event: EventHandler
    ) -> tuple[int, list[str]]:
        """Run a task of in_blender/serve.py ("render" or "merge") in the job's
        Blender (warm.py), uploading each file it saves.

        -> (exit code, 0 once the task ended with `done`; uploads that failed).
        on_event sees every parsed event.
        """
        uploads = Uploader(self.client, self.task.task_id, self)
        on_line = self._line_handler(task_json.parent, uploads, on_event)
        try:
            code = self._serve(kind, task_json, blend, on_line)
        except BaseException:
            uploads.close()
            raise
        failed = uploads.close()
        if saved_any(self._stages_seen):
            self.mark("uploaded")
        return code, failed

    def _serve(self, kind: str, task_json: Path, blend: Path, on_line: LineCallback) -> int:
        """Hand the task to a Blender and wait for its end; a warm one that does not
        take it is replaced by a fresh one (that costs this task nothing)."""
        slot = self.agent.blender
        for _attempt in range(2):
            served, fresh = self._blender_for(slot, blend, on_line)
            self.process = served.process
            try:
                served.hand(kind, task_json)
            except OSError:
                if not fresh:
                    slot.discard("it no longer reads its input")
                    continue
                # A fresh one that died at once: its exit code and last words say why.
            if self.stopped.is_set():  # a cancel that came while we were starting
                served.process.cancel()
            try:
                outcome = self._wait_for(served, fresh)
            except BaseException:
                # Whatever ends this task early, Blender (in its own session) must not
                # go on rendering as an orphan.
                served.process.cancel()
                slot.release(served, keep=False)
                raise
            finally:
                self.process = None
            if outcome == "unresponsive":
                self.log_line("[agent] the warm Blender did not take the task; starting afresh")
                slot.discard("it stopped answering")
                continue
            if outcome == "hung":
                slot.release(served, keep=False)
                raise TaskFailure(
                    f"Blender stopped answering: it printed nothing and used no CPU for"
                    f" {slot.limits.silence_seconds:g} s, so it was stopped"
                )
            ok = served.succeeded and not self.stopped.is_set()
            code = 0 if ok and served.alive() else self._exit_code(served)
            slot.release(served, keep=ok)
            return code
        raise TaskFailure("two Blender processes in a row did not take the task")

    def _blender_for(
        self, slot: BlenderSlot, blend: Path, on_line: LineCallback
    ) -> tuple[Served, bool]:
        info = self.config.blender
        key = WarmKey(
            job_id=self.task.job_id,
            blender=info.path,
            blend=str(blend),
            blend_sha=self.task.files.get(self.task.blend or "", ""),
            allow_scripts=self.config.allow_scripts,
        )

        def command() -> list[str]:
            argv = build_serve_command(
                info, blend_path=blend, allow_scripts=self.config.allow_scripts
            )
            self.log_line(f"[agent] {' '.join(argv)}")
            self.report(activity=f"starting Blender {info.version}")
            return argv

        try:
            served, fresh = slot.take(key, command, blend.parent, on_line)
        except OSError as ex:
            raise TaskFailure(f"could not start Blender ({info.path}): {ex.strerror or ex}") from ex
        if not fresh:
            self.log_line(
                f"[agent] Blender {served.process.pid} has the scene open already"
                f" (task {served.tasks + 1} in it)"
            )
        return served, fresh

    def _wait_for(self, served: Served, fresh: bool) -> str:
        """Wait for the task's end, sending reports meanwhile: "ended", "hung", or
        "unresponsive" (a warm Blender that did not acknowledge the task)."""
        limits = self.agent.blender.limits
        handed = time.monotonic()
        alive = Liveness(served.process)
        while not served.finished.wait(self.config.report_seconds):
            self.flush()
            now = time.monotonic()
            if not fresh and not served.accepted.is_set() and now - handed > limits.accept_seconds:
                served.process.cancel()
                return "unresponsive"
            if alive.idle_for(now) > limits.silence_seconds:
                self.log_line(
                    f"[agent] Blender printed nothing and used no CPU for"
                    f" {limits.silence_seconds:g} s"
                )
                served.process.cancel()
                return "hung"
        if not served.succeeded:
            with contextlib.suppress(subprocess.TimeoutExpired):
                served.process.wait(5.0)  # after an error event the runner exits
        return "ended"

    def _exit_code(self, served: Served) -> int:
        # Still running: stopped mid-task. Ended: wait() also passes on its crash report.
        process = served.process
        return process.cancel() if process.poll() is None else process.wait()

    def mark(self, stage: str) -> None:
        """Note that the task reached a stage (models.TaskStages); flush sends it."""
        with self._log_lock:
            self._stages[stage] = round(time.monotonic() - self.began, 3)
            self._stages_seen.add(stage)

    def _line_handler(
        self, out_dir: Path, uploads: Uploader, on_event: EventHandler
    ) -> LineCallback:
        """What happens to each line Blender prints (on RenderProcess's reader thread)."""

        def on_line(line: str, event: ev.RunnerEvent | None) -> None:
            if not line.startswith(RUNNER_EVENT_PREFIX.rstrip()):  # events are not log
                self.log_line(line)
            if isinstance(event, ev.FrameSaved) and not inside(Path(event.path), out_dir):
                # Blender echoes text from the .blend (paths, names, which may hold a
                # newline): a forged event must not upload a file from elsewhere.
                self.log_line(f"[agent] ignored a saved file outside {out_dir}: {event.path}")
                event = None
            if isinstance(event, ev.FrameSaved):
                uploads.put(Path(event.path), event.frame)
                self.mark("last_frame_saved")
            elif isinstance(event, ev.Ready):
                self.mark("blender_ready")
            elif isinstance(event, ev.Progress) and "first_sample" not in self._stages_seen:
                self.mark("first_sample")
            elif isinstance(event, ev.RunnerError):
                self._errors.append(event)
                self.log_line(f"[runner] error: {event.message}")
            on_event(event)

        return on_line


class Liveness:
    """How long a Blender has shown no sign of work: no output line and no CPU time.

    Output alone is not enough: Blender 3.4 holds Python's lock while it
    renders, so the runner's progress lines come out only between frames, and
    a long frame is silent. A Blender that renders uses CPU (even on a GPU);
    one that is stopped or deadlocked does not. Where /proc is missing (not
    Linux) the CPU cannot be read, and no Blender is ever judged hung.
    """

    def __init__(self, process: RenderProcess) -> None:
        self.process = process
        self.cpu = process.cpu_seconds()  # the last reading
        self.busy_at = time.monotonic()  # when its CPU time last grew

    def idle_for(self, now: float) -> float:
        cpu = self.process.cpu_seconds()
        if cpu is None:
            return 0.0
        if cpu != self.cpu:
            self.cpu, self.busy_at = cpu, now
        return now - max(self.busy_at, self.process.last_output)


def saved_any(stages: set[str]) -> bool:
    return "last_frame_saved" in stages


def inside(path: Path, folder: Path) -> bool:
    """Whether path is a file in folder once symlinks are followed."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def exit_text(code: int) -> str:
    """How Blender ended, for the failure reason: a crash names its signal.

    Killed by signal N, Blender's exit code is -N; through a launcher script
    (a shell wrapper around the binary) it is 128 + N.
    """
    signum = -code if code < 0 else code - 128 if code > 128 else 0
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return f"Blender exited with code {code}"
    return f"Blender crashed (killed by {name}, exit code {code})"
