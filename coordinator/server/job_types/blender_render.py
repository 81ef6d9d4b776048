"""`blender-render`: an animation split into chunks of consecutive frames."""

from __future__ import annotations

import ntpath
import posixpath

from coordinator.core.fileoutputs import reserved_name_problem
from coordinator.core.frames import chunk_frames, format_frames, parse_frames
from coordinator.core.names import UnsafeNameError, check_name_pattern
from coordinator.core.outputs import is_movie_format
from coordinator.core.protocol import TaskSpec
from coordinator.server.errors import BadRequest
from coordinator.server.filestore import check_output_name
from coordinator.server.job_types import fileoutputs, movie, preview
from coordinator.server.job_types.schema import JSON, Setting, check_task_count

NAME = "blender-render"
LABEL = "Render frames"
DESCRIPTION = (
    "Renders an animation: frames are split into chunks and each chunk is rendered"
    " by one worker. Frames land in the output folder named as a local render names them."
)
NEEDS_BLEND = True

# Blender's still-image format ids (scene.render.image_settings.file_format).
IMAGE_FORMATS = (
    "PNG",
    "JPEG",
    "OPEN_EXR",
    "OPEN_EXR_MULTILAYER",
    "TIFF",
    "BMP",
    "TARGA",
    "TARGA_RAW",
    "JPEG2000",
    "CINEON",
    "DPX",
    "HDR",
    "WEBP",
    "IRIS",
)
# Blender's movie formats: frames render in chunks, then one task encodes the movie
# (movie.py). AVI_JPEG and AVI_RAW exist up to Blender 4.1.
MOVIE_FORMATS = ("FFMPEG", "AVI_JPEG", "AVI_RAW")


def _check_frames(text: str) -> str:
    parse_frames(text)  # raises FrameError (a ValueError) saying which part is wrong
    return text.strip()


def _check_output(path: str) -> str:
    """The artist's render.filepath made absolute on the submitting machine."""
    if path.startswith("//"):
        # posixpath.isabs() says yes, but Blender reads "//" as "next to the
        # .blend", which only the submitting machine can resolve; taken as is,
        # frames would be delivered under the coordinator's root folder.
        raise ValueError(
            f"{path!r} is relative to the .blend file; resolve it to an absolute path"
            " on the submitting machine (bpy.path.abspath) before submitting"
        )
    if not (posixpath.isabs(path) or ntpath.isabs(path)):
        raise ValueError(
            f"{path!r} is not an absolute path; give the folder and name the frames should"
            " land in, e.g. /home/me/shot/frame_####"
        )
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("..", "."):
        raise ValueError(f"{path!r} does not name a file; end it with a name like frame_####")
    if name.startswith("."):  # the farm would refuse every frame after rendering it
        raise ValueError(
            f"frames named {name!r} would be hidden files, which the farm does not deliver;"
            " give them a name that does not start with '.'"
        )
    # Workers join this name to their own folder: "C:f_####" would be relative
    # to drive C's current folder on a Windows worker, anywhere on its disk.
    try:
        check_name_pattern(name, what=f"the file name of output {path!r}")
        if name:  # "" names the folder: frames are then 0001.png ...
            check_output_name(name if "#" in name else name + "####")
    except (UnsafeNameError, BadRequest) as ex:
        raise ValueError(f"{ex}; give a plain name like frame_####") from ex
    problem = reserved_name_problem(name)  # File Output files' farm names (fileoutputs.py)
    if problem is not None:
        raise ValueError(f"{path!r}: {problem}")
    return path


def output_settings(*, format_help: str, overwrite_help: str) -> tuple[Setting, ...]:
    """Where and how finished frames are written: shared by the job types that render."""
    return (
        Setting(
            "output",
            "str",
            "Output",
            "Absolute output path with # for the frame number, the scene's render.filepath",
            required=True,
            check=_check_output,
        ),
        Setting(
            "file_format",
            "choice",
            "File format",
            format_help,
            default=None,
            choices=IMAGE_FORMATS + MOVIE_FORMATS,
        ),
        Setting(
            "use_file_extension",
            "bool",
            "File extensions",
            "Add the format's extension",
            default=True,
        ),
        Setting(
            "scene",
            "str",
            "Scene",
            "Scene to render; unset renders the file's active scene",
            default=None,
            max_length=1024,
        ),
        Setting(
            "camera",
            "str",
            "Camera",
            "Camera object; unset keeps the scene's camera",
            default=None,
            max_length=1024,
        ),
        Setting(
            "overwrite",
            "bool",
            "Overwrite",
            overwrite_help,
            default=True,
        ),
        MISSING_FILES,
    )


# What a worker does when a file the scene reads is not in the job's project
# (worker_agent/in_blender/inputs.py): fail the task naming it, or render anyway.
MISSING_FILES = Setting(
    "missing_files",
    "choice",
    "Missing files",
    "fail: a task whose scene reads a file the job did not bring fails, naming it;"
    " render: render anyway (Blender shows missing textures in magenta)",
    default="fail",
    choices=("fail", "render"),
)


SCHEMA = (
    Setting(
        "frames",
        "str",
        "Frames",
        "Frames to render, as in Blender: 1-100,120,130-140",
        required=True,
        check=_check_frames,
    ),
    Setting(
        "chunk_size",
        "int",
        "Chunk size",
        "Frames per task: larger chunks start Blender"
        " less often, smaller ones spread better over many machines",
        default=4,
        minimum=1,
        maximum=10_000,
    ),
    preview.SETTING,
    *output_settings(
        format_help="Image format, or a movie format (FFMPEG: frames render in chunks, then"
        " one task encodes the movie with the scene's settings); unset keeps the scene's",
        overwrite_help="Replace frames already in the output folder (as Blender's Overwrite"
        " option)",
    ),
    fileoutputs.FILE_OUTPUTS,
)


def compile(settings: JSON) -> list[TaskSpec]:
    frames = parse_frames(settings["frames"])
    check_task_count(-(-len(frames) // settings["chunk_size"]))  # before building them
    output = settings["output"].replace("\\", "/")
    common = {
        "scene": settings["scene"],
        "camera": settings["camera"],
        "output_name": output.rsplit("/", 1)[-1],
        "file_format": settings["file_format"],
        "use_file_extension": settings["use_file_extension"],
        "missing_files": settings["missing_files"],
        **fileoutputs.task_payload(settings),
    }
    if settings["file_format"] and is_movie_format(settings["file_format"]):
        return movie.compile(settings, common)  # chunks of frames, then the encode
    renders = [
        TaskSpec(
            name=f"frames {format_frames(chunk)}",
            kind="render",
            payload={**common, "frames": chunk},
            frames=tuple(chunk),
        )
        for chunk in chunk_frames(frames, settings["chunk_size"])
    ]
    if not settings["preview"] or len(set(frames)) < 2:
        return renders  # a still is its own preview
    # then a small preview movie of the finished frames (preview.py)
    return [*renders, preview.preview_task(common, frames, depends_on=tuple(range(len(renders))))]
