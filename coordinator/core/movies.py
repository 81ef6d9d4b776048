"""The file name Blender gives a movie render, so a farm movie lands where a local one would.

No `bpy` here: the coordinator names the movie an encode task may upload
without Blender. The rules mirror Blender's C code for movie paths
(`ffmpeg_filepath_get` in writeffmpeg.c, `filepath_avi` in avi for AVI_JPEG and
AVI_RAW): the output path made absolute, then, with File Extensions on, a name
that already ends in one of the container's extensions is kept (FFmpeg writes
that extension in lower case), any other name gets the frame range
(`BLI_path_frame_range`: the last "#" run of the file name, or 4 digits
appended) and the container's first extension. With File Extensions off, only
a name with "#" gets the range. Checked against `scene.render.frame_path()` of
Debian's Blender 3.4 and of `bpy` 5.0.1, which agree on every case
(tests/core/test_movies.py).

A scene's container (`render.ffmpeg.format`) is in the .blend, which the
coordinator does not read: it allows the names of every container, and the
worker's Blender picks one.
"""

from __future__ import annotations

import re

# render.ffmpeg.format -> its extensions; the first is the one Blender appends,
# the others are kept when the name already ends in them (get_file_extensions).
FFMPEG_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "MPEG4": (".mp4", ".mpg", ".mpeg"),  # first: the container most scenes use
    "MPEG1": (".mpg", ".mpeg"),
    "MPEG2": (".dvd", ".vob", ".mpg", ".mpeg"),
    "AVI": (".avi",),
    "QUICKTIME": (".mov",),
    "DV": (".dv",),
    "OGG": (".ogv", ".ogg"),
    "MKV": (".mkv",),
    "FLASH": (".flv",),
    "WEBM": (".webm",),
}
# Blender's own AVI writers (up to 4.1): the name is kept as it is, in any case.
AVI_FORMATS = ("AVI_JPEG", "AVI_RAW")
_AVI_EXTENSION = ".avi"

DIGITS = 4  # frame digits when the name has no "#" (BLI_path_frame_range(..., 4))
_LAST_HASHES = re.compile(r"#+(?=[^#]*\Z)")


def movie_path(
    pattern: str,
    frame_start: int,
    frame_end: int,
    *,
    file_format: str = "FFMPEG",
    container: str = "MPEG4",
    use_file_extension: bool = True,
) -> str:
    """The exact path Blender writes the movie of frames start..end of `pattern` to.

    `pattern` is `render.filepath` made absolute (or a bare file name);
    `container` is `render.ffmpeg.format` when `file_format` is FFMPEG.
    """
    extensions: tuple[str, ...]
    if file_format in AVI_FORMATS:
        extensions, lower = (_AVI_EXTENSION,), False
    elif file_format == "FFMPEG":
        try:
            extensions, lower = FFMPEG_EXTENSIONS[container], True
        except KeyError:
            raise ValueError(f"unknown FFmpeg container {container!r}") from None
    else:
        raise ValueError(f"{file_format!r} is not a movie format")
    if not use_file_extension:
        return _frame_range(pattern, frame_start, frame_end) if "#" in _name(pattern) else pattern
    for ext in extensions:
        if len(pattern) >= len(ext) and pattern[-len(ext) :].lower() == ext:
            return pattern[: -len(ext)] + ext if lower else pattern
    return _frame_range(pattern, frame_start, frame_end) + extensions[0]


def movie_names(
    name: str, frame_start: int, frame_end: int, *, file_format: str, use_file_extension: bool
) -> tuple[str, ...]:
    """Every file name the movie of output name `name` may have: one per container
    for FFmpeg (the scene's container is only known to Blender), in a fixed order."""
    containers = list(FFMPEG_EXTENSIONS) if file_format == "FFMPEG" else ["MPEG4"]
    names: dict[str, None] = {}
    for container in containers:
        path = movie_path(
            name,
            frame_start,
            frame_end,
            file_format=file_format,
            container=container,
            use_file_extension=use_file_extension,
        )
        names[path] = None
    return tuple(names)


def _name(path: str) -> str:
    return path[max(path.rfind("/"), path.rfind("\\")) + 1 :]


def _frame_range(path: str, start: int, end: int) -> str:
    """BLI_path_frame_range: "a_##" -> "a_01-06"; no "#" in the name: 4 appended first."""
    cut = len(path) - len(_name(path))
    folder, name = path[:cut], path[cut:]
    if "#" not in name:
        name += "#" * DIGITS
    run = _LAST_HASHES.search(name)
    assert run is not None  # there is at least one "#" by now
    width = len(run.group())
    return folder + name[: run.start()] + f"{start:0{width}d}-{end:0{width}d}" + name[run.end() :]
