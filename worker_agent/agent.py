"""The worker agent: find the coordinator, pull tasks, run them, report.

The loop fits on a screen (`Agent.run` / `_serve`); each task runs in
`TaskRun`, which owns the Blender process, a control long-poll that stops it
within about a second of a cancel, and an uploader that sends each frame as
soon as Blender has written it.

Shutdown: the first SIGINT/SIGTERM lets the current task finish, then the
agent signs off and exits; a second one stops the render at once and hands
the task back to the farm.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import queue
import shutil
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coordinator.client.http import (
    AuthError,
    ConflictError,
    FarmClient,
    FarmClientError,
    NotFoundError,
    Unreachable,
    WorkerCredentials,
)
from coordinator.core.protocol import Assignment
from worker_agent import events as ev
from worker_agent.blender import (
    CRASH_PREFIX,
    RUNNER_PATH,
    BlenderInfo,
    RenderProcess,
    build_command,
    write_task,
)
from worker_agent.cache import BlobCache, CacheError
from worker_agent.in_blender.merge import MergeError, MergeTask
from worker_agent.in_blender.runner import RenderTask, TaskError

log = logging.getLogger(__name__)

LOG_FLUSH_SECONDS = 1.0  # how often log text and progress go to the coordinator
LOG_TAIL_LINES = 40  # lines sent with a failure
CONTROL_WAIT = 10.0  # seconds per control long-poll (also the lease heartbeat)
MERGE_PATH = (
    Path(__file__).parent / "in_blender" / "merge.py"
)  # progressive merges, run inside Blender


@dataclass
class AgentConfig:
    coordinator: str | None  # URL; None = find it by zeroconf
    token: str | None  # the farm token, to register
    name: str  # how the farm shows this worker
    blender: BlenderInfo  # the Blender (or bpy Python) that renders
    cache_dir: Path  # downloaded files, work folders, credentials
    devices: list[str] = field(default_factory=list)  # render devices found, for the farm
    device: str | None = None  # Cycles device to render with; None = the file's
    threads: int | None = None  # render threads; None = all
    allow_scripts: bool = False  # let .blend files run their Python scripts
    zeroconf_interfaces: list[str] | None = None  # where to look for the coordinator
    farm_name: str | None = None  # only join the farm announced under this name
    poll_wait: float = 20.0  # seconds per task long-poll
    max_tasks: int | None = None  # stop after this many tasks (tests, benchmarks)
    burst: bool = False  # stop when the farm has no work left
    retry_seconds: float = 2.0  # pause before looking for the coordinator again


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.cache = BlobCache(config.cache_dir)
        self.stopping = threading.Event()  # finish the current task, then leave
        self.aborting = threading.Event()  # stop the current task now
        self.tasks_done = 0
        self._current: TaskRun | None = None
        self._client: FarmClient | None = None  # once registered

    # -------------------------------------------------------------- the loop
    def run(self) -> int:
        while not self.stopping.is_set():
            try:
                client = self._connect()
                if client is None:
                    break
                self._serve(client)
                break
            except Unreachable as ex:
                log.warning("lost the coordinator (%s); looking for it again", ex.message)
                self.stopping.wait(self.config.retry_seconds)
        return 0

    def _serve(self, client: FarmClient) -> None:
        self._client = client
        chained: Assignment | None = None  # handed out with the last completion
        while not self.stopping.is_set():
            try:
                assignment = chained or client.next_task(wait=self.config.poll_wait)
            except AuthError:
                log.warning("the coordinator no longer knows this worker; registering again")
                client = self._client = self._register(client, fresh=True)
                continue
            if assignment is None:
                if self.config.burst:
                    return
                continue
            chained = self._run_task(client, assignment)
            self.tasks_done += 1
            if self.config.max_tasks is not None and self.tasks_done >= self.config.max_tasks:
                return
        self._sign_off(client)

    def wants_more(self) -> bool:
        """Whether to ask for the next task together with this completion."""
        limit = self.config.max_tasks
        return not self.stopping.is_set() and (limit is None or self.tasks_done + 1 < limit)

    def shutdown(self, *, now: bool) -> None:
        """Called from a signal handler: finish (now=False) or abort (now=True)."""
        self.stopping.set()
        if now:
            self.aborting.set()
            current = self._current
            if current is not None:
                current.stop("the worker is shutting down")

    # ------------------------------------------------------ coordinator link
    def _connect(self) -> FarmClient | None:
        """Find the coordinator (waiting for one to appear) and register with it."""
        announced = False
        explicit = self.config.coordinator
        while not self.stopping.is_set():
            for url in [explicit] if explicit else self._discover():
                farm = FarmClient(url, token=self.config.token)
                try:
                    farm.health()
                    return self._register(farm, fresh=False)
                except Unreachable:
                    pass
                except AuthError as ex:
                    if explicit:
                        raise SystemExit(f"error: {url} refused this worker: {ex.message}") from ex
                    log.warning(
                        "the farm at %s refused the token (%s); trying others", url, ex.message
                    )
            if not announced:
                where = explicit or "the LAN (zeroconf)"
                log.info("waiting for a coordinator at %s ...", where)
                announced = True
            self.stopping.wait(self.config.retry_seconds)
        return None

    def _discover(self) -> list[str]:
        """URLs of the farms announced on the LAN (only --farm-name's, when given)."""
        from coordinator.client.browser import find_coordinators

        found = find_coordinators(
            timeout=3.0,
            interfaces=self.config.zeroconf_interfaces,
            first=True,
            name=self.config.farm_name,
        )
        for farm in found:
            log.info("found coordinator %r at %s", farm.name, farm.url)
        return [farm.url for farm in found if farm.compatible]

    def _register(self, farm: FarmClient, *, fresh: bool) -> FarmClient:
        path = self.config.cache_dir / "credentials.json"
        creds = None if fresh else _load_credentials(path, farm.url)
        if creds is None:
            if not self.config.token:
                raise SystemExit(
                    "error: this worker needs the farm token to register: pass"
                    " --token or set FARM_TOKEN"
                )
            info = self.config.blender
            creds = farm.with_token(self.config.token).register_worker(
                name=self.config.name,
                host=socket.gethostname(),
                blender_version=info.version,
                devices=self.config.devices,
            )
            _save_credentials(path, farm.url, creds)
            log.info(
                "registered with %s as %r (Blender %s)", farm.url, self.config.name, info.version
            )
        return farm.with_token(creds.secret)

    def leave(self) -> None:
        """Interrupted outside a task (or between claiming and starting one): hand
        back whatever the farm thinks this worker holds, and say goodbye."""
        if self._client is not None:
            self._sign_off(self._client)

    def _sign_off(self, client: FarmClient) -> None:
        try:
            client.sign_off()
        except FarmClientError as ex:
            log.info("could not sign off: %s", ex.message)

    # ------------------------------------------------------------ one task
    def _run_task(self, client: FarmClient, assignment: Assignment) -> Assignment | None:
        """Run one task; returns the next one when the coordinator chained it."""
        run = TaskRun(self, client, assignment)
        self._current = run  # from here a first signal lets the task finish
        log.info(
            "task %d: %s (job %d %r, attempt %d)",
            assignment.task_id,
            assignment.kind,
            assignment.job_id,
            assignment.job_name,
            assignment.attempt,
        )
        try:
            run.execute()
        finally:
            self._current = None
        return run.next_assignment


class TaskRun:
    """Everything about running one assigned task."""

    def __init__(self, agent: Agent, client: FarmClient, assignment: Assignment) -> None:
        self.agent = agent
        self.config = agent.config
        self.client = client
        self.task = assignment
        self.stop_reason: str | None = None
        self.stopped = threading.Event()
        self.process: RenderProcess | None = None
        self._log_lock = threading.Lock()
        self._log_pending: list[str] = []
        self._tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._progress: float | None = None
        self._activity: str | None = None
        self._errors: list[str] = []
        self.next_assignment: Assignment | None = None  # chained onto the completion

    # ----------------------------------------------------------- lifecycle
    def execute(self) -> None:
        watcher = threading.Thread(target=self._watch_control, name="task-control", daemon=True)
        watcher.start()
        try:
            kind = self.task.kind
            if kind == "sleep":
                self._sleep()
            elif kind == "render":
                self._in_workdir(self._render_in)
            elif kind == "merge":
                self._in_workdir(self._merge_in)
            else:
                raise TaskFailure(f"this worker does not know task kind {kind!r}; upgrade it")
            if self.stopped.is_set():
                self._abandon()
            else:
                self._flush()
                self._complete()
                log.info("task %d completed", self.task.task_id)
        except TaskFailure as ex:
            self._fail(str(ex))
        except ConflictError as ex:
            log.info("task %d taken away: %s", self.task.task_id, ex.message)
        except AuthError as ex:  # the farm forgot this worker: _serve registers again
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

    def _complete(self) -> None:
        more = self.agent.wants_more()

        def call() -> None:
            self.next_assignment = self.client.complete_task(self.task.task_id, claim_next=more)

        self._patiently(call)

    def stop(self, reason: str) -> None:
        """Stop the task's work now (cancel from the farm, or a hard shutdown)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stopped.set()
        process = self.process
        if process is not None:
            process.cancel()

    def _abandon(self) -> None:
        reason = self.stop_reason or "stopped"
        log.info("task %d stopped: %s", self.task.task_id, reason)
        if self.agent.aborting.is_set():
            # The worker is leaving mid-task: hand it back (does not count as a failure).
            self.agent._sign_off(self.client)

    def _fail(self, reason: str) -> None:
        log.warning("task %d failed: %s", self.task.task_id, reason)
        self._flush()
        tail = "\n".join(self._tail)
        text = f"\n--- last lines ---\n{tail}\n" if tail else ""
        with contextlib.suppress(ConflictError):
            self._patiently(
                lambda: self.client.fail_task(self.task.task_id, reason=reason, log=text)
            )

    def _patiently(self, call: Callable[[], object]) -> None:
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

    # ------------------------------------------------------------- logging
    def log_line(self, line: str) -> None:
        with self._log_lock:
            self._log_pending.append(line + "\n")
            self._tail.append(line)

    def _flush(self) -> None:
        with self._log_lock:
            text, self._log_pending = "".join(self._log_pending), []
            progress, activity = self._progress, self._activity
            self._activity = None
        if not text and progress is None and activity is None:
            return
        try:
            self.client.update_task(
                self.task.task_id, progress=progress, activity=activity, log=text[-250_000:] or None
            )
        except ConflictError as ex:
            self.stop(ex.message)
        except Unreachable:
            with self._log_lock:  # keep it for the next try
                self._log_pending.insert(0, text)

    def _report(self, *, progress: float | None = None, activity: str | None = None) -> None:
        with self._log_lock:
            if progress is not None:
                self._progress = max(0.0, min(1.0, progress))
            if activity is not None:
                self._activity = activity

    # --------------------------------------------------------------- kinds
    def _sleep(self) -> None:
        seconds = float(self.task.payload.get("seconds", 0))
        end = time.monotonic() + seconds
        self._report(activity=f"sleeping {seconds:g} s")
        while not self.stopped.is_set() and (left := end - time.monotonic()) > 0:
            self.stopped.wait(min(left, LOG_FLUSH_SECONDS))
            self._report(progress=1 - max(0.0, end - time.monotonic()) / max(seconds, 1e-9))
            self._flush()

    def _in_workdir(self, work: Callable[[Path, Path], None]) -> None:
        """Fetch the job's project, then work(.blend, a fresh output folder)."""
        workdir = self.config.cache_dir / "jobs" / str(self.task.job_id)
        project = workdir / "project"
        if not self.task.blend:
            raise TaskFailure("the job names no .blend file to render")
        self._report(activity=f"fetching {len(self.task.files)} project files")
        self._flush()
        fetched: list[int] = []  # downloads of the last try (earlier ones are cached)
        try:
            # A coordinator that is away (restarting) is waited for, as for reports:
            # failing here would blame this worker for the coordinator's outage.
            self._patiently(
                lambda: fetched.append(
                    self.agent.cache.materialize(self.client, self.task.files, project)
                )
            )
        except (CacheError, FarmClientError, OSError) as ex:
            raise TaskFailure(f"could not fetch the project files: {ex}") from ex
        self.log_line(
            f"[agent] project files ready ({fetched[-1]} downloaded,"
            f" {len(self.task.files) - fetched[-1]} from cache)"
        )
        out_dir = workdir / f"out-{self.task.task_id}-{self.task.attempt}"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        try:
            work(project / self.task.blend, out_dir)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)

    def _render_in(self, blend: Path, out_dir: Path) -> None:
        render_task = self._render_task(blend, out_dir)
        task_json = write_task(render_task, out_dir / "task.json")
        frames = list(render_task.frames)
        saved: dict[int, str] = {}
        state = {"index": 0}

        def on_event(event: ev.RunnerEvent | None) -> None:
            if isinstance(event, ev.FrameStart) and event.frame in frames:
                state["index"] = frames.index(event.frame)
                self._report(
                    progress=state["index"] / len(frames), activity=f"rendering frame {event.frame}"
                )
            elif isinstance(event, ev.Progress):
                self._report(
                    progress=(state["index"] + event.fraction) / len(frames),
                    activity=f"frame {event.frame}: sample {event.sample}/{event.samples}",
                )
            elif isinstance(event, ev.FrameSaved):
                saved[event.frame] = event.path

        code, failed_uploads = self._run_script(RUNNER_PATH, task_json, blend, on_event)
        if self.stopped.is_set():
            return
        self._judge(code, frames, saved, failed_uploads)

    def _merge_in(self, blend: Path, out_dir: Path) -> None:
        """A progressive merge: fetch its inputs, run merge.py, upload what it writes."""
        merge_task = self._merge_task(blend, out_dir)
        task_json = out_dir / "merge.json"
        task_json.write_text(json.dumps(merge_task.to_json(), ensure_ascii=False), "utf-8")
        saved: list[str] = []

        def on_event(event: ev.RunnerEvent | None) -> None:
            if isinstance(event, ev.FrameSaved):
                saved.append(Path(event.path).name)
                self._report(progress=len(saved) / (2 * len(merge_task.merges)))

        self._report(activity=f"merging {len(merge_task.merges)} frame(s)")
        code, failed_uploads = self._run_script(MERGE_PATH, task_json, blend, on_event)
        if self.stopped.is_set():
            return
        merged = {m.merged_output for m in merge_task.merges if m.merged_output}
        finished = [name for name in saved if name not in merged]
        if code != 0 or len(finished) < len(merge_task.merges) or not merged <= set(saved):
            detail = self._errors[-1] if self._errors else (self._tail[-1] if self._tail else "")
            raise TaskFailure(f"the merge failed (Blender exited with code {code}): {detail}")
        if failed_uploads:
            raise TaskFailure(f"could not upload {', '.join(failed_uploads)}")
        self._report(progress=1.0, activity="done")

    def _merge_task(self, blend: Path, out_dir: Path) -> MergeTask:
        payload = self.task.payload
        folder = out_dir / "inputs"
        try:
            merges = [
                {
                    "frame": merge["frame"],
                    "merged_output": merge.get("merged_output"),
                    "inputs": [
                        {
                            "path": str(self._fetch_input(str(i["name"]), folder)),
                            "samples": i["samples"],
                        }
                        for i in merge["inputs"]
                    ],
                }
                for merge in payload["merges"]
            ]
            return MergeTask.from_json(
                {
                    "blend": str(blend),
                    "output_dir": str(out_dir),
                    "merges": merges,
                    "samples": payload["samples"],
                    "output_name": payload.get("output_name", ""),
                    "file_format": payload.get("file_format"),
                    "use_file_extension": payload.get("use_file_extension"),
                    "scene": payload.get("scene"),
                    "camera": payload.get("camera"),
                    "allow_scripts": self.config.allow_scripts,
                }
            )
        except (KeyError, TypeError, ValueError, MergeError) as ex:
            raise TaskFailure(f"the merge task is malformed: {ex!r}") from ex

    def _fetch_input(self, name: str, folder: Path) -> Path:
        """One output of the tasks this one depends on, exactly as they completed it."""
        sha = self.task.inputs.get(name)
        if sha is None:
            raise TaskFailure(
                f"input {name} is not among what the tasks this one depends on uploaded"
            )
        dest = folder / name
        if dest.parent != folder or name.startswith("."):
            raise TaskFailure(f"refusing the input name {name!r}")
        self._report(activity=f"fetching {name}")
        try:  # a coordinator restarting is waited out, as for the project's files
            self._patiently(lambda: self.client.download_input(self.task.task_id, name, sha, dest))
        except ConflictError:
            raise
        except (FarmClientError, OSError) as ex:
            raise TaskFailure(f"could not fetch input {name}: {ex}") from ex
        return dest

    def _run_script(
        self,
        script: Path,
        task_json: Path,
        blend: Path,
        on_event: Callable[[ev.RunnerEvent | None], None],
    ) -> tuple[int, list[str]]:
        """Run a runner script in Blender, uploading each file it saves.

        -> (exit code, uploads that failed). on_event sees every parsed event.
        """
        info = self.config.blender
        command = build_command(
            info,
            runner_path=script,
            task_json_path=task_json,
            blend_path=blend,
            allow_scripts=self.config.allow_scripts,
        )
        uploads = Uploader(self)

        out_dir = task_json.parent  # the runner writes only here

        def on_line(line: str, event: ev.RunnerEvent | None) -> None:
            if not line.startswith("@@FARM@@"):
                self.log_line(line)
            if isinstance(event, ev.FrameSaved) and not _inside(Path(event.path), out_dir):
                # Blender echoes text from the .blend (paths, names, which may hold a
                # newline): a forged event must not upload a file from elsewhere.
                self.log_line(f"[agent] ignored a saved file outside {out_dir}: {event.path}")
                event = None
            if isinstance(event, ev.FrameSaved):
                uploads.put(Path(event.path), event.frame)
            elif isinstance(event, ev.RunnerError):
                self._errors.append(event.message)
                self.log_line(f"[runner] error: {event.message}")
            on_event(event)

        self.log_line(f"[agent] {' '.join(command)}")
        self._report(activity=f"starting Blender {info.version}")
        try:
            self.process = RenderProcess(command, on_line=on_line, cwd=str(blend.parent))
        except OSError as ex:
            uploads.close()
            raise TaskFailure(f"could not start Blender ({info.path}): {ex.strerror or ex}") from ex
        if self.stopped.is_set():  # a cancel that came while we were starting
            self.process.cancel()
        try:
            code = self._wait_for(self.process)
        except BaseException:
            # Whatever ends this task early, Blender (in its own session) must not
            # go on rendering as an orphan.
            self.process.cancel()
            uploads.close()
            raise
        return code, uploads.close()

    def _wait_for(self, process: RenderProcess) -> int:
        while process.poll() is None:
            self.stopped.wait(LOG_FLUSH_SECONDS)
            self._flush()
        return process.wait()

    def _judge(
        self, code: int, frames: list[int], saved: dict[int, str], failed_uploads: list[str]
    ) -> None:
        missing = [f for f in frames if f not in saved]
        if missing or code != 0:
            # Blender's last words, not the agent's own notes or a crash backtrace.
            said = [t for t in self._tail if not t.startswith(("[agent]", CRASH_PREFIX))]
            detail = self._errors[-1] if self._errors else (said[-1] if said else "no output")
            what = f"frames {', '.join(map(str, missing))} were not written" if missing else ""
            raise TaskFailure(f"{_exit_text(code)}{'; ' + what if what else ''}: {detail}")
        if failed_uploads:
            raise TaskFailure(f"could not upload {', '.join(failed_uploads)}")
        self._report(progress=1.0, activity="done")

    def _render_task(self, blend: Path, out_dir: Path) -> RenderTask:
        payload: dict[str, Any] = dict(self.task.payload)
        payload.update(
            blend=str(blend), output_dir=str(out_dir), allow_scripts=self.config.allow_scripts
        )
        if self.config.device is not None:
            payload["device"] = self.config.device
        if self.config.threads is not None:
            payload["threads"] = self.config.threads
        known = set(RenderTask.__dataclass_fields__)
        try:
            return RenderTask.from_json({k: v for k, v in payload.items() if k in known})
        except TaskError as ex:
            raise TaskFailure(f"the task cannot be rendered: {ex}") from ex


class Uploader:
    """Uploads frames on its own thread, in the order Blender saved them."""

    def __init__(self, run: TaskRun) -> None:
        self.run = run
        self.client = FarmClient(run.client.url, token=run.client.token)
        self.queue: queue.Queue[tuple[Path, int] | None] = queue.Queue()
        self.failed: list[str] = []
        self.thread = threading.Thread(target=self._loop, name="uploader", daemon=True)
        self.thread.start()

    def put(self, path: Path, frame: int) -> None:
        self.queue.put((path, frame))

    def close(self) -> list[str]:
        self.queue.put(None)
        self.thread.join()
        return self.failed

    def _loop(self) -> None:
        while (item := self.queue.get()) is not None:
            path, frame = item
            try:
                self._upload(path, frame)
            except ConflictError as ex:
                self.run.stop(ex.message)
            except (FarmClientError, OSError) as ex:
                self.failed.append(f"{path.name} ({ex})")
                self.run.log_line(f"[agent] upload of {path.name} failed: {ex}")

    def _upload(self, path: Path, frame: int) -> None:
        task_id = self.run.task.task_id
        self.run._patiently(
            lambda: self.client.upload_output(task_id, path, name=path.name, frame=frame)
        )
        self.run.log_line(f"[agent] uploaded {path.name}")


def _inside(path: Path, folder: Path) -> bool:
    """Whether path is a file in folder once symlinks are followed."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def _exit_text(code: int) -> str:
    """How Blender ended, for the failure reason: a crash names its signal."""
    if code < 0:
        try:
            return f"Blender crashed (killed by {signal.Signals(-code).name}, exit code {code})"
        except ValueError:
            pass
    return f"Blender exited with code {code}"


class TaskFailure(Exception):
    """The task could not be done here; the message is the reason the farm shows."""


def _load_credentials(path: Path, url: str) -> WorkerCredentials | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entry = data[url]
        return WorkerCredentials(entry["worker_id"], entry["secret"], entry["lease_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_credentials(path: Path, url: str, creds: WorkerCredentials) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[url] = {
        "worker_id": creds.worker_id,
        "secret": creds.secret,
        "lease_seconds": creds.lease_seconds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def default_name() -> str:
    return platform.node() or "worker"
