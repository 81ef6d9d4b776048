"""The warm runner: one Blender process renders a job's tasks one after another.

Runs inside Blender like the runner, but takes its tasks on stdin::

    blender -b --factory-startup -Y FILE.blend --python-exit-code 1 --python serve.py -- --serve
    python serve.py --bpy --serve

The binary may also start without a file (a standby Blender, booted before
its task is known): it then opens the first task's file with that task's
script policy, as a Python with bpy always does.

Each task is one line of JSON on stdin, ``{"kind": "render" | "merge" | "encode", "task":
"/abs/TASK.json"}``. The answer is the runner's ``@@FARM@@`` event lines: first
``accepted`` (``task``: the path; it proves the process still listens), then the
task's own events, ending with ``done`` or ``error``. After an error the process
exits non-zero: a task that failed half-way may have left the scene in any
state, so the agent starts a fresh one. End of input ends it with code 0.

Between tasks the scene keeps the file's state except what the task settings
change, and every task sets those again (setup_scene). When a task's settings
differ from the last task's in anything but its frames, sample range and output
folder (a merge after render chunks, say), the file is opened again first, so
each task starts from what a fresh Blender would see.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import os
import sys
import traceback
import types
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

if not __package__:  # run by path inside Blender, where worker_agent may not be importable:
    # this folder becomes worker_agent.in_blender, so the imports below find the files next to us.
    _here = types.ModuleType("worker_agent.in_blender")
    _here.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    sys.modules.setdefault(_here.__name__, _here)

from worker_agent.in_blender.emit import Emitter
from worker_agent.in_blender.encode import encode_loaded, load_encode_task
from worker_agent.in_blender.merge import Compositing, MergeError, MergeTask, merge_loaded
from worker_agent.in_blender.render_task import RenderTask, TaskError, load_task
from worker_agent.in_blender.runner import ProgressFeed, check_loaded, open_blend, render_loaded

# Fields that differ between the tasks of one job without changing the scene setup.
PER_TASK_FIELDS = frozenset({"frames", "output_dir", "sample_offset", "sample_count", "merges"})


def _bpy() -> Any:
    return importlib.import_module("bpy")


def setup_key(kind: str, task: RenderTask | MergeTask) -> str:
    """What must match the last task for the scene to be reused without reopening."""
    fields = {k: v for k, v in dataclasses.asdict(task).items() if k not in PER_TASK_FIELDS}
    return json.dumps([kind, fields], sort_keys=True, default=str)


class Session:
    """The state one warm Blender keeps between tasks."""

    def __init__(self, *, module_mode: bool, emitter: Emitter) -> None:
        self.module_mode = module_mode  # a Python with bpy: the file is opened here
        self.emitter = emitter
        self.feed = ProgressFeed()
        self.opened = False  # the task's file is open (the binary opens it from argv)
        self.last_key: str | None = None  # setup_key of the task before
        self.compositing: Compositing | None = None  # the last merge's, while the key holds

    def handle(self, request: dict[str, Any]) -> None:
        """One task; raises TaskError or MergeError for the error event."""
        kind, path = request.get("kind"), request.get("task")
        if not isinstance(path, str) or kind not in ("render", "merge", "encode"):
            raise TaskError(
                f"bad request {request!r}: want kind render/merge/encode and a task path"
            )
        self.emitter.emit("accepted", task=path)
        if kind == "encode":  # changes the scene: the next task reopens the file
            encode = load_encode_task(path)
            self._prepare(setup_key(kind, encode.render_task()), encode.render_task())
            self.last_key = None
            encode_loaded(encode, self.emitter)
        elif kind == "render":
            task = load_task(path)
            self._prepare(setup_key(kind, task), task)
            render_loaded(task, self.emitter, self.feed)
        else:
            merge = _load_merge(path)
            if self._prepare(setup_key(kind, merge), merge.render_task()):
                self.compositing = None
            self.compositing = merge_loaded(merge, self.emitter, self.compositing)

    def _prepare(self, key: str, task: RenderTask) -> bool:
        """Make the scene what a fresh Blender would have; True when (re)opened."""
        fresh = False
        if not self.opened:
            if self.module_mode:
                open_blend(task)
            elif _bpy().data.filepath:
                check_loaded(task)  # opened from the command line
            else:  # a standby Blender, started without a file
                _reopen(task)
            self.feed.start()
            self.opened = fresh = True
        elif key != self.last_key or not _is_open(task.blend):
            print(f"[runner] other settings than the last task: reopening {task.blend}", flush=True)
            _reopen(task)
            fresh = True
        self.last_key = key
        return fresh

    def close(self) -> None:
        self.feed.stop()


def _is_open(blend: str) -> bool:
    loaded = _bpy().data.filepath
    return bool(loaded) and os.path.exists(blend) and os.path.samefile(loaded, blend)


def _reopen(task: RenderTask) -> None:
    """Read the file again, with the same script policy as the first time."""
    try:
        _bpy().ops.wm.open_mainfile(
            filepath=task.blend, load_ui=False, use_scripts=task.allow_scripts
        )
    except RuntimeError as ex:
        raise TaskError(f"cannot open {task.blend}: {ex}") from ex


def _load_merge(path: str) -> MergeTask:
    try:
        with open(path, encoding="utf-8") as f:
            return MergeTask.from_json(json.load(f))
    except (OSError, ValueError) as ex:
        raise MergeError(f"cannot read merge task file {path}: {ex}") from ex


def serve(lines: Iterable[str], session: Session) -> int:
    """Runs each requested task; the exit code once input ends or a task fails."""
    emitter = session.emitter
    try:
        for line in lines:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
                session.handle(request)
            except ValueError as ex:  # TaskError and MergeError are not ValueErrors
                emitter.emit("error", message=f"bad request line {line.strip()!r}: {ex}")
                return 1
            except (TaskError, MergeError) as ex:
                emitter.error(ex)
                return 1
            except Exception as ex:
                emitter.emit(
                    "error", message=f"runner failed: {ex!r}", traceback=traceback.format_exc()
                )
                return 1
        return 0
    finally:
        session.close()


def parse_serve_args(argv: Sequence[str]) -> bool:
    """Module mode (a Python with bpy) or the binary, from either command line."""
    if "--" in argv and list(argv[argv.index("--") + 1 :]) == ["--serve"]:
        return False
    if list(argv[1:]) == ["--bpy", "--serve"]:
        return True
    raise TaskError("usage: python serve.py --bpy --serve, or blender ... serve.py -- --serve")


def main(argv: Sequence[str], stdin: TextIO) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    emitter = Emitter(sys.stdout)
    try:
        module_mode = parse_serve_args(argv)
    except TaskError as ex:
        emitter.emit("error", message=str(ex))
        return 1
    _bpy()  # a standby Blender (a Python with bpy, above all) pays the import before its task
    return serve(iter(stdin.readline, ""), Session(module_mode=module_mode, emitter=emitter))


if __name__ == "__main__":
    code = main(sys.argv, sys.stdin)
    # The binary quits by itself once the script returns; sys.exit only for a failure.
    if code != 0 or "--" not in sys.argv:
        sys.exit(code)
