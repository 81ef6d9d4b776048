"""The add-on's side of its helper process: JSON lines over pipes, read without threads.
No `bpy` here.

No Python thread of ours may run inside Blender while Blender runs operators:
a submit thread waiting on a socket while a script called
`bpy.ops.screen.screenshot` crashed Blender 3.4. So whatever waits on the
network runs in a child process (`helper.py`), the shape of Blender's own
extension manager: requests go to its stdin, one JSON object a line; its
answers come back on its stdout, which Blender's main thread reads from a
timer, a little at a time and never waiting.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

HELPER = Path(__file__).with_name("helper.py")
ORIGINAL_PYTHONPATH = "FARM_BLENDER_PYTHONPATH"  # packing.blender_env reads it
JSON = dict[str, Any]


class HelperGone(Exception):
    """The helper process ended; the next request starts a new one."""


def child_env(pythonpath: Sequence[str]) -> dict[str, str]:
    """Blender's module paths, so the bundled packages import in the child."""
    env = dict(os.environ)
    # What Blender itself was started with, for the programs the helper starts in
    # turn (a Python with the bpy module must not see Blender's own script paths)
    env[ORIGINAL_PYTHONPATH] = os.environ.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in pythonpath if p and os.path.isdir(p))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Helper:
    """One helper process; started on the first request, again after it died."""

    def __init__(self, python: str, pythonpath: Sequence[str], log_path: Path) -> None:
        self.python = python  # Blender's own Python (sys.executable)
        self.pythonpath = list(pythonpath)  # Blender's sys.path
        self.log_path = log_path  # the child's stderr
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._ids = itertools.count(1)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def died(self) -> bool:
        """It was started and has ended, and nobody has been told yet."""
        return self._proc is not None and self._proc.poll() is not None

    def _start(self) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as err:
            proc = subprocess.Popen(
                [self.python, "-u", str(HELPER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=child_env(self.pythonpath),
                close_fds=True,
            )
        assert proc.stdout is not None
        _make_non_blocking(proc.stdout)
        self._proc, self._buffer = proc, b""
        log.info("farm helper started (pid %d)", proc.pid)
        return proc

    def send(self, kind: str, **args: Any) -> int:
        """Queue a request; its answers carry the returned id."""
        proc = self._proc if self._proc is not None and self.running else self._start()
        rid = next(self._ids)
        line = json.dumps({"id": rid, "kind": kind, "args": args}) + "\n"
        assert proc.stdin is not None
        try:
            proc.stdin.write(line.encode("utf-8"))
            proc.stdin.flush()
        except OSError as ex:  # it died since: the caller hears it from read()
            log.warning("farm helper gone: %s", ex)
            self.stop()
            raise HelperGone(str(ex)) from ex
        return rid

    def read(self, budget: float = 0.005) -> list[JSON]:
        """Whole messages waiting now; never blocks longer than `budget` (about)."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            return []
        deadline = time.monotonic() + budget
        while True:
            chunk = _read_some(proc.stdout)
            if chunk is None:  # nothing more now
                break
            if chunk == b"":  # it ended: say so once
                self._proc = None
                code = proc.wait()
                _close(proc)
                return [*self._lines(), {"gone": True, "code": code}]
            self._buffer += chunk
            if time.monotonic() > deadline:
                break
        return self._lines()

    def _lines(self) -> list[JSON]:
        *whole, self._buffer = self._buffer.split(b"\n")
        out = []
        for raw in whole:
            try:
                out.append(json.loads(raw))
            except ValueError:  # a stray print in the child: log, don't die
                log.warning("farm helper said: %r", raw[:200])
        return out

    def wait(self, until: Callable[[], bool], on_messages: Callable[[list[JSON]], None]) -> None:
        """Blocking, for scripts and `blender -b`: read until `until()` says done."""
        while not until():
            got = self.read(budget=0.05)
            if got:
                on_messages(got)
            else:
                time.sleep(0.02)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()  # the child ends when its stdin closes
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _close(proc)


def _close(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _read_some(stream: IO[bytes]) -> bytes | None:
    """Bytes now, b"" at the end, None when there is nothing yet."""
    try:
        data = os.read(stream.fileno(), 65536)
    except BlockingIOError:
        return None
    except OSError as ex:
        if getattr(ex, "winerror", None) == 232:  # ERROR_NO_DATA: a PIPE_NOWAIT pipe is empty
            return None
        raise
    return data


def _make_non_blocking(stream: IO[bytes]) -> None:
    """POSIX: O_NONBLOCK; Windows: PIPE_NOWAIT on the pipe handle (as bl_pkg does)."""
    if sys.platform != "win32":
        os.set_blocking(stream.fileno(), False)
        return
    import ctypes
    import msvcrt
    from ctypes import wintypes

    handle = msvcrt.get_osfhandle(stream.fileno())  # type: ignore[attr-defined,unused-ignore]
    mode = wintypes.DWORD(1)  # PIPE_NOWAIT
    set_state = ctypes.windll.kernel32.SetNamedPipeHandleState  # type: ignore[attr-defined,unused-ignore]
    if not set_state(handle, ctypes.byref(mode), None, None):
        raise OSError("could not make the farm helper's pipe non-blocking")
