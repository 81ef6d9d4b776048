"""Movie file names: a farm movie must be named exactly as a local `blender -b -a` names it.

The table was captured from `scene.render.frame_path()` of Debian's Blender 3.4
and `bpy` 5.0.1, which agree on every row; the marked tests ask both again.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from coordinator.core.movies import FFMPEG_EXTENSIONS, movie_names, movie_path
from tests.support.components import BPY_PYTHON, DEBIAN_BLENDER

# (pattern, start, end, file_format, container, use_file_extension, expected)
CASES = [
    ("/o/frame_", 1, 6, "FFMPEG", "MPEG4", True, "/o/frame_0001-0006.mp4"),
    ("/o/frame_###", 1, 6, "FFMPEG", "MPEG4", True, "/o/frame_001-006.mp4"),
    ("/o/frame_##", 1, 250, "FFMPEG", "MKV", True, "/o/frame_01-250.mkv"),
    ("/o/f_#x#", 0, 12, "FFMPEG", "WEBM", True, "/o/f_#x0-12.webm"),  # the last run only
    ("/o/a.mp4", 1, 6, "FFMPEG", "MPEG4", True, "/o/a.mp4"),  # its extension: kept
    ("/o/a.Mp4", 1, 6, "FFMPEG", "MPEG4", True, "/o/a.mp4"),  # ... in lower case
    ("/o/a.mpg", 1, 6, "FFMPEG", "MPEG4", True, "/o/a.mpg"),
    ("/o/a.mp4", 1, 6, "FFMPEG", "MPEG1", True, "/o/a.mp40001-0006.mpg"),
    ("/o/a.MOV", 1, 6, "FFMPEG", "QUICKTIME", True, "/o/a.mov"),
    ("/o/a.MOV", 1, 6, "FFMPEG", "MPEG4", True, "/o/a.MOV0001-0006.mp4"),
    ("/o/a##b.png", 1, 6, "FFMPEG", "MPEG1", True, "/o/a01-06b.png.mpg"),
    ("/o/", 1, 6, "FFMPEG", "MPEG4", True, "/o/0001-0006.mp4"),
    ("/o/x.", 1, 6, "FFMPEG", "MPEG4", True, "/o/x.0001-0006.mp4"),  # dots stay
    ("/o/a#/b", 0, 12, "FFMPEG", "WEBM", True, "/o/a#/b0000-0012.webm"),  # "#" in a folder
    ("/o/s", 10, 12345, "FFMPEG", "MPEG2", True, "/o/s0010-12345.dvd"),
    ("/o/s.vob", 1, 2, "FFMPEG", "MPEG2", True, "/o/s.vob"),
    ("/o/s", 1, 2, "FFMPEG", "OGG", True, "/o/s0001-0002.ogv"),
    ("/o/s.ogg", 1, 2, "FFMPEG", "OGG", True, "/o/s.ogg"),
    ("/o/s", 1, 2, "FFMPEG", "DV", True, "/o/s0001-0002.dv"),
    ("/o/s", 1, 2, "FFMPEG", "FLASH", True, "/o/s0001-0002.flv"),
    ("/o/s", 1, 2, "FFMPEG", "AVI", True, "/o/s0001-0002.avi"),
    ("/o/frame_", 1, 6, "FFMPEG", "MPEG4", False, "/o/frame_"),  # no "#": as it is
    ("/o/frame_###", 1, 6, "FFMPEG", "MPEG4", False, "/o/frame_001-006"),
    ("/o/a.mp4", 1, 6, "FFMPEG", "QUICKTIME", False, "/o/a.mp4"),
]
# Blender's own AVI writers exist up to 4.1: asked of 3.4 only.
AVI_CASES = [
    ("/o/frame_", 1, 6, "AVI_JPEG", "MPEG4", True, "/o/frame_0001-0006.avi"),
    ("/o/a.AVI", 1, 6, "AVI_RAW", "MPEG4", True, "/o/a.AVI"),  # kept, case and all
    ("/o/a.mp4", 1, 6, "AVI_JPEG", "MPEG4", True, "/o/a.mp40001-0006.avi"),
    ("/o/f_##", 1, 6, "AVI_RAW", "MPEG4", False, "/o/f_01-06"),
]


@pytest.mark.parametrize(
    ("pattern", "start", "end", "fmt", "container", "ext", "want"), CASES + AVI_CASES
)
def test_movie_path(
    pattern: str, start: int, end: int, fmt: str, container: str, ext: bool, want: str
) -> None:
    got = movie_path(
        pattern, start, end, file_format=fmt, container=container, use_file_extension=ext
    )
    assert got == want


def test_every_container_name_is_allowed() -> None:
    names = movie_names("frame_", 1, 6, file_format="FFMPEG", use_file_extension=True)
    assert len(names) == len(FFMPEG_EXTENSIONS)
    assert names[0] == "frame_0001-0006.mp4" and "frame_0001-0006.mov" in names
    assert movie_names("a.mov", 1, 6, file_format="FFMPEG", use_file_extension=True)[:2] == (
        "a.mov0001-0006.mp4",
        "a.mov0001-0006.mpg",
    )
    assert movie_names("f", 1, 6, file_format="AVI_JPEG", use_file_extension=True) == (
        "f0001-0006.avi",
    )


def test_refuses_what_is_not_a_movie() -> None:
    with pytest.raises(ValueError, match="not a movie format"):
        movie_path("/o/a", 1, 2, file_format="PNG")
    with pytest.raises(ValueError, match="unknown FFmpeg container"):
        movie_path("/o/a", 1, 2, container="MP5")


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import bpy
    cases = json.loads(open(sys.argv[-1]).read())
    scene = bpy.context.scene
    render = scene.render
    out = []
    for pattern, start, end, fmt, container, ext in cases:
        if hasattr(render.image_settings, "media_type"):
            render.image_settings.media_type = "VIDEO"
        render.image_settings.file_format = fmt
        if fmt == "FFMPEG":
            render.ffmpeg.format = container
        scene.frame_start, scene.frame_end = start, end
        render.filepath = pattern
        render.use_file_extension = ext
        out.append(render.frame_path(frame=start))
    print("MOVIE_PATHS=" + json.dumps(out))
    """
)


def _ask(command: list[str], tmp_path: Path, cases: list[tuple[object, ...]]) -> list[str]:
    script, data = tmp_path / "movies.py", tmp_path / "cases.json"
    script.write_text(_SCRIPT)
    data.write_text(json.dumps([c[:-1] for c in cases]))
    run = subprocess.run(
        [*command, str(script), "--", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("MOVIE_PATHS=")]
    assert run.returncode == 0 and lines, run.stdout + run.stderr
    return list(json.loads(lines[-1].removeprefix("MOVIE_PATHS=")))


@pytest.mark.blender
def test_table_matches_blender_3_4(tmp_path: Path) -> None:
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "--python"]
    cases = CASES + AVI_CASES
    assert _ask(command, tmp_path, cases) == [c[-1] for c in cases]


@pytest.mark.bpy
def test_table_matches_bpy_5_0(tmp_path: Path) -> None:
    assert _ask([str(BPY_PYTHON)], tmp_path, CASES) == [c[-1] for c in CASES]
