"""Runs a script of in_blender/ in Blender: the command line, the process, its output.

A worker renders either with the Blender binary or with a Python that has the
``bpy`` module (found by probe.py); both run a script of worker_agent/in_blender/
(serve.py for the agent's tasks; runner.py or merge.py for one task by hand),
which prints one structured line per event (see worker_agent/events.py).
RenderProcess starts it, hands each output line to a callback, feeds it task
lines on stdin (serve.py), and stops it with its whole process group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from worker_agent.events import RunnerEvent, parse_line
from worker_agent.in_blender.render_task import RenderTask
from worker_agent.probe import BlenderInfo

log = logging.getLogger(__name__)

RUNNER_PATH = Path(__file__).parent / "in_blender" / "runner.py"  # renders a task
MERGE_PATH = Path(__file__).parent / "in_blender" / "merge.py"  # merges progressive chunks
SERVE_PATH = Path(__file__).parent / "in_blender" / "serve.py"  # a job's tasks, from stdin


def write_task(task: RenderTask, path: str | os.PathLike[str]) -> Path:
    """Writes TASK.json for the runner; returns its path."""
    target = Path(path)
    target.write_text(json.dumps(task.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    return target


def build_command(
    info: BlenderInfo,
    *,
    runner_path: str | os.PathLike[str] = RUNNER_PATH,
    task_json_path: str | os.PathLike[str],
    blend_path: str | os.PathLike[str],
    allow_scripts: bool,
) -> list[str]:
    """The argv that renders a task.

    The binary gets the .blend and the script policy on its command line (-y
    allows the file's scripts, -Y forbids them). The bpy module opens the file
    named in TASK.json itself and reads allow_scripts there, so blend_path and
    allow_scripts must match the task.
    """
    if info.kind == "bpy-module":
        return [info.path, str(runner_path), "--bpy", str(task_json_path)]
    return _binary_command(info, runner_path, blend_path, allow_scripts, str(task_json_path))


def build_serve_command(
    info: BlenderInfo, *, blend_path: str | os.PathLike[str] | None, allow_scripts: bool
) -> list[str]:
    """The argv of a warm Blender (in_blender/serve.py), which reads its tasks on stdin.

    The binary opens blend_path with the script policy of its command line (-Y or
    -y); without one (a standby Blender) it starts empty and serve.py opens the
    first task's file with that task's policy, as the bpy module always does.
    """
    if info.kind == "bpy-module":
        return [info.path, str(SERVE_PATH), "--bpy", "--serve"]
    command = _binary_command(info, SERVE_PATH, blend_path or "", allow_scripts, "--serve")
    if blend_path is None:
        command.remove("")
    return command


def _binary_command(
    info: BlenderInfo,
    script: str | os.PathLike[str],
    blend_path: str | os.PathLike[str],
    allow_scripts: bool,
    argument: str,
) -> list[str]:
    return [
        info.path,
        "-b",
        "--factory-startup",
        "-y" if allow_scripts else "-Y",
        str(blend_path),
        "--python-exit-code",
        "1",
        "--python",
        str(script),
        "--",
        argument,
    ]


LineCallback = Callable[[str, RunnerEvent | None], None]
CRASH_PREFIX = "[blender crash] "  # lines of Blender's crash report, passed on after it died
CRASH_REPORT_LINES = 200  # at most this many of them


class RenderProcess:
    """One Blender run: output lines to a callback, cancel, exit code.

    Blender runs in its own session (process group), so cancel() reaches every
    process it started. stderr is merged into stdout to keep Blender's order.
    It gets a private TMPDIR, removed when it ends: Blender leaves its temp
    directory behind when it is killed.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        on_line: LineCallback,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bool = False,
        on_end: Callable[[], None] | None = None,
    ):
        self.command = list(command)  # the argv, for logs
        self._on_line = on_line  # called on the reader thread, in output order
        self._on_end = on_end  # called on the reader thread after the last line
        self.last_output = time.monotonic()  # when it last printed a line
        self._tmpdir = tempfile.mkdtemp(prefix="farm-blender-")
        child_env = dict(os.environ if env is None else env, TMPDIR=self._tmpdir)
        self.canceled = False  # cancel() was called
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=child_env,
                start_new_session=True,
            )
        except OSError:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        self._reader = threading.Thread(target=self._read, name="blender-output", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """Blender's pid, which is also its process group id."""
        return self._proc.pid

    def _read(self) -> None:
        assert self._proc.stdout is not None
        # readline with a limit: a huge line without newline must not grow forever.
        while raw := self._proc.stdout.readline(1 << 16):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            try:
                self._on_line(line, parse_line(line))
            except Exception:  # a callback bug must not stop the draining (Blender would block)
                log.exception("render output callback failed on %r", line)
            self.last_output = time.monotonic()
        self._proc.stdout.close()
        if self._on_end is not None:
            self._on_end()

    def send(self, line: str) -> None:
        """Writes one line to its stdin; OSError once the process has gone."""
        if self._proc.stdin is None:
            raise OSError("this Blender was started without a task input")
        self._proc.stdin.write(line.encode("utf-8") + b"\n")
        self._proc.stdin.flush()

    def close_input(self) -> None:
        """End of input: serve.py finishes and Blender quits."""
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()

    def cpu_seconds(self) -> float | None:
        """CPU time it used so far (Linux /proc; None elsewhere or once it has gone)."""
        try:
            with open(f"/proc/{self._proc.pid}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def rss_bytes(self) -> int | None:
        """Its resident memory (Linux /proc; None elsewhere or once it has gone)."""
        try:
            with open(f"/proc/{self._proc.pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return None

    def poll(self) -> int | None:
        """The exit code, or None while Blender runs."""
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Blender's exit code, once every output line went to the callback.

        Raises subprocess.TimeoutExpired when it is still running after timeout.
        """
        code = self._proc.wait(timeout)
        self._reader.join(timeout)
        self.close_input()
        self._pass_on_crash_reports()
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        return code

    def _pass_on_crash_reports(self) -> None:
        """Blender's crash handler writes its backtrace to NAME.crash.txt in the temp
        folder, which is about to go: hand it to on_line, so it reaches the task log."""
        for report in sorted(Path(self._tmpdir).glob("*.crash.txt")):
            try:
                lines = report.read_text("utf-8", "replace").splitlines()
            except OSError:
                continue
            for line in [f"{report.name}:", *lines[:CRASH_REPORT_LINES]]:
                self._on_line(f"{CRASH_PREFIX}{line}", None)

    def cancel(self, grace: float = 0.5) -> int:
        """Stops Blender and its children: SIGTERM, then SIGKILL after grace seconds."""
        self.canceled = True
        if self._proc.poll() is not None:
            return self.wait()  # ended by itself; its group id may be anyone's by now
        self._signal_group(signal.SIGTERM)
        try:
            self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            log.info("blender %d ignored SIGTERM for %.1f s, killing it", self.pid, grace)
        # Also kills children that outlived Blender: while any exists the group
        # id stays theirs, and once none does, the kill finds nobody.
        self._signal_group(signal.SIGKILL)
        return self.wait()

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # nobody left in the group
            os.killpg(self._proc.pid, signum)

    def __enter__(self) -> RenderProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._proc.poll() is None:
            self.cancel()
        else:
            self.wait()
