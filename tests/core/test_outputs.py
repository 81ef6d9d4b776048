"""Output file names: the farm must name frames exactly as a local `blender -b -a` does.

The expected names in the plain tables were captured from Debian's Blender 3.4
and `bpy` 5.0.1 (`scene.render.frame_path()`), which agree on all of them;
test_matches_real_blender re-checks the rules against the installed Blender.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from coordinator.core.outputs import (
    TemplateError,
    expand_path_template,
    frame_path,
    is_movie_format,
    local_output_folder,
    output_folder,
    resolve_blender_relative,
    safe_filename,
)

BLENDER = Path("/usr/bin/blender")


@pytest.mark.parametrize(
    ("pattern", "frame", "expected"),
    [
        ("/r/frame_###", 7, "/r/frame_007.png"),
        ("/r/frame_###", 12345, "/r/frame_12345.png"),  # wider than the hashes
        ("/r/frame_###", -7, "/r/frame_-007.png"),  # the sign is not part of the width
        ("/r/frame_###", -1234, "/r/frame_-1234.png"),
        ("/r/#", 0, "/r/0.png"),
        ("/r/#", -1, "/r/-1.png"),
        ("/r/frame_", 7, "/r/frame_0007.png"),  # no "#": 4 digits appended
        ("/r/frame_", -7, "/r/frame_-0007.png"),
        ("/r/", 1, "/r/0001.png"),  # a folder: the frame is the whole name
        ("/r/", 123456, "/r/123456.png"),
        ("/r/a##b##c", 5, "/r/a##b05c.png"),  # only the last run counts
        ("/r/###a#", 5, "/r/###a5.png"),
        ("/r/a.##.exr", 5, "/r/a.05.png"),
        ("/r##/a", 5, "/r##/a0005.png"),  # "#" in a folder name is left alone
        ("/r##/a#", 5, "/r##/a5.png"),
        ("/r/##/", 5, "/r/##/0005.png"),
        ("C:\\r##\\a", 5, "C:\\r##\\a0005.png"),  # "\" separates folders too
        ("\\\\server\\share\\f_#", 5, "\\\\server\\share\\f_5.png"),
        ("/r/a b#", 5, "/r/a b5.png"),
        ("/r/ü_##", 1, "/r/ü_01.png"),
        ("/r/.hidden", 5, "/r/.hidden0005.png"),
    ],
)
def test_frame_numbers(pattern: str, frame: int, expected: str) -> None:
    assert frame_path(pattern, frame, file_format="PNG") == expected


@pytest.mark.parametrize(
    ("pattern", "file_format", "expected"),
    [
        ("/r/a", "BMP", "/r/a0005.bmp"),
        ("/r/a", "IRIS", "/r/a0005.rgb"),
        ("/r/a", "PNG", "/r/a0005.png"),
        ("/r/a", "JPEG", "/r/a0005.jpg"),
        ("/r/a", "JPEG2000", "/r/a0005.jp2"),
        ("/r/a", "TARGA", "/r/a0005.tga"),
        ("/r/a", "TARGA_RAW", "/r/a0005.tga"),
        ("/r/a", "CINEON", "/r/a0005.cin"),
        ("/r/a", "DPX", "/r/a0005.dpx"),
        ("/r/a", "OPEN_EXR", "/r/a0005.exr"),
        ("/r/a", "OPEN_EXR_MULTILAYER", "/r/a0005.exr"),
        ("/r/a", "HDR", "/r/a0005.hdr"),
        ("/r/a", "TIFF", "/r/a0005.tif"),
        ("/r/a", "WEBP", "/r/a0005.webp"),
        # An extension already there is kept, in any case and either spelling.
        ("/r/a#.exr", "OPEN_EXR", "/r/a5.exr"),
        ("/r/a_#.PNG", "PNG", "/r/a_5.PNG"),
        ("/r/a#.jpeg", "JPEG", "/r/a5.jpeg"),
        ("/r/a#.tiff", "TIFF", "/r/a5.tiff"),
        ("/r/a#.TIF", "TIFF", "/r/a5.TIF"),
        # Another image extension is replaced...
        ("/r/a#.png", "OPEN_EXR", "/r/a5.exr"),
        ("/r/a#.JPEG", "PNG", "/r/a5.png"),
        ("/r/a#.j2c", "JPEG2000", "/r/a5.jp2"),
        ("/r/a#.sgi", "IRIS", "/r/a5.rgb"),
        ("/r/a#.psd", "PNG", "/r/a5.png"),
        ("/r/a#.dds", "PNG", "/r/a5.png"),
        # ... anything else is appended to, after trailing dots are dropped.
        ("/r/a#.mp4", "PNG", "/r/a5.mp4.png"),
        ("/r/a.b", "PNG", "/r/a.b0005.png"),
        ("/r/a.", "PNG", "/r/a.0005.png"),
        ("/r/a####.", "PNG", "/r/a0005.png"),
        ("/r/a#...", "PNG", "/r/a5.png"),
        ("/r/a#.png..", "PNG", "/r/a5.png.png"),
        # Without "#" the digits go after the extension, which then no longer ends the name.
        ("/r/a.png", "PNG", "/r/a.png0005.png"),
        ("/r/a.jpg", "JPEG", "/r/a.jpg0005.jpg"),
        ("/r/a.exr#", "OPEN_EXR", "/r/a.exr5.exr"),
        (".png", "PNG", ".png0005.png"),
    ],
)
def test_extensions(pattern: str, file_format: str, expected: str) -> None:
    assert frame_path(pattern, 5, file_format=file_format) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/r/a_#", "/r/a_5"),
        ("/r/a", "/r/a0005"),
        ("/r/a#.png", "/r/a5.png"),
        ("/r/a.", "/r/a.0005"),
    ],
)
def test_without_file_extension(pattern: str, expected: str) -> None:
    assert frame_path(pattern, 5, file_format="OPEN_EXR", use_file_extension=False) == expected


@pytest.mark.parametrize(("codec", "expected"), [("JP2", "/r/a5.jp2"), ("J2K", "/r/a5.j2c")])
def test_jpeg2000_extension_follows_the_codec(codec: str, expected: str) -> None:
    assert frame_path("/r/a#", 5, file_format="JPEG2000", jpeg2k_codec=codec) == expected


@pytest.mark.parametrize(
    ("pattern", "kwargs", "message"),
    [
        ("/r/a#", {"file_format": "GIF"}, "unknown Blender file format 'GIF'"),
        ("/r/a#", {"file_format": "png"}, "unknown Blender file format 'png'"),
        ("/r/a#", {"file_format": "FFMPEG"}, "FFMPEG writes one movie file"),
        ("/r/a#", {"file_format": "AVI_JPEG"}, "AVI_JPEG writes one movie file"),
        ("/r/a#", {"file_format": "JPEG2000", "jpeg2k_codec": "X"}, "unknown JPEG 2000 codec"),
        ("//render/a#", {"file_format": "PNG"}, "relative to the .blend file"),
    ],
)
def test_frame_path_rejects(pattern: str, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frame_path(pattern, 1, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "folder"),
    [
        ("/shots/renders/", "/shots/renders"),  # a folder: the frames go inside it
        ("/shots/f_####", "/shots"),
        ("/f", "/"),  # the root keeps its separator
        ("C:\\f_#", "C:\\"),
        ("C:\\r\\f", "C:\\r"),  # Blender reads "\" as a separator on every OS
        ("f_##", ""),  # no folder named
        ("", ""),
    ],
)
def test_output_folder(pattern: str, folder: str) -> None:
    """The one rule the coordinator's delivery, the add-on and `pull` share."""
    assert output_folder(pattern) == folder


@pytest.mark.parametrize(
    ("file_format", "expected"),
    [
        ("FFMPEG", True),
        ("AVI_JPEG", True),
        ("AVI_RAW", True),
        ("PNG", False),
        ("OPEN_EXR_MULTILAYER", False),
        ("JPEG2000", False),
    ],
)
def test_is_movie_format(file_format: str, expected: bool) -> None:
    assert is_movie_format(file_format) is expected


def test_is_movie_format_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="unknown Blender file format 'MP4'"):
        is_movie_format("MP4")


@pytest.mark.parametrize(
    ("path", "blend_dir", "expected"),
    [
        ("//render/", "/proj/shot", "/proj/shot/render/"),
        ("//render/f_##", "/proj/shot", "/proj/shot/render/f_##"),
        ("//render/f_##", "/proj/shot/", "/proj/shot/render/f_##"),
        ("//../out/f_##", "/proj/shot", "/proj/out/f_##"),
        ("//", "/proj/shot", "/proj/shot/"),
        ("//f_#", "/proj/shot", "/proj/shot/f_#"),
        ("/tmp/x/../y//a_##", "/proj", "/tmp/y/a_##"),
        ("/tmp/x/./y/a_##", "/proj", "/tmp/x/y/a_##"),
        ("/tmp/x/../", "/proj", "/tmp/"),
        ("/tmp/x/..", "/proj", "/tmp/"),  # as Blender 5.0 (3.4 names it "/tmp/x/..0001.png")
        ("/tmp/x/.", "/proj", "/tmp/x/"),
        ("///tmp/a#", "/proj", "/tmp/a#"),
        ("/tmp/x\\a##\\b", "/proj", "/tmp/x/a##/b"),  # Blender on Linux reads "\" as "/"
        ("//a\\b#", "/proj", "/proj/a/b#"),
        ("//render/f_##", "//srv/proj", "/srv/proj/render/f_##"),
        # A Windows artist's paths stay Windows paths.
        ("//render\\f_##", "C:\\proj\\shot", "C:\\proj\\shot\\render\\f_##"),
        ("//render/", "C:\\proj", "C:\\proj\\render\\"),
        ("//../out/f_##", "C:\\proj\\shot", "C:\\proj\\out\\f_##"),
        ("D:\\out\\..\\f_##", "C:\\proj", "D:\\f_##"),
        ("//f_#", "\\\\server\\share\\proj", "\\\\server\\share\\proj\\f_#"),
    ],
)
def test_resolve_blender_relative(path: str, blend_dir: str, expected: str) -> None:
    assert resolve_blender_relative(path, blend_dir) == expected


@pytest.mark.parametrize(
    ("path", "blend_dir", "message"),
    [
        ("render/f_##", "/proj", "relative to Blender's working directory"),
        ("~/render/f_##", "/proj", "relative to Blender's working directory"),
        ("", "/proj", "relative to Blender's working directory"),
        ("//render/", "proj", "the .blend's folder 'proj' is not an absolute path"),
        ("//render/", "", "is not an absolute path"),
    ],
)
def test_resolve_blender_relative_rejects(path: str, blend_dir: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_blender_relative(path, blend_dir)


TEMPLATE_VALUES = {
    "blend_name": "shot",
    "blend_dir": "/p/",
    "fps": 30000 / 1001,
    "resolution_x": 32,
    "resolution_y": 24,
    "scene_name": "Scene",
}


# What bpy 5.0.1's frame_path() gave for these (tests/addon/test_bpy.py checks it live).
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("//o/{blend_name}_{resolution_x}x{resolution_y}_", "//o/shot_32x24_"),
        ("//o/{fps}_", "//o/29.97002997002997_"),
        ("//o/{fps:###}_{fps:.###}_{fps:###.##}", "//o/030_29.970_029.97"),
        ("//o/{resolution_x:#####}_{resolution_x:.##}", "//o/00032_32.00"),
        ("//o/{{literal}}_{blend_dir}_", "//o/{literal}_/p/_"),
        ("//o/{{{fps:#}}}", "//o/{30}"),
        ("//o/f_####", "//o/f_####"),
    ],
)
def test_path_templates(template: str, expected: str) -> None:
    assert expand_path_template(template, TEMPLATE_VALUES) == expected


def test_text_values_are_made_safe_as_file_names_as_blender_does() -> None:
    # what bpy 5.0.1 makes of scene and camera names in {scene_name}, {camera_name}
    assert safe_filename("Sc:1/x") == "Sc_1_x"
    assert safe_filename('C/a:m*"<>|?\\x\x01') == "C_a_m_______x_"
    assert [safe_filename(n) for n in ("...", "..", ".")] == ["_..", "_.", "_"]
    assert [safe_filename(n) for n in ("a..b", " sp ", "é", ".hidden")] == [
        "a..b",
        " sp ",
        "é",
        ".hidden",
    ]


def test_path_template_numbers_round_half_away_from_zero() -> None:
    assert expand_path_template("{fps:#}|{fps:.#}|{fps}", {"fps": 28.5}) == "29|28.5|28.5"
    assert expand_path_template("{fps:##}", {"fps": 24.0}) == "24"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("//o/{nope}_", r"unknown variable in \{nope\}; known: \{blend_name\}"),
        ("//o/{}", "unknown variable"),
        ("//o/{ fps }", "unknown variable"),
        ("//o/{fps", "incomplete template expression '{fps'"),
        ("//o/{ {fps}", "incomplete template expression '{ '"),
        ("//o/{fps}{", "incomplete template expression '{'"),
        ("//o/}x", "unescaped '}' at position 5"),
        ("//o/{scene_name:##}", "scene_name is text"),
        *(
            (f"//o/{{fps:{spec}}}", "invalid format")
            for spec in ("", ".", "##.", "-#", "#.#.#", "x")
        ),
    ],
)
def test_path_template_errors_say_what_is_wrong(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        expand_path_template(template, TEMPLATE_VALUES)


# (render.filepath, frame, file_format, use_file_extension); "{root}" is a temp folder
# and the .blend is saved in {root}/proj, so "//" paths resolve against that.
BLENDER_CASES: list[tuple[str, int, str, bool]] = [
    ("{root}/out/frame_###", 7, "PNG", True),
    ("{root}/out/frame_###", -7, "PNG", True),
    ("{root}/out/frame_##", -1234, "PNG", True),
    ("{root}/out/frame_", 7, "PNG", True),
    ("{root}/out/frame_", -7, "PNG", True),
    ("{root}/out/", 12, "PNG", True),
    ("{root}/out/a##b##c", 5, "PNG", True),
    ("{root}/out##/a", 5, "PNG", True),
    ("{root}/out##/a#", 5, "PNG", True),
    ("{root}/out/a_#", 5, "PNG", False),
    ("{root}/out/a", 5, "OPEN_EXR", False),
    ("{root}/out/a_#.PNG", 5, "PNG", True),
    ("{root}/out/a.png", 5, "PNG", True),
    ("{root}/out/a#.png", 5, "OPEN_EXR", True),
    ("{root}/out/a#.mp4", 5, "OPEN_EXR", True),
    ("{root}/out/a#.png..", 5, "PNG", True),
    ("{root}/out/a####.", 5, "PNG", True),
    ("{root}/out/a#.jpeg", 5, "JPEG", True),
    ("{root}/out/a#", 5, "JPEG", True),
    ("{root}/out/a#", 5, "OPEN_EXR_MULTILAYER", True),
    ("{root}/out/a#.tiff", 5, "TIFF", True),
    ("{root}/out/a#.pdd", 5, "TARGA_RAW", True),
    ("{root}/out/a#.psb", 5, "BMP", True),
    ("{root}/out/a#.hdr", 5, "WEBP", True),
    ("{root}/out/a#.webp", 5, "IRIS", True),
    ("{root}/out/a#", 5, "CINEON", True),
    ("{root}/out/a#.cin", 5, "DPX", True),
    ("{root}/out/a#", 5, "HDR", True),
    ("{root}/out/a#.rgba", 5, "JPEG2000", True),
    ("{root}/out/../x/./y//f_##", 3, "PNG", True),
    ("{root}/out\\sub##\\f_##", 3, "PNG", True),
    ("//render/", 1, "PNG", True),
    ("//render/f_####", 250, "OPEN_EXR", True),
    ("//../shared/f_#", 9, "PNG", True),
    ("//", 9, "PNG", True),
]

# Runs inside Blender: prints what Blender itself would name each case.
BLENDER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import bpy

    def set_format(image_settings, file_format):
        if hasattr(image_settings, "media_type"):  # Blender 4.5+
            is_multilayer = file_format == "OPEN_EXR_MULTILAYER"
            image_settings.media_type = "MULTI_LAYER_IMAGE" if is_multilayer else "IMAGE"
            if is_multilayer:
                return
        image_settings.file_format = file_format

    blend_path, cases_path = sys.argv[sys.argv.index("--") + 1 :]
    bpy.ops.wm.save_as_mainfile(filepath=blend_path)
    render = bpy.context.scene.render
    names = []
    for pattern, frame, file_format, use_ext in json.load(open(cases_path)):
        render.filepath = pattern
        set_format(render.image_settings, file_format)
        render.use_file_extension = use_ext
        names.append(render.frame_path(frame=frame))
    print("FRAME_PATHS=" + json.dumps(names))
    """
)


@pytest.mark.blender
def test_matches_real_blender(tmp_path: Path) -> None:
    root = str(tmp_path)
    cases = [(p.replace("{root}", root), f, fmt, ext) for p, f, fmt, ext in BLENDER_CASES]
    (tmp_path / "proj").mkdir()
    blend = tmp_path / "proj" / "scene.blend"
    script, cases_file = tmp_path / "names.py", tmp_path / "cases.json"
    script.write_text(BLENDER_SCRIPT)
    cases_file.write_text(json.dumps(cases))
    blender_args: list[str | Path] = [
        "-b",
        "--factory-startup",
        "--python-exit-code",
        "1",
        "--python",
        script,
    ]
    run = subprocess.run(
        [BLENDER, *blender_args, "--", blend, cases_file],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("FRAME_PATHS=")]
    assert run.returncode == 0 and lines, run.stdout + run.stderr
    blender_names = json.loads(lines[-1].removeprefix("FRAME_PATHS="))

    ours = [
        frame_path(
            resolve_blender_relative(p, str(blend.parent)),
            f,
            file_format=fmt,
            use_file_extension=ext,
        )
        for p, f, fmt, ext in cases
    ]
    assert ours == blender_names


@pytest.mark.parametrize(
    ("pattern", "windows", "folder"),
    [
        ("/shots/renders/", False, "/shots/renders"),
        ("/shots/f_####", False, "/shots"),
        ("\\shots\\f_####", False, "/shots"),  # Blender on Linux reads "\" as "/"
        ("C:\\shots\\f_####", False, None),  # another OS's path names no folder here
        ("\\\\server\\share\\f_####", False, None),
        ("f_####", False, None),  # relative: no folder of this machine
        ("", False, None),
        ("C:\\shots\\f_####", True, "C:\\shots"),
        ("C:\\f_####", True, "C:\\"),
        ("/shots/f_####", True, None),  # not absolute on Windows (no drive)
    ],
)
def test_local_output_folder(pattern: str, windows: bool, folder: str | None) -> None:
    assert local_output_folder(pattern, windows=windows) == folder
