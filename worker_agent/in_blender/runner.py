"""The render runner: renders one task inside Blender and reports it as structured lines.

Runs inside Blender, either the binary::

    blender -b --factory-startup -Y FILE.blend --python-exit-code 1 --python runner.py -- TASK.json

or a Python that has the ``bpy`` module (the runner opens the .blend itself)::

    python runner.py --bpy TASK.json

It is run by path, so it uses only the standard library and ``bpy``: no project
imports. Blender's own stdout is not a contract (it changed completely in 5.0),
so every fact the agent needs is printed as one line ``@@FARM@@ {json}`` with an
``"event"`` key; everything else stays plain log. Events, in order:

- ``ready``: setup done (``blender``, ``scene``, ``engine``, ``camera``, ``frames``,
  ``output``, ``file_format``, ``samples``, ``sample_offset``, ``sample_count``, ``device``)
- ``frame_start``: ``frame``
- ``progress``: ``frame``, ``sample``, ``samples`` (throttled, see ProgressThrottle)
- ``frame_saved``: ``frame``, ``path`` (absolute; the file exists)
- ``error``: ``message`` (then the runner exits non-zero)
- ``done``: ``frames`` (the last line of a successful run; exit code 0)

The module imports no ``bpy`` at import time, so the agent and the tests import
its pure parts (the task schema, the stats parser, the throttle) without Blender.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TextIO

# Must equal coordinator.core.protocol.RUNNER_EVENT_PREFIX (a test checks); copied
# because this file may not import the project.
PREFIX = "@@FARM@@ "

# Cycles device ids a task may ask for; "CPU" needs no preferences.
DEVICES = ("CPU", "CUDA", "OPTIX", "HIP", "METAL", "ONEAPI")

# Blender's movie formats: one file per job, so they cannot be rendered in chunks.
MOVIE_FORMATS = ("FFMPEG", "AVI_JPEG", "AVI_RAW")

# Blender 4.4 replaced "samples = chunk length" by an explicit sample subset.
SAMPLE_SUBSET_VERSION = (4, 4, 0)

# From 5.0 render_stats handlers get the stats text; before, only stdout has it.
STATS_STRING_VERSION = (5, 0, 0)


class TaskError(Exception):
    """The task cannot be rendered as asked; the message is for the artist."""


@dataclasses.dataclass(frozen=True)
class RenderTask:
    """The TASK.json the agent writes and the runner reads (schema in one place)."""

    blend: str  # absolute path of the .blend (mode --bpy opens it; the binary checks it)
    frames: tuple[int, ...]  # frames to render, in this order
    output_dir: str  # absolute directory on the worker for the outputs
    output_name: str = ""  # basename pattern ("frame_####", ""); Blender's naming rules
    scene: str | None = None  # scene name; None = the file's active scene
    camera: str | None = None  # camera object name; None = the scene's camera
    file_format: str | None = None  # image format id ("PNG", "OPEN_EXR_MULTILAYER"); None = keep
    use_file_extension: bool | None = None  # None = keep the scene's setting
    device: str | None = None  # one of DEVICES; None = keep the file's Cycles device
    threads: int | None = None  # render threads; None = Blender's automatic count
    samples: int | None = None  # total samples of the frame; None = keep the scene's
    sample_offset: int | None = None  # first sample of a sample range (progressive tasks)
    sample_count: int | None = None  # length of the sample range; None = no range
    seed: int | None = None  # Cycles seed; None = keep
    disable_denoise: bool = False  # turn Cycles denoising off
    disable_compositor: bool = False  # write the raw render, skip the compositor
    # With disable_denoise on a scene that denoises: store its denoising data passes
    # (albedo, normal), so that a later merge can denoise the summed samples.
    keep_denoising_data: bool = False
    region: tuple[float, float, float, float] | None = None  # border min_x, min_y, max_x, max_y
    crop_to_region: bool = False  # crop the image to the region
    allow_scripts: bool = False  # mode --bpy: auto-run scripts in the .blend (binary: -y/-Y)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["frames"] = list(self.frames)
        data["region"] = list(self.region) if self.region is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RenderTask:
        """Validate a decoded TASK.json; raises TaskError saying which field is wrong."""
        if not isinstance(data, dict):
            raise TaskError("task must be a JSON object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise TaskError(f"unknown task field(s): {', '.join(unknown)}")
        for name in ("blend", "frames", "output_dir"):
            if name not in data:
                raise TaskError(f"task field {name!r} is required")
        values = {name: _check_field(name, value) for name, value in data.items()}
        task = cls(**values)
        task._check_consistency()
        return task

    def _check_consistency(self) -> None:
        if not self.frames:
            raise TaskError("task has no frames")
        for name in ("blend", "output_dir"):
            if not os.path.isabs(getattr(self, name)):
                raise TaskError(f"task field {name!r} must be an absolute path")
        if self.device is not None and self.device not in DEVICES:
            raise TaskError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.file_format in MOVIE_FORMATS:
            raise TaskError(f"movie format {self.file_format} cannot be rendered in chunks")
        if (self.sample_offset is None) != (self.sample_count is None):
            raise TaskError("sample_offset and sample_count go together")
        end = (self.sample_offset or 0) + (self.sample_count or 0)
        if self.sample_count is not None and self.samples is not None and end > self.samples:
            raise TaskError("sample range ends past the total samples")
        if self.region is not None:
            x0, y0, x1, y1 = self.region
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise TaskError(f"region {list(self.region)} is not inside 0..1")


# field name -> (accepted types, may be None, minimum for ints)
_FIELD_TYPES: dict[str, tuple[type | tuple[type, ...], bool, int | None]] = {
    "blend": (str, False, None),
    "output_dir": (str, False, None),
    "output_name": (str, False, None),
    "scene": (str, True, None),
    "camera": (str, True, None),
    "file_format": (str, True, None),
    "use_file_extension": (bool, True, None),
    "device": (str, True, None),
    "threads": (int, True, 1),
    "samples": (int, True, 1),
    "sample_offset": (int, True, 0),
    "sample_count": (int, True, 1),
    "seed": (int, True, 0),
    "disable_denoise": (bool, False, None),
    "disable_compositor": (bool, False, None),
    "keep_denoising_data": (bool, False, None),
    "crop_to_region": (bool, False, None),
    "allow_scripts": (bool, False, None),
}


def _check_field(name: str, value: Any) -> Any:
    if name == "frames":
        if not isinstance(value, list) or not all(_is_int(v) for v in value):
            raise TaskError("task field 'frames' must be a list of integers")
        return tuple(value)
    if name == "region":
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 4 or not all(_is_number(v) for v in value):
            raise TaskError("task field 'region' must be [min_x, min_y, max_x, max_y] or null")
        return tuple(float(v) for v in value)
    types, nullable, minimum = _FIELD_TYPES[name]
    if value is None and nullable:
        return None
    ok = _is_int(value) if types is int else isinstance(value, types)
    if not ok:
        raise TaskError(f"task field {name!r} has the wrong type: {value!r}")
    if minimum is not None and value < minimum:
        raise TaskError(f"task field {name!r} must be at least {minimum}, not {value}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------- stats parsing (pure)

# "Fra:2 Mem:9.96M (Peak 10.16M) | Time:00:00.06 | Remaining:00:00.00 | Mem:0.80M, Peak:0.80M
#  | Scene, ViewLayer | Sample 1/4": the line 2.80-4.5 print to stdout for each stats
# update in background renders (verified on 3.4.1). 5.0 no longer prints it by default.
_FRAME_RE = re.compile(r"^Fra:(-?\d+) ")

_SAMPLE_RES = (
    # Cycles: "| Sample 1/4" at the end of the 2.80-4.5 stdout line above, and the
    # whole stats text 5.0 passes to render_stats: "Remaining: 00:00.00 | Mem: 2M |
    # Sample 1/4" (verified on 3.4.1 and 5.0.1). 2.9x also wrote "Path Tracing Sample 5/16".
    re.compile(r"\bSample (\d+)/(\d+)"),
    # EEVEE Legacy 2.80-4.1: "Fra:1 Mem:10.77M (Peak 11.85M) | Time:00:10.22 | Rendering
    # 51 / 64 samples" (verified on 3.4.1; EEVEE Next, 4.2+, not checked).
    re.compile(r"\bRendering (\d+) / (\d+) samples"),
)


@dataclasses.dataclass(frozen=True)
class StatsProgress:
    """Sample progress read from one stats text."""

    frame: int | None  # the frame the text names (only the 2.80-4.5 stdout line does)
    sample: int  # samples done
    samples: int  # samples this render takes


def parse_stats(text: str) -> StatsProgress | None:
    """Sample progress in a render stats text, None when the text has none."""
    for pattern in _SAMPLE_RES:
        matches = pattern.findall(text)
        if matches:
            sample, samples = matches[-1]  # the sample part comes last
            frame = _FRAME_RE.match(text)
            return StatsProgress(
                frame=int(frame.group(1)) if frame else None,
                sample=int(sample),
                samples=int(samples),
            )
    return None


class ProgressThrottle:
    """Decides which progress updates become events.

    Blender reports stats dozens of times per frame; the agent needs a few per
    second. An update passes when its sample differs from the last one sent for
    this frame and either min_interval has passed since that one or it is the
    last sample (so the agent always sees a frame reach 100 %).
    """

    def __init__(self, *, min_interval: float = 0.25, clock: Callable[[], float] = time.monotonic):
        self._min_interval = min_interval  # seconds between two events of one frame
        self._clock = clock
        self._frame: int | None = None  # frame of the last event sent
        self._sample: int | None = None  # sample of the last event sent
        self._sent_at = 0.0  # clock() when it was sent

    def offer(self, frame: int, sample: int, samples: int) -> bool:
        now = self._clock()
        new_frame = frame != self._frame
        too_soon = sample != samples and now - self._sent_at < self._min_interval
        if not new_frame and (sample == self._sample or too_soon):
            return False
        self._frame, self._sample, self._sent_at = frame, sample, now
        return True


# ---------------------------------------------------------------- output


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

    def write(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class StdoutTee:
    """Routes file descriptor 1 through a pipe so the runner sees Blender's own lines.

    Before 5.0, render_stats handlers are called without the stats text; the
    sample count exists only in the line Blender prints to stdout (and the
    handler runs before that line's newline). A thread copies every line to the
    real stdout unchanged and writes the lines on_line returns right after it,
    so progress events land next to the stats line they come from.
    """

    def __init__(self, on_line: Callable[[str], Sequence[str]]):
        self._on_line = on_line  # gets each line, returns extra lines to print after it
        self._real_fd = -1  # duplicate of the original stdout
        self._read_fd = -1  # read end of the pipe now behind fd 1
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sys.stdout.flush()
        self._real_fd = os.dup(1)
        self._read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, name="runner-stdout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Puts the real stdout back after forwarding everything written so far."""
        if self._thread is None:
            return
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(self._real_fd, 1)  # closes the pipe's last write end: the pump sees EOF
        self._thread.join(timeout=10)
        self._thread = None
        os.close(self._read_fd)
        os.close(self._real_fd)

    def _pump(self) -> None:
        pending = b""
        while chunk := os.read(self._read_fd, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                self._forward(raw + b"\n")
                try:
                    extra = self._on_line(raw.decode("utf-8", "replace"))
                except Exception:  # a parser bug must not stall Blender's output
                    extra = [f"runner: stats parser failed: {traceback.format_exc()}"]
                for line in extra:
                    self._forward(line.encode("utf-8") + b"\n")
        if pending:
            self._forward(pending)

    def _forward(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self._real_fd, data) :]
        except OSError:
            pass  # nobody reads our stdout any more; keep draining Blender's


def _flush_c_stdio() -> None:
    """Blender prints through C stdio, which buffers when stdout is a pipe."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (ImportError, OSError, AttributeError):
        pass


# ---------------------------------------------------------------- inside Blender


def _bpy() -> Any:
    """The bpy module, imported late so the pure parts above work without Blender."""
    return importlib.import_module("bpy")


def blender_version() -> tuple[int, int, int]:
    major, minor, patch = _bpy().app.version
    return int(major), int(minor), int(patch)


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


def setup_scene(task: RenderTask) -> Any:
    """Applies the task to the scene Blender will render and returns that scene."""
    scene = _pick_scene(task.scene)
    _pick_camera(scene, task.camera)
    _set_output(scene, task)
    if scene.render.engine == "CYCLES":
        _set_cycles(scene, task)
    elif task.samples is not None or task.sample_count is not None:
        raise TaskError(
            f"scene {scene.name!r} renders with {scene.render.engine}, and only Cycles can"
            " render a frame in sample chunks; render it in frame chunks (blender-render)"
        )
    _set_region(scene, task)
    if task.threads is not None:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = task.threads
    if task.disable_compositor:
        scene.render.use_compositing = False
    if not task.allow_scripts:
        for name in mute_file_outputs():
            print(
                f"[runner] muted the compositor's File Output node {name!r}: it would write"
                " files on this worker, outside the task (start the worker with"
                " --allow-scripts to trust .blend files with that)",
                flush=True,
            )
    return scene


def mute_file_outputs() -> list[str]:
    """Mute every compositor File Output node; returns the names of those muted.

    They write wherever the .blend says (an absolute path, or "../" out of
    the task's folder): from a file someone else made, anywhere this user may
    write. Their files would not reach the artist anyway.
    """
    bpy = _bpy()
    trees = [g for g in bpy.data.node_groups if g.bl_idname == "CompositorNodeTree"]
    trees += [s.node_tree for s in bpy.data.scenes if getattr(s, "node_tree", None)]  # < 5.0
    muted = []
    for tree in trees:
        for node in tree.nodes:
            if node.type == "OUTPUT_FILE" and not node.mute:
                try:  # linked from a library: editable in memory in 5.0, say so if not
                    node.mute = True
                except (AttributeError, RuntimeError, TypeError) as ex:
                    raise TaskError(
                        f"cannot mute the File Output node {node.name!r} of {tree.name!r}"
                        f" ({ex}); make it local or start the worker with --allow-scripts"
                    ) from ex
                muted.append(node.name)
    return muted


def _pick_scene(name: str | None) -> Any:
    bpy = _bpy()
    if name is None:
        return bpy.context.scene
    scene = bpy.data.scenes.get(name)
    if scene is None:
        known = ", ".join(repr(s.name) for s in bpy.data.scenes)
        raise TaskError(f"scene {name!r} not found in the file (it has {known})")
    if bpy.context.window is not None:
        bpy.context.window.scene = scene
    return scene


def _pick_camera(scene: Any, name: str | None) -> None:
    if name is not None:
        camera = scene.objects.get(name)
        if camera is None or camera.type != "CAMERA":
            raise TaskError(f"camera {name!r} not found in scene {scene.name!r}")
        scene.camera = camera
    if scene.camera is None:
        raise TaskError(f"scene {scene.name!r} has no camera")


def _set_output(scene: Any, task: RenderTask) -> None:
    render = scene.render
    if task.file_format is not None:
        _set_file_format(render.image_settings, task.file_format)
    if render.is_movie_format:
        fmt = render.image_settings.file_format
        raise TaskError(f"the scene writes a movie ({fmt}); movies cannot be rendered in chunks")
    if render.use_multiview and render.image_settings.views_format == "INDIVIDUAL":
        raise TaskError("stereo/multiview output as individual files is not supported")
    if task.use_file_extension is not None:
        render.use_file_extension = task.use_file_extension
    try:
        os.makedirs(task.output_dir, exist_ok=True)
    except OSError as ex:
        raise TaskError(f"cannot create the output folder: {ex}") from ex
    path = os.path.join(task.output_dir, task.output_name)
    if _bpy().app.version >= (4, 5, 0):  # "{...}" is a path template there: keep it literal
        path = path.replace("{", "{{").replace("}", "}}")
    render.filepath = path
    render.use_overwrite = True  # a retried task must replace a partial file
    render.use_placeholder = False


def _set_file_format(image_settings: Any, file_format: str) -> None:
    # 5.0 split the format list by media_type: multilayer EXR is its own media
    # type, and file_format only accepts the formats of the current one.
    if hasattr(image_settings, "media_type"):
        multilayer = file_format == "OPEN_EXR_MULTILAYER"
        image_settings.media_type = "MULTI_LAYER_IMAGE" if multilayer else "IMAGE"
    try:
        image_settings.file_format = file_format
    except TypeError as ex:
        raise TaskError(f"this Blender cannot write file format {file_format!r}: {ex}") from ex


def _single_part_exr(scene: Any) -> None:
    """A sample range is rendered to be merged, and Cycles' merge reads only the
    first part of an EXR: 5.0 writes each pass to a part of its own unless asked
    for the interleaved (single-part) layout that 2.8-4.x always write."""
    settings = scene.render.image_settings
    if settings.file_format == "OPEN_EXR_MULTILAYER" and hasattr(settings, "use_exr_interleave"):
        settings.use_exr_interleave = True


def _set_cycles(scene: Any, task: RenderTask) -> None:
    cycles = scene.cycles
    if task.disable_denoise:
        if task.keep_denoising_data and cycles.use_denoising:
            # Albedo and normal guide a later denoise of the merged frame.
            for layer in scene.view_layers:
                layer.cycles.denoising_store_passes = True
        cycles.use_denoising = False
    if task.seed is not None:
        cycles.seed = task.seed
    if task.samples is not None:
        cycles.samples = task.samples
    if task.sample_count is not None:
        _set_sample_range(cycles, task.sample_offset or 0, task.sample_count)
        _single_part_exr(scene)
    if task.device is not None:
        _set_device(scene, task.device)


def _set_sample_range(cycles: Any, offset: int, count: int) -> None:
    # Adaptive sampling stops each range at a different noise level: ranges
    # would no longer add up to one render.
    cycles.use_adaptive_sampling = False
    if blender_version() >= SAMPLE_SUBSET_VERSION:
        # 4.4+: samples stays the total; the subset picks the range.
        cycles.use_sample_subset = True
        cycles.sample_offset = offset
        cycles.sample_subset_length = count
    elif hasattr(cycles, "sample_offset"):
        # 3.1-4.3: render `samples` samples starting at sample_offset.
        cycles.sample_offset = offset
        cycles.samples = count
    else:
        version = ".".join(map(str, blender_version()))
        raise TaskError(
            f"rendering a frame in sample chunks needs Blender 3.1 or newer (sample_offset);"
            f" this worker has {version}"
        )


def _set_device(scene: Any, device: str) -> None:
    if device == "CPU":
        scene.cycles.device = "CPU"
        return
    prefs = _bpy().context.preferences.addons["cycles"].preferences
    try:
        prefs.compute_device_type = device
    except TypeError as ex:
        raise TaskError(f"this Blender's Cycles does not support {device}") from ex
    prefs.refresh_devices()
    found = [d for d in prefs.devices if d.type == device]
    if not found:
        seen = ", ".join(f"{d.name} ({d.type})" for d in prefs.devices) or "none"
        raise TaskError(f"no {device} device on this machine; Cycles sees: {seen}")
    for d in prefs.devices:
        d.use = d.type == device
    scene.cycles.device = "GPU"


def _set_region(scene: Any, task: RenderTask) -> None:
    if task.region is None:
        return
    render = scene.render
    render.use_border = True
    render.use_crop_to_border = task.crop_to_region
    x0, y0, x1, y1 = task.region
    render.border_min_x, render.border_min_y = x0, y0
    render.border_max_x, render.border_max_y = x1, y1


def ready_fields(scene: Any, task: RenderTask) -> dict[str, Any]:
    bpy = _bpy()
    cycles = scene.cycles if scene.render.engine == "CYCLES" else None
    return {
        "blender": ".".join(str(v) for v in bpy.app.version),
        "scene": scene.name,
        "engine": scene.render.engine,
        "camera": scene.camera.name,
        "frames": list(task.frames),
        "output": scene.render.filepath,
        "file_format": scene.render.image_settings.file_format,
        "samples": _total_samples(cycles, task),
        "sample_offset": task.sample_offset,
        "sample_count": task.sample_count,
        "device": cycles.device if cycles is not None else None,
    }


def _total_samples(cycles: Any, task: RenderTask) -> int | None:
    """Samples of the whole frame (a sample range renders part of them)."""
    if cycles is None:
        return None
    if task.sample_count is None or blender_version() >= SAMPLE_SUBSET_VERSION:
        return int(cycles.samples)
    return task.samples  # 3.1-4.3 hold the range length in cycles.samples


# ---------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str]) -> tuple[bool, str]:
    """(module mode, task path) from sys.argv of either invocation."""
    if "--" in argv:  # binary: blender ... --python runner.py -- TASK.json
        rest = list(argv[argv.index("--") + 1 :])
        module_mode = False
    else:  # module: python runner.py --bpy TASK.json
        rest = list(argv[1:])
        module_mode = bool(rest) and rest[0] == "--bpy"
        rest = rest[1:] if module_mode else rest
        if not module_mode:
            raise TaskError("usage: python runner.py --bpy TASK.json, or blender ... -- TASK.json")
    if len(rest) != 1:
        raise TaskError(f"expected one TASK.json path, got {rest!r}")
    return module_mode, rest[0]


def load_task(path: str) -> RenderTask:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as ex:
        raise TaskError(f"cannot read task file {path}: {ex}") from ex
    return RenderTask.from_json(data)


def run_task(argv: Sequence[str], emitter: Emitter) -> int:
    """Sets up and renders; every failure becomes one error event and exit code 1."""
    tee: StdoutTee | None = None
    try:
        module_mode, task_path = parse_args(argv)
        task = load_task(task_path)
        if module_mode:
            open_blend(task)
        else:
            check_loaded(task)
        scene = setup_scene(task)
        run = Run(task, emitter)
        if blender_version() < STATS_STRING_VERSION:
            tee = StdoutTee(run.progress_events)
            tee.start()
        _bpy().app.handlers.render_stats.append(run.on_render_stats)
        emitter.emit("ready", **ready_fields(scene, task))
        frames = run.render(scene)
        emitter.emit("done", frames=frames)
        return 0
    except TaskError as ex:
        emitter.emit("error", message=str(ex))
        return 1
    except Exception as ex:
        emitter.emit("error", message=f"runner failed: {ex!r}", traceback=traceback.format_exc())
        return 1
    finally:
        if tee is not None:
            tee.stop()


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
