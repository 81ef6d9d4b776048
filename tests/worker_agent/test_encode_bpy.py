"""The movie encode in bpy 5.0.1: frames rendered by the runner, encoded by encode.py.

The farm's path end to end runs on Blender 3.4 (tests/e2e/test_movie_render.py);
this runs the same two scripts in a Python with bpy 5.0.1, as a worker started
with --bpy-python does, and compares the movie with a local render's, decoded
by Blender, with the same measure (mean |difference| per colour channel, in
0-255 levels). Measured: 0.03 levels on each frame.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.blendgen import BPY_PYTHON, make_scene, png_pixels, run_script
from worker_agent.in_blender import encode, runner

pytestmark = [pytest.mark.bpy, pytest.mark.slow]

MEAN_TOLERANCE = 2.0
FRAMES = 4

# Sets the movie output, renders it locally, and saves the file for the farm's scripts.
LOCAL = """
import json, sys
import bpy
args = json.load(open(sys.argv[1]))
bpy.ops.wm.open_mainfile(filepath=args["blend"])
render = bpy.context.scene.render
render.ffmpeg.format = "MPEG4"
render.ffmpeg.codec = "H264"
render.ffmpeg.constant_rate_factor = "HIGH"
bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
render.filepath = args["local"]
bpy.ops.render.render(animation=True)
"""

DECODE = """
import json, os, sys
import bpy
for movie, out in json.load(open(sys.argv[1]))["movies"]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    strip = scene.sequence_editor_create().strips.new_movie("m", movie, 1, 1)
    scene.frame_start, scene.frame_end = 1, strip.frame_final_duration
    scene.render.resolution_x, scene.render.resolution_y = 64, 48
    scene.render.resolution_percentage = 100
    scene.render.dither_intensity = 0
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.filepath = os.path.join(out, "")
    bpy.ops.render.render(animation=True)
"""


def run(script: str, args: dict[str, object]) -> None:
    proc, command, output = run_script(BPY_PYTHON, script, args, timeout=300)
    assert proc.returncode == 0, f"{command}\n{output[-3000:]}"


def farm_script(path: str, task: dict[str, object], folder: Path) -> None:
    task_json = folder / f"{Path(path).stem}.json"
    task_json.write_text(json.dumps(task))
    proc = subprocess.run(
        [str(BPY_PYTHON), path, "--bpy", str(task_json)], capture_output=True, timeout=300
    )
    output = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0 and '"event":"done"' in output, output[-3000:]


def mean_difference(a: Path, b: Path) -> float:
    pa, pb = png_pixels(a), png_pixels(b)
    return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)


def test_bpy_5_encodes_like_a_local_render(tmp_path: Path) -> None:
    blend = make_scene(
        tmp_path / "shot.blend", blender=BPY_PYTHON, frames=(1, FRAMES), file_format="FFMPEG"
    )
    local = tmp_path / "local" / "frame_"
    run(LOCAL, {"blend": str(blend), "local": str(local)})
    frames = tmp_path / "frames"
    names = [f"farm_movie_frame_000{f}.png" for f in range(1, FRAMES + 1)]
    farm_script(
        runner.__file__,
        {
            "blend": str(blend),
            "frames": list(range(1, FRAMES + 1)),
            "output_dir": str(frames),
            "output_name": "farm_movie_frame_####",
            "file_format": "PNG",
            "color_depth": "16",
        },
        tmp_path,
    )
    out = tmp_path / "farm"
    farm_script(
        encode.__file__,
        {
            "blend": str(blend),
            "output_dir": str(out),
            "frames_dir": str(frames),
            "inputs": names,
            "frame_start": 1,
            "frame_end": FRAMES,
            "output_name": "frame_",
        },
        tmp_path,
    )
    name = f"frame_0001-000{FRAMES}.mp4"
    assert os.listdir(out) == [name] and (tmp_path / "local" / name).is_file()
    movies = [
        [str(out / name), str(tmp_path / "d_farm")],
        [str(tmp_path / "local" / name), str(tmp_path / "d_local")],
    ]
    run(DECODE, {"movies": movies})
    decoded = sorted(os.listdir(tmp_path / "d_local"))
    assert len(decoded) == FRAMES and sorted(os.listdir(tmp_path / "d_farm")) == decoded
    for frame in decoded:
        difference = mean_difference(tmp_path / "d_farm" / frame, tmp_path / "d_local" / frame)
        print(f"bpy 5.0 {frame}: farm vs local {difference:.3f} levels")
        assert difference <= MEAN_TOLERANCE
