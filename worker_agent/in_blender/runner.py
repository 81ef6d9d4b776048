"""The render runner: renders one task inside Blender and reports it as structured lines.

Runs inside Blender, either the binary::

    blender -b --factory-startup -Y FILE.blend --python-exit-code 1 --python runner.py -- TASK.json

or a Python that has the ``bpy`` module (the runner opens the .blend itself)::

    python runner.py --bpy TASK.json

It is run by path, so it imports only the standard library, ``bpy`` and the
modules next to it (see the top of the file). Blender's own stdout is not a
contract (it changed completely in 5.0), so every fact the agent needs is
printed as one line ``@@FARM@@ {json}`` with an ``"event"`` key (emit.py);
everything else stays plain log. Events, in order:

- ``ready``: setup done (``blender``, ``scene``, ``engine``, ``camera``, ``frames``,
  ``output``, ``file_format``, ``samples``, ``sample_offset``, ``sample_count``, ``device``)
- ``frame_start``: ``frame``
- ``progress``: ``frame``, ``sample``, ``samples`` (throttled, see progress.ProgressThrottle)
- ``frame_saved``: ``frame``, ``path`` (absolute; the file exists)
- ``error``: ``message``, and ``job_fault: true`` when the failure is the job's own
  (render_task.JobFault: every worker would meet it, so the farm does not retry
  it elsewhere); then the runner exits non-zero
- ``done``: ``frames`` (the last line of a successful run; exit code 0)

The module imports no ``bpy`` at import time, so the agent and the tests import
it without Blender.
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import threading
import traceback
import types
from collections.abc import Sequence
from typing import Any

if not __package__:  # run by path inside Blender, where worker_agent may not be importable:
    # this folder becomes worker_agent.in_blender, so the imports below find the files next to us.
    _here = types.ModuleType("worker_agent.in_blender")
    _here.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    sys.modules.setdefault(_here.__name__, _here)

from worker_agent.in_blender.emit import Emitter, format_event
from worker_agent.in_blender.fileoutputs import saved_files
from worker_agent.in_blender.inputs import (
    case_twins,
    missing_inputs,
    missing_message,
    project_root,
)
from worker_agent.in_blender.progress import ProgressThrottle, StdoutTee, parse_stats
from worker_agent.in_blender.render_task import (
    JobFault,
    RenderTask,
    TaskError,
    load_task,
    parse_args,
)
from worker_agent.in_blender.scene import blender_version, ready_fields, setup_scene

# From 5.0 render_stats handlers get the stats text; before, only stdout has it.
STATS_STRING_VERSION = (5, 0, 0)


def _bpy() -> Any:
    """The bpy module, imported late so that importing this module needs no Blender."""
    return importlib.import_module("bpy")


class Run:
    """One task being rendered: Blender state, progress reporting and the frame loop."""

    def __init__(self, task: RenderTask, emitter: Emitter):
        self.task = task
        self.emitter = emitter
        self.throttle = ProgressThrottle()
        self.frame: int | None = None  # the frame being rendered, for 5.0's frameless stats
        self._throttle_lock = threading.Lock()

    def progress_events(self, text: str) -> list[str]:
        """Event lines for a stats text (empty when it carries no new progress)."""
        found = parse_stats(text)
        frame = self.frame if found is None or found.frame is None else found.frame
        if found is None or frame is None:
            return []
        with self._throttle_lock:
            if not self.throttle.offer(frame, found.sample, found.samples):
                return []
        return [format_event("progress", frame=frame, sample=found.sample, samples=found.samples)]

    def on_render_stats(self, *args: Any) -> None:
        """render_stats handler: 5.0+ passes the stats text; earlier versions pass None."""
        if args and isinstance(args[0], str):
            for line in self.progress_events(args[0]):
                self.emitter.write(line)

    def render(self, scene: Any) -> list[int]:
        """Renders every frame; raises TaskError at the first frame without its file."""
        bpy = _bpy()
        saved = []
        for frame in self.task.frames:
            self.emitter.emit("frame_start", frame=frame)
            self.frame = frame
            # One-frame animation render, as `blender -b -f N` does: names the file
            # like an animation render (frame number even without '#'), unlike
            # write_still, which only expands '#'.
            scene.frame_start = scene.frame_end = frame
            try:
                bpy.ops.render.render(animation=True, scene=scene.name)
            except RuntimeError as ex:
                raise TaskError(f"frame {frame}: render failed: {ex}") from ex
            path = os.path.abspath(bpy.path.abspath(scene.render.frame_path(frame=frame)))
            if not os.path.isfile(path):
                raise TaskError(f"frame {frame}: Blender did not write {path}")
            self.emitter.emit("frame_saved", frame=frame, path=path)
            for made in saved_files(self.task.file_outputs, self.task.output_dir, frame):
                self.emitter.emit("frame_saved", frame=frame, path=made)
            saved.append(frame)
        self.frame = None
        return saved


def open_blend(task: RenderTask) -> None:
    """Mode --bpy: factory settings, script policy, then the task's .blend."""
    bpy = _bpy()
    if not os.path.isfile(task.blend):
        raise TaskError(f"cannot read {task.blend}: no such file")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.use_scripts_auto_execute = task.allow_scripts
    try:
        bpy.ops.wm.open_mainfile(filepath=task.blend, load_ui=False, use_scripts=task.allow_scripts)
    except RuntimeError as ex:
        raise TaskError(f"cannot open {task.blend}: {ex}") from ex


def check_loaded(task: RenderTask) -> None:
    """Binary mode: Blender loaded the file from its command line; make sure it is ours.

    A file Blender cannot read makes 3.4 quit before the script runs; this guards
    against rendering the factory startup scene if some version carries on instead.
    """
    loaded = _bpy().data.filepath
    if not loaded or not os.path.exists(task.blend) or not os.path.samefile(loaded, task.blend):
        raise TaskError(f"Blender has {loaded or 'no file'} loaded, the task wants {task.blend}")


class ProgressFeed:
    """Routes Blender's render stats to the Run being rendered, for one Blender process.

    Before 5.0 the stats text exists only on stdout, so stdout goes through a
    StdoutTee (started once per process); from 5.0 a render_stats handler gets
    it. Loading a file drops non-persistent handlers: attach() before each task.
    """

    def __init__(self) -> None:
        self.current: Run | None = None  # the Run that gets the stats now
        self._tee: StdoutTee | None = None

    def start(self) -> None:
        if blender_version() < STATS_STRING_VERSION and self._tee is None:
            self._tee = StdoutTee(self._lines)
            self._tee.start()

    def attach(self, run: Run) -> None:
        self.current = run
        handlers = _bpy().app.handlers.render_stats
        if self._on_stats not in handlers:
            handlers.append(self._on_stats)

    def _lines(self, text: str) -> list[str]:
        run = self.current
        return run.progress_events(text) if run is not None else []

    def _on_stats(self, *args: Any) -> None:
        run = self.current
        if run is not None:
            run.on_render_stats(*args)

    def stop(self) -> None:
        if self._tee is not None:
            self._tee.stop()
            self._tee = None


def check_inputs(task: RenderTask) -> None:
    """Refuses to render with files missing (TaskError naming them), unless the job
    asked to render anyway: then they are only listed in the log."""
    missing = missing_inputs()
    if not missing:
        return
    root = project_root(task.blend, task.output_dir)
    twins = case_twins(missing)
    message = missing_message(missing, root, twins=twins)
    if task.missing_files != "render":
        # A file inside the project is missing on every worker alike (they all get
        # the same files); one outside it may be on a share another worker mounts,
        # and one there under another case is found where names ignore case.
        if not twins and all(_within(m.path, root) for m in missing):
            raise JobFault(message)
        raise TaskError(message)
    print(f"[runner] rendering anyway (missing_files=render): {message}", flush=True)


def _within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == (
            os.path.abspath(folder)
        )
    except ValueError:  # another drive
        return False


def render_loaded(task: RenderTask, emitter: Emitter, feed: ProgressFeed) -> None:
    """Renders a task in the file Blender has open: ready, the frames, done."""
    check_inputs(task)
    scene = setup_scene(task)
    run = Run(task, emitter)
    feed.attach(run)
    emitter.emit("ready", **ready_fields(scene, task))
    frames = run.render(scene)
    feed.current = None
    emitter.emit("done", frames=frames)


def run_task(argv: Sequence[str], emitter: Emitter) -> int:
    """Sets up and renders; every failure becomes one error event and exit code 1."""
    feed = ProgressFeed()
    try:
        module_mode, task_path = parse_args(argv)
        task = load_task(task_path)
        if module_mode:
            open_blend(task)
        else:
            check_loaded(task)
        feed.start()
        render_loaded(task, emitter, feed)
        return 0
    except TaskError as ex:
        emitter.error(ex)
        return 1
    except Exception as ex:
        emitter.emit("error", message=f"runner failed: {ex!r}", traceback=traceback.format_exc())
        return 1
    finally:
        feed.stop()


def main(argv: Sequence[str]) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    return run_task(argv, Emitter(sys.stdout))


if __name__ == "__main__":
    code = main(sys.argv)
    # The binary quits by itself (and cleans its temp dir) once the script
    # returns; sys.exit is only needed for a failure, or in module mode.
    if code != 0 or "--" not in sys.argv:
        sys.exit(code)
