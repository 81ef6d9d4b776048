"""The encode runner: makes a job's movie from its rendered frames, inside Blender.

Runs in the warm runner (serve.py, kind ``encode``) or alone, like the render
runner::

    blender -b --factory-startup -Y FILE.blend --python-exit-code 1 --python encode.py -- TASK.json
    python encode.py --bpy TASK.json

The job's render tasks wrote every frame as a 16-bit PNG with the scene's
colour management applied (display-referred, as the movie would get it). This
script opens the job's .blend, and in the scene itself:

1. puts an image strip of those frames in the sequencer, on a channel above
   every other strip, blending by Replace (so nothing under it shows, and the
   sequencer renders no other picture);
2. sets the view transform to Standard with no look, exposure, gamma or curves
   and reads the frames as the display's colour space, so the frames pass
   through unchanged; the scene's dither is kept, as in a local movie render;
3. keeps everything else the scene has: container, codec, quality, bitrate,
   frame rate, resolution and its sound strips with their volume, so the
   audio is mixed exactly as a local render mixes it;
4. renders the animation with Blender's own encoder, to the artist's output
   name, which Blender completes with the frame range and extension.

Events: ``ready``, ``frame_start`` per frame written, ``frame_saved`` for the
movie (``frame``: the first frame), ``done`` or ``error``. The scene is left
changed: the warm runner reopens the file before its next task.
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
from collections.abc import Sequence
from typing import Any

if not __package__:  # run by path inside Blender, where worker_agent may not be importable:
    # this folder becomes worker_agent.in_blender, so the imports below find the files next to us.
    _here = types.ModuleType("worker_agent.in_blender")
    _here.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    sys.modules.setdefault(_here.__name__, _here)

from worker_agent.in_blender.emit import Emitter
from worker_agent.in_blender.render_task import MOVIE_FORMATS, RenderTask, TaskError, parse_args
from worker_agent.in_blender.runner import check_inputs, check_loaded, open_blend

STRIP_NAME = "farm frames"
FLOAT_EXTENSIONS = (".exr", ".hdr")
MAX_CHANNEL = 128  # the sequencer's channels (MAXSEQ)


@dataclasses.dataclass(frozen=True)
class EncodeTask:
    """ENCODE.json, written by the agent from an encode task's payload."""

    blend: str  # absolute path of the .blend (its scene has the movie's settings)
    output_dir: str  # where the movie is written
    frames_dir: str  # absolute folder holding the rendered frames
    inputs: tuple[str, ...]  # file names in frames_dir, one per frame from frame_start
    frame_start: int  # the movie's first frame (the job's frame range)
    frame_end: int  # its last frame
    output_name: str = ""  # the artist's file name; Blender adds range and extension
    file_format: str = "FFMPEG"  # one of MOVIE_FORMATS
    use_file_extension: bool | None = None  # None = keep the scene's
    scene: str | None = None  # scene name; None = the file's active scene
    allow_scripts: bool = False  # mode --bpy: auto-run scripts in the .blend
    missing_files: str = "fail"  # a sound the job did not bring: fail, or encode anyway
    # A preview (preview.py of the job types): WebM/VP9 at most this wide, no sound,
    # the frames' own colours; None: the job's movie, with the scene's settings.
    max_width: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> EncodeTask:
        """Validate a decoded ENCODE.json; raises TaskError saying what is wrong."""
        if not isinstance(data, dict):
            raise TaskError("encode task must be a JSON object")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TaskError(f"unknown encode task field(s): {', '.join(unknown)}")
        try:
            task = cls(**{**data, "inputs": tuple(data["inputs"])})
        except (KeyError, TypeError) as ex:
            raise TaskError(f"bad encode task: {ex!r}") from ex
        task.check()
        return task

    def check(self) -> None:
        for name in ("blend", "output_dir", "frames_dir"):
            value = getattr(self, name)
            if not isinstance(value, str) or not os.path.isabs(value):
                raise TaskError(f"encode task field {name!r} must be an absolute path")
        if self.file_format not in MOVIE_FORMATS:
            raise TaskError(f"{self.file_format!r} is not a movie format")
        if not all(isinstance(v, int) for v in (self.frame_start, self.frame_end)):
            raise TaskError("frame_start and frame_end must be whole numbers")
        if self.max_width is not None and (
            not isinstance(self.max_width, int) or self.max_width < 16
        ):
            raise TaskError("max_width must be a whole number of at least 16 pixels")
        count = self.frame_end - self.frame_start + 1
        if count < 1 or len(self.inputs) != count:
            raise TaskError(
                f"frames {self.frame_start}-{self.frame_end} need {max(count, 0)} inputs,"
                f" not {len(self.inputs)}"
            )
        for name in (self.output_name, *self.inputs):
            if not isinstance(name, str) or "/" in name or "\\" in name or name in (".", ".."):
                raise TaskError(f"{name!r} is not a plain file name")

    def render_task(self) -> RenderTask:
        """What the runner's shared steps (opening, checking inputs) need."""
        return RenderTask(
            blend=self.blend,
            frames=(self.frame_start,),
            output_dir=self.output_dir,
            output_name=self.output_name,
            scene=self.scene,
            allow_scripts=self.allow_scripts,
            missing_files=self.missing_files,
        )


def _bpy() -> Any:
    return importlib.import_module("bpy")


def _strips(editor: Any) -> Any:
    """The top-level strips: `strips` from 4.4 (the only name in 5.0), `sequences` before."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def _pick_scene(name: str | None) -> Any:
    bpy = _bpy()
    scene = bpy.context.scene if name is None else bpy.data.scenes.get(name)
    if scene is None:
        raise TaskError(f"scene {name!r} not found in the file")
    if bpy.context.window is not None:
        bpy.context.window.scene = scene
    return scene


def add_frames_strip(scene: Any, task: EncodeTask) -> Any:
    """An image strip of the rendered frames over everything the sequencer has."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = _strips(editor)
    channel = max((s.channel for s in strips), default=0) + 1
    if channel > MAX_CHANNEL:
        raise TaskError(
            f"the sequencer of scene {scene.name!r} uses its top channel ({MAX_CHANNEL});"
            " free it so the farm can place the rendered frames above the other strips"
        )
    first = os.path.join(task.frames_dir, task.inputs[0])
    strip = strips.new_image(
        name=STRIP_NAME,
        filepath=first,
        channel=channel,
        frame_start=task.frame_start,
        fit_method="FIT" if task.max_width else "ORIGINAL",  # a preview is scaled down
    )
    for name in task.inputs[1:]:
        strip.elements.append(name)
    strip.blend_type = "REPLACE"
    if not scene_referred(task):  # an EXR is read as scene linear, as Blender reads it
        _set_colorspace(strip.colorspace_settings, scene.display_settings.display_device)
    return strip


def scene_referred(task: EncodeTask) -> bool:
    """Frames that hold scene-linear light (a preview of EXR or HDR frames): the
    scene's view transform applies to them, as it did to the artist's render."""
    return task.max_width is not None and task.inputs[0].lower().endswith(FLOAT_EXTENSIONS)


def _set_colorspace(settings: Any, display: str) -> None:
    """The frames hold display values: read them as the display's colour space."""
    for name in (display, "sRGB"):
        try:
            settings.name = name
            return
        except TypeError:  # no colour space of that name in this Blender's config
            continue


def pass_through_colour(scene: Any) -> None:
    """View settings under which the sequencer writes the frames' values unchanged."""
    view = scene.view_settings
    view.view_transform = "Standard"
    view.look = "None"
    view.exposure = 0.0
    view.gamma = 1.0
    view.use_curve_mapping = False
    for flag in ("use_white_balance", "use_hdr_view"):  # 4.x and 5.0 only
        if hasattr(view, flag):
            setattr(view, flag, False)
    image = scene.render.image_settings
    if hasattr(image, "color_management"):  # 3.5+: the output may override the scene's
        image.color_management = "FOLLOW_SCENE"


def set_movie_output(scene: Any, task: EncodeTask) -> None:
    render = scene.render
    image = render.image_settings
    if image.file_format != task.file_format:  # setting it again resets the container (3.4)
        if task.max_width is None:
            print(f"[encode] the scene writes {image.file_format}; the job says {task.file_format}")
        if task.file_format == "FFMPEG" and hasattr(image, "media_type"):  # 5.0: by media type
            image.media_type = "VIDEO"
        try:
            image.file_format = task.file_format
        except TypeError as ex:
            raise TaskError(f"this Blender cannot write {task.file_format} movies: {ex}") from ex
    if task.use_file_extension is not None:
        render.use_file_extension = task.use_file_extension
    if task.file_format == "FFMPEG" and render.ffmpeg.use_autosplit:
        print("[encode] autosplit is off: the farm delivers the movie as one file", flush=True)
        render.ffmpeg.use_autosplit = False
    os.makedirs(task.output_dir, exist_ok=True)
    path = os.path.join(task.output_dir, task.output_name)
    if _bpy().app.version >= (4, 5, 0):  # "{...}" is a path template there: keep it literal
        path = path.replace("{", "{{").replace("}", "}}")
    render.filepath = path
    render.use_stamp = False  # the frames carry the scene's stamp already
    render.use_sequencer = True
    scene.frame_start, scene.frame_end, scene.frame_step = task.frame_start, task.frame_end, 1


def prepare_scene(task: EncodeTask) -> Any:
    scene = _pick_scene(task.scene)
    missing = [n for n in task.inputs if not os.path.isfile(os.path.join(task.frames_dir, n))]
    if missing:
        raise TaskError(f"{len(missing)} rendered frame(s) are not here, e.g. {missing[0]}")
    set_movie_output(scene, task)
    if task.max_width is not None:
        set_preview(scene, task.max_width)
    if not scene_referred(task):
        pass_through_colour(scene)
    add_frames_strip(scene, task)
    return scene


def set_preview(scene: Any, max_width: int) -> None:
    """A small WebM/VP9 any browser plays, without sound, at the scene's frame rate."""
    render = scene.render
    ffmpeg = render.ffmpeg
    ffmpeg.format = "WEBM"
    ffmpeg.codec = "WEBM"  # VP9
    ffmpeg.constant_rate_factor = "MEDIUM"
    ffmpeg.ffmpeg_preset = "REALTIME"
    ffmpeg.audio_codec = "NONE"
    render.image_settings.color_mode = "RGB"
    scale = render.resolution_percentage / 100
    width, height = render.resolution_x * scale, render.resolution_y * scale
    shrink = min(1.0, max_width / max(width, 1))
    render.resolution_x = max(16, int(width * shrink) // 2 * 2)  # VP9 wants even sizes
    render.resolution_y = max(16, int(height * shrink) // 2 * 2)
    render.resolution_percentage = 100
    render.use_border = False


def encode_loaded(task: EncodeTask, emitter: Emitter) -> str:
    """Makes the movie in the file Blender has open; returns its path."""
    bpy = _bpy()
    check_inputs(task.render_task())  # the scene's sounds, as a render checks its files
    scene = prepare_scene(task)
    render = scene.render
    emitter.emit(
        "ready",
        blender=".".join(str(v) for v in bpy.app.version),
        scene=scene.name,
        engine="SEQUENCER",
        camera=None,
        frames=list(range(task.frame_start, task.frame_end + 1)),
        output=render.filepath,
        file_format=render.image_settings.file_format,
    )

    def written(*_args: Any) -> None:
        emitter.emit("frame_start", frame=bpy.context.scene.frame_current)

    bpy.app.handlers.render_write.append(written)
    try:
        bpy.ops.render.render(animation=True, scene=scene.name)
    except RuntimeError as ex:
        raise TaskError(f"the movie could not be encoded: {ex}") from ex
    finally:
        bpy.app.handlers.render_write.remove(written)
    path = os.path.abspath(bpy.path.abspath(render.frame_path(frame=task.frame_start)))
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise TaskError(f"Blender did not write the movie {path}; see its messages above")
    emitter.emit("frame_saved", frame=task.frame_start, path=path)
    emitter.emit("done", frames=[task.frame_start])
    return path


def load_encode_task(path: str) -> EncodeTask:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as ex:
        raise TaskError(f"cannot read encode task file {path}: {ex}") from ex
    return EncodeTask.from_json(data)


def run_encode(argv: Sequence[str], emitter: Emitter) -> int:
    """Opens, encodes; every failure becomes one error event and exit code 1."""
    try:
        module_mode, path = parse_args(argv)
        task = load_encode_task(path)
        if module_mode:
            open_blend(task.render_task())
        else:
            check_loaded(task.render_task())
        encode_loaded(task, emitter)
        return 0
    except TaskError as ex:
        emitter.emit("error", message=str(ex))
        return 1
    except Exception as ex:
        emitter.emit("error", message=f"encode failed: {ex!r}", traceback=traceback.format_exc())
        return 1


def main(argv: Sequence[str]) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    return run_encode(argv, Emitter(sys.stdout))


if __name__ == "__main__":
    code = main(sys.argv)
    if code != 0 or "--" not in sys.argv:
        sys.exit(code)
